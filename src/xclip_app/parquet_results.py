"""Parquet result files of collections: one row per video, written in parts, resumable.

``-o OUT.parquet`` is one file; ``-o OUT`` (any other name) a folder of part files
(``part-*.parquet``) with ``_xclip.json`` beside them. A row holds ``path``, ``duration``
(seconds, when known), ``num_frames``, ``model_fingerprint``, the views (``num_clips``,
``num_crops``, ``view_mode``), the result - ``labels`` and ``probs`` (ranked, best first) for
``classify``, ``embedding`` (and ``tokens``, the prompt generator's visual tokens ``[P, C]``) for
``embed``, ``status``/``transcoded`` for ``prepare`` - and ``error`` (null, or why the video could
not be read: a bad video never stops the job).

The job's settings (the task, the model's fingerprint and config, labels, template, views,
precision) are the file's metadata (``xclip`` in the Parquet schema, ``_xclip.json``).

Resume: while a job runs, finished rows go to part files in a hidden work folder beside the
output (``.OUT.xclip-work/``), each part written atomically (:mod:`xclip.atomic`); the output is
published (atomically, as a unit) when the job ends. A rerun with the same output and settings
skips every video already in the output or in the work folder - after a crash or SIGKILL only
the rows not yet in a part are redone - and rows are unique by ``path`` whatever happened
(the final merge drops duplicates). An output written with other settings is refused; a rerun
with ``--overwrite`` starts over (the earlier output stays until the new one is published).
Failed videos have a row (with ``error``) and count as done; ``--overwrite`` retries them.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from xclip_app.exit_codes import UsageError

if TYPE_CHECKING:
    import pyarrow as pa

    from xclip.inference import VideoIndex

__all__ = [
    "FORMAT",
    "ResultTable",
    "guarded_file",
    "is_parquet_output",
    "load_parquet_index",
    "read_rows",
    "result_schema",
]

FORMAT = "xclip-video-results"
META_FILE = "_xclip.json"
# settings that must match for a rerun to continue an output
_JOB_KEYS = ("task", "fingerprint", "config", "labels", "template", "views", "precision", "extra")


def _pa():
    try:
        import pyarrow as pa  # lazy: optional dependency
        import pyarrow.parquet as pq  # lazy: optional dependency
    except ImportError:
        raise UsageError(
            "Parquet output needs pyarrow: pip install 'xclip[ray]' (or pip install pyarrow)"
        ) from None
    return pa, pq


def is_parquet_output(path: str | None, engine: str = "local") -> bool:
    """Whether ``-o path`` asks for Parquet: a ``.parquet`` name, a folder (``OUT/``, or an
    existing folder: then a folder of parts), or any output of the ray engine that is not an
    index file."""
    if not path or path == "-":
        return False
    if path.rstrip("/").endswith(".parquet") or path.endswith("/") or os.path.isdir(path):
        return True
    return engine == "ray" and not path.endswith((".safetensors", ".npy", ".json", ".jsonl"))


def result_schema(task: str) -> pa.Schema:
    """The columns of a ``task`` (classify, embed, prepare) row."""
    pa, _ = _pa()
    common = [
        ("path", pa.string()),
        ("duration", pa.float64()),
        ("num_frames", pa.int64()),
        ("model_fingerprint", pa.string()),
        ("num_clips", pa.int32()),
        ("num_crops", pa.int32()),
        ("view_mode", pa.string()),
    ]
    if task == "classify":
        extra = [("labels", pa.list_(pa.string())), ("probs", pa.list_(pa.float64()))]
    elif task == "embed":
        extra = [
            ("embedding", pa.list_(pa.float32())),
            ("tokens", pa.list_(pa.list_(pa.float32()))),
        ]
    elif task == "prepare":
        common = [("path", pa.string()), ("duration", pa.float64()), ("num_frames", pa.int64())]
        extra = [("output", pa.string()), ("status", pa.string())]
    else:
        raise ValueError(f"unknown task {task!r}")
    return pa.schema([*common, *extra, ("error", pa.string())])


def guarded_file(path: str) -> str:
    """The file that stands for the output ``path`` in :func:`xclip_app.outputs.check_outputs`:
    itself, or the metadata file of a folder of parts."""
    p = path.rstrip("/")
    return p if p.endswith(".parquet") and not os.path.isdir(p) else os.path.join(p, META_FILE)


def _read_table(path: Path) -> pa.Table:
    pa, pq = _pa()
    if path.is_dir():
        parts = sorted(path.glob("part-*.parquet"))
        tables = [pq.read_table(p) for p in parts]
        return pa.concat_tables(tables) if tables else None
    return pq.read_table(path)


def _read_meta(path: Path) -> dict[str, Any] | None:
    _, pq = _pa()
    try:
        if path.is_dir():
            f = path / META_FILE
            return json.loads(f.read_text(encoding="utf-8")) if f.is_file() else None
        raw = (pq.read_schema(path).metadata or {}).get(b"xclip")
        return json.loads(raw) if raw else None
    except (OSError, ValueError) as e:  # pyarrow's ArrowInvalid is a ValueError
        raise UsageError(f"{path} is not a readable xclip Parquet output ({e})") from None


def read_rows(path: str | os.PathLike) -> list[dict[str, Any]]:
    """Every row of a Parquet output (a file or a folder of parts) as dicts."""
    t = _read_table(Path(path))
    return [] if t is None else t.to_pylist()


class ResultTable:
    """The Parquet output of one job (see the module docstring).

    ``job``: the settings recorded and compared on resume (keys of ``_JOB_KEYS``);
    ``part_rows``: rows per part file (a crash loses at most this many finished rows).
    Use :meth:`start` (returns the paths already done), :meth:`add` per row, :meth:`finish`.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        task: str,
        job: dict[str, Any],
        *,
        overwrite: bool = False,
        part_rows: int = 256,
    ) -> None:
        if part_rows < 1:
            raise UsageError(f"--part-rows must be >= 1, got {part_rows}")
        self.path = Path(os.fspath(path).rstrip("/"))
        self.single_file = self.path.suffix == ".parquet" and not self.path.is_dir()
        self.task = task
        self.job = {"format": FORMAT, "format_version": 1, "task": task, **job}
        self.overwrite = overwrite
        self.part_rows = part_rows
        self.schema = result_schema(task)
        self.work = self.path.parent / f".{self.path.name}.xclip-work"
        self.buffer: list[dict[str, Any]] = []
        self.run_id = f"{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}"
        self.n_parts = 0
        self.n_new = 0
        self.earlier_failures: dict[str, str] = {}  # path -> error, rows of an earlier run

    def _same_job(self, meta: dict[str, Any] | None) -> list[str]:
        if meta is None:
            return ["(no xclip metadata)"]
        return [k for k in _JOB_KEYS if meta.get(k) != self.job.get(k)]

    def _refuse(self, where: Path, diff: list[str]) -> UsageError:
        return UsageError(
            f"{where} holds results of other settings ({', '.join(diff)} differ); rerun with "
            f"--overwrite to start over, or choose another -o"
        )

    def _note_done(self, rows: list[dict[str, Any]]) -> set[str]:
        for r in rows:
            if r.get("error") is not None:
                self.earlier_failures[r["path"]] = r["error"]
        return {r["path"] for r in rows}

    def start(self) -> set[str]:
        """Check an existing output and unfinished run, prepare the work folder; the paths
        already done (to be skipped; those that failed are in :attr:`earlier_failures`)."""
        from xclip.atomic import atomic_write_text  # lazy: CLI start-up
        from xclip.ownership import mark_dir, remove_owned, require_replaceable  # lazy: CLI

        done: set[str] = set()
        empty = self.path.is_dir() and not any(self.path.iterdir())
        if self.path.is_dir() and not empty and not (self.path / META_FILE).is_file():
            raise UsageError(
                f"{self.path} is a folder that is not an xclip Parquet output (no {META_FILE}); "
                f"choose another -o"
            )
        if not self.single_file and self.path.exists() and not self.path.is_dir():
            raise UsageError(f"{self.path} is a file; give a folder or a .parquet name as -o")
        # the output is replaced when the job ends: it must be ours as a whole now, not only then
        if self.path.exists() and not empty:
            require_replaceable(self.path, None if self.single_file else "parquet")
        if self.work.exists():
            require_replaceable(self.work, "parquet-work")
        if self.overwrite:
            if self.work.exists():
                remove_owned(self.work, "parquet-work")  # our unfinished run, started over
        else:
            if self.path.exists() and not empty:
                diff = self._same_job(_read_meta(self.path))
                if diff:
                    raise self._refuse(self.path, diff)
                done |= self._note_done(read_rows(self.path))
            if self.work.exists():
                diff = self._same_job(_read_meta(self.work))
                if diff:
                    raise self._refuse(self.work, diff)
                done |= self._note_done(read_rows(self.work))
        self.work.mkdir(parents=True, exist_ok=True)
        mark_dir(self.work, "parquet-work")
        atomic_write_text(self.work / META_FILE, json.dumps(self.job, indent=1))
        self.n_parts = len(list(self.work.glob("part-*.parquet")))
        return done

    def add(self, rows: Iterable[dict[str, Any]]) -> None:
        """Buffer rows; a full buffer becomes a part file."""
        for r in rows:
            self.buffer.append(r)
            self.n_new += 1
            if len(self.buffer) >= self.part_rows:
                self.flush()

    def flush(self) -> None:
        """Write the buffered rows as one part file (atomically)."""
        from xclip.atomic import atomic_open  # lazy: CLI start-up

        if not self.buffer:
            return
        pa, pq = _pa()
        table = pa.Table.from_pylist(self.buffer, schema=self.schema)
        name = f"part-{self.run_id}-{self.n_parts:06d}.parquet"
        with atomic_open(self.work / name, "wb", overwrite=False) as f:
            pq.write_table(table, f)
        self.n_parts += 1
        self.buffer = []

    def _merged(self) -> pa.Table:
        pa, _ = _pa()
        tables = []
        if not self.overwrite and self.path.exists():
            tables.append(_read_table(self.path))
        t = _read_table(self.work)
        if t is not None:
            tables.append(t)
        tables = [x.cast(self.schema) for x in tables if x is not None]
        table = pa.concat_tables(tables) if tables else self.schema.empty_table()
        # unique by path: the first row of a video wins (a crash between publishing the output
        # and removing the work folder leaves both)
        seen: set[str] = set()
        keep = []
        for i, p in enumerate(table.column("path").to_pylist()):
            if p not in seen:
                seen.add(p)
                keep.append(i)
        if len(keep) != table.num_rows:
            table = table.take(keep)
        return table.sort_by("path")

    def finish(self) -> Path:
        """Publish the output: the earlier rows (on resume) and this run's, as one file or a
        folder of parts; then remove the work folder."""
        from xclip.atomic import atomic_dir, atomic_open  # lazy: CLI start-up
        from xclip.ownership import remove_owned  # lazy: CLI start-up

        self.flush()
        pa, pq = _pa()
        table = self._merged()
        meta = {**self.job, "rows": table.num_rows}
        if self.single_file:
            table = table.replace_schema_metadata({b"xclip": json.dumps(meta).encode()})
            with atomic_open(self.path, "wb", overwrite=True) as f:
                pq.write_table(table, f)
        else:

            def fill(tmp: Path) -> None:
                for i, start in enumerate(range(0, max(table.num_rows, 1), self.part_rows)):
                    pq.write_table(
                        table.slice(start, self.part_rows), tmp / f"part-{i:06d}.parquet"
                    )
                (tmp / META_FILE).write_text(json.dumps(meta, indent=1), encoding="utf-8")

            atomic_dir(self.path, fill, overwrite=True, kind="parquet")
        remove_owned(self.work, "parquet-work")
        return self.path


def iter_ok_rows(path: str | os.PathLike) -> Iterator[dict[str, Any]]:
    """The rows of a Parquet output without an error."""
    for r in read_rows(path):
        if r.get("error") is None:
            yield r


def load_parquet_index(path: str | os.PathLike) -> VideoIndex:
    """An ``embed`` Parquet output as a :class:`~xclip.inference.VideoIndex` (for ``search``):
    its embeddings, tokens when every row has them, its failures and its model."""
    import torch  # lazy: CLI start-up

    from xclip.inference import VideoFailure, VideoIndex  # lazy: CLI start-up

    p = Path(path)
    if not p.exists():
        raise UsageError(f"index not found: {p}")
    meta = _read_meta(p)
    if not meta or meta.get("format") != FORMAT or meta.get("task") != "embed":
        raise UsageError(f"{p} is not an `xclip-video embed` Parquet output")
    rows = read_rows(p)
    ok = [r for r in rows if r["error"] is None]
    fails = [VideoFailure(r["path"], r["error"]) for r in rows if r["error"] is not None]
    dim = meta["config"]["embed_dim"]
    embeds = (
        torch.tensor([r["embedding"] for r in ok], dtype=torch.float32)
        if ok
        else torch.empty(0, dim)
    )
    tokens = None
    if ok and all(r["tokens"] for r in ok):
        tokens = torch.tensor([r["tokens"] for r in ok], dtype=torch.float32)
    views = meta["views"]
    return VideoIndex(
        paths=[r["path"] for r in ok],
        embeds=embeds,
        tokens=tokens,
        labels=meta.get("labels"),
        text_embeds=None,
        template=meta.get("template") or "{}",
        model=meta["model"],
        failures=fails,
        num_clips=views["num_clips"],
        num_crops=views["num_crops"],
        view_mode=views["view_mode"],
        precision=meta["precision"],
    )
