"""Writes that never destroy: a temporary name beside the target, fsync, then a rename into place.

Every file and folder the project writes goes through here, so that a crash, a full disk or
``kill -9`` at any moment leaves either the old content or the new one, never a mix or a
truncated file:

- the new content is written under a hidden temporary name in the target's folder (same file
  system, so the rename is atomic), flushed and ``fsync``-ed; the name carries the writer's
  host, process id and a random token (``.NAME.HOST.PID.TOKEN.xclip.tmp``), so a writer only
  ever removes temporary files of dead processes on its own host, or ones a day old;
- ownership (:mod:`xclip.ownership`): the file is recorded in its folder's manifest just
  before the rename, and an existing target is replaced only if xclip can prove it wrote it
  (else :class:`~xclip.ownership.ForeignFileError`, nothing written);
- it is renamed onto the target (``os.replace``), or, when the target must not be replaced,
  hard-linked to it (``os.link`` fails if the target exists: no window between a check and the
  write in which another process could create it);
- the folder is ``fsync``-ed so the rename itself survives a power loss;
- the result gets the permissions a plain ``open(path, "w")`` would give (``0o666`` minus the
  umask, ``0o777`` minus it for folders), not the ``0o600``/``0o700`` of ``tempfile``.

A folder (a saved model, a checkpoint) is written as a unit of a kind, with its own manifest,
and replaced only by a unit of the same kind that is all xclip's: the old one is renamed aside,
the new one renamed in, the old one deleted. A crash between the two renames leaves the old
folder under ``.xclip-old-<name>-<host>-<pid>``; :func:`recover_dir` puts it back.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import socket
import time
from collections.abc import Callable, Iterator
from glob import escape as glob_escape
from pathlib import Path

from . import ownership

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
    ownership.record_file(path, tmp)  # before the rename: a crash after it is still recorded
    if overwrite and path.exists():
        ownership.require_replaceable(path)
        os.replace(tmp, path)
    else:
        # link + unlink instead of exists-check + rename: refuses atomically if `path` exists
        try:
            os.link(tmp, path)
        except FileExistsError:
            if not overwrite:
                raise
            ownership.require_replaceable(path)  # created meanwhile: ours or refused
            os.replace(tmp, path)
        except OSError:  # a file system without hard links: exclusive create, then replace
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            os.close(fd)
            os.replace(tmp, path)
        else:
            os.unlink(tmp)
    fsync_dir(path.parent)


#: this host's name as it appears in temporary names (no "." or "-")
HOST = socket.gethostname().replace(".", "_").replace("-", "_") or "host"
STALE_AFTER_S = 24 * 3600  # a temporary file this old is dead whoever wrote it


def _token() -> str:
    return f"{HOST}.{os.getpid()}.{secrets.token_hex(6)}"


def _stale(name_rest: str, path: Path, sep: str) -> bool:
    """Whether a temporary entry (``HOST<sep>PID<sep>TOKEN...``) belongs to a dead writer: a
    process of this host that is gone, or anything a day old."""
    parts = name_rest.split(sep)
    try:
        if time.time() - path.lstat().st_mtime > STALE_AFTER_S:
            return True
    except OSError:
        return False
    if len(parts) < 3 or parts[0] != HOST:
        return False  # another host's writer: only its age tells (above)
    return not _alive(parts[1])


def _temp_file(path: Path) -> str:
    """A new hidden temporary file beside ``path``; first removes those that dead writers left
    behind (see :func:`_stale`)."""
    prefix = f".{path.name}."
    for stale in path.parent.glob(f"{glob_escape(prefix)}*.xclip.tmp"):
        if _stale(stale.name[len(prefix) :], stale, "."):
            stale.unlink(missing_ok=True)
    tmp = path.parent / f"{prefix}{_token()}.xclip.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.close(fd)
    return str(tmp)


def atomic_write(
    path: str | os.PathLike, write: Callable[[str], None], *, overwrite: bool = True
) -> Path:
    """Call ``write(tmp_path)`` to fill a temporary file, then move it onto ``path``.

    ``overwrite=False`` raises ``FileExistsError`` (and writes nothing) when ``path`` exists,
    checked atomically at the end. ``overwrite=True`` replaces only a file xclip wrote
    (:class:`~xclip.ownership.ForeignFileError` otherwise, checked before and at the end).
    The parent folder is created. Returns ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _check_target(path, overwrite)
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


def _check_target(path: Path, overwrite: bool) -> None:
    """Fail early (the publish step checks again): an existing target without ``overwrite``,
    or one xclip did not write."""
    if path.is_symlink() or path.exists():
        if not overwrite:
            raise FileExistsError(f"{path} already exists")
        ownership.require_replaceable(path)


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
    _check_target(path, overwrite)
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
    path: str | os.PathLike,
    fill: Callable[[Path], None],
    *,
    overwrite: bool = True,
    kind: str = "folder",
) -> Path:
    """Call ``fill(tmp_dir)`` to fill a temporary folder, then move it onto ``path`` as a unit
    of ``kind`` (``"model"``, ``"export"``, ...; recorded in its manifest).

    With ``overwrite=False`` an existing ``path`` raises ``FileExistsError`` and nothing is
    written. With ``overwrite=True`` an existing folder is replaced whole (never merged), and
    only when it is an xclip unit of the same ``kind`` holding nothing but xclip's files
    (:class:`~xclip.ownership.ForeignFileError` otherwise, before ``fill`` runs).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    recover_dir(path)
    if path.is_dir() and not path.is_symlink() and not any(path.iterdir()):
        path.rmdir()  # an empty folder holds nothing to keep or to refuse
    if path.is_symlink() or path.exists():
        if not overwrite:
            raise FileExistsError(f"{path} already exists")
        ownership.require_replaceable(path, kind)
    tmp = path.parent / f".xclip-tmp-{path.name}-{_token().replace('.', '-')}"
    tmp.mkdir()
    try:
        fill(tmp)
        ownership.seal_dir(tmp, kind)
        mask = umask()
        os.chmod(tmp, 0o777 & ~mask)
        _fsync_tree(tmp)
        if path.is_symlink() or path.exists():
            if not overwrite:
                raise FileExistsError(f"{path} already exists")
            ownership.require_replaceable(path, kind)
            old = path.parent / f".xclip-old-{path.name}-{HOST}-{os.getpid()}"
            os.replace(path, old)
            os.replace(tmp, path)
            fsync_dir(path.parent)
            ownership.remove_owned(old, kind)
        else:
            os.rename(tmp, path)  # fails if another process created `path` meanwhile
            fsync_dir(path.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)  # our own temporary folder
        raise
    return path


def recover_dir(path: str | os.PathLike) -> bool:
    """Put back a folder left aside by a crash in the middle of :func:`atomic_dir`'s swap.

    Returns True when something was restored. Stale temporary folders of interrupted writes
    (``.xclip-tmp-<name>-*``) are removed.
    """
    path = Path(path)
    parent = path.parent
    if not parent.is_dir():
        return False
    restored = False
    for old in sorted(parent.glob(f".xclip-old-{glob_escape(path.name)}-*")):
        host, pid = old.name.rsplit("-", 2)[-2:]
        if host == HOST and _alive(pid):
            continue  # that process is between its two renames right now
        if not path.exists():
            os.replace(old, path)
            fsync_dir(parent)
            restored = True
        elif ownership.is_owned(old):
            ownership.remove_owned(old)
    prefix = f".xclip-tmp-{path.name}-"
    for tmp in parent.glob(f"{glob_escape(prefix)}*"):
        if _stale(tmp.name[len(prefix) :], tmp, "-"):
            shutil.rmtree(tmp, ignore_errors=True)  # our temporary folder (by its name)
    return restored


def _alive(pid: str) -> bool:
    """Whether the process ``pid`` (a decimal string) is running; unknown -> assume it is."""
    if not pid.isdigit():
        return True
    if int(pid) == os.getpid():
        return True  # this process: another thread of it may be writing right now
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True
