"""``export_model``: an X-CLIP model -> an exported folder (ONNX or ``torch.export`` programs).

ONNX graphs come from ``torch.onnx.export(..., dynamo=True)`` (the ``torch.export`` path, with
declared dynamic dimensions); ``.pt2`` programs from ``torch.export.export`` and
``torch.export.save``. ``quantize="int8"`` adds ONNX Runtime's dynamic int8 quantisation of the
video and text graphs' weights (the head stays fp32: it is small and it holds the softmax scale).
"""

from __future__ import annotations

import logging
import os
import platform
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from xclip.errors import InputError

from ..atomic import atomic_dir
from ..config import registered_name
from ..fingerprint import export_fingerprint
from ..inference.labels import check_labels, check_template
from ..inference.loading import load_inference_model, model_fingerprint
from ..model import XCLIP
from ..tokenizer import tokenize
from .folder import BACKENDS, LabelBank, Manifest, write_label_bank, write_manifest
from .graphs import GRAPH_NAMES, graph_io, graphs_of
from .onnx_support import require_onnxruntime

logger = logging.getLogger(__name__)

__all__ = ["QUANTIZATIONS", "export_model"]

QUANTIZATIONS = ("int8",)
_MAX_BATCH = 4096
_MAX_LABELS = 1 << 20


def _examples(model: XCLIP) -> dict[str, tuple[torch.Tensor, ...]]:
    """Example inputs of each graph (batch 2, 2 labels: 0 and 1 would be specialised)."""
    cfg = model.cfg
    video = torch.zeros(2, cfg.num_frames, 3, cfg.image_size, cfg.image_size)
    tokens = tokenize(["an example label", "another"], context_length=cfg.context_length)
    with torch.no_grad():  # not inference_mode: export traces these tensors
        f = model.encode_video(video)
        text = model.encode_text(tokens)
    video_out = (f.embeds,) if f.tokens is None else (f.embeds, f.tokens)
    return {"video": (video,), "text": (tokens,), "head": (*video_out, text)}


def _dynamic_shapes(model: XCLIP) -> dict[str, tuple[dict[int, object], ...]]:
    b = torch.export.Dim("batch", min=1, max=_MAX_BATCH)
    k = torch.export.Dim("labels", min=1, max=_MAX_LABELS)
    head = ({0: b}, {0: b}, {0: k}) if model.cfg.use_prompts else ({0: b}, {0: k})
    return {"video": ({0: b},), "text": ({0: k},), "head": head}


def export_model(
    model: XCLIP | str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    format: str = "onnx",
    labels: Sequence[str] | None = None,
    template: str = "{}",
    quantize: str | None = None,
    overwrite: bool = False,
    opset: int = 18,
    progress: Callable[[str], None] | None = None,
) -> Path:
    """Export ``model`` (an :class:`~xclip.XCLIP`, a checkpoint path or ``"arch.tag"``) to the
    folder ``out_dir``: three graphs (video side, text side, head; see
    :mod:`xclip.export.graphs`), the preprocessing and weights fingerprint, and with ``labels``
    a label bank of their class-text features (so the folder classifies without a tokenizer).

    ``format``: ``"onnx"`` (runs on ONNX Runtime, ``pip install 'xclip[onnx]'``) or ``"pt2"``
    (``torch.export`` programs, run by torch alone). ``quantize="int8"`` (ONNX only): dynamic int8
    weights for the video and text graphs. The folder is written as a unit; an existing one is
    refused unless ``overwrite=True``. ``progress`` receives one line per step.
    """
    if format not in BACKENDS:
        raise InputError(f"format must be one of {', '.join(BACKENDS)}, got {format!r}")
    if quantize is not None and quantize not in QUANTIZATIONS:
        raise InputError(f"quantize must be one of {', '.join(QUANTIZATIONS)}, got {quantize!r}")
    if quantize is not None and format != "onnx":
        raise InputError("int8 quantisation is for ONNX exports; use format='onnx'")
    if format == "onnx":
        require_onnxruntime("exporting to ONNX", modules=("onnx", "onnxscript"))
    if labels is not None:
        labels = check_labels(labels)
    template = check_template(template)
    out = Path(out_dir)
    if out.exists() and not overwrite:
        raise FileExistsError(f"{out} already exists")
    model = load_inference_model(model)
    if not isinstance(model, XCLIP):  # an exported folder: its graphs are not PyTorch modules
        raise InputError(
            f"{_shown_name(model)} is already an exported folder; export the PyTorch model it "
            "came from (a model folder, a checkpoint or a released name)"
        )
    model = model.float().eval().cpu()
    quantization = None if quantize is None else f"{quantize}-dynamic"
    source_fingerprint = model_fingerprint(model)
    say = progress or (lambda line: logger.info("%s", line))
    io = graph_io(model)
    examples = _examples(model)
    dynamic = _dynamic_shapes(model)
    graphs = graphs_of(model)
    ext = BACKENDS[format]
    bank = None
    if labels is not None:
        tokens = tokenize(
            [template.replace("{}", lb) for lb in labels], context_length=model.cfg.context_length
        )
        with torch.no_grad():
            feats = graphs["text"](tokens)
        bank = LabelBank(tuple(labels), template, feats, tokens)

    def fill(tmp: Path) -> None:
        for name in GRAPH_NAMES:
            say(f"exporting the {name} graph ({format})")
            path = tmp / f"{name}{ext}"
            if format == "onnx":
                _export_onnx(graphs[name], examples[name], dynamic[name], io[name], path, opset)
            else:
                ep = torch.export.export(
                    graphs[name], examples[name], dynamic_shapes=dynamic[name], strict=False
                )
                torch.export.save(ep, path)
        if quantize == "int8":
            for name in ("video", "text"):
                say(f"quantising the {name} graph (int8, dynamic)")
                _quantize_int8(tmp / f"{name}{ext}")
        if bank is not None:
            write_label_bank(bank, tmp)
        write_manifest(
            Manifest(
                backend=format,
                quantization=quantization,
                architecture=registered_name(model.cfg),
                config=model.cfg,
                preprocess=model.preprocess,
                # int8 graphs are other weights: rows they make must not pass for the source's
                fingerprint=export_fingerprint(source_fingerprint, quantization),
                source_fingerprint=source_fingerprint,
                logit_scale=float(model.logit_scale.detach().exp()),
                graphs={name: f"{name}{ext}" for name in GRAPH_NAMES},
                io=io,
                labels=bank.labels if bank is not None else None,
                template=bank.template if bank is not None else None,
                producer={
                    "torch": torch.__version__,
                    "python": platform.python_version(),
                    **({"opset": str(opset)} if format == "onnx" else {}),
                },
            ),
            tmp,
        )

    return atomic_dir(out, fill, overwrite=overwrite, kind="export")


def _shown_name(model) -> str:
    """How a loaded model is named in a message: its folder when it has one."""
    return str(getattr(model, "folder", type(model).__name__))


def _export_onnx(graph, args, dynamic, io, path: Path, opset: int) -> None:
    # onnxscript's optimizer and onnx_ir log every pass and every constant they do not fold at
    # INFO: keep them out of the caller's log
    quiet = [logging.getLogger(name) for name in ("onnxscript", "onnx_ir")]
    levels = [q.level for q in quiet]
    for q in quiet:
        q.setLevel(logging.WARNING)
    try:
        _torch_onnx_export(graph, args, dynamic, io, path, opset)
    finally:
        for q, level in zip(quiet, levels, strict=True):
            q.setLevel(level)


def _torch_onnx_export(graph, args, dynamic, io, path: Path, opset: int) -> None:
    with torch.no_grad(), warnings.catch_warnings():
        # the head's video inputs share the batch dimension, which torch.onnx reports
        warnings.filterwarnings("ignore", message=".*axis name: batch will not be used")
        torch.onnx.export(
            graph,
            args,
            str(path),
            dynamo=True,
            input_names=io["inputs"],
            output_names=io["outputs"],
            dynamic_shapes=dynamic,
            opset_version=opset,
            external_data=False,
            verbose=False,
        )


def _quantize_int8(path: Path) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic  # lazy: optional dependency

    tmp = path.with_name(path.stem + ".int8.onnx")
    quantize_dynamic(str(path), str(tmp), weight_type=QuantType.QInt8)
    os.replace(tmp, path)
