"""Beyond X-CLIP: label-text ensembles, weight-space interpolation with the source CLIP, weight
averaging over training, distillation from the frozen source model (docs/training.md)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import xclip
from xclip.checkpoint import read_safetensors, save_safetensors
from xclip.errors import InputError
from xclip.inference import VideoClassifier, check_templates, ensemble_text_features
from xclip.interpolation import interpolate_models, interpolate_state_dicts, source_model
from xclip_app.cli import main as cli_main
from xclip_app.train import checkpointing as C
from xclip_app.train.config import ConfigError, load_config
from xclip_app.train.distillation import FeatureDistillation
from xclip_app.train.weight_averaging import WeightAverage

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "configs/test/tiny.yaml"
CFG = xclip.get_config("xclip_test")


def clip_weights(path: Path, seed: int = 0) -> Path:
    """A tiny image CLIP in the OpenAI layout (X-CLIP without its new modules)."""
    torch.manual_seed(seed)
    cfg = CFG.replace(cross_frame=False, use_mit=False, use_prompts=False)
    save_safetensors(xclip.XCLIP(cfg).state_dict(), path, metadata={"format": "pt"})
    return path


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    pytest.importorskip("av")
    from xclip_app.train.toydata import make_toy_dataset

    out = tmp_path_factory.mktemp("toy")
    return make_toy_dataset(out, num_classes=4, train_per_class=4, val_per_class=2)


# --- label-text ensembles ----------------------------------------------------------------------


def test_ensemble_is_the_mean_direction_at_the_mean_norm():
    torch.manual_seed(0)
    f = torch.randn(3 * 4, 8)  # 3 templates x 4 labels, template-major
    assert ensemble_text_features(f, 1) is f
    out = ensemble_text_features(f, 3)
    g = f.view(3, 4, 8)
    direction = F.normalize(F.normalize(g, dim=-1).mean(0), dim=-1)
    assert out.shape == (4, 8)
    torch.testing.assert_close(F.normalize(out, dim=-1), direction)
    torch.testing.assert_close(out.norm(dim=-1), g.norm(dim=-1).mean(0))
    with pytest.raises(ValueError, match="3 templates"):
        ensemble_text_features(torch.randn(10, 8), 3)


def test_check_templates():
    assert check_templates("a {}") == ["a {}"]
    assert check_templates(["a {}", "b {}"]) == ["a {}", "b {}"]
    for bad, msg in (([], "no template"), (["a {}", "a {}"], "twice"), (["no slot"], "exactly")):
        with pytest.raises(InputError, match=msg):
            check_templates(bad)


def test_classifier_averages_templates_in_text_space():
    torch.manual_seed(0)
    model = xclip.XCLIP(CFG)
    labels = ["cooking", "dancing", "surfing"]
    templates = ["a video of {}", "a person {}"]
    clf = VideoClassifier(model, labels, template=templates, device="cpu")
    assert clf.template == templates
    per = [
        VideoClassifier(model, labels, template=t, device="cpu").text_features() for t in templates
    ]
    expected = ensemble_text_features(torch.cat(per), 2)
    torch.testing.assert_close(clf.text_features(), expected)
    # one template keeps the single-template numbers exactly (and stays a string)
    one = VideoClassifier(model, labels, template="a person {}", device="cpu")
    assert one.template == "a person {}"
    assert torch.equal(one.text_features(), per[1])
    # another ensemble per call
    torch.testing.assert_close(clf.text_features(labels, templates[::-1]), expected)


def test_classify_with_repeated_templates_and_a_templates_file(small_clip, tmp_path):
    ckpt = tmp_path / "m"
    torch.manual_seed(0)
    xclip.save_model(xclip.XCLIP(CFG.replace(num_frames=8)), ckpt)
    common = ["classify", str(small_clip), "--model", str(ckpt), "--labels", "a,b", "--format",
              "json", "--device", "cpu"]  # fmt: skip
    out1 = tmp_path / "r1.json"
    rc = cli_main([*common, "--template", "x {}", "--template", "y {}", "-o", str(out1)])
    assert rc == 0
    head = json.loads(out1.read_text())
    tfile = tmp_path / "t.txt"
    tfile.write_text("# ensemble\nx {}\n\ny {}\n")
    out2 = tmp_path / "r2.json"
    assert cli_main([*common, "--templates-file", str(tfile), "-o", str(out2)]) == 0
    assert json.loads(out2.read_text()) == head
    assert "x {}" in out1.read_text() and "y {}" in out1.read_text()
    bad = tmp_path / "bad.txt"
    bad.write_text("no slot here\n")
    assert cli_main([*common, "--templates-file", str(bad)]) == 2
    assert cli_main([*common, "--template", "x {}", "--template", "x {}"]) == 2


# --- weight-space interpolation ------------------------------------------------------------------


def test_interpolate_state_dicts():
    a = {"w": torch.zeros(3), "new": torch.ones(2), "n": torch.tensor(3)}
    b = {"w": torch.full((3,), 2.0), "n": torch.tensor(7)}
    out = interpolate_state_dicts(b, a, 0.25)  # source b, fine-tuned a
    torch.testing.assert_close(out["w"], torch.full((3,), 1.5))
    assert torch.equal(out["new"], a["new"]) and int(out["n"]) == 3  # no source / not float
    assert torch.equal(interpolate_state_dicts(b, a, 1.0)["w"], a["w"])
    assert torch.equal(interpolate_state_dicts(b, a, 0.0)["w"], b["w"])
    with pytest.raises(InputError, match="alpha"):
        interpolate_state_dicts(b, a, 1.5)
    with pytest.raises(InputError, match="shape"):
        interpolate_state_dicts({"w": torch.zeros(4)}, a, 0.5)


def test_source_model_keeps_the_new_modules(tmp_path):
    clip = clip_weights(tmp_path / "clip.safetensors")
    torch.manual_seed(1)
    ft = xclip.XCLIP(CFG)
    src = source_model(ft, clip)
    sd_clip, sd_src, sd_ft = read_safetensors(clip), src.state_dict(), ft.state_dict()
    for k, v in sd_src.items():
        expect = sd_clip[k] if k in sd_clip else sd_ft[k]
        assert torch.equal(v, expect), k
    mid = interpolate_models(src, ft, 0.5).state_dict()
    k = "visual.conv1.weight"
    torch.testing.assert_close(mid[k], (sd_clip[k] + sd_ft[k]) / 2)
    assert torch.equal(mid["mit.positional_embedding"], sd_ft["mit.positional_embedding"])


def test_interpolate_command(toy, tmp_path):
    clip = clip_weights(tmp_path / "clip.safetensors")
    torch.manual_seed(2)
    ft_dir = xclip.save_model(xclip.create_model("xclip_test", clip_weights=clip), tmp_path / "ft")
    ft = xclip.load_model(ft_dir)
    with torch.no_grad():  # a "fine-tuned" model: every weight moved
        for p in ft.parameters():
            p.add_(0.1)
    xclip.save_model(ft, ft_dir)
    out = tmp_path / "wise"
    assert cli_main(["interpolate", str(ft_dir), "--source", str(clip), "--alpha", "0.5",
                     "-o", str(out)]) == 0  # fmt: skip
    got = xclip.load_model(out).state_dict()
    k = "visual.conv1.weight"
    torch.testing.assert_close(got[k], (read_safetensors(clip)[k] + ft.state_dict()[k]) / 2)
    # an existing output is refused without --overwrite; the input is never the output
    assert cli_main(["interpolate", str(ft_dir), "--source", str(clip), "--alpha", "0.5",
                     "-o", str(out)]) == 2  # fmt: skip
    assert cli_main(["interpolate", str(ft_dir), "--source", str(clip), "--alpha", "0.5",
                     "-o", str(ft_dir), "--overwrite"]) == 2  # fmt: skip
    assert cli_main(["interpolate", str(ft_dir), "--source", str(clip), "--alpha", "2",
                     "-o", str(tmp_path / "x")]) == 2  # fmt: skip
    # --alphas needs held-out classes, then picks the best of them
    assert cli_main(["interpolate", str(ft_dir), "--source", str(clip), "--alphas", "0,1",
                     "-o", str(tmp_path / "y")]) == 2  # fmt: skip
    rc = cli_main(["interpolate", str(ft_dir), "--source", str(clip), "--alphas", "0,0.5,1",
                   "--val-file", str(toy["val"]), "--label-list", str(toy["labels"]), "--root",
                   str(toy["root"]), "--workers", "0", "--device", "cpu", "-o",
                   str(tmp_path / "best")])  # fmt: skip
    assert rc == 0 and (tmp_path / "best" / "model.safetensors").is_file()


# --- weight averaging ----------------------------------------------------------------------------


def test_weight_average_uniform_and_ema():
    m = torch.nn.Linear(2, 1)
    m.bias.requires_grad_(False)
    values = [1.0, 2.0, 6.0]
    uni = WeightAverage(m, "uniform", start_step=1)
    ema = WeightAverage(m, "ema", decay=0.5)
    for step, v in enumerate(values):
        with torch.no_grad():
            m.weight.fill_(v)
        uni.update(step)
        ema.update(step)
    assert set(uni.params) == {"weight"}  # frozen parameters are not averaged
    assert uni.count == 2 and ema.count == 3
    torch.testing.assert_close(uni.average["weight"], torch.full((1, 2), 4.0))
    torch.testing.assert_close(ema.average["weight"], torch.full((1, 2), 3.75))  # 1 -> 1.5 -> 3.75
    again = WeightAverage(m, "uniform")
    again.load_state_dict(uni.state_dict())
    assert again.apply_to() and torch.equal(m.weight, torch.full((1, 2), 4.0))
    with pytest.raises(ValueError, match="ema"):
        WeightAverage(m, "ema").load_state_dict(uni.state_dict())


# --- distillation --------------------------------------------------------------------------------


def test_distillation_is_zero_at_the_start_and_pulls_back():
    torch.manual_seed(0)
    model = xclip.XCLIP(CFG.replace(cross_frame=False, use_mit=False, use_prompts=False))
    d = FeatureDistillation(model, weight=2.0)
    clips = torch.randn(2, CFG.num_frames, 3, CFG.image_size, CFG.image_size)
    emb = model.encode_video(clips).embeds
    assert float(d.loss(clips, emb).detach()) == pytest.approx(0.0, abs=1e-5)
    with torch.no_grad():
        model.visual.conv1.weight.add_(torch.randn_like(model.visual.conv1.weight))
    loss = d.loss(clips, model.encode_video(clips).embeds)
    assert float(loss) > 1e-3
    loss.backward()
    assert model.visual.conv1.weight.grad is not None
    assert all(p.grad is None and not p.requires_grad for p in d.teacher.parameters())


# --- config and the engine -----------------------------------------------------------------------


def test_config_keys_are_checked():
    with pytest.raises(ConfigError, match="weight_average"):
        load_config(TINY, ["train.weight_average=swa"])
    with pytest.raises(ConfigError, match="ema_decay"):
        load_config(TINY, ["train.ema_decay=1.0"])
    with pytest.raises(ConfigError, match="average_start"):
        load_config(TINY, ["train.average_start=12"])
    with pytest.raises(ConfigError, match="distill_weight"):
        load_config(TINY, ["train.distill_weight=-1"])
    with pytest.raises(ConfigError, match="templates"):
        load_config(TINY, ["data.templates=[no slot]"])
    with pytest.raises(ConfigError, match="unknown config key 'train.ema'"):
        load_config(TINY, ["train.ema=0.9"])


def test_training_with_every_option(toy, tmp_path):
    from xclip_app.train.trainer import Trainer

    run = tmp_path / "run"
    cfg = load_config(TINY, [
        f"data.root={toy['root']}", f"data.train_file={toy['train']}",
        f"data.val_file={toy['val']}", f"data.label_list={toy['labels']}", f"output.dir={run}",
        "train.epochs=2", "train.warmup_epochs=0", "train.weight_average=uniform",
        "train.average_start=1", "train.distill_weight=1.0", "model.fix_text=false",
        "data.templates=['a video of {}', 'a person {}']", "test.final_eval=false",
    ])  # fmt: skip
    trainer = Trainer(cfg)
    summary = trainer.fit()
    assert len(summary.history) == 2
    last = C.find_latest(run)
    state = torch.load(last / "train_state.pt", weights_only=True)
    avg = state["weight_average"]
    assert avg["mode"] == "uniform" and avg["count"] == trainer.iters_per_epoch  # epoch 2 only
    weights = read_safetensors(last / "model.safetensors")
    for name, tensor in avg["average"].items():  # the saved model is the average
        torch.testing.assert_close(weights[name.removeprefix("model.")], tensor)
    # the text tower was trained (fix_text=false) and its parameters are averaged too
    assert any(k.startswith("model.transformer.") for k in avg["average"])


class _Stop(Exception):
    pass


def test_resume_continues_the_average_and_the_teacher(toy, tmp_path):
    """A run stopped mid-training and resumed ends with the same averaged weights as an
    uninterrupted one: the average is in the checkpoints, the teacher is the starting model."""
    from xclip_app.train.trainer import Trainer

    def cfg(out):
        return load_config(TINY, [
            f"data.root={toy['root']}", f"data.train_file={toy['train']}",
            f"data.val_file={toy['val']}", f"data.label_list={toy['labels']}",
            f"output.dir={out}", "train.epochs=3", "train.warmup_epochs=0",
            "train.deterministic=true", "train.weight_average=ema", "train.ema_decay=0.9",
            "train.distill_weight=0.5", "test.eval_every=0", "test.final_eval=false",
            "output.keep_last=10",
        ])  # fmt: skip

    Trainer(cfg(tmp_path / "ref")).fit()
    stopped = Trainer(cfg(tmp_path / "run"))
    calls = {"n": 0}
    base = stopped.loss_fn

    def loss_fn(logits, target):  # stop in epoch 3, after the checkpoint of epoch 2
        calls["n"] += 1
        if calls["n"] == 2 * 4 + 2:
            raise _Stop
        return base(logits, target)

    stopped.loss_fn = loss_fn
    with pytest.raises(_Stop):
        stopped.fit()
    Trainer(cfg(tmp_path / "run"), resume="auto").fit()
    ref = read_safetensors(C.find_latest(tmp_path / "ref") / "model.safetensors")
    got = read_safetensors(C.find_latest(tmp_path / "run") / "model.safetensors")
    assert ref.keys() == got.keys()
    for k in ref:
        torch.testing.assert_close(got[k], ref[k], msg=k)


def test_vificlip_recipes():
    recipes = sorted((ROOT / "configs" / "vificlip").glob("*.yaml"))
    assert len(recipes) == 6
    for path in recipes:
        cfg = load_config(path)
        m = cfg.model
        assert (m.cross_frame, m.use_mit, m.use_prompts, m.fix_text) == (False,) * 4, path.name
    froster = load_config(ROOT / "configs/vificlip/k400_zeroshot_froster.yaml").train
    assert froster.distill_weight > 0 and froster.weight_average == "ema"
    ovc = load_config(ROOT / "configs/vificlip/k400_zeroshot_openvclip.yaml").train
    assert ovc.weight_average == "uniform" and 0 < ovc.average_start < ovc.epochs
    ens = load_config(ROOT / "configs/vificlip/k400_zeroshot_ensemble.yaml").data
    assert len(ens.templates) == 3


# --- the demo's paired study ---------------------------------------------------------------------


@pytest.mark.slow
def test_demo_paired_study_in_miniature(tmp_path):
    """`xclip-video demo --study paired` on a tiny plan: every option trains on the same seeds,
    the ablation's runs of those seeds are measured, not retrained, results.json has each
    option's per-seed values and each comparison's paired difference with its interval and the
    number of seeds, report.md shows the table, the interval plot and a verdict for each
    question, and the main stages' numbers are the same as without the study."""
    pytest.importorskip("av")
    from xclip_app.demo.generate import DataSpec
    from xclip_app.demo.pipeline import Plan, run_demo
    from xclip_app.demo.pretrain import PretrainSpec
    from xclip_app.demo.study import COMPARISONS, OPTIONS, VERDICTS

    plan = Plan(
        name="tiny",
        data=DataSpec(train_per_class=2, val_per_class=1, pool_per_class=2, test_per_class=1),
        pretrain=PretrainSpec(images=300, steps=5, batch_size=64),
        main=("train.epochs=1", "train.warmup_epochs=0", "train.batch_size=8"),
        ablation=("train.epochs=2", "train.warmup_epochs=0", "train.batch_size=8",
                  "train.max_steps_per_epoch=3"),
        seeds=(0,),
        fewshot=("train.epochs=1", "train.warmup_epochs=0"),
        shots=(2,),
        final_views=(1, 1),
        ablations=("mit", "xclip"),
        linear=False,
        study_seeds=(0, 1),
        study_test_per_class=2,
    )  # fmt: skip
    out = tmp_path / "demo"
    plain = run_demo(out, plan, log=lambda s: None).results
    logs: list[str] = []
    res = run_demo(out, plan, study="paired", log=logs.append).results
    study = res["study"]
    assert study["seeds"] == [0, 1] and study["test_videos"] == 20  # 10 classes x 2
    assert set(study["options"]) == {"clip", "interp", *OPTIONS}
    for name, row in study["options"].items():
        n = 1 if name == "clip" else 2
        assert len(row["top1"]) == len(row["seen_top1"]) == n, name
        assert 0 <= row["top1_mean"] <= 100, name
    # seed 0 of +MIT and X-CLIP is the ablation's run: measured, not trained again, and its
    # seen-class top-1 is the ablation's number
    assert sum("(the ablation's run)" in line for line in logs) == 2
    for v in ("mit", "xclip"):
        assert study["options"][v]["seen_top1"][0] == pytest.approx(res["runs"][f"{v}_s0"]["top1"])
    paired = {(p["group"], p["option"], p["baseline"], p["metric"]): p for p in study["paired"]}
    assert set(paired) == set(COMPARISONS)
    for key, p in paired.items():
        assert p["n"] == 2 and list(p["seeds"]) == [0, 1], key
        opt, base = study["options"][p["option"]], study["options"][p["baseline"]]
        diffs = [a - b for a, b in zip(opt[p["metric"]], base[p["metric"]], strict=True)]
        assert p["differences"] == pytest.approx(diffs), key
        assert p["low"] <= p["mean"] <= p["high"], key
    saved = json.loads((out / "report" / "results.json").read_text())
    assert saved["study"]["paired"] == json.loads(json.dumps(study["paired"]))
    assert {v["verdict"] for v in saved["verdicts"]} <= {
        "helps", "hurts", "no effect detectable at this power"
    }  # fmt: skip
    assert {v["question"] for v in saved["verdicts"]} == set(VERDICTS)
    assert res["runs"]["main"]["top1"] == plain["runs"]["main"]["top1"]
    assert res["zeroshot"] == plain["zeroshot"]
    report = (out / "report" / "report.md").read_text()
    assert "## Paired study" in report and "ViFi-CLIP" in report
    assert (out / "report" / "paired_differences.png").stat().st_size > 1000
