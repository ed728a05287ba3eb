"""The video index of retrieval and its file format.

One ``FILE.safetensors`` (tensors, with the metadata as JSON in the header) or ``FILE.npy`` (the
embeddings) with sidecars: ``FILE.json`` (metadata), ``FILE.tokens.npy`` (the prompt generator's
visual tokens, float16) and ``FILE.text.npy`` (class-text embeddings). The metadata names the
format (:data:`INDEX_FORMAT`, version 1), the video paths, labels, template, views, skipped videos
and the model that made the index, with a weights fingerprint that :func:`search` checks.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from ..checkpoint import atomic_write, save_json
from ..model import XCLIP
from .errors import one_line_error
from .loading import model_fingerprint
from .results import VideoFailure

__all__ = ["INDEX_FORMAT", "VideoIndex", "load_index"]

INDEX_FORMAT = "xclip-video-index"


@dataclass
class VideoIndex:
    """Video embeddings for retrieval.

    ``embeds``: float32 ``[N, C]`` video embeddings (MIT output, not normalised; averaged over
    views); ``tokens``: ``[N, P, C]`` the prompt generator's visual tokens (``None`` in a compact
    index: then only ``method="cosine"`` search works); ``text_embeds``: ``[K, C]`` raw
    class-text embeddings of ``labels`` when given; ``model``: which model made it (source,
    architecture, config, preprocess and a weights fingerprint).
    """

    paths: list[str]
    embeds: torch.Tensor
    tokens: torch.Tensor | None = None
    labels: list[str] | None = None
    text_embeds: torch.Tensor | None = None
    template: str = "{}"
    model: dict[str, Any] = field(default_factory=dict)
    failures: list[VideoFailure] = field(default_factory=list)
    num_clips: int = 1
    num_crops: int = 1

    def __len__(self) -> int:
        return len(self.paths)

    def _meta(self) -> dict[str, Any]:
        return {
            "format": INDEX_FORMAT,
            "format_version": 1,
            "paths": self.paths,
            "labels": self.labels,
            "template": self.template,
            "model": self.model,
            "num_clips": self.num_clips,
            "num_crops": self.num_crops,
            "failures": [f.to_dict() for f in self.failures],
            "has_tokens": self.tokens is not None,
        }

    def save(self, path: str | os.PathLike) -> Path:
        """Write ``FILE.safetensors`` (tensors + metadata in one file) or ``FILE.npy`` (the
        embeddings; metadata in ``FILE.json``, tokens in ``FILE.tokens.npy``, class-text
        embeddings in ``FILE.text.npy``). Tokens are stored as float16 (half the size)."""
        path = Path(path)
        tensors = {"embeds": self.embeds.float().cpu().contiguous()}
        if self.tokens is not None:
            tensors["tokens"] = self.tokens.half().cpu().contiguous()
        if self.text_embeds is not None:
            tensors["text_embeds"] = self.text_embeds.float().cpu().contiguous()
        if path.suffix == ".safetensors":
            meta = {"xclip_index": json.dumps(self._meta())}
            atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata=meta))
        elif path.suffix == ".npy":
            for key, suffix in (("tokens", ".tokens.npy"), ("text_embeds", ".text.npy")):
                if key in tensors:
                    arr = tensors[key].numpy()
                    atomic_write(_sidecar(path, suffix), lambda tmp, a=arr: _np_save(tmp, a))
            arr = tensors["embeds"].numpy()
            atomic_write(path, lambda tmp: _np_save(tmp, arr))
            save_json(self._meta(), _sidecar(path, ".json"))
        else:
            raise ValueError(f"index file must end in .safetensors or .npy, got {path.name!r}")
        return path

    def check_model(self, model: XCLIP) -> None:
        """``ValueError`` unless ``model`` has the weights this index was built with."""
        want = self.model.get("fingerprint")
        have = model_fingerprint(model)
        if want and want != have:
            raise ValueError(
                f"the index was built with other model weights ({self.model.get('source')}, "
                f"fingerprint {want}) than the given model (fingerprint {have}); search with the "
                f"same model as embed, or rebuild the index"
            )


def _sidecar(path: Path, suffix: str) -> Path:
    return path.with_name(path.name[: -len(".npy")] + suffix)


def _np_save(tmp: str, arr: np.ndarray) -> None:
    with open(tmp, "wb") as f:
        np.save(f, arr, allow_pickle=False)


def load_index(path: str | os.PathLike) -> VideoIndex:
    """Read an index written by :meth:`VideoIndex.save`."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"index file not found: {path} (write one with `xclip-video embed`)"
        )
    bad = f"{path} is not an xclip video index (written by `xclip-video embed`)"
    tokens = text = None
    try:
        if path.suffix == ".safetensors":
            with safe_open(str(path), framework="pt") as f:
                meta = json.loads((f.metadata() or {})["xclip_index"])
                keys = set(f.keys())
                embeds = f.get_tensor("embeds")
                tokens = f.get_tensor("tokens") if "tokens" in keys else None
                text = f.get_tensor("text_embeds") if "text_embeds" in keys else None
        elif path.suffix == ".npy":
            meta_path = _sidecar(path, ".json")
            if not meta_path.is_file():
                raise ValueError(f"{bad}: {meta_path.name} is missing next to it")
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
            embeds = torch.from_numpy(np.load(path, allow_pickle=False))
            tp, xp = _sidecar(path, ".tokens.npy"), _sidecar(path, ".text.npy")
            if meta.get("has_tokens"):
                tokens = torch.from_numpy(np.load(tp, allow_pickle=False))
            if xp.is_file() and meta.get("labels"):
                text = torch.from_numpy(np.load(xp, allow_pickle=False))
        else:
            raise ValueError(f"index file must end in .safetensors or .npy, got {path.name!r}")
    except ValueError:
        raise
    except Exception as e:  # corrupt file, missing metadata key, bad JSON
        raise ValueError(f"{bad} ({type(e).__name__}: {one_line_error(e)})") from None
    if meta.get("format") != INDEX_FORMAT:
        raise ValueError(bad)
    paths = list(meta["paths"])
    if embeds.ndim != 2 or embeds.shape[0] != len(paths):
        raise ValueError(f"{path}: {embeds.shape[0]} embeddings for {len(paths)} paths; rebuild it")
    return VideoIndex(
        paths=paths,
        embeds=embeds.float(),
        tokens=None if tokens is None else tokens.float(),
        labels=meta.get("labels"),
        text_embeds=None if text is None else text.float(),
        template=meta.get("template", "{}"),
        model=meta.get("model", {}),
        failures=[VideoFailure(f["video"], f["error"]) for f in meta.get("failures", [])],
        num_clips=int(meta.get("num_clips", 1)),
        num_crops=int(meta.get("num_crops", 1)),
    )
