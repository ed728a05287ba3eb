"""The one ownership rule: xclip replaces or deletes only what it can prove it wrote.

Proof is a manifest. Every file xclip writes (through :mod:`xclip.atomic`) is recorded, just
before it is renamed into place, in ``.xclip-manifest.jsonl`` of its folder: one JSON line per
write with the file's name, size, modification time, inode and SHA-256. A folder written as a
unit (a saved model, an export, a checkpoint, a Parquet folder, a report) carries its own
manifest whose first line names its kind (``{"unit": "model"}``) and whose other lines list
every file and sub-folder in it; so a unit stays provably ours when it is copied or moved.

- A file is *ours* when a record of its folder's manifest matches it: the same size, inode and
  modification time (fast), or the same size and SHA-256 (after a copy). A file a user edited
  since no longer matches, so it is the user's again.
- A folder is *ours, of kind K* when its manifest opens with ``{"unit": K}`` and everything in
  it is ours (files by record, sub-folders recursively); the manifest itself, xclip's lock files
  and the temporary files of :mod:`xclip.atomic` are the only other names allowed.
- Nothing else is ever replaced or deleted: :func:`require_replaceable` raises
  :class:`ForeignFileError` naming the first file that is not ours (one line, an
  :class:`~xclip.errors.InputError`, exit code 2 in the CLI), and :func:`remove_owned` deletes
  only after that check.

The manifest is append-only (``O_APPEND`` lines, one ``write`` each), so concurrent writers into
one folder need no lock for it, and a crash leaves at worst a record of a file that never
arrived (harmless: a record proves nothing about a file that does not match it). Why a
hand-written format: no library records "files this program wrote"; the format is 30 lines.

Output locks (:func:`lock_output`) use ``filelock`` (flock on POSIX, released by the kernel when
a process dies, so a lock left by ``kill -9`` is taken over at once); the holder's process id
and host are written beside the lock so a second writer is told who holds it.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import json
import os
import socket
import stat
import threading
import time
from collections.abc import Iterable
from pathlib import Path

from filelock import FileLock, Timeout

from .errors import InputError

__all__ = [
    "MANIFEST",
    "ForeignFileError",
    "aside_name",
    "clear",
    "mark_dir",
    "move_aside",
    "OutputBusyError",
    "foreign_files",
    "held_outputs",
    "internal_name",
    "is_owned",
    "kept_name",
    "lock_output",
    "record_file",
    "release_outputs",
    "remove_owned",
    "require_replaceable",
    "seal_dir",
    "unit_kind",
]

MANIFEST = ".xclip-manifest.jsonl"
LOCK_SUFFIX = ".xclip-lock"
HOLDER_SUFFIX = ".xclip-lock.holder"
_CHUNK = 1 << 20


class ForeignFileError(InputError):
    """A file or folder xclip did not write is where it would replace or delete something."""

    def __init__(self, message: str, paths: list[Path]) -> None:
        super().__init__(message)
        self.paths = paths


class OutputBusyError(InputError):
    """Another live process is writing the same output."""


def kept_name(name: str) -> bool:
    """Whether ``name`` is bookkeeping that stays beside outputs on purpose: the manifest,
    lock files and their holder notes (left by a killed writer; rewritten by the next) (``filelock`` keeps them on POSIX; removing a lock file another process may be
    opening would let two writers in)."""
    return name == MANIFEST or name.endswith((LOCK_SUFFIX, HOLDER_SUFFIX))


def internal_name(name: str) -> bool:
    """Whether ``name`` is one of xclip's bookkeeping files (manifest, lock, holder, or a
    temporary file or folder of :mod:`xclip.atomic`), never a user's."""
    if name == MANIFEST or name.endswith((LOCK_SUFFIX, HOLDER_SUFFIX)):
        return True
    if name.startswith(".") and name.endswith(".xclip.tmp"):
        return True
    return name.startswith((".xclip-tmp-", ".xclip-old-"))


def _sha256_file(path: str | os.PathLike) -> str:
    """SHA-256 of a file's bytes, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _append(folder: Path, record: dict, *, sync: bool = True) -> None:
    line = (json.dumps(record, separators=(",", ":")) + "\n").encode("utf-8")
    fd = os.open(folder / MANIFEST, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
    try:
        os.write(fd, line)  # one write of one line: appends never interleave
        if sync:
            os.fsync(fd)
    finally:
        os.close(fd)


def _file_record(name: str, data: Path, sha256: str | None = None) -> dict:
    st = data.stat()
    return {
        "name": name,
        "size": st.st_size,
        "mtime_ns": st.st_mtime_ns,
        "ino": st.st_ino,
        "sha256": sha256 or _sha256_file(data),
    }


def record_file(
    target: str | os.PathLike,
    data: str | os.PathLike | None = None,
    *,
    sha256: str | None = None,
    sync: bool = True,
) -> None:
    """Record that xclip wrote ``target`` (whose bytes are, right now, in ``data``: the
    temporary file about to be renamed onto ``target``; default ``target`` itself).

    ``sha256``: the bytes' digest when the writer already has it (an append-only log hashing as
    it writes), so the file is not read again; ``sync=False`` skips the manifest's fsync (a log
    re-recorded at every row: a lost last record only makes the log look edited, and it is then
    moved aside, never deleted)."""
    target = Path(target)
    _append(target.parent, _file_record(target.name, Path(data or target), sha256), sync=sync)


def _read_manifest(folder: Path) -> tuple[str | None, dict[str, list[dict]]]:
    """``(unit kind or None, records by name)``; a damaged line is ignored (it proves nothing)."""
    kind, records = None, {}
    try:
        with open(folder / MANIFEST, "rb") as f:
            lines = f.read().splitlines()
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        return None, {}
    for i, raw in enumerate(lines):
        try:
            r = json.loads(raw)
        except ValueError:
            continue
        if not isinstance(r, dict):
            continue
        if i == 0 and isinstance(r.get("unit"), str):
            kind = r["unit"]
        elif isinstance(r.get("name"), str):
            records.setdefault(r["name"], []).append(r)
    return kind, records


def unit_kind(folder: str | os.PathLike) -> str | None:
    """The kind of output a folder written as a unit holds (``"model"``, ...), else None."""
    return _read_manifest(Path(folder))[0]


def _matches(st: os.stat_result, path: Path, recs: list[dict]) -> bool:
    sized = [r for r in recs if r.get("size") == st.st_size and not r.get("dir")]
    if any(r.get("ino") == st.st_ino and r.get("mtime_ns") == st.st_mtime_ns for r in sized):
        return True
    if not sized:
        return False
    digest = _sha256_file(path)
    return any(r.get("sha256") == digest for r in sized)


def is_owned(path: str | os.PathLike, kind: str | None = None) -> bool:
    """Whether xclip can prove it wrote ``path`` (see the module doc); for a folder, whether
    it is a unit (of ``kind``, when given) every file of which is ours. False for a missing
    path (nothing there was proven written)."""
    path = Path(path)
    if not path.exists() and not path.is_symlink():
        return False
    return not foreign_files(path, kind, limit=1)


def foreign_files(
    path: str | os.PathLike, kind: str | None = None, *, limit: int | None = None
) -> list[Path]:
    """What under ``path`` xclip cannot prove it wrote (``[path]`` itself for a foreign file,
    a symlink or a folder that is not an xclip unit of ``kind``); at most ``limit`` entries.
    A missing ``path`` has nothing foreign."""
    path = Path(path)
    try:
        st = path.lstat()
    except FileNotFoundError:
        return []
    if stat.S_ISLNK(st.st_mode) or not (stat.S_ISDIR(st.st_mode) or stat.S_ISREG(st.st_mode)):
        return [path]
    if stat.S_ISREG(st.st_mode):
        recs = _read_manifest(path.parent)[1].get(path.name, [])
        return [] if _matches(st, path, recs) else [path]
    unit, _ = _read_manifest(path)
    if unit is None or (kind is not None and unit != kind):
        return [path]
    out: list[Path] = []
    _foreign_in(path, out, limit)
    return out


def _foreign_in(folder: Path, out: list[Path], limit: int | None) -> None:
    _, records = _read_manifest(folder)
    for entry in sorted(os.scandir(folder), key=lambda e: e.name):
        if limit is not None and len(out) >= limit:
            return
        if internal_name(entry.name):
            continue
        p = Path(entry.path)
        st = entry.stat(follow_symlinks=False)
        recs = records.get(entry.name, [])
        if stat.S_ISDIR(st.st_mode) and any(r.get("dir") for r in recs):
            _foreign_in(p, out, limit)
        elif not stat.S_ISREG(st.st_mode) or not _matches(st, p, recs):
            out.append(p)


def require_replaceable(
    path: str | os.PathLike, kind: str | None = None, *, flag: str = "output"
) -> None:
    """Raise :class:`ForeignFileError` (one line, naming the file) unless everything at
    ``path`` was written by xclip (as a unit of ``kind`` for a folder)."""
    found = foreign_files(path, kind, limit=1)
    if not found:
        return
    p, path = found[0], Path(path)
    if p == path and path.is_dir() and not path.is_symlink():
        unit = unit_kind(path)
        held = sorted(n for n in os.listdir(path) if not internal_name(n))
        what = (
            f"a folder xclip did not write (it holds {held[0]}"
            + (f" and {len(held) - 1} more" if len(held) > 1 else "")
            + ")"
            if unit is None
            else f"an xclip {unit} folder, not a {kind} output"
        )
        msg = f"{path} is {what}; xclip never replaces it (choose another {flag})"
    elif p == path:
        msg = (
            f"{path} was not written by xclip (or was changed since); xclip never replaces "
            f"it, --overwrite included (move it away or choose another {flag})"
        )
    else:
        msg = (
            f"{path} holds {p}, which xclip did not write (or which was changed since); "
            f"xclip never deletes it, --overwrite included (move it away or choose another "
            f"{flag})"
        )
    raise ForeignFileError(msg, found)


def remove_owned(path: str | os.PathLike, kind: str | None = None) -> None:
    """Delete ``path`` (a file or a unit folder) after proving it is all ours; otherwise raise
    :class:`ForeignFileError` and delete nothing."""
    path = Path(path)
    require_replaceable(path, kind)
    if path.is_dir() and not path.is_symlink():
        _remove_tree(path)
    else:
        path.unlink(missing_ok=True)


def _remove_tree(folder: Path) -> None:
    """Delete a folder proven ours, checking each file again as it goes: a file that arrived or
    changed since the proof stops the deletion there (:class:`ForeignFileError`), kept."""
    _, records = _read_manifest(folder)
    for entry in list(os.scandir(folder)):
        p = Path(entry.path)
        if entry.is_dir(follow_symlinks=False):
            _remove_tree(p)
            continue
        st = entry.stat(follow_symlinks=False)
        ours = entry.name == MANIFEST or (
            stat.S_ISREG(st.st_mode) and _matches(st, p, records.get(entry.name, []))
        )
        if not ours and not internal_name(entry.name):
            raise ForeignFileError(
                f"{p} appeared or changed while xclip was deleting {folder}; it is kept (move it "
                "away and run again)",
                [p],
            )
        if entry.name != MANIFEST:
            os.unlink(p)
    (folder / MANIFEST).unlink(missing_ok=True)  # last: the proof of what is left
    os.rmdir(folder)


def seal_dir(folder: str | os.PathLike, kind: str) -> None:
    """Write the manifests of a freshly filled folder (not yet published): the top one names
    ``kind``; every file and sub-folder is recorded. Called by :func:`xclip.atomic.atomic_dir`."""
    folder = Path(folder)
    _seal(folder, {"unit": kind})


def _seal(folder: Path, head: dict | None) -> None:
    kind = unit_kind(folder)  # a unit inside (a checkpoint in a run) keeps its kind
    (folder / MANIFEST).unlink(missing_ok=True)
    if head is None and kind is not None:
        head = {"unit": kind}
    if head is not None:
        _append(folder, head)
    for entry in sorted(os.scandir(folder), key=lambda e: e.name):
        if entry.name == MANIFEST:
            continue
        if entry.is_dir(follow_symlinks=False):
            _seal(Path(entry.path), None)
            _append(folder, {"name": entry.name, "dir": True})
        elif entry.is_file(follow_symlinks=False):
            _append(folder, _file_record(entry.name, Path(entry.path)))


def aside_name(path: str | os.PathLike) -> Path:
    """The first free ``NAME.N`` beside ``path`` (shown in messages before anything moves)."""
    path = Path(path)
    n = 1
    while (cand := path.with_name(f"{path.name}.{n}")).exists() or cand.is_symlink():
        n += 1
    return cand


def move_aside(path: str | os.PathLike) -> Path:
    """Rename ``path`` as a whole to the first free ``NAME.1``, ``NAME.2``, ... beside it and
    return that; nothing is deleted. The name is claimed first (``mkdir`` for a folder, an
    exclusive create for a file, both fail if another process took it), then ``rename``
    replaces the empty claim in one step: ``path`` is always at one of the two names."""
    path = Path(path)
    is_dir = path.is_dir() and not path.is_symlink()
    for _ in range(10_000):
        target = aside_name(path)
        try:
            if is_dir:
                target.mkdir()
            else:
                os.close(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        except FileExistsError:
            continue
        try:
            os.rename(path, target)
        except BaseException:
            target.rmdir() if is_dir else target.unlink()
            raise
        return target
    raise InputError(f"no free name next to {path} to move it to; clean up {path.parent}")


def clear(path: str | os.PathLike, kind: str | None = None) -> Path | None:
    """Make room at ``path``: delete it when it is all xclip's (of ``kind``), else move it aside
    whole (:func:`move_aside`, returned). Never deletes what xclip cannot prove it wrote."""
    path = Path(path)
    if not path.exists() and not path.is_symlink():
        return None
    if is_owned(path, kind):
        remove_owned(path, kind)
        return None
    return move_aside(path)


def mark_dir(folder: str | os.PathLike, kind: str) -> None:
    """Make an existing empty folder xclip just created a unit of ``kind`` that files are
    written into one by one (a run folder, a Parquet work folder)."""
    folder = Path(folder)
    if not (folder / MANIFEST).exists():
        _append(folder, {"unit": kind})


def record_subdir(folder: str | os.PathLike) -> None:
    """Record that xclip created the sub-folder ``folder`` of a unit."""
    folder = Path(folder)
    _append(folder.parent, {"name": folder.name, "dir": True})


# -- one writer at a time ---------------------------------------------------------------------

_held: dict[str, tuple[object, Path, list[Path]]] = {}
_held_guard = threading.Lock()


def _lock_paths(path: Path) -> tuple[Path, Path]:
    return (
        path.parent / f".{path.name}{LOCK_SUFFIX}",
        path.parent / f".{path.name}{HOLDER_SUFFIX}",
    )


def lock_output(path: str | os.PathLike, *, flag: str = "-o") -> None:
    """Become the one writer of the output ``path`` until this process ends (or
    :func:`release_outputs`); a second live process gets :class:`OutputBusyError` naming the
    holder's process id and host. Reentrant within a process. Missing parent folders are
    created, and removed again at release if still empty (a failed start leaves nothing)."""
    path = Path(os.path.abspath(path))
    key = str(path)
    with _held_guard:
        if key in _held:
            return
        created: list[Path] = []
        parent = path.parent
        while not parent.exists():
            created.append(parent)
            parent = parent.parent
        for d in reversed(created):
            try:
                d.mkdir()
            except FileExistsError:
                created.remove(d)
        lock_file, holder = _lock_paths(path)
        lock = FileLock(str(lock_file), timeout=0)
        try:
            lock.acquire()
        except Timeout:
            _remove_empty(created)
            raise OutputBusyError(
                f"{path} is being written by {_holder_text(holder)}; wait for it to finish or "
                f"choose another {flag}"
            ) from None
        except OSError as e:  # a read-only folder: nobody else can be writing there either
            _remove_empty(created)
            if not os.access(path.parent, os.W_OK):
                return
            raise e
        with contextlib.suppress(OSError), open(holder, "w", encoding="utf-8") as f:
            f.write(
                json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "since": time.time()})
            )
        _held[key] = (lock, holder, created)


def _holder_text(holder: Path) -> str:
    try:
        info = json.loads(holder.read_text(encoding="utf-8"))
        return f"process {int(info['pid'])} on {info['host']}"
    except (OSError, ValueError, KeyError, TypeError):
        return "another process"


def _remove_empty(folders: Iterable[Path]) -> None:
    for d in folders:  # deepest first
        with contextlib.suppress(OSError):
            d.rmdir()  # only if empty: never deletes anything


def held_outputs() -> frozenset[str]:
    """The outputs (absolute paths) whose locks this process holds."""
    with _held_guard:
        return frozenset(_held)


def release_outputs(keep: Iterable[str] = ()) -> None:
    """Release the output locks this process holds, but those in ``keep`` (also run at exit)."""
    keep = set(keep)
    with _held_guard:
        for key, (lock, holder, created) in list(_held.items()):
            if key in keep:
                continue
            with contextlib.suppress(OSError):
                holder.unlink()
            lock.release()  # type: ignore[attr-defined]
            for d in created:  # folders this lock made: gone again if nothing else came
                if _only_bookkeeping(d):
                    for n in os.listdir(d):
                        with contextlib.suppress(OSError):
                            os.unlink(d / n)
                with contextlib.suppress(OSError):
                    d.rmdir()
            del _held[key]


def _only_bookkeeping(folder: Path) -> bool:
    try:
        return all(internal_name(n) for n in os.listdir(folder))
    except OSError:
        return False


atexit.register(release_outputs)
