"""The video index of retrieval and its file format.

One ``FILE.safetensors`` (tensors, with the metadata as JSON in the header) or ``FILE.npy`` (the
embeddings) with sidecars: ``FILE.json`` (metadata), ``FILE.tokens.npy`` (the prompt generator's
visual tokens, float16) and ``FILE.text.npy`` (class-text embeddings). The metadata names the
format (:data:`INDEX_FORMAT`, version 1), the video paths, labels, template, views (clips, crops,
view mode), precision, skipped videos and the model that made the index, with a weights
fingerprint that :func:`search` checks.

Saving never destroys an index: every file is written under a temporary name (all of them before
any is renamed into place, the metadata last), so a failure while writing (a full disk, Ctrl-C)
leaves the earlier index whole. The ``.npy`` metadata records a checksum of each array file, so a
set of files mixed from two indexes (a crash between the renames, files copied by hand) is
refused on loading instead of pairing the wrong tokens with the wrong paths.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save as safetensors_bytes

from xclip.errors import InputError

from ..atomic import atomic_open
from ..fingerprint import old_fingerprint_problem
from ..model import XCLIP
from ..ownership import remove_owned, require_replaceable
from .errors import one_line_error
from .loading import model_fingerprint
from .results import VideoFailure

__all__ = ["INDEX_FORMAT", "VideoIndex", "check_index_model", "index_files", "load_index"]

INDEX_FORMAT = "xclip-video-index"


@dataclass
class VideoIndex:
    """Video embeddings for retrieval.

    ``embeds``: float32 ``[N, C]`` video embeddings (MIT output, not normalised; averaged over
    views); ``tokens``: ``[N, P, C]`` the prompt generator's visual tokens (``None`` in a compact
    index: then only ``method="cosine"`` search works); ``text_embeds``: ``[K, C]`` raw
    class-text embeddings of ``labels`` when given; ``model``: which model made it (source,
    architecture, config, preprocess and a weights fingerprint); ``num_clips``/``num_crops``/
    ``view_mode``/``precision``: how the embeddings were computed (sampling is deterministic:
    no seed is involved).
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
    view_mode: str = "uniform"
    precision: str = "fp32"

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
            "view_mode": self.view_mode,
            "precision": self.precision,
            "failures": [f.to_dict() for f in self.failures],
            "has_tokens": self.tokens is not None,
        }

    def save(self, path: str | os.PathLike, *, overwrite: bool = True) -> Path:
        """Write ``FILE.safetensors`` (tensors + metadata in one file) or ``FILE.npy`` (the
        embeddings; metadata in ``FILE.json``, tokens in ``FILE.tokens.npy``, class-text
        embeddings in ``FILE.text.npy``). Tokens are stored as float16 (half the size).

        All files are written to temporary names first and renamed into place only when every
        one is complete (the metadata last), so a failure leaves an earlier index as it was.
        ``overwrite=False`` raises ``FileExistsError`` (writing nothing) when any file of the
        index exists; with ``overwrite=True`` sidecars of the replaced index that the new one
        does not have are removed.
        """
        path = Path(path)
        if path.suffix not in (".safetensors", ".npy"):
            raise InputError(f"index file must end in .safetensors or .npy, got {path.name!r}")
        for f in index_files(path):  # the family as a whole, before anything is written
            if f.exists() or f.is_symlink():
                if not overwrite:
                    raise FileExistsError(f"{f} already exists")
                require_replaceable(f)
        tensors = {"embeds": self.embeds.float().cpu().contiguous()}
        if self.tokens is not None:
            tensors["tokens"] = self.tokens.half().cpu().contiguous()
        if self.text_embeds is not None:
            tensors["text_embeds"] = self.text_embeds.float().cpu().contiguous()
        meta = self._meta()
        written: list[Path] = []
        with contextlib.ExitStack() as files:
            # entered first, renamed into place last (ExitStack unwinds in reverse); an error
            # anywhere in this block removes every temporary file and publishes none
            def create(p: Path):
                written.append(p)
                return files.enter_context(atomic_open(p, "wb", overwrite=overwrite))

            if path.suffix == ".safetensors":
                f = create(path)
                data = safetensors_bytes(tensors, metadata={"xclip_index": json.dumps(meta)})
                _write_synced(f, data)
            else:
                meta_file = create(_sidecar(path, ".json"))
                checksums = {}
                for key, suffix in _NPY_FILES:
                    if key in tensors:
                        target = path if suffix == ".npy" else _sidecar(path, suffix)
                        f = _HashingWriter(create(target))
                        np.save(f, tensors[key].numpy(), allow_pickle=False)
                        f.sync()
                        checksums[target.name] = f.hexdigest()
                text = json.dumps({**meta, "checksums": checksums}, indent=2) + "\n"
                _write_synced(meta_file, text.encode("utf-8"))
        for stale in index_files(path):
            if stale not in written:
                remove_owned(stale)  # part of the index just replaced (checked above)
        return path

    def check_model(self, model: XCLIP) -> None:
        """``InputError`` unless ``model`` has the weights this index was built with."""
        check_index_model(self.model, model)


def check_index_model(recorded: dict[str, Any], model: XCLIP, *, what: str = "the index") -> None:
    """``InputError`` unless ``model`` has the weights ``recorded`` (an index's
    :func:`~xclip.inference.loading.model_info`) names; ``what`` names the index in messages."""
    want = recorded.get("fingerprint")
    have = model_fingerprint(model)
    source = recorded.get("source") or "the model"
    problem = old_fingerprint_problem(
        have,
        f"the exported folder {getattr(model, 'folder', source)}",
        "export it again (`xclip-video export SOURCE -o FOLDER --overwrite`)",
    ) or old_fingerprint_problem(
        want,
        f"{what} (made with {source})",
        f"rebuild it with `xclip-video embed VIDEOS --model {source} -o INDEX --overwrite`",
    )
    if problem is not None:
        raise InputError(problem)
    if want and want != have:
        raise InputError(
            f"{what} was built with other model weights ({recorded.get('source')}, "
            f"fingerprint {want}) than the given model (fingerprint {have}); search with the "
            f"same model as embed, or rebuild {what}"
        )


# the tensors of a .npy index and the file each is stored in
_NPY_FILES = (("embeds", ".npy"), ("tokens", ".tokens.npy"), ("text_embeds", ".text.npy"))


def index_files(path: str | os.PathLike) -> list[Path]:
    """Every file an index at ``path`` may consist of: ``FILE.safetensors`` alone, or
    ``FILE.npy``, ``FILE.json``, ``FILE.tokens.npy`` and ``FILE.text.npy``."""
    path = Path(path)
    if path.suffix != ".npy":
        return [path]
    return [path] + [_sidecar(path, s) for s in (".json", ".tokens.npy", ".text.npy")]


def _sidecar(path: Path, suffix: str) -> Path:
    return path.with_name(path.name[: -len(".npy")] + suffix)


def _write_synced(f, data: bytes) -> None:
    # fsync now, while nothing is published yet: a full disk that shows only at fsync (delayed
    # allocation) then fails before any file of the index is renamed into place
    f.write(data)
    f.flush()
    os.fsync(f.fileno())


class _HashingWriter:
    """A binary file that also computes the sha256 of what is written to it."""

    def __init__(self, f):
        self.f, self.h = f, hashlib.sha256()

    def write(self, b) -> int:
        self.h.update(b)
        return self.f.write(b)

    def sync(self) -> None:
        self.f.flush()
        os.fsync(self.f.fileno())

    def hexdigest(self) -> str:
        return self.h.hexdigest()


class _IndexFileError(InputError):
    """A problem :func:`load_index` found and explained itself (not wrapped again)."""


def _checked_meta(meta: Any, bad: str) -> dict[str, Any]:
    if not isinstance(meta, dict) or meta.get("format") != INDEX_FORMAT:
        raise _IndexFileError(bad)
    if not isinstance(meta.get("paths"), list):
        raise _IndexFileError(f"{bad}: its metadata has no list of video paths")
    return meta


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


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
                meta = _checked_meta(json.loads((f.metadata() or {})["xclip_index"]), bad)
                keys = set(f.keys())
                embeds = f.get_tensor("embeds")
                tokens = f.get_tensor("tokens") if "tokens" in keys else None
                text = f.get_tensor("text_embeds") if "text_embeds" in keys else None
        elif path.suffix == ".npy":
            meta_path = _sidecar(path, ".json")
            if not meta_path.is_file():
                raise _IndexFileError(f"{bad}: {meta_path.name} is missing next to it")
            meta = _checked_meta(json.loads(meta_path.read_text(encoding="utf-8")), bad)
            for name, want in (meta.get("checksums") or {}).items():
                f = path.with_name(name)
                if f.is_file() and _file_sha256(f) != want:
                    raise _IndexFileError(
                        f"{path}: {name} does not belong to this index (its checksum differs from "
                        f"the one in {meta_path.name}; the index was only partly replaced or "
                        f"files were mixed); rebuild it with `xclip-video embed`"
                    )
            embeds = torch.from_numpy(np.load(path, allow_pickle=False))
            tp, xp = _sidecar(path, ".tokens.npy"), _sidecar(path, ".text.npy")
            if meta.get("has_tokens"):
                tokens = torch.from_numpy(np.load(tp, allow_pickle=False))
            if xp.is_file() and meta.get("labels"):
                text = torch.from_numpy(np.load(xp, allow_pickle=False))
        else:
            raise _IndexFileError(f"index file must end in .safetensors or .npy, got {path.name!r}")
    except _IndexFileError:
        raise
    except (SafetensorError, OSError, KeyError, ValueError) as e:
        # a corrupt or foreign file: bad header, missing metadata key, unreadable sidecar
        raise InputError(f"{bad} ({type(e).__name__}: {one_line_error(e)})") from e
    paths = list(meta["paths"])
    if embeds.ndim != 2 or embeds.shape[0] != len(paths):
        raise InputError(f"{path}: {embeds.shape[0]} embeddings for {len(paths)} paths; rebuild it")
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
        view_mode=str(meta.get("view_mode", "uniform")),
        precision=str(meta.get("precision", "fp32")),
    )
