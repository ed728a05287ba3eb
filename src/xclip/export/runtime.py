"""Running an exported folder: :class:`ExportedModel`, the part of :class:`~xclip.XCLIP` that
inference uses (``cfg``, ``preprocess``, ``check_video``, ``encode_video``, ``encode_text``,
``logits``), on ONNX Runtime or on the ``torch.export`` programs.

``load_inference_model(DIR)`` returns one for an exported folder, so
``VideoClassifier(DIR, labels)``, ``embed_videos`` and ``--model DIR`` run it with the same
decoding and preprocessing as a saved model. The graphs' precision is fixed at export (fp32, or
int8 weights): autocast does not apply to them.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from torch import nn

from xclip.errors import InputError

from ..config import PreprocessConfig, XCLIPConfig
from ..fingerprint import old_fingerprint_problem
from ..model import XCLIP, VideoFeatures
from .folder import LabelBank, Manifest, read_label_bank, read_manifest
from .onnx_support import require_onnxruntime

logger = logging.getLogger(__name__)

__all__ = ["ExportedModel", "load_exported", "onnx_providers"]


def onnx_providers(device: torch.device) -> list[str]:
    """ONNX Runtime execution providers for ``device``: CUDA (TensorRT first when installed) on
    a CUDA device, else the CPU provider; ``InputError`` when the device's provider is missing."""
    import onnxruntime as ort  # lazy: optional dependency

    have = ort.get_available_providers()
    if device.type == "cpu":
        return ["CPUExecutionProvider"]
    if device.type == "cuda":
        if "CUDAExecutionProvider" not in have:
            raise InputError(
                "this onnxruntime has no CUDA execution provider; pip install onnxruntime-gpu "
                "(in place of onnxruntime), or run on --device cpu"
            )
        first = ["TensorrtExecutionProvider"] if "TensorrtExecutionProvider" in have else []
        return [*first, "CUDAExecutionProvider", "CPUExecutionProvider"]
    raise InputError(f"an ONNX export runs on cpu or cuda, not {device.type}")


def _damaged(folder: Path, file: str, e: BaseException) -> InputError:
    reason = (str(e).strip().splitlines() or [type(e).__name__])[-1][:200]
    return InputError(
        f"{folder}: the graph {file!r} cannot be loaded ({reason}); the exported folder is "
        "damaged: export the model again"
    )


class _OnnxGraphs:
    """The three ONNX graphs as ONNX Runtime sessions on one device."""

    def __init__(
        self, folder: Path, manifest: Manifest, device: torch.device, threads: int
    ) -> None:
        require_onnxruntime(f"running the ONNX export {folder}")
        import onnxruntime as ort  # lazy: optional dependency

        opts = ort.SessionOptions()
        if threads > 0:
            opts.intra_op_num_threads = threads
        providers = onnx_providers(device)
        self.device = device
        self.sessions = {}
        for name, file in manifest.graphs.items():
            try:
                self.sessions[name] = ort.InferenceSession(
                    str(folder / file), opts, providers=providers
                )
            except Exception as e:  # ORT raises its own types for a graph it cannot read
                raise _damaged(folder, file, e) from None
        self.io = manifest.io

    def run(self, name: str, *inputs: torch.Tensor) -> list[torch.Tensor]:
        feeds = {
            k: np.ascontiguousarray(v.detach().cpu().numpy())
            for k, v in zip(self.io[name]["inputs"], inputs, strict=True)
        }
        outs = self.sessions[name].run(self.io[name]["outputs"], feeds)
        return [torch.from_numpy(o).to(self.device) for o in outs]


class _Pt2Graphs:
    """The three ``torch.export`` programs as modules on one device."""

    def __init__(self, folder: Path, manifest: Manifest, device: torch.device) -> None:
        self.device = device
        self.modules: dict[str, nn.Module] = {}
        for name, file in manifest.graphs.items():
            try:
                ep = torch.export.load(folder / file)
            except Exception as e:  # a truncated or foreign archive: torch's own error types
                raise _damaged(folder, file, e) from None
            self.modules[name] = ep.module().to(device)

    def run(self, name: str, *inputs: torch.Tensor) -> list[torch.Tensor]:
        with torch.no_grad():
            out = self.modules[name](*(t.to(self.device) for t in inputs))
        return list(out) if isinstance(out, tuple | list) else [out]


class ExportedModel:
    """An exported folder, loaded to run with the inference pipeline (see the module doc).

    ``backend`` is ``"onnx"`` or ``"pt2"``; ``fingerprint`` the weights fingerprint of the model
    it was exported from; ``label_bank`` the class-text features stored at export (``None``
    without ``--labels``): :meth:`encode_text` of exactly those tokens returns them without
    running the text graph.
    """

    def __init__(self, folder: str | os.PathLike, *, threads: int = 0) -> None:
        self.folder = Path(folder)
        self.manifest = read_manifest(self.folder)
        self.cfg: XCLIPConfig = self.manifest.config
        self.preprocess: PreprocessConfig = self.manifest.preprocess
        self.backend = self.manifest.backend
        self.quantization = self.manifest.quantization
        self.fingerprint = self.manifest.fingerprint
        problem = old_fingerprint_problem(
            self.fingerprint,
            f"the exported folder {self.folder}",
            "export it again (`xclip-video export SOURCE -o FOLDER --overwrite`) before resuming "
            "jobs or searching indexes with it",
        )
        if problem is not None:  # it still runs; what compares fingerprints refuses it
            logger.warning("%s", problem)
        self.logit_scale = torch.tensor(self.manifest.logit_scale).log()
        self.label_bank: LabelBank | None = read_label_bank(self.folder, self.manifest)
        self.threads = threads
        self._device = torch.device("cpu")
        self._graphs = self._load(self._device)

    def __reduce__(self):
        """Pickled as its folder (and thread count): a process that unpickles it (a Ray actor,
        a worker process) loads the graphs itself. A runtime session is never pickled."""
        return (_reopen, (str(self.folder), self.threads, str(self._device)))

    def _load(self, device: torch.device):
        if self.backend == "onnx":
            return _OnnxGraphs(self.folder, self.manifest, device, self.threads)
        return _Pt2Graphs(self.folder, self.manifest, device)

    # the nn.Module calls the pipeline makes ---------------------------------------------------
    def eval(self) -> ExportedModel:
        return self

    def float(self) -> ExportedModel:
        return self

    def to(self, device: str | torch.device) -> ExportedModel:
        device = torch.device(device)
        if device != self._device:
            self._graphs = self._load(device)
            self._device = device
        return self

    def parameters(self) -> Iterator[torch.Tensor]:
        yield self.logit_scale.to(self._device)

    @property
    def device(self) -> torch.device:
        return self._device

    @property
    def dtype(self) -> torch.dtype:
        return torch.float32

    # the XCLIP interface inference uses -------------------------------------------------------
    def check_video(self, video: torch.Tensor) -> None:
        """The checks of :meth:`XCLIP.check_video` against the exported model's config."""
        XCLIP.check_video(self, video)  # reads only self.cfg

    def encode_video(self, video: torch.Tensor) -> VideoFeatures:
        """Normalised video ``[B, T, 3, S, S]`` -> :class:`VideoFeatures` (the video graph)."""
        self.check_video(video)
        outs = self._graphs.run("video", video.float())
        return VideoFeatures(outs[0], outs[1] if len(outs) > 1 else None)

    def encode_text(self, tokens: torch.Tensor) -> torch.Tensor:
        """Token ids ``[K, L]`` -> class-text features ``[K, C]`` (the label bank when the tokens
        are those it was made from, else the text graph)."""
        if tokens.ndim != 2:
            raise InputError(f"tokens must be [K, L] token ids, got shape {tuple(tokens.shape)}")
        if tokens.dtype.is_floating_point:
            raise TypeError(f"tokens must be integer ids (use xclip.tokenize), got {tokens.dtype}")
        n = self.cfg.context_length
        if tokens.shape[1] > n:
            raise InputError(f"tokens have length {tokens.shape[1]} > context length {n}")
        if tokens.shape[1] < n:
            tokens = torch.nn.functional.pad(tokens, (0, n - tokens.shape[1]))
        tokens = tokens.long().cpu()
        bank = self.label_bank
        if (
            bank is not None
            and bank.tokens.shape == tokens.shape
            and torch.equal(bank.tokens, tokens)
        ):
            return bank.features.to(self._device)
        if tokens.shape[0] == 0:
            return torch.empty(0, self.cfg.embed_dim, device=self._device)
        return self._graphs.run("text", tokens)[0]

    def logits(self, video: VideoFeatures, text_features: torch.Tensor) -> torch.Tensor:
        """Logits ``[B, K]`` from encoded video and class-text features ``[K, C]`` (the head)."""
        inputs = (video.embeds, video.tokens) if self.cfg.use_prompts else (video.embeds,)
        return self._graphs.run("head", *(t.float() for t in inputs), text_features.float())[0]

    def __call__(self, video: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        return self.logits(self.encode_video(video), self.encode_text(tokens))

    def __repr__(self) -> str:
        q = f", {self.quantization}" if self.quantization else ""
        return f"ExportedModel({str(self.folder)!r}, {self.backend}{q}, {self._device})"


def load_exported(folder: str | os.PathLike, *, threads: int = 0) -> ExportedModel:
    """The exported folder ``folder`` (written by :func:`~xclip.export_model`), ready to run."""
    return ExportedModel(folder, threads=threads)


def _reopen(folder: str, threads: int, device: str) -> ExportedModel:
    """An unpickled :class:`ExportedModel`: loaded again from its folder, on its device."""
    model = ExportedModel(folder, threads=threads)
    return model.to(device) if device != "cpu" else model
