"""Param groups, freezing and the LR schedule against independent re-implementations of the
original ``utils/optimizer.py`` and timm's ``CosineLRScheduler`` (0.4.x/0.5.x code paths)."""

from __future__ import annotations

import math

import pytest
import torch

import xclip
from xclip_app.train.classifier import TrainableClassifier
from xclip_app.train.config import load_config
from xclip_app.train.optim import build_optimizer, freeze_text, param_groups
from xclip_app.train.schedule import CosineWarmupSchedule, cosine_lr


# --- the original, transcribed (utils/optimizer.py) -------------------------------------------------
def _kw(name, keywords):
    return any(k in name for k in keywords)


def _orig_fix_text(model):
    for name, p in model.named_parameters():
        if "visual." in name or "mit" in name or "prompts" in name:
            continue
        p.requires_grad = False


def _orig_set_weight_decay(model, skip_keywords, weight_decay, lr, have=(), not_have=()):
    has_decay, no_decay = [], []
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        if len(have) > 0 and not _kw(name, have):
            continue
        if len(not_have) > 0 and _kw(name, not_have):
            continue
        if len(param.shape) == 1 or name.endswith(".bias") or _kw(name, skip_keywords):
            no_decay.append(param)
        else:
            has_decay.append(param)
    return [
        {"params": has_decay, "weight_decay": weight_decay, "lr": lr},
        {"params": no_decay, "weight_decay": 0.0, "lr": lr},
    ]


def _orig_groups(model, lr, wd):
    skip = {"positional_embedding"}
    return (
        _orig_set_weight_decay(model, skip, wd, lr, not_have=("prompts", "mit", "message_"))
        + _orig_set_weight_decay(model, skip, wd, lr * 10, have=("message_",))
        + _orig_set_weight_decay(model, skip, wd, lr * 10, have=("mit",))
        + _orig_set_weight_decay(model, skip, wd, lr * 10, have=("prompts",))
    )


def _assignment(groups):
    return {id(p): (g["lr"], g["weight_decay"]) for g in groups for p in g["params"]}


@pytest.mark.parametrize("fix_text", [True, False])
@pytest.mark.parametrize(
    "arch_kw", [{}, {"cross_frame": False, "use_mit": False, "use_prompts": False}]
)
def test_groups_equal_the_original(fix_text, arch_kw):
    ours = xclip.create_model("xclip_test", **arch_kw)
    ref = xclip.create_model("xclip_test", **arch_kw)
    if fix_text:
        freeze_text(ours)
        _orig_fix_text(ref)
    assert [p.requires_grad for p in ours.parameters()] == [
        p.requires_grad for p in ref.parameters()
    ]
    mine = param_groups(ours.named_parameters(), 8e-6, 0.001)
    theirs = _orig_groups(ref, 8e-6, 0.001)
    names_o = {id(p): n for n, p in ours.named_parameters()}
    names_r = {id(p): n for n, p in ref.named_parameters()}
    a = {names_o[k]: v for k, v in _assignment(mine).items()}
    b = {names_r[k]: v for k, v in _assignment(theirs).items()}
    assert a == b
    # every trainable parameter is in exactly one group
    ids = [id(p) for g in mine for p in g["params"]]
    assert len(ids) == len(set(ids)) == sum(p.requires_grad for p in ours.parameters())


def test_groups_spelled_out():
    clf = TrainableClassifier(xclip.create_model("xclip_test"))
    frozen = freeze_text(clf)
    assert "model.logit_scale" in frozen and "model.text_projection" in frozen
    assert "model.token_embedding.weight" in frozen and "model.positional_embedding" in frozen
    assert not any("visual." in n or "prompts" in n or "mit" in n for n in frozen)
    groups = param_groups(clf.named_parameters(), 8e-6, 0.001)
    where = {}
    for g in groups:
        for p in g["params"]:
            where[p] = (g["name"], g["lr"], g["weight_decay"])
    P = dict(clf.named_parameters())
    expect = {
        "model.visual.conv1.weight": ("clip", 8e-6, 0.001),
        "model.visual.class_embedding": ("clip_no_decay", 8e-6, 0.0),
        "model.visual.positional_embedding": ("clip_no_decay", 8e-6, 0.0),  # 2-D, by keyword
        "model.visual.proj": ("clip", 8e-6, 0.001),
        "model.visual.transformer.resblocks.0.attn.in_proj_weight": ("clip", 8e-6, 0.001),
        "model.visual.transformer.resblocks.0.message_fc.weight": ("message", 8e-5, 0.001),
        "model.visual.transformer.resblocks.0.message_ln.weight": ("message_no_decay", 8e-5, 0.0),
        "model.mit.positional_embedding": ("mit_no_decay", 8e-5, 0.0),  # 3-D, by keyword
        "model.mit.resblocks.0.mlp.c_fc.weight": ("mit", 8e-5, 0.001),
        "model.prompts_visual_proj": ("prompts", 8e-5, 0.001),
        "model.prompts_visual_ln.weight": ("prompts_no_decay", 8e-5, 0.0),
        "model.prompts_generator.alpha": ("prompts_no_decay", 8e-5, 0.0),
    }
    for name, value in expect.items():
        assert where[P[name]][0] == value[0] and where[P[name]][1:] == pytest.approx(value[1:]), (
            name
        )


def test_prompts_lr_mult_sets_only_the_prompt_groups():
    clf = TrainableClassifier(xclip.create_model("xclip_test"))
    freeze_text(clf)
    default = {g["name"]: g["lr"] for g in param_groups(clf.named_parameters(), 1e-3, 0.001, 10.0)}
    groups = param_groups(clf.named_parameters(), 1e-3, 0.001, 10.0, prompts_lr_mult=1.0)
    got = {g["name"]: g["lr"] for g in groups}
    assert got["prompts"] == got["prompts_no_decay"] == pytest.approx(1e-3)
    assert default["prompts"] == pytest.approx(1e-2)
    for name in ("clip", "message", "mit", "mit_no_decay"):
        assert got[name] == pytest.approx(default[name])
    cfg = load_config(None, ["train.prompts_lr_mult=0.5"])
    assert cfg.train.prompts_lr_mult == 0.5


def test_linear_head_is_a_new_module():
    model = xclip.create_model("xclip_test", use_prompts=False)
    clf = TrainableClassifier(model, num_classes=5)
    freeze_text(clf)
    assert clf.head.weight.requires_grad
    opt = build_optimizer(clf, 1e-5)
    by_name = {g["name"]: g for g in opt.param_groups}
    assert by_name["head"]["lr"] == pytest.approx(1e-4)
    assert by_name["head_no_decay"]["weight_decay"] == 0.0
    assert opt.defaults["betas"] == (0.9, 0.98) and opt.defaults["eps"] == 1e-8


# --- schedule ---------------------------------------------------------------------------------------
class _TimmCosine:
    """timm 0.4.12 CosineLRScheduler(t_initial, lr_min, warmup_lr_init, warmup_t, cycle_limit=1,
    t_in_epochs=False), transcribed: construction sets warmup_lr_init, step_update(t) sets _get_lr(t)."""

    def __init__(
        self, base_values, t_initial, lr_min, warmup_t, warmup_lr_init=0.0, warmup_prefix=False
    ):
        self.base_values, self.t_initial, self.lr_min = base_values, t_initial, lr_min
        self.warmup_t, self.warmup_lr_init, self.warmup_prefix = (
            warmup_t,
            warmup_lr_init,
            warmup_prefix,
        )
        self.t_mul, self.decay_rate, self.cycle_limit = 1.0, 1.0, 1
        self.warmup_steps = (
            [(v - warmup_lr_init) / warmup_t for v in base_values]
            if warmup_t
            else [1] * len(base_values)
        )
        self.values = [warmup_lr_init] * len(base_values) if warmup_t else list(base_values)

    def _get_lr(self, t):
        if t < self.warmup_t:
            return [self.warmup_lr_init + t * s for s in self.warmup_steps]
        if self.warmup_prefix:
            t = t - self.warmup_t
        i = t // self.t_initial
        t_i = self.t_initial
        t_curr = t - (self.t_initial * i)
        gamma = self.decay_rate**i
        lr_min = self.lr_min * gamma
        lr_max_values = [v * gamma for v in self.base_values]
        if self.cycle_limit == 0 or (self.cycle_limit > 0 and i < self.cycle_limit):
            return [
                lr_min + 0.5 * (lr_max - lr_min) * (1 + math.cos(math.pi * t_curr / t_i))
                for lr_max in lr_max_values
            ]
        return [self.lr_min for _ in self.base_values]

    def step_update(self, t):
        self.values = self._get_lr(t)


def _opt(lrs):
    return torch.optim.AdamW(
        [{"params": [torch.nn.Parameter(torch.zeros(1))], "lr": lr} for lr in lrs]
    )


@pytest.mark.parametrize("warmup_prefix", [False, True])
def test_schedule_equals_timm(warmup_prefix):
    n_iter, epochs, warmup = 37, 30, 5  # the K400 recipe shape with a small epoch
    base = [8e-6, 8e-5]
    opt = _opt(base)
    ours = CosineWarmupSchedule(opt, epochs * n_iter, 8e-8, warmup * n_iter, 0.0, warmup_prefix)
    ref = _TimmCosine(base, epochs * n_iter, 8e-8, warmup * n_iter, 0.0, warmup_prefix)
    assert [g["lr"] for g in opt.param_groups] == ref.values == [0.0, 0.0]
    for t in list(range(0, 3)) + [warmup * n_iter - 1, warmup * n_iter, warmup * n_iter + 1,
                                  15 * n_iter, epochs * n_iter - 1, epochs * n_iter, epochs * n_iter + 9]:  # fmt: skip
        ours.step_update(t)
        ref.step_update(t)
        assert [g["lr"] for g in opt.param_groups] == pytest.approx(ref.values, rel=1e-12, abs=0), t


def test_schedule_quirks():
    n = 100
    t_initial, warmup_t = 30 * n, 5 * n
    # warmup_prefix=False: at the end of warmup the LR is the cosine at 5/30, ~0.93 x base
    end = cosine_lr(warmup_t, 8e-6, t_initial, 8e-8, warmup_t)
    assert end / 8e-6 == pytest.approx(0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi / 6)))
    assert 0.93 < end / 8e-6 < 0.935
    assert cosine_lr(warmup_t - 1, 8e-6, t_initial, 8e-8, warmup_t) == pytest.approx(
        8e-6 * (warmup_t - 1) / warmup_t
    )
    # one absolute minimum for every group: the 10x group also ends at 8e-8
    assert cosine_lr(t_initial, 8e-5, t_initial, 8e-8, warmup_t) == 8e-8
    assert cosine_lr(t_initial - 1, 8e-5, t_initial, 8e-8, warmup_t) == pytest.approx(
        8e-8, rel=1e-3
    )


def test_schedule_state_round_trip():
    opt = _opt([1e-3, 1e-2])
    s = CosineWarmupSchedule(opt, 100, 1e-5, 10)
    s.step_update(42)
    state = s.state_dict()
    opt2 = _opt([1e-3, 1e-2])
    s2 = CosineWarmupSchedule(opt2, 100, 1e-5, 10)
    s2.load_state_dict(state)
    assert [g["lr"] for g in opt2.param_groups] == [g["lr"] for g in opt.param_groups]
    s3 = CosineWarmupSchedule(_opt([1e-3, 1e-2]), 120, 1e-5, 10)
    with pytest.raises(ValueError, match="t_initial"):
        s3.load_state_dict(state)
