"""Output paths that would destroy something, refused before a command does any work.

Rule 1 of docs/reliability.md for every command that writes a file or folder the user names:
an output that is also an input is refused even with ``--overwrite``; an existing output is
refused unless ``--overwrite`` is given; an unwritable location is refused; each as one line
(:class:`~xclip_app.exit_codes.UsageError`, exit code 2). The writing itself goes through
:mod:`xclip.atomic`.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from xclip_app.exit_codes import UsageError

__all__ = ["check_outputs", "output_error"]


def check_outputs(
    outputs: Sequence[str | os.PathLike],
    *,
    overwrite: bool,
    inputs: Iterable[str | os.PathLike] = (),
    protected_folders: Iterable[str | os.PathLike] = (),
    scanned_folders: Iterable[str | os.PathLike] = (),
) -> None:
    """Refuse, with one line (:class:`UsageError`), output files that would destroy something.

    ``outputs``: the files the command will write (one, or an index and its sidecars);
    ``inputs``: files the run reads (videos, labels file, index, model file); an output that is
    the same file is refused even with ``--overwrite``. ``protected_folders`` (a model folder):
    no output inside. ``scanned_folders`` (folders searched for videos): no output with a video
    extension inside (it would be read as a video). Then an existing output is refused unless
    ``overwrite``, and an output whose folder cannot be written is refused.
    """
    from xclip.data.video import VIDEO_EXTENSIONS  # lazy: CLI start-up

    outs = [Path(o) for o in outputs]
    input_ids: dict[tuple[int, int], str] = {}
    if any(o.exists() for o in outs):
        for i in inputs:
            with contextlib.suppress(OSError):
                st = os.stat(i)
                input_ids.setdefault((st.st_dev, st.st_ino), os.fspath(i))
    protected = [Path(f).resolve() for f in protected_folders]
    scanned = [Path(f).resolve() for f in scanned_folders]
    for out in outs:
        if out.is_dir():
            raise UsageError(f"the output {out} is a folder; give a file name, e.g. {out}/results")
        if out.exists():
            st = out.stat()
            same = input_ids.get((st.st_dev, st.st_ino))
            if same is not None:
                raise UsageError(
                    f"the output {out} is also an input ({same}); write the results to another "
                    f"file (--overwrite never replaces an input)"
                )
        real = out.resolve()
        for folder in protected:
            if real.is_relative_to(folder):
                raise UsageError(
                    f"the output {out} is inside the model folder {folder}; write the results "
                    f"elsewhere"
                )
        if real.suffix.lower() in VIDEO_EXTENSIONS:
            for folder in scanned:
                if real.is_relative_to(folder):
                    raise UsageError(
                        f"the output {out} has a video extension inside the input folder "
                        f"{folder}, so it would be read as a video; write it elsewhere or give it "
                        f"another extension (e.g. .jsonl)"
                    )
    for out in outs:
        if out.exists() and not overwrite:
            raise UsageError(
                f"{out} already exists; add --overwrite to replace it, or choose another output"
            )
    for out in outs:
        parent = out.parent
        while not parent.exists() and parent != parent.parent:
            parent = parent.parent
        if not parent.is_dir():
            raise UsageError(f"cannot write {out}: {parent} is not a folder")
        if not os.access(parent, os.W_OK | os.X_OK):
            raise UsageError(
                f"cannot write {out}: no permission to write in {parent}; choose another output"
            )


def output_error(path: str | os.PathLike, e: OSError) -> UsageError:
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
