"""Where a dataset's videos are stored: a folder, or an uncompressed tar read by offset.

A storage maps an annotation path to what the decoder opens (``source``: a file path or the
member's bytes) and to a readable name for messages (``describe``). A tar (``root="videos.tar"``)
finds its members by their relative path or, as the original's flat tars, by basename; it is
indexed once when the dataset is built and opened lazily in each worker process.
"""

from __future__ import annotations

import os
import tarfile

from xclip.errors import InputError

__all__ = ["FolderStorage", "TarStorage", "open_storage"]


class FolderStorage:
    """Videos under a folder; ``source(path)`` is the file path handed to the decoder."""

    def __init__(self, root: str | os.PathLike | None):
        self.root = None if root is None else os.fspath(root)
        if self.root is not None and not os.path.isdir(self.root):
            raise FileNotFoundError(
                f"video folder not found: {self.root} (check --root / data.root)"
            )

    def resolve(self, path: str) -> str:
        return path if self.root is None else os.path.join(self.root, path)

    def exists(self, path: str) -> bool:
        return os.path.isfile(self.resolve(path))

    def source(self, path: str) -> str:
        return self.resolve(path)

    def describe(self, path: str) -> str:
        return self.resolve(path)

    def __repr__(self) -> str:
        return f"FolderStorage({self.root!r})"


class TarStorage:
    """Members of an uncompressed tar, by relative path or (if unique) by basename.

    The member table (name -> data offset, size) is built once in the constructing process; the
    file itself is opened lazily in each process (DataLoader worker) and read with ``pread``."""

    def __init__(self, tar_path: str | os.PathLike):
        self.tar_path = os.fspath(tar_path)
        if not os.path.isfile(self.tar_path):
            raise FileNotFoundError(
                f"tar archive not found: {self.tar_path} (check --root / data.root)"
            )
        try:
            with tarfile.open(self.tar_path, mode="r:") as tf:
                members = [m for m in tf.getmembers() if m.isfile()]
        except tarfile.ReadError as e:
            raise InputError(
                f"{self.tar_path} is not an uncompressed tar archive ({e}); random access needs "
                "an uncompressed tar (create it with 'tar -cf', not -czf)"
            ) from e
        self.members: dict[str, tuple[int, int]] = {}
        by_base: dict[str, list[str]] = {}
        for m in members:
            name = m.name[2:] if m.name.startswith("./") else m.name
            self.members[name] = (m.offset_data, m.size)
            by_base.setdefault(os.path.basename(name), []).append(name)
        self.by_basename = {b: names[0] for b, names in by_base.items() if len(names) == 1}
        self._fd: int | None = None
        self._pid: int | None = None

    def _lookup(self, path: str) -> str | None:
        p = path[2:] if path.startswith("./") else path
        if p in self.members:
            return p
        return self.by_basename.get(os.path.basename(p))

    def exists(self, path: str) -> bool:
        return self._lookup(path) is not None

    def source(self, path: str) -> bytes:
        name = self._lookup(path)
        if name is None:
            raise FileNotFoundError(f"{path} is not in {self.tar_path}")
        if self._fd is None or self._pid != os.getpid():
            self._fd = os.open(self.tar_path, os.O_RDONLY)
            self._pid = os.getpid()
        offset, size = self.members[name]
        data = os.pread(self._fd, size, offset)
        if len(data) != size:
            raise OSError(f"short read of {name} in {self.tar_path} (archive truncated?)")
        return data

    def describe(self, path: str) -> str:
        return f"{self.tar_path}:{self._lookup(path) or path}"

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_fd"] = state["_pid"] = None  # each process opens its own descriptor
        return state

    def __repr__(self) -> str:
        return f"TarStorage({self.tar_path!r}, {len(self.members)} members)"


def open_storage(root: str | os.PathLike | None) -> FolderStorage | TarStorage:
    """``*.tar`` -> :class:`TarStorage`, a folder (or None: paths as given) -> :class:`FolderStorage`."""
    if root is not None and not isinstance(root, str | os.PathLike):
        raise InputError(f"root must be a folder or .tar path, got {type(root).__name__}")
    if root is not None and os.fspath(root).endswith(".tar"):
        return TarStorage(root)
    return FolderStorage(root)
