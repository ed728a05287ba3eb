"""The run's metrics: one JSON line per record in ``RUN/metrics.jsonl``, and TensorBoard scalars
when tensorboard is installed; written by rank 0 only.

``metrics.jsonl`` is an append-only log (each row flushed as it is written,
:class:`xclip.append_log.AppendLog`), the one file of a run that is not written through
:mod:`xclip.atomic`. A resumed run first cuts it back, atomically,
to the rows written before the checkpoint it continues from (their number is in the checkpoint's
``meta.json``), so no row appears twice, and then marks the resume with a
``{"kind": "resume", ...}`` row; TensorBoard drops its events from that step on (``purge_step``).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from xclip.append_log import AppendLog
from xclip.atomic import atomic_write_text
from xclip.ownership import is_owned, move_aside

from .logs import RUN_LOGGER

__all__ = ["METRICS_FILE", "MetricsLog", "read_rows"]

log = logging.getLogger(RUN_LOGGER)

METRICS_FILE = "metrics.jsonl"


def read_rows(path: Path) -> list[dict[str, Any]]:
    """The complete rows of a metrics log (a last line cut short by a crash is left out)."""
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines(keepends=True):
        if not line.endswith("\n"):
            break
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            break
    return rows


def _count_lines(path: Path) -> int:
    data = path.read_bytes()
    return data.count(b"\n") + (1 if data and not data.endswith(b"\n") else 0)


class MetricsLog:
    """``write({"kind": "train", "loss": ..., ...}, step)`` appends a row; numeric fields other
    than ``epoch``/``iter``/``step`` also become TensorBoard scalars ``KIND/FIELD`` at ``step``.

    ``keep_rows``: continue an existing log after its first ``keep_rows`` rows (the rest, written
    after the checkpoint a resume starts from, is dropped); None = append to the file as it is.
    ``purge_step``: TensorBoard events at or after this step are dropped (a resume's step).
    """

    def __init__(
        self,
        run_dir: Path,
        enabled: bool,
        tensorboard: bool,
        *,
        keep_rows: int | None = None,
        purge_step: int | None = None,
    ) -> None:
        self.enabled = enabled
        self.path = run_dir / METRICS_FILE
        self.tb = None
        self.rows = 0  # complete rows in the file
        self._log: AppendLog | None = None
        if not enabled:
            return
        rows = read_rows(self.path)
        if keep_rows is None and self.path.is_file() and len(rows) != _count_lines(self.path):
            keep_rows = len(rows)  # a line cut short by a crash: new rows must not join it
        if keep_rows is not None:
            if len(rows) < keep_rows:
                log.warning(
                    "%s has %d rows, the checkpoint counted %d: continuing after them",
                    self.path, len(rows), keep_rows,
                )  # fmt: skip
            kept = rows[:keep_rows]
            if self.path.exists() and not is_owned(self.path):
                aside = move_aside(self.path)  # changed by hand since: kept, not replaced
                log.warning("%s was changed outside xclip; kept as %s", self.path, aside)
            atomic_write_text(self.path, "".join(json.dumps(r) + "\n" for r in kept))
            self.rows = len(kept)
        else:
            self.rows = len(rows)
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter  # lazy: optional dependency

                self.tb = SummaryWriter(str(run_dir / "tensorboard"), purge_step=purge_step)
            except ImportError:
                log.info("tensorboard is not installed; metrics go to %s only", self.path)
        # each row re-records the file as xclip's (xclip.ownership) without reading it again
        self._log = AppendLog(self.path)

    def write(self, row: dict[str, Any], step: int | None = None) -> None:
        if not self.enabled:
            return
        self._log.write_line(json.dumps(row))
        self.rows += 1
        if self.tb is not None and step is not None:
            kind = row.get("kind", "")
            for k, v in row.items():
                if (
                    isinstance(v, (int, float))
                    and not isinstance(v, bool)
                    and k not in ("epoch", "iter", "step")
                ):
                    self.tb.add_scalar(f"{kind}/{k}", v, step)

    def close(self) -> None:
        if self._log is not None:
            self._log.close()
        if self.tb is not None:
            self.tb.close()
