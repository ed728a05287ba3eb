"""Writes that never destroy: a temporary name beside the target, fsync, then a rename into place.

Every file and folder the project writes goes through here, so that a crash, a full disk or
``kill -9`` at any moment leaves either the old content or the new one, never a mix or a
truncated file:

- the new content is written under a hidden temporary name in the target's folder (same file
  system, so the rename is atomic), flushed and ``fsync``-ed;
- it is renamed onto the target (``os.replace``), or, when the target must not be replaced,
  hard-linked to it (``os.link`` fails if the target exists: no window between a check and the
  write in which another process could create it);
- the folder is ``fsync``-ed so the rename itself survives a power loss;
- the result gets the permissions a plain ``open(path, "w")`` would give (``0o666`` minus the
  umask, ``0o777`` minus it for folders), not the ``0o600``/``0o700`` of ``tempfile``.

A folder (a saved model, a checkpoint) is replaced as a unit: the old one is renamed aside, the
new one renamed in, the old one deleted. A crash between the two renames leaves the old folder
under ``.old-<name>-<pid>``; :func:`recover_dir` puts it back.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from glob import escape as glob_escape
from pathlib import Path

__all__ = [
    "atomic_dir",
    "atomic_open",
    "atomic_write",
    "atomic_write_bytes",
    "atomic_write_text",
    "fsync_dir",
    "recover_dir",
    "umask",
]


def umask() -> int:
    """The process umask, read without changing it where the OS allows (Linux: /proc)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)  # elsewhere: set and restore (not thread-safe, but brief)
    os.umask(mask)
    return mask


def fsync_dir(path: str | os.PathLike) -> None:
    """fsync a folder so that renames and new entries in it are durable (no-op where folders
    cannot be opened, e.g. on Windows)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems (e.g. certain network mounts) refuse fsync on folders
    finally:
        os.close(fd)


def _fsync_file(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_tree(root: Path) -> None:
    for dirpath, _, files in os.walk(root):
        for name in files:
            _fsync_file(os.path.join(dirpath, name))
        fsync_dir(dirpath)


def _publish(tmp: str, path: Path, overwrite: bool) -> None:
    if overwrite:
        os.replace(tmp, path)
    else:
        # link + unlink instead of exists-check + rename: refuses atomically if `path` exists
        os.link(tmp, path)
        os.unlink(tmp)
    fsync_dir(path.parent)


def _temp_file(path: Path) -> str:
    """A new hidden temporary file beside ``path``; first removes those that writers killed
    before they could clean up (named with their pid) left behind."""
    prefix = f".{path.name}."
    for stale in path.parent.glob(f"{glob_escape(prefix)}*.tmp"):
        pid = stale.name[len(prefix) :].split(".", 1)[0]
        if not _alive(pid):
            stale.unlink(missing_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f"{prefix}{os.getpid()}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    return tmp


def atomic_write(
    path: str | os.PathLike, write: Callable[[str], None], *, overwrite: bool = True
) -> Path:
    """Call ``write(tmp_path)`` to fill a temporary file, then move it onto ``path``.

    ``overwrite=False`` raises ``FileExistsError`` (and writes nothing) when ``path`` exists,
    checked atomically at the end. The parent folder is created. Returns ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not overwrite and path.exists():  # fail early; the link below is the real check
        raise FileExistsError(f"{path} already exists")
    tmp = _temp_file(path)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~umask())
        _fsync_file(tmp)
        _publish(tmp, path, overwrite)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_bytes(path: str | os.PathLike, data: bytes, *, overwrite: bool = True) -> Path:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_write`)."""

    def write(tmp: str) -> None:
        with open(tmp, "wb") as f:
            f.write(data)

    return atomic_write(path, write, overwrite=overwrite)


def atomic_write_text(path: str | os.PathLike, text: str, *, overwrite: bool = True) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically (see :func:`atomic_write`)."""
    return atomic_write_bytes(path, text.encode("utf-8"), overwrite=overwrite)


@contextlib.contextmanager
def atomic_open(
    path: str | os.PathLike, mode: str = "w", *, overwrite: bool = True, **kwargs
) -> Iterator:
    """``open`` for writing that publishes the file only when the block ends without error.

    >>> with atomic_open("out.csv", newline="") as f:
    ...     f.write("a,b\\n")

    An exception (or Ctrl-C) inside the block leaves ``path`` as it was.
    """
    if not any(c in mode for c in "wx"):
        raise ValueError(f"atomic_open writes a new file; mode must contain 'w', got {mode!r}")
    mode = mode.replace("x", "w")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not overwrite and path.exists():
        raise FileExistsError(f"{path} already exists")
    tmp = _temp_file(path)
    try:
        with open(tmp, mode, **kwargs) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~umask())
        _publish(tmp, path, overwrite)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_dir(
    path: str | os.PathLike, fill: Callable[[Path], None], *, overwrite: bool = True
) -> Path:
    """Call ``fill(tmp_dir)`` to fill a temporary folder, then move it onto ``path`` as a unit.

    With ``overwrite=False`` an existing ``path`` raises ``FileExistsError`` and nothing is
    written. With ``overwrite=True`` an existing folder is replaced whole (never merged).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    recover_dir(path)
    if not overwrite and path.exists():
        raise FileExistsError(f"{path} already exists")
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{path.name}-{os.getpid()}-", dir=path.parent))
    try:
        fill(tmp)
        mask = umask()
        os.chmod(tmp, 0o777 & ~mask)
        _fsync_tree(tmp)
        if path.exists():
            if not overwrite:
                raise FileExistsError(f"{path} already exists")
            old = path.parent / f".old-{path.name}-{os.getpid()}"
            os.replace(path, old)
            os.replace(tmp, path)
            fsync_dir(path.parent)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(tmp, path)  # fails if another process created `path` meanwhile
            fsync_dir(path.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path


def recover_dir(path: str | os.PathLike) -> bool:
    """Put back a folder left aside by a crash in the middle of :func:`atomic_dir`'s swap.

    Returns True when something was restored. Stale temporary folders of interrupted writes
    (``.tmp-<name>-*``) are removed.
    """
    path = Path(path)
    parent = path.parent
    if not parent.is_dir():
        return False
    restored = False
    for old in sorted(parent.glob(f".old-{glob_escape(path.name)}-*")):
        if _alive(old.name.rsplit("-", 1)[-1]):
            continue  # that process is between its two renames right now
        if not path.exists():
            os.replace(old, path)
            fsync_dir(parent)
            restored = True
        else:
            shutil.rmtree(old, ignore_errors=True)
    for tmp in parent.glob(f".tmp-{glob_escape(path.name)}-*"):
        pid = tmp.name[len(f".tmp-{path.name}-") :].split("-", 1)[0]
        if not _alive(pid):
            shutil.rmtree(tmp, ignore_errors=True)
    return restored


def _alive(pid: str) -> bool:
    """Whether the process ``pid`` (a decimal string) is running; unknown -> assume it is."""
    if not pid.isdigit():
        return True
    if int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True
