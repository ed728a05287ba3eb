"""Annotation problems: each one names its file and line, and all of them are raised together.

A parser adds every problem it finds to a :class:`ProblemCollector` and raises one
:class:`AnnotationError` at the end, so a broken list is reported completely before any
training starts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from xclip.errors import InputError

_MAX_SHOWN = 50  # problems written into the error message; ``AnnotationError.problems`` has all


@dataclass(frozen=True)
class Problem:
    """One problem: the file, the 1-based line (``None`` for the whole file) and what is wrong."""

    file: str
    line: int | None
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line is not None else self.file
        return f"{where}: {self.message}"


class AnnotationError(InputError):
    """One or more problems in annotation files; ``problems`` lists them all (file, line, message)."""

    def __init__(self, problems: Sequence[Problem]):
        self.problems = list(problems)
        n = len(self.problems)
        shown = "\n".join(f"  {p}" for p in self.problems[:_MAX_SHOWN])
        more = f"\n  ... and {n - _MAX_SHOWN} more" if n > _MAX_SHOWN else ""
        super().__init__(f"{n} annotation problem{'s' if n != 1 else ''}:\n{shown}{more}")

    @property
    def lines(self) -> list[int | None]:
        """The line of each problem, in the order they were found."""
        return [p.line for p in self.problems]


class ProblemCollector:
    """Problems found so far (``items``, in order); :meth:`raise_if_any` ends a parse."""

    def __init__(self) -> None:
        self.items: list[Problem] = []

    def add(self, file: str, line: int | None, message: str) -> None:
        """Record a problem of ``file`` at 1-based ``line`` (``None``: the file as a whole)."""
        self.items.append(Problem(str(file), line, message))

    def raise_if_any(self) -> None:
        """Raise one :class:`AnnotationError` listing every recorded problem, if there is one."""
        if self.items:
            raise AnnotationError(self.items)
