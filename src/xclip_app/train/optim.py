"""Freezing and AdamW parameter groups, exactly as the original ``utils/optimizer.py``.

* ``fix_text`` freezes every parameter whose name contains none of ``"visual."``, ``"mit"``,
  ``"prompts"``: the text transformer, ``token_embedding``, the text ``positional_embedding``,
  ``ln_final``, ``text_projection`` and ``logit_scale``.
* Four groups, each split into decay / no-decay (8 AdamW groups, empty ones dropped):
  ``clip`` (names without ``prompts``, ``mit``, ``message_``; the pretrained towers) at the base LR,
  and ``message_`` / ``mit`` / ``prompts`` at ``new_module_lr_mult`` (10) x the base LR. The
  linear head of the "w/o text" ablation (``head.``, not in the original) is a new module too.
  ``prompts_lr_mult`` (not in the original; ``None`` = ``new_module_lr_mult``) sets the prompt
  generator's multiplier on its own.
* No weight decay on 1-D parameters (not the 0-D ``logit_scale``: the original tests
  ``len(shape) == 1``), names ending in ``.bias`` and names containing
  ``positional_embedding``.

Names are those of :class:`xclip.XCLIP` (the original's), optionally behind a prefix such as
``model.`` or ``module.``; the rules match substrings, as the original does.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

from xclip.errors import InputError

__all__ = ["build_optimizer", "freeze_text", "param_groups", "NO_DECAY_KEYWORDS"]

NO_DECAY_KEYWORDS = ("positional_embedding",)
_KEEP_TRAINABLE = ("visual.", "mit", "prompts")


def freeze_text(model: nn.Module) -> list[str]:
    """The original ``fix_text``: ``requires_grad=False`` on every parameter whose name has none of
    ``visual.``/``mit``/``prompts`` (plus our ``head.``). Returns the frozen names."""
    frozen = []
    for name, p in model.named_parameters():
        if not (name.startswith("head.") or any(k in name for k in _KEEP_TRAINABLE)):
            p.requires_grad_(False)
            frozen.append(name)
    return frozen


def _no_decay(name: str, p: torch.Tensor) -> bool:
    # ndim == 1 exactly as the original's len(shape) == 1: the 0-D logit_scale *is* decayed when
    # the text side is trained (fix_text=False)
    return p.ndim == 1 or name.endswith(".bias") or any(k in name for k in NO_DECAY_KEYWORDS)


def _group_of(name: str) -> str:
    # The original selects its groups with substring tests; X-CLIP's names match at most one of
    # "prompts", "mit", "message_". Our linear head lives at the top of the wrapper ("head.").
    if name.startswith("head."):
        return "head"
    for key in ("prompts", "mit", "message_"):
        if key in name:
            return key.rstrip("_")
    return "clip"


def param_groups(
    named_params: Iterable[tuple[str, nn.Parameter]],
    lr: float,
    weight_decay: float,
    new_module_lr_mult: float = 10.0,
    prompts_lr_mult: float | None = None,
) -> list[dict]:
    """AdamW groups ``[{"params", "lr", "weight_decay", "name"}, ...]`` of the trainable parameters."""
    order = ["clip", "message", "mit", "prompts", "head"]
    mult = {g: new_module_lr_mult for g in order}
    mult["clip"] = 1.0
    if prompts_lr_mult is not None:
        mult["prompts"] = prompts_lr_mult
    buckets: dict[tuple[str, bool], list[nn.Parameter]] = {}
    for name, p in named_params:
        if not p.requires_grad:
            continue
        buckets.setdefault((_group_of(name), _no_decay(name, p)), []).append(p)
    groups = []
    for g in order:
        for no_decay in (False, True):
            params = buckets.get((g, no_decay))
            if not params:
                continue
            groups.append(
                {
                    "params": params,
                    "lr": lr * mult[g],
                    "weight_decay": 0.0 if no_decay else weight_decay,
                    "name": f"{g}{'_no_decay' if no_decay else ''}",
                }
            )
    if not groups:
        raise InputError("the model has no trainable parameters")
    return groups


def build_optimizer(
    model: nn.Module,
    lr: float,
    weight_decay: float = 0.001,
    betas: tuple[float, float] = (0.9, 0.98),
    eps: float = 1e-8,
    new_module_lr_mult: float = 10.0,
    prompts_lr_mult: float | None = None,
) -> torch.optim.AdamW:
    """AdamW over :func:`param_groups` (betas (0.9, 0.98), eps 1e-8 as the original)."""
    groups = param_groups(
        model.named_parameters(), lr, weight_decay, new_module_lr_mult, prompts_lr_mult
    )
    fused = None
    if all(p.is_cuda for g in groups for p in g["params"]):
        fused = True
    return torch.optim.AdamW(groups, lr=lr, betas=betas, eps=eps, fused=fused)
