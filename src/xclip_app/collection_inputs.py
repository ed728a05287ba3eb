"""The videos of a collection: files, folders, list files, globs and remote URIs, expanded into
one sorted list of unique video locations.

- a file with a video extension (or any file named explicitly that is not a list file): itself;
- a folder: its videos (:data:`xclip.data.video.VIDEO_EXTENSIONS`), recursively by default;
- a list file: ``@FILE``, or a file ending in ``.txt``/``.lst``/``.list``: one video, folder, glob
  or URI a line (blank lines and ``#`` comments skipped; relative paths are relative to the list
  file's folder);
- a glob (``*``, ``?``, ``[`` in a path that does not exist as named): the matching videos
  (``**`` descends into sub-folders);
- a URI (``s3://bucket/prefix``, ``gs://...``, ``hf://...``, ``file:///...``): listed through
  pyarrow's file systems, or fsspec's when pyarrow does not know the scheme (both optional);
  a URI that names a folder contributes its videos. Remote videos are read as bytes by
  :func:`read_video_bytes` where they are decoded (a Ray task on any machine of the cluster).
  In a list file, a URI that names a video file (a video extension) is taken as written, without
  a request: a list of a million URIs starts at once, and a missing one is a failed video when
  it is read, like a missing local file.

Remote storage fails fast: an S3 or GCS endpoint that does not answer is given up after
:func:`storage_timeout` seconds per request (``XCLIP_STORAGE_TIMEOUT``, default 5; one retry),
not after the SDKs' minutes of retries, and listing it is one line and exit 2.

A video is identified by its **location** (:func:`video_location`): a local path resolved
(absolute, symlinks followed, ``./`` and ``..`` gone; ``file://`` URIs become that path), any other
URI as written. ``a.mp4``, ``./a.mp4``, ``/abs/a.mp4`` and ``link_to_folder/a.mp4`` are one video:
listed once here, done once by a resumed job (:mod:`xclip_app.parquet_results`).
"""

from __future__ import annotations

import glob
import os
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import urlsplit

from xclip_app.exit_codes import UsageError

__all__ = [
    "LIST_SUFFIXES",
    "expand_inputs",
    "is_uri",
    "read_video_bytes",
    "remote_filesystem",
    "storage_timeout",
    "video_location",
    "video_locations",
]

LIST_SUFFIXES = (".txt", ".lst", ".list")
STORAGE_TIMEOUT = 5.0  # seconds a remote storage request may stall (XCLIP_STORAGE_TIMEOUT)


def storage_timeout() -> float:
    """Seconds a request to remote storage may take to connect or stall before it fails:
    ``XCLIP_STORAGE_TIMEOUT`` (a number > 0), default 5."""
    raw = os.environ.get("XCLIP_STORAGE_TIMEOUT", "").strip()
    if not raw:
        return STORAGE_TIMEOUT
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not value > 0 or value == float("inf"):
        raise UsageError(f"XCLIP_STORAGE_TIMEOUT must be a number of seconds > 0, got {raw!r}")
    return value


def remote_filesystem(uri: str):  # noqa: ANN201 (pyarrow is optional)
    """``(pyarrow file system, path)`` of ``uri``, or None when pyarrow is not installed or does
    not know the scheme. S3 and GCS get :func:`storage_timeout` (the SDKs' defaults retry an
    endpoint that does not answer for minutes); options in the URI's query are kept.
    ``OSError`` when the URI cannot be resolved (e.g. a region lookup that fails)."""
    try:
        import pyarrow.fs as pafs  # lazy: optional dependency
    except ImportError:
        return None
    try:
        fs, path = pafs.FileSystem.from_uri(uri)
    except ValueError:  # pyarrow's ArrowInvalid: a scheme it does not know
        return None
    timeout = storage_timeout()
    if isinstance(fs, pafs.S3FileSystem):
        opts = dict(fs.__reduce__()[1][0])  # the options from_uri parsed (endpoint, region...)
        for key in ("connect_timeout", "request_timeout"):
            if opts.get(key) is None or opts[key] < 0:
                opts[key] = timeout
        retry = pafs.AwsStandardS3RetryStrategy(max_attempts=2)
        fs = pafs.S3FileSystem(**opts, retry_strategy=retry)
    elif isinstance(fs, pafs.GcsFileSystem):
        import datetime  # lazy: CLI start-up

        opts = dict(fs.__reduce__()[1][0])
        if opts.get("retry_time_limit") is None:
            opts["retry_time_limit"] = datetime.timedelta(seconds=2 * timeout)
        fs = pafs.GcsFileSystem(**opts)
    return fs, path


def is_uri(s: str) -> bool:
    """``scheme://...`` with a scheme of two letters or more (``C:\\`` is a Windows path)."""
    head, sep, _ = s.partition("://")
    return bool(sep) and len(head) > 1 and head.replace("+", "").replace("-", "").isalnum()


def video_location(path: str) -> str:
    """Where the video ``path`` is, as one string per video (see the module docstring)."""
    return video_locations([path])[0]


def video_locations(paths: Iterable[str]) -> list[str]:
    """:func:`video_location` of each of ``paths``. Each folder is resolved once (a million
    videos in a few folders cost about one ``lstat`` each, not one per path component)."""
    folders: dict[str, str] = {}
    out = []
    for p in paths:
        if p.startswith("file://"):
            p = p[len("file://") :]
        elif is_uri(p):
            out.append(p)
            continue
        head, name = os.path.split(p)
        if name in ("", ".", ".."):
            out.append(os.path.realpath(p))
            continue
        real_head = folders.get(head)
        if real_head is None:
            real_head = folders[head] = os.path.realpath(head or ".")
        joined = os.path.join(real_head, name)
        out.append(os.path.realpath(joined) if os.path.islink(joined) else joined)
    return out


def _is_video_name(name: str) -> bool:
    from xclip.data.video import VIDEO_EXTENSIONS  # lazy: CLI start-up

    return os.path.splitext(name)[1].lower() in VIDEO_EXTENSIONS


def _read_list(path: Path, recursive: bool, seen: set[Path]) -> list[str]:
    real = path.resolve()
    if real in seen:
        raise UsageError(f"list file {path} includes itself; remove the loop")
    seen = seen | {real}
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise UsageError(f"list file not found: {path}") from None
    except UnicodeDecodeError:
        raise UsageError(f"{path} is not a UTF-8 text list file (one video path a line)") from None
    out: list[str] = []
    for n, line in enumerate(lines, 1):
        item = line.strip()
        if not item or item.startswith("#"):
            continue
        if is_uri(item) and _is_video_name(urlsplit(item).path):
            out.append(item)  # checked when read, not with a request a line (a million lines)
            continue
        if not is_uri(item) and not os.path.isabs(item):
            item = str(path.parent / item)
        try:
            out += _expand_one(item, recursive, seen)
        except UsageError as e:
            raise UsageError(f"{path}, line {n}: {e}") from None
    return out


def _expand_uri(uri: str, recursive: bool) -> list[str]:
    try:
        resolved = remote_filesystem(uri)
    except OSError as e:
        raise UsageError(f"{uri}: {' '.join(str(e).split())[:300]}") from None
    if resolved is not None:
        import pyarrow.fs as pafs  # lazy: optional dependency

        fs, root = resolved
        try:
            info = fs.get_file_info(root)
            if info.type == pafs.FileType.NotFound:
                raise UsageError(f"not found: {uri}")
            if info.type == pafs.FileType.File:
                return [uri]
            scheme = uri.split("://", 1)[0]
            sel = pafs.FileSelector(root, recursive=recursive)
            found = sorted(
                f"{scheme}://{f.path}" if scheme != "file" else f"file://{f.path}"
                for f in fs.get_file_info(sel)
                if f.type == pafs.FileType.File and _is_video_name(f.path)
            )
        except OSError as e:  # unreachable, refused, no credentials, no permission
            reason = " ".join(str(e).split())
            raise UsageError(
                f"cannot list {uri}: {reason[:300]} (each request may take "
                f"XCLIP_STORAGE_TIMEOUT={storage_timeout():g} s; check the endpoint, the "
                f"network and the credentials)"
            ) from None
        if not found:
            raise UsageError(f"no videos under {uri}")
        return found
    try:
        import fsspec  # lazy: optional dependency
    except ImportError:
        raise UsageError(
            f"{uri}: reading URIs needs pyarrow or fsspec; install one, e.g. "
            f"`pip install 'xclip[ray]'`"
        ) from None
    try:
        fs, root = fsspec.core.url_to_fs(uri)
    except (ValueError, ImportError) as e:
        raise UsageError(f"{uri}: {e}") from None
    if not fs.exists(root):
        raise UsageError(f"not found: {uri}")
    if fs.isfile(root):
        return [uri]
    scheme = uri.split("://", 1)[0]
    names = fs.find(root) if recursive else fs.ls(root, detail=False)
    found = sorted(f"{scheme}://{n}" for n in names if _is_video_name(n) and fs.isfile(n))
    if not found:
        raise UsageError(f"no videos under {uri}")
    return found


def _expand_one(item: str, recursive: bool, seen: set[Path]) -> list[str]:
    from xclip.data.video import find_videos  # lazy: CLI start-up

    if is_uri(item):
        return _expand_uri(item, recursive)
    if item.startswith("@"):
        return _read_list(Path(item[1:]), recursive, seen)
    p = Path(item)
    if p.is_file() and p.suffix.lower() in LIST_SUFFIXES:
        return _read_list(p, recursive, seen)
    if not p.exists() and glob.has_magic(item):
        matches = sorted(glob.glob(item, recursive=True))
        found = [m for m in matches if os.path.isfile(m) and _is_video_name(m)]
        for m in matches:
            if os.path.isdir(m):
                found += find_videos([m], recursive=recursive)
        if not found:
            raise UsageError(f"no videos match {item}")
        return found
    if not p.exists():
        raise UsageError(f"not found: {item}")
    try:
        return find_videos([p], recursive=recursive)
    except ValueError as e:  # a folder without videos
        raise UsageError(str(e)) from None


def expand_inputs(items: Iterable[str], *, recursive: bool = True) -> list[str]:
    """Every video of ``items`` (see the module docstring), sorted, each location once (the first
    name in sort order is kept). A missing path, a glob or folder without videos, a list file
    that cannot be read: :class:`UsageError`."""
    found: set[str] = set()
    for item in items:
        found.update(_expand_one(os.fspath(item), recursive, set()))
    names = sorted(found)
    seen: set[str] = set()
    out = []
    for name, loc in zip(names, video_locations(names), strict=True):
        if loc not in seen:
            seen.add(loc)
            out.append(name)
    return out


def read_video_bytes(uri: str) -> bytes:
    """The bytes of a remote video (pyarrow's file systems, else fsspec's). ``OSError`` when
    it cannot be read (a failed video, like a missing local file)."""
    resolved = remote_filesystem(uri)
    if resolved is None:
        import fsspec  # lazy: optional dependency

        with fsspec.open(uri, "rb") as f:
            return f.read()
    fs, path = resolved
    with fs.open_input_file(path) as f:
        return f.read()
