"""Deploying X-CLIP: three graphs (video side, text side, head) exported to ONNX or
``torch.export`` programs, an exported-folder format, and a runtime for it.

``xclip.export_model`` (in :mod:`xclip.export.exporter`) writes a folder; ``load_exported`` (and
``load_inference_model(DIR)``) reads one. See ``docs/deploy.md``.
"""

from .folder import LabelBank, Manifest, is_export_folder, read_manifest
from .runtime import ExportedModel, load_exported

__all__ = [
    "ExportedModel",
    "LabelBank",
    "Manifest",
    "is_export_folder",
    "load_exported",
    "read_manifest",
]
