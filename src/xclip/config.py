"""Architecture configs (frozen dataclasses) and the registry of named X-CLIP architectures."""

from __future__ import annotations

import difflib
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from xclip.errors import InputError

# ImageNet statistics on the 0-1 scale. The original X-CLIP normalises with these (on the 0-255
# scale: 123.675/116.28/103.53 and 58.395/57.12/57.375), not with CLIP's statistics.
IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)
CLIP_MEAN: tuple[float, float, float] = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD: tuple[float, float, float] = (0.26862954, 0.26130258, 0.27577711)


@dataclass(frozen=True)
class XCLIPConfig:
    """Every number that shapes an X-CLIP model.

    Heads default to ``width // 64`` as in the original code; the tiny test model and Hugging Face
    checkpoints with other head counts set them explicitly.
    """

    # joint embedding
    embed_dim: int = 512
    # vision tower (CLIP ViT + cross-frame communication)
    image_size: int = 224
    patch_size: int = 32
    vision_width: int = 768
    vision_layers: int = 12
    vision_heads: int | None = None
    num_frames: int = 8
    # text tower (CLIP text transformer)
    context_length: int = 77
    vocab_size: int = 49408
    text_width: int = 512
    text_layers: int = 12
    text_heads: int | None = None
    # multi-frame integration transformer
    mit_layers: int = 1
    mit_heads: int | None = None
    # video-specific prompt generator
    prompt_layers: int = 2
    prompt_heads: int | None = None
    prompt_alpha: float = 0.1
    # QuickGELU (x*sigmoid(1.702x)) as OpenAI CLIP and every X-CLIP checkpoint; False = nn.GELU,
    # for CLIP weights trained with exact GELU (most non-OpenAI open_clip weights)
    quick_gelu: bool = True
    # regularisation (0 in every released config)
    drop_path_rate: float = 0.0
    # ablation switches (paper Table 6); all True is X-CLIP, all False is the CLIP-Mean baseline
    cross_frame: bool = True
    use_mit: bool = True
    use_prompts: bool = True

    def __post_init__(self) -> None:
        if self.image_size % self.patch_size != 0:
            raise InputError(
                f"image_size {self.image_size} is not a multiple of patch_size {self.patch_size}"
            )
        for name in ("vision", "text", "mit", "prompt"):
            width = {
                "vision": self.vision_width,
                "text": self.text_width,
                "mit": self.embed_dim,
                "prompt": self.embed_dim,
            }[name]
            heads = getattr(self, f"{name}_heads")
            if heads is not None and width % heads != 0:
                raise InputError(f"{name} width {width} is not divisible by {name}_heads={heads}")
        if self.num_frames < 1:
            raise InputError(f"num_frames must be >= 1, got {self.num_frames}")

    # resolved head counts -------------------------------------------------------------------
    @property
    def vision_num_heads(self) -> int:
        return self.vision_heads or max(1, self.vision_width // 64)

    @property
    def text_num_heads(self) -> int:
        return self.text_heads or max(1, self.text_width // 64)

    @property
    def mit_num_heads(self) -> int:
        return self.mit_heads or max(1, self.embed_dim // 64)

    @property
    def prompt_num_heads(self) -> int:
        return self.prompt_heads or max(1, self.embed_dim // 64)

    @property
    def grid_size(self) -> int:
        return self.image_size // self.patch_size

    @property
    def num_patches(self) -> int:
        return self.grid_size**2

    def to_dict(self) -> dict[str, Any]:
        """The fields as a plain dict (JSON-able; what ``config.json`` stores)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> XCLIPConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise InputError(
                f"unknown XCLIPConfig key(s) {unknown}; valid keys are {sorted(known)}"
            )
        return cls(**d)

    def replace(self, **changes: Any) -> XCLIPConfig:
        """A copy with ``changes`` applied (``cfg.replace(num_frames=16)``); ``self`` is frozen."""
        return replace(self, **changes)


@dataclass(frozen=True)
class PreprocessConfig:
    """What a video must look like before it enters the model (travels with a weights tag)."""

    num_frames: int = 8
    image_size: int = 224
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    # eval: resize the short side to this, then centre-crop image_size (original: int(256/224*size))
    resize_short: int = field(default=0)

    def __post_init__(self) -> None:
        if self.resize_short == 0:
            object.__setattr__(self, "resize_short", int(256 / 224 * self.image_size))

    def to_dict(self) -> dict[str, Any]:
        """The fields as a plain dict (JSON-able; what ``config.json`` stores)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PreprocessConfig:
        d = dict(d)
        for key in ("mean", "std"):
            if key in d:
                d[key] = tuple(float(v) for v in d[key])
        return cls(**d)

    @classmethod
    def for_config(cls, cfg: XCLIPConfig) -> PreprocessConfig:
        """The default preprocessing of an architecture (ImageNet mean/std)."""
        return cls(num_frames=cfg.num_frames, image_size=cfg.image_size)

    def fit_to(self, cfg: XCLIPConfig) -> PreprocessConfig:
        """This preprocessing (mean/std kept) with the frame count and input size of ``cfg``: a
        model built with ``num_frames=`` or ``image_size=`` overrides must be fed accordingly."""
        if (self.num_frames, self.image_size) == (cfg.num_frames, cfg.image_size):
            return self
        resize = self.resize_short
        if self.image_size != cfg.image_size:
            resize = int(256 / 224 * cfg.image_size)
        return replace(
            self, num_frames=cfg.num_frames, image_size=cfg.image_size, resize_short=resize
        )


_B = dict(embed_dim=512, vision_width=768, vision_layers=12, text_width=512, text_layers=12)
_L = dict(
    embed_dim=768,
    vision_width=1024,
    vision_layers=24,
    patch_size=14,
    text_width=768,
    text_layers=12,
)

_ARCHS: dict[str, XCLIPConfig] = {
    "xclip_b32_8f": XCLIPConfig(**_B, patch_size=32, num_frames=8),
    "xclip_b32_16f": XCLIPConfig(**_B, patch_size=32, num_frames=16),
    "xclip_b16_8f": XCLIPConfig(**_B, patch_size=16, num_frames=8),
    "xclip_b16_16f": XCLIPConfig(**_B, patch_size=16, num_frames=16),
    "xclip_b16_32f": XCLIPConfig(**_B, patch_size=16, num_frames=32),
    "xclip_l14_8f": XCLIPConfig(**_L, num_frames=8),
    "xclip_l14_336_16f": XCLIPConfig(**_L, image_size=336, num_frames=16),
    # A tiny model for tests and the CPU demo: same code paths, a few hundred thousand weights
    # outside the token embedding.
    "xclip_test": XCLIPConfig(
        embed_dim=32,
        image_size=32,
        patch_size=8,
        vision_width=64,
        vision_layers=2,
        vision_heads=4,
        num_frames=4,
        text_width=64,
        text_layers=2,
        text_heads=4,
        mit_heads=4,
        prompt_heads=4,
    ),
}


_BUILTIN = frozenset(_ARCHS)


def list_models() -> list[str]:
    """Names of the registered architectures."""
    return list(_ARCHS)


def unknown_name_error(kind: str, name: str, choices: list[str]) -> InputError:
    """An ``InputError`` for an unknown ``kind`` name that suggests the closest ``choices``."""
    close = difflib.get_close_matches(name, choices, n=3, cutoff=0.5)
    hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    return InputError(f"unknown {kind} {name!r}.{hint} Available: {', '.join(choices)}")


def get_config(name: str) -> XCLIPConfig:
    """The :class:`XCLIPConfig` registered under ``name`` (e.g. ``"xclip_b32_8f"``)."""
    try:
        return _ARCHS[name]
    except KeyError:
        raise unknown_name_error("model", name, list_models()) from None


def registered_name(cfg: XCLIPConfig) -> str | None:
    """The registered architecture name whose config equals ``cfg``, or ``None``."""
    for name in list_models():
        if get_config(name) == cfg:
            return name
    return None


def register_model(name: str, cfg: XCLIPConfig, *, overwrite: bool = False) -> None:
    """Register a new architecture under ``name`` (for experiments with other sizes)."""
    if name in _ARCHS and not overwrite:
        raise InputError(f"model {name!r} is already registered; pass overwrite=True to replace it")
    _ARCHS[name] = cfg


def unregister_model(name: str) -> None:
    """Remove an architecture added with :func:`register_model` (the built-in ones stay)."""
    if name in _BUILTIN:
        raise InputError(f"{name!r} is a built-in architecture and cannot be unregistered")
    if name not in _ARCHS:
        raise unknown_name_error("model", name, list_models())
    del _ARCHS[name]
