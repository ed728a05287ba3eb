"""Command-line options of the inference commands (classify, embed, search, serve), and what is
built from them: the label list, the model, the classifier.

Command modules are imported when ``xclip-video`` starts, and so is this one: torch and the
library are imported inside the functions that need them.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from xclip_app.exit_codes import UsageError

if TYPE_CHECKING:
    from xclip import XCLIP
    from xclip.inference import VideoClassifier

__all__ = [
    "DEFAULT_MODEL",
    "add_label_arguments",
    "read_templates",
    "add_model_arguments",
    "add_overwrite_argument",
    "add_view_arguments",
    "classifier_from_args",
    "compile_choice",
    "index_model_name",
    "input_guards",
    "load_model_from_args",
    "model_from_index",
    "parse_views",
    "read_labels",
]

DEFAULT_MODEL = "xclip_b16_32f.zero_shot"


def add_model_arguments(
    p: argparse.ArgumentParser, default: str | None = DEFAULT_MODEL, default_help: str = ""
) -> None:
    """``--model`` (default ``default``; ``None`` = required elsewhere or taken from an index:
    ``default_help`` says which), ``--num-frames``, ``--image-size``, ``--interpolate``,
    ``--device``, ``--precision``, ``--threads``."""
    g = p.add_argument_group("model")
    g.add_argument(
        "--model",
        default=default,
        help="checkpoint path (xclip model folder, Hugging Face folder, original .pth), released "
        "weights ARCH.TAG (downloaded on first use), or an architecture name for random weights"
        + (" (default: %(default)s)" if default else default_help),
    )
    g.add_argument(
        "--num-frames",
        type=int,
        help="frames per clip; default and recommended: the checkpoint's own (a different value "
        "is an error unless --interpolate)",
    )
    g.add_argument(
        "--image-size", type=int, help="input size; default: the checkpoint's (see --num-frames)"
    )
    g.add_argument(
        "--interpolate",
        action="store_true",
        help="allow --num-frames/--image-size to differ from the checkpoint by interpolating its "
        "position embeddings (accuracy changes until fine-tuned)",
    )
    g.add_argument(
        "--device", default=None, help="cpu, cuda, cuda:1 ... (default: cuda if available)"
    )
    g.add_argument(
        "--precision",
        choices=("auto", "fp32", "bf16", "fp16"),
        default="auto",
        help="auto (default): bf16 on CUDA, fp32 on the CPU",
    )
    g.add_argument(
        "--compile",
        choices=("auto", "on", "off", "cudagraphs"),
        default="auto",
        help="torch.compile the video encoder for the fixed batch shape; auto (default): on "
        "CUDA only (docs/model.md, GPU)",
    )
    g.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = default)")


def parse_views(text: str) -> tuple[int, int]:
    """``--views CLIPSxCROPS`` (``4x3``) as ``(clips, crops)``; the same in every command."""
    try:
        clips, crops = (int(x) for x in text.lower().split("x"))
    except ValueError:
        raise UsageError(f"--views must look like 4x3 (clips x crops), got {text!r}") from None
    if clips < 1 or crops not in (1, 3):
        raise UsageError(f"--views: clips must be >= 1 and crops 1 or 3, got {text!r}")
    return clips, crops


class _ViewsAction(argparse.Action):
    """``--views 4x3`` sets ``num_clips`` and ``num_crops`` (what ``--num-clips``/``--num-crops``
    set one at a time)."""

    def __call__(self, parser, namespace, values, option_string=None):  # noqa: ANN001
        try:
            namespace.num_clips, namespace.num_crops = parse_views(str(values))
        except UsageError as e:
            parser.error(str(e))


def add_view_arguments(p: argparse.ArgumentParser) -> None:
    """``--views`` (or ``--num-clips``, ``--num-crops``), ``--batch-size``, ``--workers``."""
    g = p.add_argument_group("views and batching")
    g.add_argument(
        "--views",
        action=_ViewsAction,
        metavar="CLIPSxCROPS",
        help="views per video, e.g. 1x1 (default) or 4x3 (the paper's); the same as "
        "--num-clips 4 --num-crops 3",
    )
    g.add_argument("--num-clips", type=int, default=1, help="temporal clips per video (default 1)")
    g.add_argument(
        "--num-crops", type=int, choices=(1, 3), default=1, help="spatial crops per clip (1 or 3)"
    )
    g.add_argument(
        "--batch-size",
        type=int,
        default=None,
        help="views per model call (default: chosen for the GPU's memory; 8 on the CPU)",
    )
    g.add_argument(
        "--workers", type=int, default=1, help="decoding threads working ahead of the model"
    )


def add_label_arguments(
    p: argparse.ArgumentParser, required: bool = True, *, ensemble: bool = False
) -> None:
    """``--labels`` or ``--labels-file`` (one of them when ``required``), and ``--template``;
    ``ensemble``: ``--template`` may be repeated and ``--templates-file`` names a file of them
    (label-text ensembles, read by :func:`read_templates`)."""
    g = p.add_argument_group("labels")
    x = g.add_mutually_exclusive_group(required=required)
    x.add_argument("--labels", help="comma-separated label texts, e.g. 'cooking,dancing,surfing'")
    x.add_argument(
        "--labels-file",
        help="text file with one label per line (blank lines and lines starting with # ignored); "
        "use it for labels containing commas",
    )
    if not ensemble:
        g.add_argument(
            "--template",
            default="{}",
            help="prompt with {} where the label goes, e.g. 'a video of a person {}' (default: {})",
        )
        return
    t = g.add_mutually_exclusive_group()
    t.add_argument(
        "--template",
        action="append",
        help="prompt with {} where the label goes, e.g. 'a video of a person {}' (default: {}); "
        "repeat it for a label-text ensemble: each label's text features are averaged over the "
        "templates",
    )
    t.add_argument(
        "--templates-file",
        help="text file with one template per line (blank lines and lines starting with # "
        "ignored): a label-text ensemble",
    )


def add_overwrite_argument(g: Any) -> None:
    """``--overwrite`` on a parser or argument group ``g``: the same meaning in every command
    that writes a file."""
    g.add_argument(
        "--overwrite",
        action="store_true",
        help="replace your earlier xclip output (atomically, when the run succeeds); without it "
        "an existing output is refused. A file xclip did not write, an input or a model is "
        "never replaced",
    )


def input_guards(
    args: argparse.Namespace,
    videos: Iterable[str | os.PathLike] = (),
    *,
    model: str | None = None,
    extra_inputs: Iterable[str | os.PathLike] = (),
) -> dict[str, Any]:
    """What the run reads, as the keyword arguments of
    :func:`xclip_app.outputs.check_outputs`: the ``videos`` (and the files named in
    ``args.videos``), the folders of ``args.videos`` (scanned for videos), ``--labels-file``,
    the model of ``--model`` (or ``model``) when it is a path, and ``extra_inputs``."""
    inputs: list[str | os.PathLike] = [*videos, *extra_inputs]
    scanned = []
    for v in getattr(args, "videos", None) or ():
        (scanned if os.path.isdir(v) else inputs).append(v)
    if getattr(args, "labels_file", None):
        inputs.append(args.labels_file)
    if getattr(args, "templates_file", None):
        inputs.append(args.templates_file)
    protected = []
    src = model or getattr(args, "model", None)
    if src and os.path.exists(src):
        (protected if os.path.isdir(src) else inputs).append(src)
    return {"inputs": inputs, "protected_folders": protected, "scanned_folders": scanned}


def _read_lines(path: Path, what: str, flag: str) -> list[str]:
    """The stripped lines of a text file of labels or templates, without blank lines and
    ``#`` comments; a missing file or one that is not UTF-8 is one line naming it."""
    from xclip.data.annotations.text import read_user_text  # lazy: CLI start-up

    # a byte-order mark (Windows editors write one) is not part of the first line
    text = read_user_text(path, what, shown_as=flag)
    lines = [ln.strip() for ln in text.splitlines()]
    return [ln for ln in lines if ln and not ln.startswith("#")]


def read_labels(args: argparse.Namespace) -> list[str] | None:
    """Labels from ``--labels`` or ``--labels-file`` (validated), or None when neither is given."""
    from xclip.inference import check_labels  # lazy: CLI start-up

    if getattr(args, "labels_file", None):
        path = Path(args.labels_file)
        labels = _read_lines(path, "labels file", "--labels-file")
        if not labels:
            raise UsageError(f"labels file {path} has no labels; write one label per line")
    elif getattr(args, "labels", None) is not None:
        # empty items ("a,,b", a trailing comma) are dropped
        labels = [s.strip() for s in args.labels.split(",") if s.strip()]
        if not labels:
            raise UsageError("--labels is empty; give comma-separated texts, e.g. --labels 'a,b'")
    else:
        return None
    return check_labels(labels)


def read_templates(args: argparse.Namespace) -> str | list[str]:
    """The template(s) of ``--template`` (once: a string, repeated: a list) or
    ``--templates-file`` (a list), checked; ``"{}"`` when neither is given."""
    from xclip.inference import check_templates  # lazy: CLI start-up

    path = getattr(args, "templates_file", None)
    if path:
        path = Path(path)
        items = _read_lines(path, "templates file", "--templates-file")
        if not items:
            raise UsageError(
                f"templates file {path} has no templates; write one per line, e.g. "
                "'a video of a person {}'"
            )
        return check_templates(items)
    given = getattr(args, "template", None)
    if given is None:
        return "{}"
    if isinstance(given, str):
        return check_templates(given)[0]
    templates = check_templates(given)
    return templates[0] if len(templates) == 1 else templates


def index_model_name(model: str, index_path: str | os.PathLike) -> str:
    """What an index records as its model: a model path relative to the index's folder (so the
    index and its model can move together), anything else (``ARCH.TAG``) as given."""
    if not os.path.exists(model) or os.path.isabs(model):
        return model
    return os.path.relpath(os.path.abspath(model), os.path.dirname(os.path.abspath(index_path)))


def model_from_index(source: str, index_path: str | os.PathLike) -> str:
    """The model an index names, found relative to the index's folder first (where
    :func:`index_model_name` puts it), then as given (indexes that recorded a path relative to
    the folder they were made in, or ``ARCH.TAG``)."""
    if source and not os.path.isabs(source):
        beside = os.path.join(os.path.dirname(os.fspath(index_path)), source)
        if os.path.exists(beside):
            return os.path.normpath(beside)
    return source


def classifier_from_args(
    args: argparse.Namespace, model: XCLIP, labels: list[str]
) -> VideoClassifier:
    """A :class:`xclip.inference.VideoClassifier` with the view/device/precision options of ``args``."""
    from xclip.inference import VideoClassifier  # lazy: CLI start-up

    return VideoClassifier(
        model,
        labels,
        template=read_templates(args),
        num_clips=args.num_clips,
        num_crops=args.num_crops,
        device=args.device,
        precision=args.precision,
        batch_size=args.batch_size,
        compile=compile_choice(args.compile),
    )


def compile_choice(value: str) -> bool | str:
    """``--compile`` -> the ``compile=`` argument of the inference pipeline."""
    return {"on": True, "off": False}.get(value, value)


def load_model_from_args(args: argparse.Namespace, model: str | None = None) -> XCLIP:
    """The model of ``--model`` (or ``model``) with the frame/size options of ``args`` checked;
    ``--threads`` sets torch's CPU threads."""
    import torch  # lazy: CLI start-up

    from xclip.inference import load_inference_model  # lazy: CLI start-up

    if getattr(args, "threads", 0) and args.threads > 0:
        torch.set_num_threads(args.threads)
    for opt in ("num_frames", "image_size", "num_clips", "batch_size"):
        v = getattr(args, opt, None)
        if v is not None and v < 1:
            raise UsageError(f"--{opt.replace('_', '-')} must be >= 1, got {v}")
    return load_inference_model(
        model or args.model,
        num_frames=args.num_frames,
        image_size=args.image_size,
        interpolate=args.interpolate,
    )
