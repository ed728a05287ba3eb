"""Inference for users: label videos with your own words, timelines of long videos, retrieval.

>>> clf = VideoClassifier(model, ["riding a bike", "cooking", "dancing"], template="a video of {}")
>>> pred = clf("video.mp4")          # decode -> sample T frames -> preprocess -> model
>>> pred.label, pred.prob            # best label and its probability
>>> pred.top(3)                      # [(label, prob), ...] best first

The class-text features of the label set are computed once and cached, so each further video
costs only the video side (decode, preprocess, vision tower + MIT + prompt generator).

The frames and preprocessing are those the weights expect: the frame count and input size come
from ``model.cfg`` and mean/std/resize from ``model.preprocess`` (which travels with a weights
tag or a saved model directory). Sampling is the original test sampling: the centre frame of
each of T equal segments; ``num_clips > 1`` takes evenly shifted points inside the segments
(deterministic) and ``num_crops=3`` three spatial crops. Probabilities are the softmax over the
labels, averaged over the views, as the original multi-view test.

Videos with fewer frames than the model takes are not an error: the sampler repeats frames
(``int((i + 0.5) * n / T)``), exactly as the original test pipeline does.

Retrieval: :func:`embed_videos` builds a :class:`VideoIndex` (video embeddings, optionally the
prompt generator's visual tokens and class-text embeddings; saved as ``.safetensors`` or
``.npy`` + ``.json``), and :func:`search` ranks the indexed videos for a text query
(see :mod:`xclip.inference.retrieval` for the two scores).

Contracts (the same for library users as for the command line): a path string where a list of
videos is expected is one video or a folder, never iterated character by character
(:func:`video_list`); one string as labels is a ``TypeError``; float clips with NaN/inf are a
``ValueError`` naming the input; batch runs record as failed only the videos the decoder or the
file system could not read (:class:`UnreadableVideoError`, ``OSError``), and any other error (a
bug, out of memory) propagates; indexes are written atomically (:meth:`VideoIndex.save`).

Modules: ``results`` (what comes back), ``labels`` (label/template checks), ``loading`` (which
model, its fingerprint), ``device``, ``errors`` (one-line messages), ``processor`` (the one
video path: decode -> sample -> preprocess, :class:`VideoProcessor`), ``pipeline`` (videos in,
features out, views of several videos sharing model calls), ``classifier`` (:class:`VideoClassifier`), ``timeline``
(windows of long videos), ``index`` (:class:`VideoIndex` and its files), ``retrieval``
(:func:`embed_videos`, :func:`search`).
"""

from ..data.video import VIDEO_EXTENSIONS, find_videos
from .classifier import VideoClassifier
from .errors import UnreadableVideoError
from .index import INDEX_FORMAT, VideoIndex, index_files, load_index
from .labels import check_labels, check_templates, ensemble_text_features
from .loading import load_inference_model, model_fingerprint
from .pipeline import VideoPipeline, video_list
from .processor import PreparedVideo, VideoProcessor
from .results import Prediction, SearchHit, VideoFailure
from .retrieval import embed_videos, search

__all__ = [
    "INDEX_FORMAT",
    "VIDEO_EXTENSIONS",
    "PreparedVideo",
    "Prediction",
    "SearchHit",
    "UnreadableVideoError",
    "VideoClassifier",
    "VideoFailure",
    "VideoIndex",
    "VideoPipeline",
    "VideoProcessor",
    "check_labels",
    "check_templates",
    "ensemble_text_features",
    "embed_videos",
    "find_videos",
    "index_files",
    "load_index",
    "load_inference_model",
    "model_fingerprint",
    "search",
    "video_list",
]
