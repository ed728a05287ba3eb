"""Training config system: recipes, typed loading, dotted overrides, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from xclip_app.train.config import (
    ConfigError,
    RunConfig,
    check_paths,
    config_differences,
    config_to_dict,
    flatten_config,
    load_config,
    save_config,
)

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
# the recipes of this module (configs/demo/ belongs to the demo, whose architecture is registered
# by xclip_app.demo)
RECIPES = sorted(
    p
    for d in ("k400", "k600", "fewshot", "zeroshot", "test")
    for p in (CONFIGS / d).rglob("*.yaml")
) + [CONFIGS / "base.yaml"]


def test_every_recipe_loads():
    assert len(RECIPES) >= 25
    for path in RECIPES:
        cfg = load_config(path)
        assert isinstance(cfg, RunConfig)


@pytest.mark.parametrize(
    "name, arch, batch, accum, epochs, lr",
    [
        ("k400/b32_8f", "xclip_b32_8f", 8, 4, 30, 8e-6),
        ("k400/b32_16f", "xclip_b32_16f", 8, 4, 30, 8e-6),
        ("k400/b16_8f", "xclip_b16_8f", 8, 4, 30, 8e-6),
        ("k400/b16_16f", "xclip_b16_16f", 4, 8, 30, 8e-6),
        ("k400/b16_32f", "xclip_b16_32f", 4, 8, 30, 8e-6),
        ("k400/b16_32f_zeroshot", "xclip_b16_32f", 4, 8, 10, 8e-6),
        ("k400/l14_8f", "xclip_l14_8f", 4, 8, 30, 8e-6),
        ("k400/l14_336_16f", "xclip_l14_336_16f", 1, 32, 30, 8e-6),
        ("k600/b16_8f", "xclip_b16_8f", 8, 4, 30, 8e-6),
        ("k600/b16_16f", "xclip_b16_16f", 4, 8, 30, 8e-6),
        ("k600/l14_8f", "xclip_l14_8f", 4, 8, 30, 8e-6),
        ("fewshot/hmdb51_k2", "xclip_b16_32f", 4, 2, 50, 2e-6),
        ("fewshot/ucf101_k16", "xclip_b16_32f", 4, 2, 50, 2e-6),
    ],
)
def test_recipes_match_the_original(name, arch, batch, accum, epochs, lr):
    cfg = load_config(CONFIGS / f"{name}.yaml")
    assert cfg.model.arch == arch
    assert (cfg.train.batch_size, cfg.train.accumulation_steps) == (batch, accum)
    assert (
        cfg.train.epochs == epochs and cfg.train.lr == lr and cfg.min_lr == pytest.approx(lr / 100)
    )
    # shared recipe (reference section 2.2)
    t, a = cfg.train, cfg.aug
    assert (t.warmup_epochs, t.weight_decay, tuple(t.betas), t.eps) == (5, 0.001, (0.9, 0.98), 1e-8)
    assert (a.label_smooth, a.mixup, a.cutmix, a.mixup_switch_prob) == (0.1, 0.8, 1.0, 0.5)
    assert (a.color_jitter, a.gray_scale, a.flip) == (0.8, 0.2, 0.5)
    assert cfg.model.fix_text and cfg.model.drop_path_rate == 0 and not t.warmup_prefix
    assert t.grad_checkpointing == (name == "k400/l14_336_16f")
    assert cfg.model.clip_weights.endswith("/openai")


def test_protocol_recipes():
    zs = load_config(CONFIGS / "zeroshot/k600.yaml")
    assert [s.name for s in zs.protocol.eval_sets] == ["subset1", "subset2", "subset3"]
    assert (zs.test.num_clips, zs.test.num_crops, zs.model.arch) == (1, 1, "xclip_b16_32f")
    fs = load_config(CONFIGS / "fewshot/ucf101.yaml")
    assert fs.protocol.shots == [2, 4, 8, 16] and fs.data.num_classes == 101
    assert (fs.test.final_num_clips, fs.test.final_num_crops) == (1, 1)
    assert load_config(CONFIGS / "fewshot/hmdb51_k8.yaml").protocol.shots == [8]


def test_placeholders_fail_with_the_key_name(tmp_path):
    cfg = load_config(CONFIGS / "k400/b16_8f.yaml")
    with pytest.raises(
        ConfigError, match=r"data\.train_file is the placeholder '/PATH/TO/kinetics400/train.txt'"
    ):
        check_paths(cfg, ["data.train_file"])
    (tmp_path / "train.txt").write_text("a.mp4 0\n")
    cfg = load_config(CONFIGS / "k400/b16_8f.yaml", [f"data.train_file={tmp_path}/train.txt"])
    check_paths(cfg, ["data.train_file"])
    cfg = load_config(CONFIGS / "k400/b16_8f.yaml", [f"data.train_file={tmp_path}/nope.txt"])
    with pytest.raises(ConfigError, match=r"data\.train_file: .*nope.txt does not exist"):
        check_paths(cfg, ["data.train_file"])
    with pytest.raises(ConfigError, match="data.val_file is not set"):
        check_paths(load_config(None), ["data.val_file"])


@pytest.mark.parametrize(
    "override, message",
    [
        (
            "train.lrr=1",
            r"unknown config key 'train.lrr' \(did you mean 'lr'\?\); valid keys of train: epochs",
        ),
        ("trian.lr=1", r"unknown config key 'trian' \(did you mean 'train'\?\)"),
        ("train.epochs=abc", r"train.epochs must be an integer, got 'abc'"),
        ("train.epochs=2.5", r"train.epochs must be an integer"),
        ("train.lr=fast", r"train.lr must be a number"),
        (
            "train.precision=fp64",
            r"train.precision: 'fp64' is not valid .*valid choices: 'auto', 'fp32', 'bf16', 'fp16'",
        ),
        ("test.num_crops=2", r"test.num_crops: 2 is not valid.*valid choices: 1, 3"),
        ("model.head=mlp", r"model.head: 'mlp' is not valid.*'text', 'linear'"),
        ("train.deterministic=maybe", r"train.deterministic must be true or false"),
        ("train.betas=[0.9]", r"train.betas must have 2 items"),
        ("model.arch=xclip_b16_9f", r"model.arch: 'xclip_b16_9f' is not valid.*xclip_b16_8f"),
        ("train.warmup_epochs=40", r"warmup_epochs \(40.0\) is longer than train.epochs"),
        ("aug.mixup_switch_prob=1.5", r"aug.mixup_switch_prob must be in \[0, 1\]"),
        ("model.head=linear", r"set model.use_prompts=false"),
        ("trainlr=1", r"must be section.key"),
        ("train.lr", r"must look like section.key=value"),
    ],
)
def test_bad_values_name_the_key(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config(CONFIGS / "test/tiny.yaml", [override])


def test_overrides_and_types():
    cfg = load_config(
        CONFIGS / "zeroshot/ucf101.yaml",
        [
            "train.lr=8e-6",  # YAML 1.1 reads this as a string; still a float here
            "train.min_lr=null",
            "train.clip_grad_norm=1",
            "protocol.eval_sets.1.val_file=/data/s2.txt",
            "test.num_crops=3",
            "model.head=linear",
            "model.use_prompts=false",
        ],
    )
    assert cfg.train.lr == 8e-6 and isinstance(cfg.train.clip_grad_norm, float)
    assert cfg.protocol.eval_sets[1].val_file == "/data/s2.txt"
    assert cfg.protocol.eval_sets[0].val_file.startswith("/PATH/TO/")
    assert cfg.test.num_crops == 3 and cfg.model.head == "linear"
    with pytest.raises(ConfigError, match="has 3 items"):
        load_config(CONFIGS / "zeroshot/ucf101.yaml", ["protocol.eval_sets.5.val_file=x"])


def test_resolved_config_round_trips(tmp_path):
    cfg = load_config(
        CONFIGS / "k400/l14_336_16f.yaml", ["train.lr=1e-5", "test.view_mode=uniform"]
    )
    path = save_config(cfg, tmp_path / "config.yaml")
    again = load_config(path)
    assert config_to_dict(again) == config_to_dict(cfg)


def test_bases_resolve_relative_and_cycles_fail(tmp_path):
    (tmp_path / "a.yaml").write_text("base: b.yaml\ntrain: {epochs: 3, warmup_epochs: 1}\n")
    (tmp_path / "b.yaml").write_text("train: {epochs: 7, lr: 1.0e-4}\n")
    cfg = load_config(tmp_path / "a.yaml")
    assert (cfg.train.epochs, cfg.train.lr) == (3, 1e-4)
    (tmp_path / "c.yaml").write_text("base: d.yaml\n")
    (tmp_path / "d.yaml").write_text("base: c.yaml\n")
    with pytest.raises(ConfigError, match="cycle"):
        load_config(tmp_path / "c.yaml")
    with pytest.raises(FileNotFoundError):
        load_config(tmp_path / "missing.yaml")


def test_config_differences_list_result_changing_keys_in_override_syntax():
    tiny = CONFIGS / "test/tiny.yaml"
    old = load_config(tiny)
    same = load_config(
        tiny,
        ["output.print_freq=1", "data.workers=4", "output.dir=elsewhere", "train.threads=3",
         "data.root=/moved/videos", "data.skip_bad=true", "test.batch_size=1"],
    )  # fmt: skip
    assert config_differences(old, same) == []
    new = load_config(tiny, ["train.lr=1e-3", "model.fix_text=false", "train.betas=[0.8,0.9]"])
    assert config_differences(config_to_dict(old), new) == [
        "model.fix_text: true -> false",
        "train.lr: 0.002 -> 0.001",
        "train.betas: [0.9, 0.98] -> [0.8, 0.9]",
    ]
    # a key the stored config lacks (an older xclip) counts as its default
    stored = config_to_dict(old)
    del stored["train"]["clip_grad_norm"]
    assert config_differences(stored, old) == []
    assert config_differences(stored, load_config(tiny, ["train.clip_grad_norm=1"])) == [
        "train.clip_grad_norm: null -> 1.0"
    ]
    assert flatten_config(old)["aug.flip"] == 0.5
