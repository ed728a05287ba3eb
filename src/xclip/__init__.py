"""xclip: X-CLIP (Ni et al., ECCV 2022) for PyTorch.

>>> import xclip
>>> model = xclip.create_model("xclip_test")
>>> tokens = xclip.tokenize(["eating spaghetti", "playing sports"])
"""

from .checkpoint import CheckpointError
from .config import (
    CLIP_MEAN,
    CLIP_STD,
    IMAGENET_MEAN,
    IMAGENET_STD,
    PreprocessConfig,
    XCLIPConfig,
    get_config,
    list_models,
    register_model,
    unregister_model,
)
from .errors import InputError
from .export.exporter import export_model
from .factory import create_model, load_model, save_model
from .inference import (
    Prediction,
    VideoClassifier,
    VideoIndex,
    embed_videos,
    load_index,
    search,
)
from .model import XCLIP, VideoFeatures
from .pretrained import PretrainedWeights, download_pretrained, get_pretrained, list_pretrained
from .tokenizer import Tokenizer, get_tokenizer, tokenize

__version__ = "0.1.0"

__all__ = [
    "CLIP_MEAN",
    "CLIP_STD",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "CheckpointError",
    "InputError",
    "Prediction",
    "PreprocessConfig",
    "PretrainedWeights",
    "Tokenizer",
    "VideoClassifier",
    "VideoFeatures",
    "VideoIndex",
    "XCLIP",
    "XCLIPConfig",
    "create_model",
    "download_pretrained",
    "embed_videos",
    "export_model",
    "get_pretrained",
    "get_config",
    "get_tokenizer",
    "list_models",
    "list_pretrained",
    "load_index",
    "load_model",
    "register_model",
    "save_model",
    "search",
    "tokenize",
    "unregister_model",
]
