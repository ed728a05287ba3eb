"""Training/evaluation configs: typed dataclasses, YAML files, dotted overrides.

A recipe is a YAML file whose sections mirror :class:`RunConfig` (``data``, ``model``, ``train``,
``aug``, ``test``, ``output``, ``protocol``). ``base: other.yaml`` (or a list) names recipes to
start from, relative to the file. Overrides are ``section.key=value`` strings whose value is read
as YAML (``train.lr=8e-6``, ``test.num_crops=3``, ``model.clip_weights=null``).

Every key is checked: an unknown key names the valid keys of its section, a value of the wrong
type names the expected type, a value outside a fixed set names the valid choices. The resolved
config is written next to the run (``config.yaml``) and can be loaded again as a recipe.

Key names follow the original yacs keys in lower case where one exists (``data.train_file``,
``train.accumulation_steps``, ``aug.mixup_switch_prob``, ``test.num_clip`` -> ``test.num_clips``);
the table in ``docs/training.md`` maps them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import json
import math
import types
import typing
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

import yaml

from xclip import list_models
from xclip.atomic import atomic_write_text
from xclip.errors import InputError

__all__ = [
    "AugConfig",
    "ConfigError",
    "DataConfig",
    "EvalSet",
    "ModelConfig",
    "OutputConfig",
    "ProtocolConfig",
    "RunConfig",
    "StudyOption",
    "TestConfig",
    "TrainConfig",
    "PLACEHOLDER_PREFIX",
    "RESULT_NEUTRAL_KEYS",
    "config_differences",
    "config_to_dict",
    "flatten_config",
    "load_config",
    "override_config",
    "save_config",
]

PLACEHOLDER_PREFIX = "/PATH/TO/"


class ConfigError(InputError):
    """A config key or value that is not valid; the message names the key."""


@dataclass
class DataConfig:
    """Where the videos and their annotations are (original ``DATA.*``)."""

    root: str = ""  # video folder or uncompressed .tar ("" = paths in the lists are used as given)
    train_file: str = (
        ""  # annotation list "relative/path.mp4 label" (or a video CSV / class folder)
    )
    val_file: str = ""
    label_list: str = ""  # labels CSV "id,name"; the text of class i is row i's name
    # label-text ensemble: templates with {} where the class name goes; each class's text
    # features are averaged over them in text space (training, validation, zero-shot, eval);
    # [] = the class name as it is (the paper's default)
    templates: list[str] = field(default_factory=list)
    num_classes: int | None = None  # checked against label_list when set (original NUM_CLASSES)
    dataset: str = ""  # informational
    workers: int = 8  # DataLoader worker processes per rank
    backend: str = "auto"  # video decoder: auto, pyav, torchcodec, decord
    max_bad_fraction: float = 0.01  # training stops once more videos than this are unreadable
    # evaluation: skip (and list) unreadable videos instead of failing; training: bad validation
    # videos found by the preflight are listed and the run goes on
    skip_bad: bool = False
    check_files: bool = True  # check at start that every listed video exists
    # before the first epoch, open the header of every validation video (no decoding, threaded)
    # and fail with the list of unreadable ones unless data.skip_bad=true; false = skip the check
    preflight: bool = True


@dataclass
class ModelConfig:
    """Which model to train and how it is initialised (original ``MODEL.*``)."""

    arch: str = "xclip_b32_8f"  # an xclip architecture (xclip.list_models())
    # image CLIP weights to start from (the paper's initialisation): a file or an open_clip name
    # such as "ViT-B-32/openai"; null = random initialisation (tests, debugging)
    clip_weights: str | None = None
    # X-CLIP weights to start from instead (a checkpoint, a model directory or ARCH.TAG)
    init_from: str | None = None
    drop_path_rate: float = 0.0
    # ablation switches; all false = the CLIP-Mean baseline
    cross_frame: bool = True
    use_mit: bool = True
    use_prompts: bool = True
    # "text": classify against the class-name texts (X-CLIP); "linear": a linear classifier on the
    # video embedding (the paper's "w/o text" ablation; needs use_prompts: false)
    head: Literal["text", "linear"] = "text"
    fix_text: bool = True  # freeze the text tower and logit_scale (original MODEL.FIX_TEXT)
    attn_impl: Literal["sdpa", "plain"] = "sdpa"


@dataclass
class TrainConfig:
    """Optimisation (original ``TRAIN.*``)."""

    epochs: int = 30
    warmup_epochs: float = 5.0
    lr: float = 8e-6  # base LR of the pretrained CLIP weights
    min_lr: float | None = None  # absolute minimum LR of *every* group; null = lr / 100
    new_module_lr_mult: float = 10.0  # message_*, mit, prompts*, linear head
    # the prompt generator's own multiplier (not in the original); null = new_module_lr_mult
    prompts_lr_mult: float | None = None
    weight_decay: float = 0.001
    betas: tuple[float, float] = (0.9, 0.98)
    eps: float = 1e-8
    batch_size: int = 8  # per process (per GPU)
    accumulation_steps: int = 1
    grad_checkpointing: bool = False  # original TRAIN.USE_CHECKPOINT
    # "auto": bf16 autocast on GPUs that support it, else fp16 + GradScaler; fp32 on CPU
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"
    clip_grad_norm: float | None = None  # max global grad norm; null = no clipping (original)
    seed: int = 1024  # the seed of rank r is seed + r (as the original)
    deterministic: bool = False  # torch.use_deterministic_algorithms, no cudnn.benchmark
    threads: int = 0  # torch intra-op threads per process (0 = torch's default)
    # The original (timm CosineLRScheduler with warmup_prefix=False) evaluates the cosine over the
    # whole run and lets the warmup override its first epochs; true = start the cosine after warmup
    warmup_prefix: bool = False
    max_steps_per_epoch: int | None = None  # cut epochs short (debugging, smoke tests)
    # --- beyond X-CLIP (docs/training.md, "Beyond X-CLIP") ---
    # weight averaging over training: "ema" (exponential moving average, decay ema_decay per
    # optimizer step) or "uniform" (the mean of the weights after every optimizer step from
    # average_start on, as SWA); the run's final weights are the average
    weight_average: Literal["none", "ema", "uniform"] = "none"
    ema_decay: float = 0.999
    average_start: float = 0.0  # the epoch (may be fractional) from which weights are averaged
    # distillation from the frozen source model (FROSTER): adds distill_weight x the cosine
    # distance between the trained model's video (and, with a trained text tower, class-text)
    # features and those of a frozen copy of the starting CLIP (frame features averaged)
    distill_weight: float = 0.0


@dataclass
class AugConfig:
    """Augmentation and loss (original ``AUG.*``)."""

    label_smooth: float = 0.1
    mixup: float = 0.8  # Beta alpha for mixup; > 0 turns the mixup/cutmix path on
    cutmix: float = 1.0  # Beta alpha for cutmix
    mixup_switch_prob: float = 0.5  # P(cutmix) per batch
    color_jitter: float = 0.8  # a probability (as the original), not a strength
    gray_scale: float = 0.2
    flip: float = 0.5


@dataclass
class TestConfig:
    """Evaluation views (original ``TEST.*``)."""

    num_clips: int = 1  # temporal views
    num_crops: Literal[1, 3] = 1  # spatial views
    view_mode: Literal["random", "uniform"] = "random"  # random = the original's multi-view
    batch_size: int = 2  # per process
    eval_every: int = 1  # single-view validation every N epochs (0 = never during training)
    # the paper's final step: evaluate the last-epoch model with these views after training
    final_eval: bool = True
    final_num_clips: int = 4
    final_num_crops: Literal[1, 3] = 3
    final_view_mode: Literal["random", "uniform"] = "random"


@dataclass
class OutputConfig:
    """Run folder, checkpoints and logging (original ``OUTPUT``, ``SAVE_FREQ``, ``PRINT_FREQ``)."""

    dir: str = "runs/exp"
    save_freq: int = 1  # save every N epochs (and always after the last one)
    save_every_steps: int = 0  # also save every N loader iterations inside an epoch (0 = never)
    keep_last: int = 2  # training checkpoints kept (best/ and the final one are kept too)
    print_freq: int = 50
    progress: bool = True  # tqdm progress bars (rank 0)
    tensorboard: bool = True  # write TensorBoard events if tensorboard is installed


@dataclass
class EvalSet:
    """One evaluation of a protocol: a list, its label set (and its own root if set)."""

    name: str = ""
    val_file: str = ""
    label_list: str = ""
    root: str | None = None


@dataclass
class StudyOption:
    """One option of a paired study: a name and the overrides that make it from the recipe."""

    name: str = ""
    overrides: list[str] = field(default_factory=list)


@dataclass
class ProtocolConfig:
    """The paper's zero-shot / few-shot protocols (``xclip-video zeroshot`` / ``fewshot``)."""

    # zero-shot: each set is evaluated with the given checkpoint; mean +- std over the sets
    eval_sets: list[EvalSet] = field(default_factory=list)
    # few-shot: K videos per class drawn from train_file for each K in shots and each seed;
    # each draw trains a model from model.clip_weights and is tested on data.val_file
    train_file: str = ""
    shots: list[int] = field(default_factory=lambda: [2, 4, 8, 16])
    seeds: list[int] = field(default_factory=lambda: [0])
    # "last": the last-epoch model (as the fully supervised protocol); "best": the max over epochs
    report: Literal["last", "best"] = "last"
    # paired study (xclip-video study): every option trains once per seed of train_seeds (its
    # train.seed), then is tested on eval_sets (data.val_file/label_list when empty); each
    # option's paired difference against the baseline option, per set
    options: list[StudyOption] = field(default_factory=list)
    baseline: str = ""
    train_seeds: list[int] = field(default_factory=lambda: [0, 1, 2])


@dataclass
class RunConfig:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    aug: AugConfig = field(default_factory=AugConfig)
    test: TestConfig = field(default_factory=TestConfig)
    output: OutputConfig = field(default_factory=OutputConfig)
    protocol: ProtocolConfig = field(default_factory=ProtocolConfig)

    # -- derived ---------------------------------------------------------------------------------
    @property
    def min_lr(self) -> float:
        return self.train.lr / 100 if self.train.min_lr is None else self.train.min_lr

    def validate(self) -> RunConfig:
        """Cross-field checks (single fields are checked while loading)."""
        t, m, a = self.train, self.model, self.aug
        for name, value, lo in (
            ("train.epochs", t.epochs, 1),
            ("train.batch_size", t.batch_size, 1),
            ("train.accumulation_steps", t.accumulation_steps, 1),
            ("test.batch_size", self.test.batch_size, 1),
            ("test.num_clips", self.test.num_clips, 1),
            ("test.final_num_clips", self.test.final_num_clips, 1),
            ("output.save_freq", self.output.save_freq, 1),
            ("output.keep_last", self.output.keep_last, 1),
            ("output.print_freq", self.output.print_freq, 1),
        ):
            if value < lo:
                raise ConfigError(f"{name} must be >= {lo}, got {value}")
        for name, value in (
            ("train.lr", t.lr),
            ("train.warmup_epochs", t.warmup_epochs),
            ("train.weight_decay", t.weight_decay),
            ("aug.mixup", a.mixup),
            ("aug.cutmix", a.cutmix),
            ("data.workers", self.data.workers),
            ("output.save_every_steps", self.output.save_every_steps),
            ("test.eval_every", self.test.eval_every),
        ):
            if value < 0:
                raise ConfigError(f"{name} must be >= 0, got {value}")
        for name, value in (
            ("aug.label_smooth", a.label_smooth),
            ("aug.mixup_switch_prob", a.mixup_switch_prob),
            ("aug.color_jitter", a.color_jitter),
            ("aug.gray_scale", a.gray_scale),
            ("aug.flip", a.flip),
            ("data.max_bad_fraction", self.data.max_bad_fraction),
            ("model.drop_path_rate", m.drop_path_rate),
        ):
            if not 0.0 <= value <= 1.0:
                raise ConfigError(f"{name} must be in [0, 1], got {value}")
        if t.warmup_epochs > t.epochs:
            raise ConfigError(
                f"train.warmup_epochs ({t.warmup_epochs}) is longer than train.epochs ({t.epochs})"
            )
        if m.head == "linear" and m.use_prompts:
            raise ConfigError(
                "model.head=linear classifies the video embedding without text, so the "
                "video-specific prompts (which attend from class texts) cannot be used: "
                "set model.use_prompts=false"
            )
        if m.head == "linear" and not m.fix_text:
            raise ConfigError("model.fix_text=false trains the text tower, unused by head=linear")
        if m.clip_weights and m.init_from:
            raise ConfigError("set model.clip_weights or model.init_from, not both")
        if m.arch not in list_models():
            raise ConfigError(_choice_message("model.arch", m.arch, list_models()))
        if not 0.0 <= t.ema_decay < 1.0:
            raise ConfigError(f"train.ema_decay must be in [0, 1), got {t.ema_decay}")
        if not 0.0 <= t.average_start < t.epochs:
            raise ConfigError(
                f"train.average_start must be in [0, train.epochs={t.epochs}), got "
                f"{t.average_start}"
            )
        if t.distill_weight < 0:
            raise ConfigError(f"train.distill_weight must be >= 0, got {t.distill_weight}")
        for name, value in (
            ("train.min_lr", t.min_lr),
            ("train.new_module_lr_mult", t.new_module_lr_mult),
            ("train.prompts_lr_mult", t.prompts_lr_mult),
        ):
            if value is not None and value < 0:
                raise ConfigError(f"{name} must be >= 0 (or null), got {value}")
        if t.clip_grad_norm is not None and not t.clip_grad_norm > 0:
            raise ConfigError(
                f"train.clip_grad_norm must be > 0 (the largest gradient norm kept), or null for "
                f"no clipping; got {t.clip_grad_norm}"
            )
        if not t.eps > 0:
            raise ConfigError(f"train.eps must be > 0 (AdamW's denominator term), got {t.eps}")
        for i, beta in enumerate(t.betas):
            if not 0.0 <= beta < 1.0:
                raise ConfigError(f"train.betas[{i}] must be in [0, 1), got {beta}")
        for i, tpl in enumerate(self.data.templates):
            if tpl.count("{}") != 1:
                raise ConfigError(
                    f"data.templates[{i}] must contain {{}} exactly once, where the class name "
                    f"goes (e.g. 'a video of a person {{}}'), got {tpl!r}"
                )
        if len(set(self.data.templates)) != len(self.data.templates):
            raise ConfigError("data.templates lists a template twice; give each once")
        if t.max_steps_per_epoch is not None and t.max_steps_per_epoch < 1:
            raise ConfigError("train.max_steps_per_epoch must be >= 1 or null")
        return self


def _choice_message(key: str, value: Any, choices: Sequence[Any]) -> str:
    close = difflib.get_close_matches(str(value), [str(c) for c in choices], n=3, cutoff=0.5)
    hint = f" (did you mean {', '.join(repr(c) for c in close)}?)" if close else ""
    return f"{key}: {value!r} is not valid{hint}; valid choices: {', '.join(map(repr, choices))}"


# --- conversion of YAML values to typed fields ----------------------------------------------------


def _type_name(tp: Any) -> str:
    origin = get_origin(tp)
    if origin is Literal:
        return " | ".join(repr(a) for a in get_args(tp))
    if origin in (Union, types.UnionType):
        return " | ".join(_type_name(a) for a in get_args(tp))
    if tp is type(None):
        return "null"
    if origin is not None:
        return f"{origin.__name__}[{', '.join(_type_name(a) for a in get_args(tp))}]"
    return getattr(tp, "__name__", str(tp))


def _convert(value: Any, tp: Any, key: str) -> Any:
    origin = get_origin(tp)
    if origin is Literal:
        choices = get_args(tp)
        if value not in choices or isinstance(value, bool) != isinstance(choices[0], bool):
            raise ConfigError(_choice_message(key, value, choices))
        return value
    if origin in (Union, types.UnionType):
        args = get_args(tp)
        if value is None:
            if type(None) in args:
                return None
            raise ConfigError(f"{key} may not be null; expected {_type_name(tp)}")
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _convert(value, a, key)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(
            errors[0] if len(errors) == 1 else f"{key}: {value!r} is not {_type_name(tp)}"
        )
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"{key} must be a mapping of {tp.__name__} keys, got {value!r}")
        return _build(tp, value, key)
    if origin in (list, tuple):
        if isinstance(value, str) or not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key} must be a list ({_type_name(tp)}), got {value!r}")
        args = get_args(tp)
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(value) != len(args):
                raise ConfigError(
                    f"{key} must have {len(args)} items ({_type_name(tp)}), got {value!r}"
                )
            return tuple(
                _convert(v, a, f"{key}[{i}]")
                for i, (v, a) in enumerate(zip(value, args, strict=False))
            )
        inner = args[0] if args else Any
        items = [_convert(v, inner, f"{key}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if tp is Any:
        return value
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{key} must be true or false, got {value!r}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise ConfigError(f"{key} must be an integer, got {value!r}")
    if tp is float:
        number = None
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            number = float(value)
        elif isinstance(value, str):  # YAML 1.1 reads "8e-6" (no dot) as a string
            with contextlib.suppress(ValueError):
                number = float(value)
        if number is None:
            raise ConfigError(f"{key} must be a number, got {value!r}")
        if not math.isfinite(number):
            # NaN compares false with every bound, so no range check below would catch it
            raise ConfigError(f"{key} must be a finite number, got {value!r}")
        return number
    if tp is str:
        if isinstance(value, str):
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
        raise ConfigError(f"{key} must be a string, got {value!r}")
    raise ConfigError(f"{key}: unsupported field type {tp}")  # pragma: no cover


def _hints(cls: type) -> dict[str, Any]:
    return get_type_hints(cls, globalns=vars(typing) | globals())


def _build(cls: type, values: dict[str, Any], prefix: str) -> Any:
    hints = _hints(cls)
    names = [f.name for f in fields(cls)]
    unknown = [k for k in values if k not in names]
    if unknown:
        k = unknown[0]
        where = f"{prefix}.{k}" if prefix else k
        close = difflib.get_close_matches(str(k), names, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ConfigError(
            f"unknown config key {where!r}{hint}; valid keys{' of ' + prefix if prefix else ''}: "
            f"{', '.join(names)}"
        )
    kwargs = {k: _convert(v, hints[k], f"{prefix}.{k}" if prefix else k) for k, v in values.items()}
    return cls(**kwargs)


# --- YAML files with bases, dotted overrides ------------------------------------------------------


def _deep_merge(base: dict, update: dict) -> dict:
    out = dict(base)
    for k, v in update.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _deep_merge(out[k], v)
        else:
            out[k] = v
    return out


def _read_yaml(path: Path, seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    path = path.resolve()
    if path in seen:
        raise ConfigError(f"config base cycle: {' -> '.join(map(str, seen + (path,)))}")
    if not path.is_file():
        raise FileNotFoundError(f"config file not found: {path}")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{path} is not valid YAML: {e}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path} must hold a mapping of sections, got {type(raw).__name__}")
    bases = raw.pop("base", None) or []
    if isinstance(bases, str):
        bases = [bases]
    merged: dict[str, Any] = {}
    for b in bases:
        merged = _deep_merge(merged, _read_yaml(path.parent / b, seen + (path,)))
    return _deep_merge(merged, raw)


def parse_override(item: str) -> tuple[list[str], Any]:
    """``"train.lr=8e-6"`` -> ``(["train", "lr"], 8e-06)`` (the value is read as YAML)."""
    if "=" not in item:
        raise ConfigError(
            f"override {item!r} must look like section.key=value (e.g. train.lr=8e-6)"
        )
    key, _, text = item.partition("=")
    key = key.strip().lstrip("-")
    parts = [p for p in key.split(".")]
    if len(parts) < 2 or not all(parts):
        raise ConfigError(f"override key {key!r} must be section.key (e.g. train.lr)")
    try:
        value = yaml.safe_load(text) if text.strip() else ""
    except yaml.YAMLError:
        value = text
    return parts, value


def apply_overrides(raw: dict[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    raw = dict(raw)
    for item in overrides:
        parts, value = parse_override(item)
        node: Any = raw
        for depth, p in enumerate(parts):
            last = depth == len(parts) - 1
            if isinstance(node, list):  # protocol.eval_sets.0.val_file
                if not p.isdigit() or int(p) >= len(node):
                    raise ConfigError(
                        f"override {item!r}: {'.'.join(parts[:depth])} has {len(node)} items, "
                        f"{p!r} is not an index of it"
                    )
                if last:
                    node[int(p)] = value
                    break
                nxt = node[int(p)]
                nxt = (
                    dict(nxt)
                    if isinstance(nxt, dict)
                    else list(nxt)
                    if isinstance(nxt, list)
                    else {}
                )
                node[int(p)] = nxt
                node = nxt
                continue
            if last:
                node[p] = value
                break
            nxt = node.get(p)
            nxt = dict(nxt) if isinstance(nxt, dict) else list(nxt) if isinstance(nxt, list) else {}
            node[p] = nxt
            node = nxt
    return raw


def load_config(
    path: str | Path | None = None, overrides: Sequence[str] = (), *, validate: bool = True
) -> RunConfig:
    """A :class:`RunConfig` from a YAML recipe (``None``: the defaults) and dotted overrides."""
    raw = _read_yaml(Path(path)) if path is not None else {}
    raw = apply_overrides(raw, overrides)
    cfg = _build(RunConfig, raw, "")
    return cfg.validate() if validate else cfg


def override_config(cfg: RunConfig, overrides: Sequence[str]) -> RunConfig:
    """``cfg`` with dotted ``overrides`` applied (validated, as :func:`load_config` does)."""
    raw = apply_overrides(config_to_dict(cfg), overrides)
    return _build(RunConfig, raw, "").validate()


def config_to_dict(cfg: Any) -> Any:
    if dataclasses.is_dataclass(cfg):
        return {f.name: config_to_dict(getattr(cfg, f.name)) for f in fields(cfg)}
    if isinstance(cfg, (list, tuple)):
        return [config_to_dict(v) for v in cfg]
    return cfg


def dump_config(cfg: RunConfig) -> str:
    return yaml.safe_dump(config_to_dict(cfg), sort_keys=False, default_flow_style=None)


def save_config(cfg: RunConfig, path: str | Path, *, overwrite: bool = True) -> Path:
    """Write the resolved config as YAML (atomically; ``overwrite=False`` refuses an existing
    file with ``FileExistsError``)."""
    return atomic_write_text(Path(path), dump_config(cfg), overwrite=overwrite)


# Keys that cannot change what a run computes, so a resumed run may change them: logging and
# output (``output.*``), speed and memory knobs (workers, threads, activation checkpointing, the
# evaluation batch), where the data lives (``data.root``, the list *paths*: their content is
# compared by fingerprint instead), the weights a run *started* from (a resumed run takes its
# weights from the checkpoint), the checks that only decide whether a run stops
# (``data.check_files``, ``data.max_bad_fraction``) and ``data.skip_bad`` (an evaluation that
# would stop on an unreadable video is what a resume with ``data.skip_bad=true`` repairs), and the
# protocol drivers' own keys (``protocol.*``). Every other key, including keys added later, is
# compared: a prefix ending in "." names a whole section.
RESULT_NEUTRAL_KEYS = (
    "output.",
    "protocol.",
    "data.root",
    "data.train_file",
    "data.val_file",
    "data.label_list",
    "data.workers",
    "data.check_files",
    "data.max_bad_fraction",
    "data.skip_bad",
    "data.dataset",
    "model.clip_weights",
    "model.init_from",
    "train.threads",
    "train.grad_checkpointing",
    "test.batch_size",
)


def flatten_config(cfg: RunConfig | dict[str, Any]) -> dict[str, Any]:
    """``{"train.lr": 8e-06, ...}``: the dotted keys of a config (or of its dict form) and their
    values; lists (``train.betas``, ``protocol.eval_sets``) stay whole values."""
    tree = config_to_dict(cfg) if dataclasses.is_dataclass(cfg) else cfg
    out: dict[str, Any] = {}

    def walk(node: dict[str, Any], prefix: str) -> None:
        for k, v in node.items():
            key = f"{prefix}{k}"
            if isinstance(v, dict):
                walk(v, key + ".")
            else:
                out[key] = list(v) if isinstance(v, tuple) else v

    walk(tree, "")
    return out


def _is_neutral(key: str) -> bool:
    return any(key.startswith(k) if k.endswith(".") else key == k for k in RESULT_NEUTRAL_KEYS)


def _show(value: Any) -> str:
    """A value as it is typed in an override (``true``, ``null``, ``[0.9, 0.98]``, ``2e-05``)."""
    return json.dumps(value)


def config_differences(old: RunConfig | dict[str, Any], new: RunConfig) -> list[str]:
    """The keys whose change would make a resumed run differ from an uninterrupted one, as
    ``"train.lr: 0.002 -> 0.001"`` (dotted keys, values as typed in overrides).

    ``old`` may be the dict form stored with a run; a key it lacks (written by an older xclip)
    counts as its default value, a key this xclip no longer has is ignored.
    """
    old_flat = flatten_config(old)
    new_flat = flatten_config(new)
    defaults = flatten_config(RunConfig())
    out = []
    for key, value in new_flat.items():
        if _is_neutral(key):
            continue
        before = old_flat.get(key, defaults.get(key))
        if before != value:
            out.append(f"{key}: {_show(before)} -> {_show(value)}")
    return out


def check_paths(cfg: RunConfig, keys: Sequence[str]) -> None:
    """Fail with the key's name when a data path is empty, still a ``/PATH/TO/`` placeholder,
    or names nothing that exists: before any work, not when the loader first reads it."""
    for key in keys:
        section, _, name = key.partition(".")
        value = getattr(getattr(cfg, section), name)
        if value is None or value == "":
            raise ConfigError(f"{key} is not set; pass {key}=PATH (or set it in the recipe)")
        if str(value).startswith(PLACEHOLDER_PREFIX):
            raise ConfigError(
                f"{key} is the placeholder {value!r}; point it at your data, e.g. "
                f"`{key}=/data/...` on the command line or in the recipe"
            )
        if not Path(value).exists():
            raise ConfigError(
                f"{key}: {value} does not exist; check the path (relative paths are relative to "
                f"the folder you run in) and pass {key}=PATH"
            )


def is_placeholder(value: str | None) -> bool:
    return bool(value) and str(value).startswith(PLACEHOLDER_PREFIX)
