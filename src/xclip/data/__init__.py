"""Video data pipeline: annotated videos -> batches of model input clips.

* :mod:`.annotations`: list / CSV / class-folder formats, label sets, protocol splits;
* :mod:`.video`: decoding (one reader interface, several backends, a watchdog), file discovery;
* :mod:`.sampling`: which frame indices become the T input frames;
* :mod:`.transforms`: train augmentation and eval crops on uint8 clips;
* :mod:`.storage`: videos in a folder or an uncompressed tar;
* :mod:`.dataset`: :class:`VideoDataset` and its bad-sample policy;
* :mod:`.loader`: samplers, collation, worker seeding, :func:`build_dataloader`;
* :mod:`.soft_targets` / :mod:`.mixup`: label-smoothed targets, mixup/cutmix, their loss;
* :mod:`.synthetic`: generated test videos.

Needs PyAV (``pip install xclip[video]``); the rest of ``xclip`` does not import this package.
"""

from xclip.data.annotations import (
    AnnotationError,
    VideoEntry,
    load_annotations,
    read_labels_csv,
    read_video_csv,
    read_video_list,
    scan_class_folders,
    write_labels_csv,
    write_video_list,
)
from xclip.data.dataset import TooManyBadVideos, VideoDataset
from xclip.data.loader import BadVideosError, build_dataloader
from xclip.data.mixup import CutmixMixupBlending
from xclip.data.sampling import (
    sample_frame_indices,
    sample_test_indices,
    sample_train_indices,
    sample_uniform_views,
)
from xclip.data.soft_targets import SoftTargetCrossEntropy
from xclip.data.synthetic import make_indexed_clip, read_frame_index, write_video
from xclip.data.transforms import EvalTransform, TrainTransform
from xclip.data.video import (
    DecodeStats,
    FrameIndexError,
    PyAVReader,
    VideoDecodeError,
    VideoMetadata,
    VideoReader,
    available_backends,
    decode_watchdog,
    open_video,
    read_frames,
)

__all__ = [
    "AnnotationError",
    "BadVideosError",
    "CutmixMixupBlending",
    "DecodeStats",
    "EvalTransform",
    "FrameIndexError",
    "PyAVReader",
    "SoftTargetCrossEntropy",
    "TooManyBadVideos",
    "TrainTransform",
    "VideoDataset",
    "VideoDecodeError",
    "VideoEntry",
    "VideoMetadata",
    "VideoReader",
    "available_backends",
    "build_dataloader",
    "decode_watchdog",
    "load_annotations",
    "make_indexed_clip",
    "open_video",
    "read_frame_index",
    "read_frames",
    "read_labels_csv",
    "read_video_csv",
    "read_video_list",
    "sample_frame_indices",
    "sample_test_indices",
    "sample_train_indices",
    "sample_uniform_views",
    "scan_class_folders",
    "write_labels_csv",
    "write_video",
    "write_video_list",
]
