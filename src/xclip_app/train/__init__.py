"""Training and evaluation of X-CLIP (the application side; the model library is ``xclip``).

* :mod:`.config`: typed recipe dataclasses, YAML with bases, dotted overrides;
  :mod:`xclip_app.recipe_args`: the same recipe on the command line.
* :mod:`.trainer`: the training loop (DDP, accumulation, mixed precision, resume, NaN stop).
* :mod:`.loaders`: the run's training and evaluation loaders; :mod:`.sampler`: the resumable
  training order.
* :mod:`.classifier`: text-head X-CLIP or the linear-head ("w/o text") ablation.
* :mod:`.optim` / :mod:`.schedule`: the original's param groups and per-iteration cosine LR.
* :mod:`.evaluate`: single/multi-view accuracy counted exactly once per video, reports.
* :mod:`.protocols`: the paper's zero-shot and few-shot protocols.
* :mod:`.checkpointing`: atomic checkpoints, ``--resume auto``; :mod:`.run_folder`: what a run
  folder holds, refusing a second run into it, ``--overwrite``, what a resume may not change.
* :mod:`.metrics` / :mod:`.logs` / :mod:`.summary`: ``metrics.jsonl``, the run's log files, the
  final table and ``summary.json``.
* :mod:`.distributed`: torchrun / single-process setup.
* :mod:`.toydata`: the generated toy dataset of the tests and demos.
"""

from .config import RunConfig, load_config

__all__ = ["RunConfig", "load_config"]
