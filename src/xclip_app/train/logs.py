"""The run's logging: the logger a training run reports on, its per-rank log file, and one
console for a multi-process job. The application configures handlers here only."""

from __future__ import annotations

import logging
from pathlib import Path

from .distributed import DistInfo

__all__ = ["RUN_LOGGER", "add_run_log_file", "quiet_other_ranks"]

# The name the trainer and its metrics log under (the demo filters these records by this name).
RUN_LOGGER = "xclip_app.train"

_RUN_LOG_MARK = "_xclip_run_log"


def add_run_log_file(path: Path) -> None:
    """Log to ``path`` (``RUN/log_rank{r}.txt``); replaces the file handler of a previous run in
    this process (the few-shot protocol trains several runs in one process)."""
    root = logging.getLogger()
    for h in list(root.handlers):
        if getattr(h, _RUN_LOG_MARK, False):
            root.removeHandler(h)
            h.close()
    h = logging.FileHandler(path, encoding="utf-8")
    setattr(h, _RUN_LOG_MARK, True)
    h.setFormatter(logging.Formatter("[%(asctime)s %(name)s] %(levelname)s %(message)s"))
    root.addHandler(h)
    if root.level > logging.INFO or root.level == logging.NOTSET:
        root.setLevel(logging.INFO)


def quiet_other_ranks(info: DistInfo) -> None:
    """One console for the whole job: ranks other than 0 log warnings and errors only."""
    if not info.is_main:
        logging.getLogger().setLevel(logging.WARNING)
