"""Training and evaluation of X-CLIP (the application side; the model library is ``xclip``).

* :mod:`.config`: typed recipe dataclasses, YAML with bases, dotted overrides.
* :mod:`.optim` / :mod:`.schedule`: the original's param groups and per-iteration cosine LR.
* :mod:`.engine`: the training run (DDP, accumulation, mixed precision, resume, logging).
* :mod:`.evaluate`: single/multi-view accuracy counted exactly once per video, reports.
* :mod:`.checkpointing`: atomic checkpoints, ``--resume auto``.
* :mod:`.distributed`: torchrun / single-process setup.
* :mod:`.classifier`: text-head X-CLIP or the linear-head ("w/o text") ablation.
"""

from .config import RunConfig, load_config

__all__ = ["RunConfig", "load_config"]
