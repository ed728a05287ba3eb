"""Output paths that would destroy something, refused before a command does any work.

Rule 1 of docs/reliability.md, for every command that writes a file or folder the user names
(``classify``/``embed``/``search -o``, ``eval``/``zeroshot --out``, ``fewshot --output``,
``scan -o``/``--clean-list``, ``convert``, ``convert-openai``). Checked before a model is loaded
or a video read, so a mistake costs nothing:

- an output that is an input (the same file), or a folder that holds an input (replacing it
  would delete the input), is refused even with ``--overwrite``;
- an output inside a protected folder (a model or checkpoint folder: a finished run's files are
  never rewritten) is refused;
- a file with a video extension inside a folder being scanned for videos is refused (it would
  be read as a video by the next run);
- an existing output is refused unless ``--overwrite`` is given; with it, only an output xclip
  can prove it wrote (:mod:`xclip.ownership`: a manifest lists it; a folder must be an xclip
  output of the same kind holding nothing else) is replaced, as a unit through
  :mod:`xclip.atomic`, once the new one is complete; a user's file or folder in the way is
  named and refused, ``--overwrite`` or not;
- an empty path and a dangling symlink are refused;
- an output whose folder cannot be written is refused;
- the output is locked (:func:`xclip.ownership.lock_output`, ``filelock``) for the rest of the
  process: a second live process into it is refused with the holder's process id and host.

Each refusal is one line (:class:`~xclip_app.exit_codes.UsageError`, exit code 2) naming the
option to change. Folders a command names itself get the first free name of ``NAME``,
``NAME-2``, ... (:func:`versioned`), so an earlier report is never replaced.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from xclip_app.exit_codes import UsageError

__all__ = [
    "check_not_foreign",
    "check_output",
    "check_outputs",
    "check_work_folder",
    "is_within",
    "output_error",
    "versioned",
]

_MAX_VERSIONS = 10_000

PathLike = str | os.PathLike


def is_within(path: PathLike, folder: PathLike) -> bool:
    """Whether ``path`` is ``folder`` or inside it (symlinks resolved)."""
    p, f = Path(path).resolve(), Path(folder).resolve()
    return p == f or p.is_relative_to(f)


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)  # hard links and symlinks count as the same file
    except OSError:
        return a.resolve() == b.resolve()


def _given(paths: Iterable[PathLike | None]) -> list[Path]:
    return [Path(p) for p in paths if p is not None and str(p) != ""]


def check_output(
    path: PathLike,
    *,
    overwrite: bool,
    flag: str = "-o",
    inputs: Iterable[PathLike | None] = (),
    protected: Iterable[PathLike | None] = (),
    scanned: Iterable[PathLike | None] = (),
    folder: bool = False,
    kind: str | None = None,
    lock: bool = True,
) -> Path:
    """Refuse, with one line, an output that would destroy something (see the module doc).

    ``flag``: the option that names this output, used in the messages. ``inputs``: files and
    folders the command reads; ``protected``: folders it must not write into (a model: also
    an input); ``scanned``: folders searched for videos. ``None`` entries are ignored.
    ``folder``: the output is a folder (else a file) of ``kind`` (the unit kind of
    :func:`xclip.atomic.atomic_dir`; None: any xclip unit). ``lock``: take the output's lock.
    Returns ``path`` as a :class:`Path`.
    """
    from xclip.ownership import lock_output, require_replaceable  # lazy: CLI start-up

    out = _given_path(path, flag)
    protected = _given(protected)
    for src in [*_given(inputs), *protected]:
        if not src.exists():
            continue
        if out.exists() and _same_file(out, src):
            raise UsageError(
                f"the output {out} is also an input ({src}); choose another {flag} "
                "(--overwrite never replaces an input)"
            )
        if out.is_dir() and is_within(src, out):
            raise UsageError(
                f"the output folder {out} holds the input {src}, which replacing it would "
                f"delete; choose another {flag} (--overwrite never replaces an input)"
            )
    for guarded in protected:
        if guarded.is_dir() and is_within(out, guarded):
            raise UsageError(
                f"the output {out} is inside the model folder {guarded} (a model or checkpoint "
                f"folder is never written into); choose another {flag}"
            )
    if not folder:
        from xclip.data.video import VIDEO_EXTENSIONS  # lazy: CLI start-up

        if out.suffix.lower() in VIDEO_EXTENSIONS:
            for scan in _given(scanned):
                if is_within(out, scan):
                    raise UsageError(
                        f"the output {out} has a video extension inside the input folder {scan}, "
                        f"so it would be read as a video; choose another {flag} or another "
                        f"extension (e.g. .jsonl)"
                    )
    if folder and out.is_dir() and not out.is_symlink() and not any(out.iterdir()):
        pass  # an empty folder: written into as if new
    elif out.exists() and out.is_dir() != folder:
        what = "a folder" if out.is_dir() else "a file"
        raise UsageError(f"the output {out} is {what}; choose another {flag}")
    elif out.exists() and not overwrite:
        raise UsageError(
            f"{out} already exists; add --overwrite to replace it, or choose another {flag}"
        )
    elif out.exists():
        require_replaceable(out, kind if folder else None, flag=flag)
    _check_writable(out, flag)
    if lock:
        lock_output(out, flag=flag)
    return out


def check_outputs(
    outputs: Sequence[PathLike],
    *,
    overwrite: bool,
    flag: str = "-o",
    inputs: Iterable[PathLike | None] = (),
    protected_folders: Iterable[PathLike | None] = (),
    scanned_folders: Iterable[PathLike | None] = (),
    folder: bool = False,
    kind: str | None = None,
) -> None:
    """:func:`check_output` for the files of one output (an index and its sidecar files)."""
    inputs, protected, scanned = list(inputs), list(protected_folders), list(scanned_folders)
    for out in outputs:
        check_output(
            out,
            overwrite=overwrite,
            flag=flag,
            inputs=inputs,
            protected=protected,
            scanned=scanned,
            folder=folder,
            kind=kind,
        )


def check_not_foreign(paths: Iterable[PathLike], *, flag: str) -> None:
    """Refuse, before any work, a family of outputs (the files a command will write one by
    one, e.g. ``prepare``'s transcodes) in which any existing file is not xclip's: one line
    naming the first and counting the others."""
    from xclip.ownership import foreign_files  # lazy: CLI start-up

    found: list[Path] = []
    for p in paths:
        found += foreign_files(p)
    if found:
        more = f" and {len(found) - 1} more" if len(found) > 1 else ""
        raise UsageError(
            f"{found[0]}{more} would be replaced, but xclip did not write "
            f"{'it' if len(found) == 1 else 'them'} (or they changed since); xclip never "
            f"replaces a file it did not write, --overwrite included: move "
            f"{'it' if len(found) == 1 else 'them'} away or choose another {flag}"
        )


def check_work_folder(path: PathLike, kind: str, *, flag: str, marker: str) -> Path:
    """A folder a command fills file by file (``prepare``'s DST, the demo's folder): new, empty,
    or an earlier output of the same command (``marker``, a file xclip wrote in it; or a unit of
    ``kind``). Anything else is a user's folder: one line, exit 2, nothing written. Locked."""
    from xclip.ownership import (  # lazy: CLI start-up
        internal_name,
        is_owned,
        lock_output,
        unit_kind,
    )

    out = _given_path(path, flag)
    if out.exists() and not out.is_dir():
        raise UsageError(f"{flag} {out} is a file; give a folder")
    if out.is_dir():
        names = [n for n in os.listdir(out) if not internal_name(n)]
        ours = unit_kind(out) == kind or is_owned(out / marker)
        if names and not ours:
            raise UsageError(
                f"{flag} {out} holds files xclip did not write (e.g. {sorted(names)[0]}); "
                f"choose a new or empty folder, or an earlier {kind} output"
            )
    _check_writable(out, flag)
    lock_output(out, flag=flag)
    return out


def _given_path(path: PathLike | None, flag: str) -> Path:
    """``path`` as a Path, refused when empty (it would mean the current folder) or a dangling
    symlink (xclip does not write through one)."""
    if path is None or str(path).strip() == "":
        raise UsageError(f"{flag} is empty; give a file or folder name")
    out = Path(path)
    if out.is_symlink() and not out.exists():
        raise UsageError(
            f"the output {out} is a symlink to a missing {os.readlink(out)}; xclip does not "
            f"write through it; choose another {flag}"
        )
    return out


def _check_writable(out: Path, flag: str) -> None:
    """Refuse an output whose nearest existing folder is not a folder or cannot be written."""
    parent = out.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise UsageError(f"cannot write {out}: {parent} is not a folder; choose another {flag}")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UsageError(
            f"cannot write {out}: no permission to write in {parent}; choose another {flag}"
        )


def output_error(path: PathLike, e: OSError) -> UsageError:
    """The one line for an output that could not be written (a full disk, a read-only file
    system, the target created meanwhile)."""
    if isinstance(e, FileExistsError):
        return UsageError(
            f"{path} already exists (created while this run was writing); add --overwrite to "
            f"replace it, or choose another output"
        )
    return UsageError(
        f"cannot write {path}: {e.strerror or e}; free some space or choose another output "
        f"(nothing was written, an earlier {Path(path).name} is unchanged)"
    )


def versioned(path: PathLike) -> Path:
    """``path`` if nothing is there, else the first free ``path-2``, ``path-3``, ..."""
    p = Path(path)
    if not p.exists():
        return p
    for n in range(2, _MAX_VERSIONS):
        cand = p.with_name(f"{p.name}-{n}")
        if not cand.exists():
            return cand
    raise UsageError(f"{_MAX_VERSIONS} versions of {p} exist already; clean up {p.parent}")
