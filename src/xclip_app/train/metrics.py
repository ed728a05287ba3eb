"""The run's metrics: one JSON line per record in ``RUN/metrics.jsonl``, and TensorBoard scalars
when tensorboard is installed; written by rank 0 only."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from .logs import RUN_LOGGER

__all__ = ["MetricsLog"]

log = logging.getLogger(RUN_LOGGER)


class MetricsLog:
    """``write({"kind": "train", "loss": ..., ...}, step)`` appends a row; numeric fields other
    than ``epoch``/``iter``/``step`` also become TensorBoard scalars ``KIND/FIELD`` at ``step``."""

    def __init__(self, run_dir: Path, enabled: bool, tensorboard: bool) -> None:
        self.enabled = enabled
        self.path = run_dir / "metrics.jsonl"
        self.tb = None
        if enabled and tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter  # lazy: optional dependency

                self.tb = SummaryWriter(str(run_dir / "tensorboard"))
            except ImportError:
                log.info("tensorboard is not installed; metrics go to %s only", self.path)
        self._f = open(self.path, "a", encoding="utf-8") if enabled else None  # noqa: SIM115

    def write(self, row: dict[str, Any], step: int | None = None) -> None:
        if not self.enabled:
            return
        self._f.write(json.dumps(row) + "\n")
        self._f.flush()
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
        if self._f:
            self._f.close()
        if self.tb is not None:
            self.tb.close()
