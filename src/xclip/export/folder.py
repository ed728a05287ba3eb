"""The exported-folder format: what ``xclip.export_model`` writes and ``load_exported`` reads.

::

    DIR/
      xclip_export.json     manifest: format, backend, quantization, architecture, config,
                            preprocessing, weights fingerprint, logit scale, graphs and their I/O
      video.onnx            (or video.pt2) the video side
      text.onnx             (or text.pt2)  the text side
      head.onnx             (or head.pt2)  the head
      label_bank.safetensors   optional: ``text_features [K, C]`` and ``tokens [K, L]`` of the
                            labels given at export (their texts and template are in the manifest)

Like a saved model, the folder carries the preprocessing (frames, size, mean/std) and the
fingerprint of the weights it was exported from (``source_fingerprint``) and its own
(``fingerprint``: the same for float32 graphs, another for int8 ones; see
:mod:`xclip.fingerprint`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from xclip.errors import InputError

from ..checkpoint import read_json, read_safetensors, save_json, save_safetensors
from ..config import PreprocessConfig, XCLIPConfig

__all__ = [
    "BACKENDS",
    "EXPORT_FORMAT",
    "EXPORT_FORMAT_VERSION",
    "LABEL_BANK",
    "MANIFEST",
    "LabelBank",
    "Manifest",
    "is_export_folder",
    "read_label_bank",
    "read_manifest",
    "write_label_bank",
    "write_manifest",
]

EXPORT_FORMAT = "xclip-export"
EXPORT_FORMAT_VERSION = 1
MANIFEST = "xclip_export.json"
LABEL_BANK = "label_bank.safetensors"
BACKENDS = {"onnx": ".onnx", "pt2": ".pt2"}


@dataclass(frozen=True)
class LabelBank:
    """Class-text features computed at export: ``features [K, C]`` of ``template`` applied to
    ``labels``, and the ``tokens [K, L]`` they were computed from."""

    labels: tuple[str, ...]
    template: str
    features: torch.Tensor
    tokens: torch.Tensor


@dataclass(frozen=True)
class Manifest:
    """The parsed ``xclip_export.json`` of an exported folder."""

    backend: str
    quantization: str | None
    architecture: str | None
    config: XCLIPConfig
    preprocess: PreprocessConfig
    fingerprint: str
    logit_scale: float
    graphs: dict[str, str]
    io: dict[str, dict[str, list[str]]]
    labels: tuple[str, ...] | None
    template: str | None
    producer: dict[str, str]
    # the fingerprint of the model it was exported from (``fingerprint`` is the export's own:
    # the same for float32 graphs, another for quantised ones); None in exports before it existed
    source_fingerprint: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": EXPORT_FORMAT,
            "format_version": EXPORT_FORMAT_VERSION,
            "backend": self.backend,
            "quantization": self.quantization,
            "architecture": self.architecture,
            "config": self.config.to_dict(),
            "preprocess": self.preprocess.to_dict(),
            "fingerprint": self.fingerprint,
            "source_fingerprint": self.source_fingerprint,
            "logit_scale": self.logit_scale,
            "graphs": dict(self.graphs),
            "io": self.io,
            "labels": list(self.labels) if self.labels is not None else None,
            "template": self.template,
            "producer": dict(self.producer),
        }


def is_export_folder(path: str | Path) -> bool:
    """Whether ``path`` is a folder written by ``export_model`` (it holds the manifest)."""
    return (Path(path) / MANIFEST).is_file()


def write_manifest(manifest: Manifest, folder: Path) -> None:
    save_json(manifest.to_dict(), folder / MANIFEST)


def read_manifest(folder: str | Path) -> Manifest:
    """The manifest of ``folder``; ``InputError`` naming the problem when it is not an export of a
    version this library reads, or a graph file is missing."""
    folder = Path(folder)
    d = read_json(folder / MANIFEST)
    if d.get("format") != EXPORT_FORMAT:
        raise InputError(f"{folder / MANIFEST} is not an xclip export manifest")
    if d.get("format_version") != EXPORT_FORMAT_VERSION:
        raise InputError(
            f"{folder} is an export of format version {d.get('format_version')}; this xclip "
            f"reads version {EXPORT_FORMAT_VERSION}: export the model again with this version"
        )
    try:
        m = Manifest(
            backend=d["backend"],
            quantization=d.get("quantization"),
            architecture=d.get("architecture"),
            config=XCLIPConfig.from_dict(d["config"]),
            preprocess=PreprocessConfig.from_dict(d["preprocess"]),
            fingerprint=str(d["fingerprint"]),
            source_fingerprint=d.get("source_fingerprint"),
            logit_scale=float(d["logit_scale"]),
            graphs={str(k): str(v) for k, v in d["graphs"].items()},
            io=d["io"],
            labels=tuple(d["labels"]) if d.get("labels") is not None else None,
            template=d.get("template"),
            producer=d.get("producer", {}),
        )
    except (KeyError, TypeError, ValueError) as e:
        raise InputError(
            f"{folder / MANIFEST} is damaged ({type(e).__name__}: {e}); export the model again"
        ) from None
    if m.backend not in BACKENDS:
        raise InputError(f"{folder / MANIFEST}: unknown backend {m.backend!r}")
    for name, file in m.graphs.items():
        if Path(file).name != file or not (folder / file).is_file():
            raise InputError(
                f"{folder}: the {name} graph {file!r} is missing; export the model again"
            )
    return m


def write_label_bank(bank: LabelBank, folder: Path) -> None:
    save_safetensors(
        {"text_features": bank.features.float().contiguous(), "tokens": bank.tokens.contiguous()},
        folder / LABEL_BANK,
    )


def read_label_bank(folder: str | Path, manifest: Manifest) -> LabelBank | None:
    """The label bank of ``folder``, or ``None`` when it was exported without labels."""
    path = Path(folder) / LABEL_BANK
    if manifest.labels is None:
        return None
    if not path.is_file():
        raise InputError(f"{folder}: the manifest names labels but {LABEL_BANK} is missing")
    t = read_safetensors(path)
    feats, tokens = t["text_features"], t["tokens"]
    if feats.shape[0] != len(manifest.labels) or tokens.shape[0] != len(manifest.labels):
        raise InputError(f"{path} does not match the manifest's {len(manifest.labels)} labels")
    return LabelBank(manifest.labels, manifest.template or "{}", feats, tokens)
