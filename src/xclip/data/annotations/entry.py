"""``VideoEntry``: one annotated video (path and class id), and the check of a class id's range."""

from __future__ import annotations

from dataclasses import dataclass, field

from .problems import ProblemCollector


@dataclass(frozen=True)
class VideoEntry:
    """One annotated video: ``path`` relative to the dataset root (or absolute) and its label.
    ``source``/``line`` say where it was read from (not part of equality)."""

    path: str
    label: int
    source: str | None = field(default=None, compare=False)
    line: int | None = field(default=None, compare=False)

    @property
    def where(self) -> str:
        """``file:line`` the entry was read from (``<entries>`` for one built in memory)."""
        if self.source is None:
            return "<entries>"
        return f"{self.source}:{self.line}" if self.line is not None else self.source


def check_label(
    label: int,
    num_classes: int | None,
    source: str,
    line: int | None,
    problems: ProblemCollector,
) -> bool:
    """Whether ``label`` is a class id ``0..num_classes-1`` (``>= 0`` when the number of classes
    is unknown); a problem at ``source:line`` is recorded when it is not."""
    if label < 0 or (num_classes is not None and label >= num_classes):
        rng = f"0..{num_classes - 1}" if num_classes is not None else ">= 0"
        problems.add(source, line, f"label {label} out of range ({rng})")
        return False
    return True
