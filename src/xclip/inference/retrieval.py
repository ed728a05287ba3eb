"""Text-to-video retrieval: embed videos into a :class:`VideoIndex`, rank them for a text query.

X-CLIP's text embedding is video-conditioned, so the default score (``method="prompted"``) is
the model's own score per (video, query): the cosine between the video embedding and the query
embedding plus its video-specific prompt - what the model's logits are made of (divided by the
logit scale). ``method="cosine"`` is the cheap alternative (plain cosine of video embeddings and
raw text embeddings; works with an index saved without tokens).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F

from xclip.errors import InputError

from ..model import XCLIP, VideoFeatures
from ..tokenizer import tokenize
from .index import VideoIndex
from .labels import check_labels, check_template, prompts
from .loading import model_info
from .pipeline import VideoInput, VideoPipeline, video_list
from .results import SearchHit, VideoFailure

logger = logging.getLogger(__name__)

__all__ = ["embed_videos", "search"]


def embed_videos(
    model: XCLIP | str | os.PathLike,
    videos: Sequence[VideoInput] | str | os.PathLike,
    *,
    labels: Sequence[str] | None = None,
    template: str = "{}",
    keep_tokens: bool = True,
    num_clips: int = 1,
    num_crops: int = 1,
    device: str | torch.device | None = None,
    precision: str = "auto",
    batch_size: int | None = None,
    workers: int = 1,
    progress: Callable[[int, int, str], None] | None = None,
    model_name: str | None = None,
    compile: bool | str = "auto",
) -> VideoIndex:
    """Embed videos into a :class:`VideoIndex` (unreadable ones are skipped and listed in
    ``index.failures``). With ``labels`` the raw class-text embeddings are stored too.
    ``keep_tokens=False`` makes a compact index (only ``method="cosine"`` search).
    ``model_name`` is recorded as the model's source (default: ``model`` when it is a name or
    path), so that ``xclip-video search`` can reload the same model. ``precision``,
    ``batch_size`` and ``compile`` are those of :class:`~xclip.inference.pipeline.VideoPipeline`
    (defaults chosen for the device: bf16 and a compiled encoder on CUDA, fp32 eager on the CPU).

    ``videos`` is a list of videos; a path string is one video or a folder (never iterated
    character by character). Only videos the decoder or the file system cannot read are
    skipped; any other error (a bug, out of memory) propagates. Labels and template are checked
    before any video is embedded."""
    videos = video_list(videos)
    if labels is not None:
        labels = check_labels(labels)
    check_template(template)
    pipe = VideoPipeline(
        model, num_clips=num_clips, num_crops=num_crops, device=device, precision=precision,
        batch_size=batch_size, compile=compile,
    )  # fmt: skip
    source = model_name or pipe.model_source
    paths: list[str] = []
    embeds: list[torch.Tensor] = []
    tokens: list[torch.Tensor] = []
    fails: list[VideoFailure] = []
    prepared = (item for _, item in pipe.prepare_iter(videos, workers=workers))
    for i, item in enumerate(pipe.encode_iter(prepared)):
        if isinstance(item, VideoFailure):
            logger.debug("skipping %s: %s", item.source, item.error)
            fails.append(item)
        else:
            g, f = item
            if not bool(torch.isfinite(f.embeds).all()):
                raise FloatingPointError(
                    f"{g.source}: the model gave a NaN or infinite embedding (its weights hold "
                    f"NaN/inf, or {pipe.precision} overflowed: try precision='fp32')"
                )
            paths.append(g.source)
            embeds.append(f.embeds.float().mean(dim=0).cpu())  # views averaged
            if keep_tokens and f.tokens is not None:
                tokens.append(f.tokens.float().mean(dim=0).cpu())
        if progress is not None:
            progress(
                i + 1, len(videos), paths[-1] if not isinstance(item, VideoFailure) else item.source
            )
    c = pipe.model.cfg.embed_dim
    text = None
    if labels is not None:
        with torch.inference_mode(), pipe.autocast():
            text = (
                pipe.model.encode_text(tokenize(prompts(labels, [template])).to(pipe.device))
                .float()
                .cpu()
            )
    return VideoIndex(
        paths=paths,
        embeds=torch.stack(embeds) if embeds else torch.empty(0, c),
        tokens=torch.stack(tokens) if tokens else None,
        labels=list(labels) if labels is not None else None,
        text_embeds=text,
        template=template,
        model=model_info(pipe.model, source),
        failures=fails,
        num_clips=num_clips,
        num_crops=num_crops,
        view_mode=pipe.view_mode,
        precision=pipe.precision,
    )


def search(
    query: str,
    index: VideoIndex,
    model: XCLIP,
    *,
    top_k: int | None = 10,
    template: str = "{}",
    method: str = "auto",
    batch_size: int = 256,
) -> list[SearchHit]:
    """Rank the videos of ``index`` for a text ``query`` (text-to-video retrieval).

    ``method``: ``"prompted"`` - the model's own score, cosine(video embedding, query embedding
    + the video-specific prompt), i.e. the X-CLIP logit divided by the logit scale (needs the
    index's tokens); ``"cosine"`` - cosine of the video embedding and the raw query embedding
    (no prompt generator; cheaper, works with a compact index); ``"auto"`` - prompted when the
    index has tokens. ``model`` must have the weights the index was built with.
    ``top_k=None`` or ``0`` ranks every video (as ``--top-k 0`` on the command line).
    """
    if not isinstance(query, str):
        raise TypeError(
            f"query must be one string, got {type(query).__name__}; call search() once per query"
        )
    if not isinstance(index, VideoIndex):
        raise TypeError(
            f"index must be a VideoIndex (from embed_videos or load_index), got "
            f"{type(index).__name__}"
        )
    if not isinstance(model, XCLIP):
        raise TypeError(
            f"model must be an XCLIP (e.g. load_inference_model(...)), got {type(model).__name__}"
        )
    if top_k is not None and (not isinstance(top_k, int) or isinstance(top_k, bool) or top_k < 0):
        raise InputError(f"top_k must be an int >= 0 (0 or None: all videos), got {top_k!r}")
    if batch_size < 1:
        raise InputError(f"batch_size must be >= 1, got {batch_size}")
    if not query.strip():
        raise InputError("the search query is empty; give a text such as 'a person dancing'")
    if method not in ("auto", "prompted", "cosine"):
        raise InputError(f"method must be auto, prompted or cosine, got {method!r}")
    index.check_model(model)
    if method == "auto":
        method = "prompted" if index.tokens is not None else "cosine"
    if method == "prompted" and index.tokens is None:
        raise InputError(
            "this index was saved without tokens (embed --no-tokens), so only --method cosine "
            "works; rebuild it without --no-tokens for the prompted score"
        )
    if len(index) == 0:
        return []
    device = next(model.parameters()).device
    with torch.inference_mode():
        texts = prompts([query.strip()], [check_template(template)], what="query")
        tokens = tokenize(texts).to(device)
        text = model.encode_text(tokens).float()  # [1, C]
        if method == "cosine":
            scores = F.normalize(index.embeds.to(device), dim=-1) @ F.normalize(text, dim=-1)[0]
        else:
            parts = []
            for lo in range(0, len(index), batch_size):
                feats = VideoFeatures(
                    index.embeds[lo : lo + batch_size].to(device),
                    index.tokens[lo : lo + batch_size].to(device),
                )
                parts.append(model.logits(feats, text)[:, 0] / model.logit_scale.exp())
            scores = torch.cat(parts)  # [N]
    scores = scores.float().cpu()
    if not bool(torch.isfinite(scores).all()):
        bad = [index.paths[i] for i in torch.nonzero(~torch.isfinite(scores))[:3, 0].tolist()]
        raise FloatingPointError(
            f"NaN or infinite scores for {', '.join(bad)}: the index or the model holds NaN/inf "
            f"values; rebuild the index (with precision fp32) and check the model's weights"
        )
    k = len(index) if not top_k else min(top_k, len(index))
    order = scores.argsort(descending=True)[:k].tolist()
    return [SearchHit(r + 1, index.paths[i], float(scores[i])) for r, i in enumerate(order)]
