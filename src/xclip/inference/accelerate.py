"""The fast inference path: precision, batch size and a compiled video encoder chosen for the device.

On CUDA, by default (``precision="auto"``, ``batch_size=None``, ``compile="auto"``):

- **bf16 autocast** (fp16 on GPUs without bf16) around the fp32 weights; softmax stays fp32. Top-1
  agrees with fp32 (checked by ``benchmarks/gpu_check.py``, ``parity``), so it is the default.
- **SDPA**: attention already runs through ``F.scaled_dot_product_attention``, which picks the
  flash / memory-efficient kernels for bf16 on CUDA (:mod:`xclip.attention`).
- **a compiled video encoder** (``torch.compile``, static shapes): a call runs exactly its own
  views; each chunk size is compiled once (a single video's views, the full batch, the last
  chunk of a job) and at most :data:`MAX_SHAPES` of them; a chunk of a new size beyond that is
  padded with zeros to the smallest compiled size that holds it (the padding's outputs dropped;
  views are independent, so the real outputs do not change).
  ``"auto"`` compiles (``mode="default"``) only once a pipeline has run
  :data:`EAGER_CALLS` batches eagerly: a job that short would not repay the compile time (tens of
  seconds); ``compile=True`` compiles from the first batch with
  ``mode="max-autotune-no-cudagraphs"`` (minutes of start-up, the fastest kernels) and
  ``compile="cudagraphs"`` with ``mode="reduce-overhead"`` (CUDA-graph capture).
- **a batch size chosen for the card** (:func:`auto_batch_size`).

On the CPU nothing changes unless asked: fp32, 8 views per call, eager (compiling costs minutes of
start-up on a CPU and gains little; ``compile=True`` is allowed and tested).
"""

from __future__ import annotations

import logging

import torch

from xclip.errors import InputError

from ..model import XCLIP, VideoFeatures
from ..precision import resolve_precision

logger = logging.getLogger(__name__)

__all__ = [
    "COMPILE_MODES",
    "EAGER_CALLS",
    "CompiledVideoEncoder",
    "auto_batch_size",
    "resolve_compile",
]

COMPILE_MODES = ("auto", True, False, "cudagraphs")
CPU_BATCH = 8
EAGER_CALLS = 16  # batches run eagerly before compile="auto" compiles
MAX_SHAPES = 8  # chunk sizes compiled per encoder (torch.compile's own recompile limit is 8)


def resolve_compile(compile: bool | str, device: torch.device) -> str | None:
    """``compile`` -> the ``torch.compile`` mode to use, or None for eager.

    ``"auto"``: ``"default"`` on CUDA (after :data:`EAGER_CALLS` eager batches), eager on the
    CPU; ``True``: ``"max-autotune-no-cudagraphs"`` on CUDA, ``"default"`` on the CPU;
    ``"cudagraphs"``: ``"reduce-overhead"`` (CUDA-graph capture; CUDA only); ``False``: eager."""
    if compile not in COMPILE_MODES or isinstance(compile, int) and not isinstance(compile, bool):
        raise InputError(f"compile must be one of {COMPILE_MODES}, got {compile!r}")
    if compile is False or (compile == "auto" and device.type != "cuda"):
        return None
    if compile == "auto":
        return "default"
    if compile == "cudagraphs":
        if device.type != "cuda":
            raise InputError(
                "CUDA-graph capture (compile='cudagraphs', --compile cudagraphs) needs a CUDA "
                "device; on the CPU use compile=True (--compile on)"
            )
        return "reduce-overhead"
    return "max-autotune-no-cudagraphs" if device.type == "cuda" else "default"


def auto_batch_size(model: XCLIP, device: torch.device, precision: str = "auto") -> int:
    """Views per model call for ``model`` on ``device``: 8 on the CPU; on CUDA the largest power
    of two (8 ... 128) whose estimated activations fit in a quarter of the free memory.

    The estimate is the peak of one residual block at inference: ``B*T`` frames of ``N`` tokens
    of width ``D``, about 12 such tensors live (the 4x MLP hidden, q/k/v, the residual stream)
    at 2 bytes (bf16/fp16) or 4 (fp32). Throughput on a GPU saturates once ``B*T*N`` is a few
    hundred thousand tokens, so the cap of 128 views costs nothing on large cards."""
    if device.type != "cuda":
        return CPU_BATCH
    cfg = model.cfg
    precision = resolve_precision(precision, device)
    itemsize = 4 if precision == "fp32" else 2
    tokens = (cfg.image_size // cfg.patch_size) ** 2 + 2  # patches + class + message token
    per_view = cfg.num_frames * tokens * cfg.vision_width * 12 * itemsize
    free, _total = torch.cuda.mem_get_info(device)
    fits = max(1, int(free // 4 // per_view))
    b = CPU_BATCH
    while b * 2 <= min(fits, 128):
        b *= 2
    return b


class CompiledVideoEncoder:
    """``model.encode_video`` compiled per chunk size (static shapes, CUDA graphs reusable).

    ``encoder(chunk)`` takes ``[n, T, 3, S, S]`` with ``n <= batch_size`` and returns the
    :class:`~xclip.model.VideoFeatures` of the ``n`` views, computed on exactly ``n`` views
    while at most :data:`MAX_SHAPES` sizes have been compiled; a new size beyond that is padded
    with zeros to the smallest compiled size that holds it (``batch_size`` is always allowed).
    The first ``eager_calls`` calls run the eager model (nothing is compiled before then)."""

    def __init__(self, model: XCLIP, batch_size: int, mode: str, eager_calls: int = 0) -> None:
        self.model, self.batch_size, self.mode = model, batch_size, mode
        self.eager_calls, self.calls = eager_calls, 0
        self.shapes: set[int] = set()  # chunk sizes compiled so far
        self._fn = torch.compile(self._encode, mode=mode, dynamic=False, fullgraph=False)

    def _encode(self, video: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        f = self.model.encode_video(video)
        return f.embeds, f.tokens

    def _size_for(self, n: int) -> int:
        """The compiled size a chunk of ``n`` views runs at: ``n`` itself while there is room
        for another shape, else the smallest compiled size >= n (or the full batch)."""
        if n in self.shapes or len(self.shapes) < MAX_SHAPES:
            self.shapes.add(n)
            return n
        size = min((s for s in self.shapes if s >= n), default=self.batch_size)
        self.shapes.add(size)
        return size

    @property
    def compiled(self) -> bool:
        """Whether the next call runs the compiled encoder."""
        return self.calls >= self.eager_calls

    def __call__(self, chunk: torch.Tensor) -> VideoFeatures:
        n = chunk.shape[0]
        if n > self.batch_size:
            raise ValueError(f"a chunk of {n} views is larger than batch_size={self.batch_size}")
        if not self.compiled:
            self.calls += 1
            return self.model.encode_video(chunk)
        self.calls += 1
        size = self._size_for(n)
        if size > n:
            pad = chunk.new_zeros(size - n, *chunk.shape[1:])
            chunk = torch.cat([chunk, pad])
        if self.mode == "reduce-overhead":
            torch.compiler.cudagraph_mark_step_begin()  # outputs are read before the next call
        embeds, tokens = self._fn(chunk)
        # clone: CUDA-graph outputs live in a pool the next replay overwrites
        embeds = embeds[:n].clone()
        tokens = tokens[:n].clone() if tokens is not None else None
        return VideoFeatures(embeds=embeds, tokens=tokens)
