"""Annotation files: one module per format, each with a parser, a writer where one makes sense,
and validation that reports every problem at once.

* :mod:`.video_list` (the original): ``relative/path.mp4 <label_id>`` per line.
* :mod:`.labels_csv` (the original): ``id,name`` with ids ``0..K-1`` in file order.
* :mod:`.video_csv`: a header naming a path and a label column; labels are ids or class names.
* :mod:`.class_folders`: ``root/<class>/<video>``; classes are the sorted folder names.
* :mod:`.loading`: :func:`load_annotations` tells the format from the source and checks it all.

Every parser collects *all* problems (file and line number each, :mod:`.problems`) and raises one
:class:`AnnotationError`, so a broken list is reported completely before any training starts.
The evaluation protocols' split tools (UCF-101/HMDB-51 splits, K-shot lists, Kinetics-600
zero-shot subsets) are application code: :mod:`xclip_app.splits`.
"""

from xclip.data.video import VIDEO_EXTENSIONS

from .class_folders import scan_class_folders
from .entry import VideoEntry
from .labels_csv import format_labels_csv, parse_labels_csv, read_labels_csv, write_labels_csv
from .loading import Annotations, load_annotations
from .problems import AnnotationError, Problem
from .video_csv import parse_video_csv, read_video_csv
from .video_list import format_video_list, parse_video_list, read_video_list, write_video_list

__all__ = [
    "VIDEO_EXTENSIONS",
    "AnnotationError",
    "Annotations",
    "Problem",
    "VideoEntry",
    "format_labels_csv",
    "format_video_list",
    "load_annotations",
    "parse_labels_csv",
    "parse_video_csv",
    "parse_video_list",
    "read_labels_csv",
    "read_video_csv",
    "read_video_list",
    "scan_class_folders",
    "write_labels_csv",
    "write_video_list",
]
