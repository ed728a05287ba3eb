"""The summary of a training run: its per-epoch table, printed at the end, and ``summary.json``."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xclip.atomic import atomic_write_text

__all__ = ["TrainSummary", "format_duration"]


def format_duration(seconds: float) -> str:
    """Whole seconds as ``h:mm:ss`` (hours unbounded): ``3725.4`` -> ``"1:02:05"``."""
    s = int(seconds)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


@dataclass
class TrainSummary:
    """What a finished run reports: per-epoch history, best and final accuracy, where it is."""

    run_dir: Path
    epochs: int
    steps: int
    final_loss: float
    best_top1: float
    best_epoch: int
    history: list[dict[str, Any]] = field(default_factory=list)
    final_eval: dict[str, Any] | None = None
    last_checkpoint: Path | None = None
    seconds: float = 0.0

    def table(self) -> str:
        """The per-epoch table printed at the end of ``xclip-video train``."""
        lines = [
            f"{'epoch':>5}  {'loss':>8}  {'lr':>9}  {'top-1':>7}  {'top-5':>7}  {'clips/s':>8}  {'time':>8}"
        ]
        for h in self.history:
            lines.append(
                f"{h['epoch']:>5}  {h['loss']:>8.4f}  {h['lr']:>9.2e}  "
                + (
                    f"{h['top1']:>7.2f}  {h['top5']:>7.2f}"
                    if "top1" in h
                    else f"{'-':>7}  {'-':>7}"
                )
                + f"  {h['clips_per_s']:>8.1f}  {format_duration(h['seconds']):>8}"
            )
        lines.append(
            f"best single-view top-1 {self.best_top1:.2f}% (epoch {self.best_epoch})"
            if self.best_epoch >= 0
            else "no validation during training"
        )
        if self.final_eval:
            f = self.final_eval
            lines.append(
                f"final {f['views']} views (last epoch): top-1 {f['top1']:.2f}%  top-5 {f['top5']:.2f}%  "
                f"mean class {f['mean_class_acc']:.2f}%  ({f['num_samples']} videos)"
            )
        lines.append(f"run folder {self.run_dir}  ({format_duration(self.seconds)})")
        return "\n".join(lines)

    def write_json(self, path: Path, *, overwrite: bool = True) -> None:
        """Every field, paths as strings (``RUN/summary.json``), written atomically;
        ``overwrite=False`` refuses an existing file (``FileExistsError``)."""
        data = {k: (str(v) if isinstance(v, Path) else v) for k, v in self.__dict__.items()}
        atomic_write_text(path, json.dumps(data, indent=2) + "\n", overwrite=overwrite)

    @classmethod
    def read_json(cls, path: Path) -> TrainSummary:
        """The summary :meth:`write_json` wrote (a finished run's, shown again)."""
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        data["run_dir"] = Path(data["run_dir"])
        if data.get("last_checkpoint"):
            data["last_checkpoint"] = Path(data["last_checkpoint"])
        return cls(**data)
