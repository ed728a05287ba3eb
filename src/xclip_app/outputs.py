"""Report and list outputs checked before a command does any work, and versioned report names.

The evaluation and data commands (``eval``, ``zeroshot``, ``fewshot``, ``scan``) call
:func:`check_output` for every file or folder they will write, before loading a model or
reading a video, so a mistake costs nothing:

- an output that is an input (the same file), or a folder that holds an input (replacing it
  would delete the input), is refused even with ``--overwrite``;
- an output inside a protected folder (a checkpoint or model folder: a finished run's files are
  never rewritten) is refused;
- an existing output is refused unless ``--overwrite`` is given (it is then replaced as a unit,
  through :mod:`xclip.atomic`, only once the new one is complete);
- an output whose folder cannot be written is refused.

Each refusal is one line (:class:`~xclip_app.exit_codes.UsageError`, exit code 2) naming the
flag to change. Folders named by the command itself rather than by the user get the first free
name of ``NAME``, ``NAME-2``, ``NAME-3``, ... (:func:`versioned`), so an earlier report is never
replaced.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from xclip_app.exit_codes import UsageError

__all__ = ["check_output", "is_within", "versioned"]

_MAX_VERSIONS = 10_000


def is_within(path: str | os.PathLike, folder: str | os.PathLike) -> bool:
    """Whether ``path`` is ``folder`` or inside it (symlinks resolved)."""
    p, f = Path(path).resolve(), Path(folder).resolve()
    return p == f or p.is_relative_to(f)


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return a.resolve() == b.resolve()


def check_output(
    path: str | os.PathLike,
    *,
    flag: str,
    overwrite: bool,
    inputs: Iterable[str | os.PathLike | None] = (),
    protected: Iterable[str | os.PathLike | None] = (),
    folder: bool = False,
) -> Path:
    """Refuse, with one line, an output that would destroy something (see the module doc).

    ``flag``: the option that names this output (``--out``, ``-o``, ...), used in the messages.
    ``inputs``: files and folders the command reads; ``protected``: folders it must not write
    into. ``None`` entries are ignored. ``folder``: the output is a folder (else a file).
    Returns ``path`` as a :class:`Path`.
    """
    out = Path(path)
    for i in inputs:
        if i is None or str(i) == "":
            continue
        src = Path(i)
        if not src.exists():
            continue
        if _same_file(out, src):
            raise UsageError(
                f"the output {out} is also an input; choose another {flag} "
                "(--overwrite never replaces an input)"
            )
        if out.exists() and out.is_dir() and is_within(src, out):
            raise UsageError(
                f"the output folder {out} holds the input {src}, which replacing it would "
                f"delete; choose another {flag} (--overwrite never replaces an input)"
            )
    for guarded in protected:
        if guarded is None or str(guarded) == "" or not Path(guarded).is_dir():
            continue
        if is_within(out, guarded):
            raise UsageError(
                f"the output {out} is inside {guarded}, a model or checkpoint folder that is "
                f"never written into; choose another {flag}"
            )
    if out.exists() and out.is_dir() != folder:
        what = "a folder" if out.is_dir() else "a file"
        raise UsageError(f"{out} is {what}; choose another {flag}")
    if out.exists() and not overwrite:
        raise UsageError(
            f"{out} already exists; add --overwrite to replace it, or choose another {flag}"
        )
    parent = out.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise UsageError(f"cannot write {out}: {parent} is not a folder; choose another {flag}")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UsageError(
            f"cannot write {out}: no permission to write in {parent}; choose another {flag}"
        )
    return out


def versioned(path: str | os.PathLike) -> Path:
    """``path`` if nothing is there, else the first free ``path-2``, ``path-3``, ..."""
    p = Path(path)
    if not p.exists():
        return p
    for n in range(2, _MAX_VERSIONS):
        cand = p.with_name(f"{p.name}-{n}")
        if not cand.exists():
            return cand
    raise UsageError(f"{_MAX_VERSIONS} versions of {p} exist already; clean up {p.parent}")
