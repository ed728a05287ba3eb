"""A moments library: ``xclip-video embed VIDEOS --window S [--stride S] -o LIB``.

``LIB`` is a Parquet folder output (:mod:`xclip_app.parquet_results`, task ``windows``): one
row per window (``path``, ``start``, ``end``, ``embedding``, ``model_fingerprint``, the video's
size and modification time, ...) in part files, and beside them the moments index of those rows
(:class:`xclip.inference.moments.MomentIndex`: ``moments.json``, ``moments.npz``,
``moments.faiss``). Rows and index are published together, as one folder
(:func:`xclip.atomic.atomic_dir`), so a killed update leaves the previous library whole, and the
rows already embedded stay in the work folder for the rerun.

An update is a rerun into the same ``LIB``: videos already there are not embedded again; rows of
videos whose file is gone or changed (size or modification time) are dropped, and a changed
video in the inputs is embedded again; then the index is rebuilt from the stored embeddings,
reusing the previous index's trained lists when its type still fits the row count.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from xclip_app.exit_codes import UsageError

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["MomentsLibrary"]


class MomentsLibrary:
    """The window-specific part of an ``embed --window`` collection job (see
    :func:`xclip_app.engines.job.run_collection`): the preparer and worker of window rows, the
    job settings that must match on resume, and the index written beside the rows."""

    def __init__(self, output: str, window: float, stride: float, memory_budget: int,
                 model: dict[str, Any], settings: dict[str, Any]) -> None:  # fmt: skip
        self.output, self.window, self.stride = output, window, stride
        self.memory_budget, self.model, self.settings = memory_budget, model, settings
        self.paths: list[Any] = []
        self.locations: list[Any] = []
        self.starts: list[Any] = []
        self.ends: list[Any] = []
        self.embeds: list[Any] = []
        self.n_rows = 0

    @classmethod
    def from_args(cls, args: argparse.Namespace, model: Any) -> MomentsLibrary:
        """The library of ``embed --window`` options, checked (one line each)."""
        from xclip.inference.loading import model_info  # lazy: CLI start-up
        from xclip.inference.timeline import check_window  # lazy: CLI start-up
        from xclip.inference.vector_index import import_faiss  # lazy: CLI start-up
        from xclip_app.inference_args import index_model_name  # lazy: CLI start-up

        out = args.output.rstrip("/") or args.output
        if out.endswith((".parquet", ".safetensors", ".npy", ".json", ".jsonl", ".csv")):
            raise UsageError(
                f"--window writes a library folder (window rows and their index): give -o LIB "
                f"(a folder name), not {args.output}"
            )
        if getattr(args, "labels", None) or getattr(args, "labels_file", None):
            raise UsageError("--labels is for whole-video indexes; a library holds only windows")
        import_faiss()  # the install hint before any video is embedded
        stride = args.stride if args.stride is not None else args.window
        check_window(args.window, stride)
        settings = {"window": args.window, "stride": stride, "num_clips": args.num_clips,
                    "num_crops": args.num_crops, "view_mode": "uniform",
                    "precision": args.precision}  # fmt: skip
        info = model_info(model, index_model_name(args.model, out))
        budget = int(args.index_memory_gb * 2**30)
        return cls(out, args.window, stride, budget, info, settings)

    def preparer(self) -> Any:
        from xclip_app.engines.window_work import VideoProbe  # lazy: CLI start-up

        return VideoProbe()

    @property
    def worker(self) -> type:
        from xclip_app.engines.window_work import WindowWorker  # lazy: CLI start-up

        return WindowWorker

    def worker_kwargs(self) -> dict[str, Any]:
        return {"window": self.window, "stride": self.stride}

    def job_extra(self) -> dict[str, Any]:
        """What a rerun must share with the library it continues."""
        return {"window": self.window, "stride": self.stride}

    # -- the index beside the rows ------------------------------------------------------------
    def add_rows(self, table: pa.Table) -> None:
        """Collect the window rows of one output table (in the output's order)."""
        import numpy as np  # lazy: CLI start-up
        import pyarrow.compute as pc  # lazy: optional dependency

        ok = table.filter(pc.is_null(table.column("error")))
        if not ok.num_rows:
            return
        emb = pc.list_flatten(ok.column("embedding")).to_numpy()
        self.embeds.append(np.asarray(emb, dtype=np.float32).reshape(ok.num_rows, -1))
        self.paths += ok.column("path").to_pylist()
        self.locations += ok.column("location").to_pylist()
        self.starts.append(ok.column("start").to_numpy())
        self.ends.append(ok.column("end").to_numpy())
        self.n_rows += ok.num_rows

    def write_index(self, folder: Path) -> None:
        """Build the index of the collected rows and write its files into ``folder``."""
        import numpy as np  # lazy: CLI start-up

        from xclip.errors import InputError  # lazy: CLI start-up
        from xclip.inference.moments import (  # lazy: CLI start-up
            MomentIndex,
            is_moment_library,
            load_moments,
        )

        previous = None
        if is_moment_library(self.output):
            try:
                previous = load_moments(self.output)
            except InputError:
                previous = None  # a damaged index is rebuilt from the rows
        dim = int(self.model.get("config", {}).get("embed_dim", 0))
        index = MomentIndex.build(
            self.paths,
            np.concatenate(self.starts) if self.starts else np.zeros(0),
            np.concatenate(self.ends) if self.ends else np.zeros(0),
            np.concatenate(self.embeds) if self.embeds else np.zeros((0, dim), np.float32),
            model=self.model,
            settings=self.settings,
            memory_budget=self.memory_budget,
            like=previous,
            locations=self.locations,
        )
        index.write_files(folder)
        self.index = index

    def summary(self, path: Path, n_ok: int, n_failed: int, table: Any, seconds: float) -> str:
        index = getattr(self, "index", None)
        kind = index.vectors.plan.spec if index is not None and index.vectors else "empty"
        changed = (f"; {table.n_changed_rows} row(s) of changed or deleted videos dropped"
                   if table.n_changed_rows else "")  # fmt: skip
        return (
            f"wrote {path}: {n_ok + n_failed} new video(s) ({n_failed} failed) in {seconds:.1f}s; "
            f"{self.n_rows} windows of {len(index.videos) if index else 0} video(s) in all, "
            f"index {kind}{changed}"
        )
