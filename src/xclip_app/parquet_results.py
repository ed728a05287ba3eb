"""Parquet result files of collections: one row per video, written in parts, resumable.

``-o OUT.parquet`` is one file; ``-o OUT`` (any other name) a folder of part files
(``part-*.parquet``) with ``_xclip.json`` beside them. A row holds ``path`` (the video as given,
after the expansion of :mod:`xclip_app.collection_inputs`), ``location`` (where the video is:
:func:`~xclip_app.collection_inputs.video_location`, the path resolved or the URI as written),
``duration`` (seconds, when known), ``num_frames``, ``model_fingerprint``, the views
(``num_clips``, ``num_crops``, ``view_mode``), the result - ``labels`` and ``probs`` (ranked, best
first) for ``classify``, ``embedding`` (and ``tokens``, the prompt generator's visual tokens
``[P, C]``) for ``embed``, ``status``/``transcoded`` for ``prepare`` - and ``error`` (null, or why
the video could not be read: a bad video never stops the job). Rows are sorted by ``path``.
Task ``windows`` (``embed --window``, :mod:`xclip_app.moments_library`) has one row per time window
(``window``, ``num_windows``, ``start``, ``end``, ``embedding``) and the video's ``video_size`` and
``video_mtime``: its rows are unique by location and window, a part holds whole videos only, and
the rows of a video whose file is gone or changed are dropped on resume (:attr:`ResultTable.changed`).

The job's settings (the task, the model's fingerprint and config, labels, template, views,
precision) are the file's metadata (``xclip`` in the Parquet schema, ``_xclip.json``).

Resume: while a job runs, finished rows go to part files in a hidden work folder beside the
output (``.OUT.xclip-work/``), each part written atomically (:mod:`xclip.atomic`); the output is
published (atomically, as a unit) when the job ends. A rerun with the same output and settings
skips every video already in the output or in the work folder - after a crash or SIGKILL only
the rows not yet in a part are redone. A video is the same video when its **location** is the
same: ``a.mp4``, ``./a.mp4``, its absolute path or a path through a symlinked folder are done
once. Outputs of format version 1 (before ``location``) are resumed by resolving their ``path``
from the current folder. An output written with other settings is refused; a rerun with
``--overwrite`` starts over (the earlier output stays until the new one is published). Failed
videos have a row (with ``error``) and count as done; ``--overwrite`` retries them.

Duplicates: rows are unique by ``location`` in a published output. Two rows of one location
are a fault (a crash between publishing the output and removing the work folder, or a bug): the
merge keeps the **first** row - the published output's before the work folder's, an earlier part
before a later one, so a published row never changes - and says so on stderr (the count and an
example), instead of hiding it.

Scale: resume reads only ``path``, ``location`` and ``error`` (:mod:`pyarrow.dataset`); the done
videos stay one Arrow string array, matched against the inputs with Arrow compute. The merge
streams: it reads the key columns to find the rows that stay and their order, sorts windows of
rows into run files in the work folder, and writes the output window by window from those runs,
so memory is bounded by a window (about :data:`MERGE_WINDOW_BYTES`) plus the key columns, not by
the output's size. Measured at a million rows in ``docs/scale.md`` (``benchmarks/parquet_scale.py``).
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from xclip_app.exit_codes import UsageError

if TYPE_CHECKING:
    import numpy as np
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
    "video_identities",
]

FORMAT = "xclip-video-results"
META_FILE = "_xclip.json"
# settings that must match for a rerun to continue an output
_JOB_KEYS = ("task", "fingerprint", "config", "labels", "template", "views", "precision", "extra")
FORMAT_VERSION = 2  # 2: the ``location`` column
#: the merge's window: rows sorted and written together (and the run readers' buffers together)
MERGE_WINDOW_BYTES = 8 << 20
_SCAN_ROWS = 65536  # rows per batch when only key columns are read


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
        ("location", pa.string()),
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
    elif task == "windows":  # embed --window: one row per window (xclip_app.engines.window_work)
        extra = [
            ("window", pa.int32()),
            ("num_windows", pa.int32()),
            ("start", pa.float64()),
            ("end", pa.float64()),
            ("video_size", pa.int64()),
            ("video_mtime", pa.float64()),
            ("embedding", pa.list_(pa.float32())),
        ]
    elif task == "prepare":
        common = [
            ("path", pa.string()),
            ("location", pa.string()),
            ("duration", pa.float64()),
            ("num_frames", pa.int64()),
        ]
        extra = [("output", pa.string()), ("status", pa.string())]
    else:
        raise ValueError(f"unknown task {task!r}")
    return pa.schema([*common, *extra, ("error", pa.string())])


def guarded_file(path: str) -> str:
    """The file that stands for the output ``path`` in :func:`xclip_app.outputs.check_outputs`:
    itself, or the metadata file of a folder of parts."""
    p = path.rstrip("/")
    return p if p.endswith(".parquet") and not os.path.isdir(p) else os.path.join(p, META_FILE)


def _part_files(path: Path) -> list[Path]:
    """The Parquet files of an output or work folder, in the order their rows count (sorted
    names: a run's parts are numbered, runs named by their start time)."""
    if path.is_dir():
        return sorted(path.glob("part-*.parquet"))
    return [path] if path.exists() else []


def _read_table(path: Path) -> pa.Table:
    pa, pq = _pa()
    if path.is_dir():
        parts = _part_files(path)
        tables = [pq.read_table(p) for p in parts]
        return pa.concat_tables(tables) if tables else None
    return pq.read_table(path)


def _use_system_allocator() -> None:
    """Arrow's memory from the C library's allocator, for the rest of the process. Arrow's
    default (mimalloc in pyarrow's wheels) keeps the pages of freed buffers: resume and merge
    free columns as they go, and a merge of a million rows peaked 265-318 MB above its start
    with it (four runs) against 218-245 MB (three runs) with this, at the same speed
    (benchmarks/parquet_scale.py). An allocator the user chose (ARROW_DEFAULT_MEMORY_POOL) stays."""
    pa, _ = _pa()
    if (
        not os.environ.get("ARROW_DEFAULT_MEMORY_POOL")
        and pa.default_memory_pool().backend_name != "system"
    ):
        pa.set_memory_pool(pa.system_memory_pool())


def _scan(files: Sequence[Path], schema: pa.Schema, columns: list[str] | None = None):
    """Record batches of ``files`` in order, with ``schema`` (columns a file lacks are null:
    ``location`` in outputs of format version 1)."""
    import pyarrow.dataset as ds  # lazy: optional dependency

    for f in files:
        # one dataset a file: a dataset of many files keeps every file's metadata until the
        # scan ends (about 40 kB a part: 160 MB for a million rows in parts of 256)
        dataset = ds.dataset(str(f), schema=schema, format="parquet")
        # in order, and one batch in flight (the default reads 16 ahead: row groups of a
        # published output are windows of tens of thousands of rows)
        yield from dataset.to_batches(
            columns=columns, batch_size=_SCAN_ROWS, use_threads=False, batch_readahead=1,
            fragment_readahead=1,
        )  # fmt: skip


def _collect(arrays: Iterable[pa.Array]) -> pa.ChunkedArray:
    """One string column from many small arrays (a million rows in parts of 256), concatenated
    a few dozen at a time: the kept rows do not pin the memory pages of the columns read beside
    them and freed."""
    pa, _ = _pa()
    chunks: list[pa.Array] = []
    small: list[pa.Array] = []
    for a in arrays:
        small.append(a)
        if len(small) == 64:
            chunks.append(pa.concat_arrays(small))
            small = []
    if small:
        chunks.append(pa.concat_arrays(small))
    return pa.chunked_array(chunks, pa.string())


def _locations(batch: pa.RecordBatch) -> pa.Array:
    """The ``location`` column of ``batch``, resolved from ``path`` where it is null (rows of
    format version 1)."""
    pa, _ = _pa()
    import pyarrow.compute as pc  # lazy: optional dependency

    from xclip_app.collection_inputs import video_locations  # lazy: CLI start-up

    loc = batch.column("location")
    if loc.null_count == 0:
        return loc
    missing = pc.is_null(loc)
    resolved = video_locations(batch.column("path").filter(missing).to_pylist())
    return pc.replace_with_mask(loc, missing, pa.array(resolved, pa.string()))


def _row_keys(batch: pa.RecordBatch, task: str) -> pa.Array:
    """What makes a row unique: its location, and for window rows its window number too."""
    if task != "windows":
        return _locations(batch)
    pa, _ = _pa()
    import pyarrow.compute as pc  # lazy: optional dependency

    window = pc.cast(pc.fill_null(batch.column("window"), -1), pa.string())
    return pc.binary_join_element_wise(_locations(batch), window, "\x1f")


def _changed(identity: dict[str, tuple[int | None, float | None]]) -> list[str]:
    """The locations (local files) of ``identity`` (location -> the recorded size and
    modification time) whose file is gone or changed: their rows are dropped, the video
    embedded again. URIs have no identity and never change."""
    from xclip_app.collection_inputs import is_uri  # lazy: CLI start-up
    from xclip_app.engines.window_work import file_identity  # lazy: CLI start-up

    return [loc for loc, recorded in identity.items()
            if not is_uri(loc) and file_identity(loc) != recorded]  # fmt: skip


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


def video_identities(path: str | os.PathLike) -> dict[str, tuple[int | None, float | None]]:
    """The size and modification time each video of a window-rows output (a moments library)
    had when it was embedded, by location (reading only those columns); ``{}`` without parts."""
    schema = result_schema("windows")
    identity: dict[str, tuple[int | None, float | None]] = {}
    for batch in _scan(_part_files(Path(path)), schema, ["path", "location", "video_size",
                                                           "video_mtime"]):  # fmt: skip
        for key in zip(_locations(batch).to_pylist(), batch.column("video_size").to_pylist(),
                       batch.column("video_mtime").to_pylist(), strict=True):  # fmt: skip
            identity.setdefault(key[0], key[1:])
    return identity


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
        self.job = {"format": FORMAT, "format_version": FORMAT_VERSION, "task": task, **job}
        self.overwrite = overwrite
        self.part_rows = part_rows
        self.schema = result_schema(task)
        self.work = self.path.parent / f".{self.path.name}.xclip-work"
        self.buffer: list[dict[str, Any]] = []
        self.run_id = f"{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}"
        self.n_parts = 0
        self.n_new = 0
        self.earlier_failures: dict[str, str] = {}  # path -> error, rows of an earlier run
        self.done: pa.Array | None = None  # locations already done (unique), set by start()
        self.duplicates = 0  # rows the last merge dropped (a second row of a location)
        self.changed: pa.Array | None = None  # window rows: locations of changed/deleted videos
        self.n_changed_rows = 0  # rows of those the last merge dropped
        self.partial: dict[str, list[dict[str, Any]]] = {}  # window rows of unfinished videos
        self.n_rows = 0  # rows of the published output, set by finish()
        _use_system_allocator()

    def _same_job(self, meta: dict[str, Any] | None) -> list[str]:
        from xclip.fingerprint import old_fingerprint_problem  # lazy: CLI start-up

        if meta is None:
            return ["(no xclip metadata)"]
        problem = old_fingerprint_problem(
            meta.get("fingerprint"),
            f"{self.path}",
            "rerun with --overwrite to start over, or choose another -o",
        )
        if problem:
            raise UsageError(problem)
        return [k for k in _JOB_KEYS if meta.get(k) != self.job.get(k)]

    def _refuse(self, where: Path, diff: list[str]) -> UsageError:
        return UsageError(
            f"{where} holds results of other settings ({', '.join(diff)} differ); rerun with "
            f"--overwrite to start over, or choose another -o"
        )

    def _read_done(self, files: list[Path]) -> None:
        """:attr:`done` and :attr:`earlier_failures` from the rows of ``files``, reading only
        ``path``, ``location`` and ``error`` (and for window rows the videos' identity: the
        locations of changed or deleted videos go to :attr:`changed`, and are not done)."""
        pa, _ = _pa()
        import pyarrow.compute as pc  # lazy: optional dependency

        windows = self.task == "windows"
        columns = ["path", "location", "error"] + (["video_size", "video_mtime"] * windows)
        identity: dict[str, tuple[int | None, float | None]] = {}
        failures: dict[str, tuple[str, str]] = {}  # path -> (location, error)

        def locations() -> Iterator[pa.Array]:
            for batch in _scan(files, self.schema, columns):
                loc = _locations(batch)
                yield loc
                if windows:
                    for key in zip(loc.to_pylist(), batch.column("video_size").to_pylist(),
                                   batch.column("video_mtime").to_pylist(), strict=True):  # fmt: skip
                        identity.setdefault(key[0], key[1:])
                error = batch.column("error")
                if error.null_count < len(error):
                    mask = pc.is_valid(error)
                    failed = batch.filter(mask)
                    paths, errors = failed.column("path").to_pylist(), failed.column("error")
                    where = loc.filter(mask).to_pylist()
                    pairs = zip(where, errors.to_pylist(), strict=True)
                    failures.update(zip(paths, pairs, strict=True))

        self.done = _collect(locations())
        if windows:
            self.changed = pa.array(_changed(identity), pa.string())
            if len(self.changed):
                gone = pc.is_in(self.done, value_set=self.changed)
                self.done = self.done.filter(pc.invert(gone))
        changed = set(self.changed.to_pylist()) if self.changed is not None else set()
        self.earlier_failures.update(
            {p: err for p, (loc, err) in failures.items() if loc not in changed}
        )

    def start(self) -> int:
        """Check an existing output and unfinished run, prepare the work folder; the number of
        videos already done (:meth:`pending` leaves them out; those that failed are in
        :attr:`earlier_failures`)."""
        from xclip.atomic import atomic_write_text  # lazy: CLI start-up
        from xclip.ownership import (  # lazy: CLI start-up
            mark_dir,
            remove_owned,
            require_replaceable,
        )

        done_files: list[Path] = []
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
                done_files += _part_files(self.path)
            if self.work.exists():
                diff = self._same_job(_read_meta(self.work))
                if diff:
                    raise self._refuse(self.work, diff)
                done_files += _part_files(self.work)
        self._read_done(done_files)
        self.work.mkdir(parents=True, exist_ok=True)
        mark_dir(self.work, "parquet-work")
        atomic_write_text(self.work / META_FILE, json.dumps(self.job, indent=1))
        self.n_parts = len(list(self.work.glob("part-*.parquet")))
        return len(_first_rows(self.done))

    def pending(self, videos: Sequence[str]) -> list[str]:
        """The videos of ``videos`` still to do (in their order): not done by their location
        (after :meth:`start`), and each location once (its first name)."""
        import numpy as np  # lazy: CLI start-up

        pa, _ = _pa()
        import pyarrow.compute as pc  # lazy: optional dependency

        from xclip_app.collection_inputs import video_locations  # lazy: CLI start-up

        done = self.done if self.done is not None else pa.chunked_array([], pa.string())
        todo = np.ones(len(videos), dtype=bool)
        # a few chunks of inputs, each hashed and looked up by the done locations: the memory
        # of one chunk's hash table, not of a million done videos'
        step = max(_SCAN_ROWS, -(-len(videos) // 16))
        for i in range(0, len(videos), step):
            chunk = pa.array(video_locations(videos[i : i + step]), pa.string())
            if len(done):
                found = done.filter(pc.is_valid(pc.index_in(done, value_set=chunk)))
                hit = pc.is_in(chunk, value_set=pc.unique(found)).to_numpy(zero_copy_only=False)
                todo[i : i + len(chunk)] &= ~hit
        rows = np.flatnonzero(todo)
        if not len(rows):
            return []
        left = [videos[j] for j in rows.tolist()]
        first = np.sort(_first_rows(pa.chunked_array([video_locations(left)], pa.string())))
        return [left[j] for j in first.tolist()]

    def add(self, rows: Iterable[dict[str, Any]]) -> None:
        """Buffer rows; a full buffer becomes a part file. Window rows enter the buffer a whole
        video at a time (all ``num_windows`` of them, or its error row), so a part never holds
        part of a video: a crash redoes a video whole, never leaves it half done."""
        from xclip_app.collection_inputs import video_location  # lazy: CLI start-up

        for r in rows:
            if r.get("location") is None:  # the engines' rows name the video as given
                r = {**r, "location": video_location(r["path"])}
            if self.task == "windows":
                got = self.partial.setdefault(r["location"], [])
                got.append(r)
                if r["error"] is None and len(got) < r["num_windows"]:
                    continue
                del self.partial[r["location"]]
            else:
                got = [r]
            self.buffer += got
            self.n_new += len(got)
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

    def _merge_plan(self, files: list[Path]) -> tuple[int, np.ndarray, np.ndarray]:
        """The number of rows of ``files`` (numbered in scan order), those that stay
        (ascending), and the same rows in the output's order (by ``path``, then row); reports
        duplicates. Reads one key column at a time."""
        import numpy as np  # lazy: CLI start-up

        pa, _ = _pa()

        columns = ["path", "location"] + (["window"] if self.task == "windows" else [])
        keys = _collect(_row_keys(b, self.task) for b in _scan(files, self.schema, columns))
        n = len(keys)
        gone = None
        if self.changed is not None and len(self.changed):  # window rows of changed videos
            gone = self._changed_rows(files, n)  # dropped before the duplicates: a video's
            live = np.flatnonzero(~gone)  # new rows are never second to its stale ones
            self.n_changed_rows = int(gone.sum())
            keep = np.sort(live[_first_rows(keys.take(pa.array(live)))])
        else:
            keep = np.sort(_first_rows(keys))
        del keys
        paths = _collect(b.column("path") for b in _scan(files, self.schema, ["path"]))
        self.duplicates = n - len(keep) - (int(gone.sum()) if gone is not None else 0)
        if self.duplicates:
            dropped = np.ones(n, dtype=bool)
            dropped[keep] = False
            if gone is not None:
                dropped &= ~gone
            example = paths[int(np.argmax(dropped))].as_py()
            print(
                f"xclip-video: warning: {self.duplicates} duplicate row(s) in {self.path} and its "
                f"work folder (the same video twice; the first row kept), e.g. {example}",
                file=sys.stderr,
            )
        kept_paths = paths.take(pa.array(keep)) if len(keep) < n else paths  # no copy
        del paths
        return n, keep, keep[_sort_by_path(kept_paths, pa.array(keep)).to_numpy()]

    def _changed_rows(self, files: list[Path], n: int) -> np.ndarray:
        """bool ``[n]``: the rows of :attr:`changed` videos that recorded another identity than
        the file has now (rows of this run, of the video as it is now, stay)."""
        import numpy as np  # lazy: CLI start-up
        import pyarrow.compute as pc  # lazy: optional dependency

        from xclip_app.engines.window_work import file_identity  # lazy: CLI start-up

        now = {loc: file_identity(loc) for loc in self.changed.to_pylist()}
        gone = np.zeros(n, dtype=bool)
        row0 = 0
        columns = ["path", "location", "video_size", "video_mtime"]
        for b in _scan(files, self.schema, columns):
            locs = _locations(b)
            hit = np.flatnonzero(pc.is_in(locs, value_set=self.changed).to_numpy(
                zero_copy_only=False))  # fmt: skip
            if len(hit):
                loc = locs.take(hit).to_pylist()
                size = b.column("video_size").take(hit).to_pylist()
                mtime = b.column("video_mtime").take(hit).to_pylist()
                for j, lc, sz, mt in zip(hit.tolist(), loc, size, mtime, strict=True):
                    gone[row0 + j] = now[lc] != (sz, mt)
            row0 += b.num_rows
        return gone

    def _merged(self, work_tmp: Path) -> tuple[int, Iterator[pa.Table]]:
        """The output's row count and its rows, window by window, in order: the earlier output
        (unless ``--overwrite``) and the work folder's parts, unique by location (the first row
        wins), sorted by ``path``. Run files go to ``work_tmp``."""
        import numpy as np  # lazy: CLI start-up

        from xclip.ownership import record_file  # lazy: CLI start-up

        pa, pq = _pa()
        files = [] if self.overwrite else _part_files(self.path)
        files += _part_files(self.work)
        n, keep, order = self._merge_plan(files)
        if not len(keep):
            return 0, iter([self.schema.empty_table()])
        # pass 1: the kept rows in scan order, in windows sorted by (path, row): run files
        is_kept = np.zeros(n, dtype=bool)
        is_kept[keep] = True
        window = None  # rows per window, from the first batch's width
        runs: list[Path] = []
        pending: list[pa.Table] = []
        n_pending = 0
        row0 = 0

        def write_run(tables: list[pa.Table]) -> None:
            t = pa.concat_tables(tables)
            rows = t.column("__row")
            t = t.take(_sort_by_path(t.column("path"), rows)).drop_columns(["__row"])
            runs.append(work_tmp / f"run-{len(runs):06d}.parquet")
            pq.write_table(t, runs[-1], row_group_size=_run_batch(window, len(keep)))
            record_file(runs[-1])  # the work folder stays provably ours (xclip.ownership)

        for batch in _scan(files, self.schema):
            rows = np.arange(row0, row0 + batch.num_rows)
            t = pa.Table.from_batches([batch]).append_column("__row", pa.array(rows))
            t = t.set_column(t.schema.get_field_index("location"), "location", _locations(batch))
            t = t.filter(pa.array(is_kept[row0 : row0 + batch.num_rows]))
            row0 += batch.num_rows
            if window is None and batch.num_rows:
                per_row = max(1, batch.nbytes // batch.num_rows)
                window = max(self.part_rows, MERGE_WINDOW_BYTES // per_row)
                window -= window % self.part_rows  # whole parts of a folder output
            while t.num_rows:
                take = min(t.num_rows, window - n_pending)
                pending.append(t.slice(0, take))
                n_pending += take
                t = t.slice(take)
                if n_pending == window:
                    write_run(pending)
                    pending, n_pending = [], 0
        if pending:
            write_run(pending)
        # pass 2: the output in order; output row j is in run rank(j) // window, and each run
        # holds its rows in the output's order, so a window takes the next rows of each run
        run_of = np.searchsorted(keep, order) // window
        batch_rows = _run_batch(window, len(keep))
        readers = [_RunReader(r, batch_rows) for r in runs]

        def windows() -> Iterator[pa.Table]:
            for w0 in range(0, len(order), window):
                of = run_of[w0 : w0 + window]
                pieces = [readers[r].next_rows(int((of == r).sum())) for r in np.unique(of)]
                grouped = np.argsort(of, kind="stable")  # piece row i is output row grouped[i]
                where = np.empty_like(grouped)
                where[grouped] = np.arange(len(grouped))
                yield pa.concat_tables(pieces).take(pa.array(where))

        return len(keep), windows()

    def finish(
        self,
        on_table: Callable[[pa.Table], None] | None = None,
        extra_files: Callable[[Path], None] | None = None,
    ) -> Path:
        """Publish the output: the earlier rows (on resume) and this run's, as one file or a
        folder of parts; then remove the work folder. A folder output can carry more:
        ``on_table`` sees every table of rows as it is written (in the output's order) and
        ``extra_files(folder)`` then writes files beside the parts, published with them (the
        moments index of ``embed --window``)."""
        if self.partial:
            raise RuntimeError(f"unfinished window rows of {len(self.partial)} video(s)")
        from xclip.atomic import atomic_dir, atomic_open  # lazy: CLI start-up
        from xclip.ownership import record_subdir, remove_owned  # lazy: CLI start-up

        self.flush()
        pa, pq = _pa()
        work_tmp = self.work / f"merge-{self.run_id}"
        work_tmp.mkdir(parents=True, exist_ok=True)
        record_subdir(work_tmp)
        n_rows, windows = self._merged(work_tmp)
        self.n_rows = n_rows
        meta = {**self.job, "rows": n_rows}
        if self.single_file:
            schema = self.schema.with_metadata({b"xclip": json.dumps(meta).encode()})
            with (
                atomic_open(self.path, "wb", overwrite=True) as f,
                pq.ParquetWriter(f, schema) as w,
            ):
                for table in windows:
                    w.write_table(table.cast(schema))
        else:

            def fill(tmp: Path) -> None:
                i = 0
                for table in windows:
                    if on_table is not None:
                        on_table(table)
                    for start in range(0, max(table.num_rows, 1), self.part_rows):
                        part = table.slice(start, self.part_rows)
                        pq.write_table(part, tmp / f"part-{i:06d}.parquet")
                        i += 1
                if extra_files is not None:
                    extra_files(tmp)
                (tmp / META_FILE).write_text(json.dumps(meta, indent=1), encoding="utf-8")

            atomic_dir(self.path, fill, overwrite=True, kind="parquet")
        remove_owned(self.work, "parquet-work")
        return self.path


def _first_rows(keys: pa.ChunkedArray) -> np.ndarray:
    """The index of the first row of each distinct value of ``keys`` (int64, in the order of the
    values). By a stable sort, not a hash table: a million paths cost their indices and one
    sorted copy (about 50 MB) where a hash aggregation took three times that."""
    import numpy as np  # lazy: CLI start-up

    pa, _ = _pa()
    import pyarrow.compute as pc  # lazy: optional dependency

    if not len(keys):
        return np.zeros(0, dtype=np.int64)
    order = pc.sort_indices(keys)  # stable: equal keys keep their row order
    ranked = keys.take(order)
    first = np.ones(len(keys), dtype=bool)
    first[1:] = pc.not_equal(ranked[1:], ranked[:-1]).to_numpy(zero_copy_only=False)
    return order.to_numpy()[first]


def _sort_by_path(paths: pa.ChunkedArray, rows: pa.ChunkedArray) -> pa.Array:
    """The indices that sort rows by ``path``, then by row number (the output's order)."""
    pa, _ = _pa()
    import pyarrow.compute as pc  # lazy: optional dependency

    keys = [("path", "ascending"), ("row", "ascending")]
    return pc.sort_indices(pa.table({"path": paths, "row": rows}), sort_keys=keys)


def _run_batch(window: int, n_rows: int) -> int:
    """Rows a run reader holds: the readers together hold about one window."""
    n_runs = max(1, -(-n_rows // window))
    return max(64, window // n_runs)


class _RunReader:
    """The rows of one run file, handed out in order, a few at a time."""

    def __init__(self, path: Path, batch_rows: int) -> None:
        _, pq = _pa()
        self.batches = pq.ParquetFile(path).iter_batches(batch_size=batch_rows)
        self.buffer: list[pa.RecordBatch] = []
        self.n_buffered = 0

    def next_rows(self, n: int) -> pa.Table:
        pa, _ = _pa()
        while self.n_buffered < n:
            b = next(self.batches)
            self.buffer.append(b)
            self.n_buffered += b.num_rows
        t = pa.Table.from_batches(self.buffer)
        head, rest = t.slice(0, n), t.slice(n)
        self.buffer = rest.to_batches()
        self.n_buffered = rest.num_rows
        return head


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
