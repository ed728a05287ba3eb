"""The demo benchmark: generator unit tests (fast) and the CI configuration end to end (slow)."""

from __future__ import annotations

import json

import numpy as np
import pytest

import xclip
import xclip.data.synthetic as synthetic
from xclip.checkpoint import read_safetensors
from xclip.convert.clip import init_from_clip
from xclip.data.annotations import read_labels_csv, read_video_list
from xclip.data.video import open_video
from xclip_app import cli
from xclip_app.demo import arch, world
from xclip_app.demo.generate import (
    DataSpec,
    class_table,
    generate_dataset,
    generate_heldout_test,
    write_clip_pair,
)
from xclip_app.demo.pretrain import PretrainSpec, openai_clip_keys, pretrain_clip
from xclip_app.demo.report import targets


def test_clip_rendering_is_deterministic():
    p1 = world.sample_clip_params(np.random.default_rng(5), 0, "red")
    p2 = world.sample_clip_params(np.random.default_rng(5), 0, "red")
    assert p1 == p2
    a = world.render_clip(p1, np.random.default_rng(1), 16, 48)
    b = world.render_clip(p2, np.random.default_rng(1), 16, 48)
    assert a.dtype == np.uint8 and a.shape == (16, 48, 48, 3)
    np.testing.assert_array_equal(a, b)
    c = world.render_clip(p1, np.random.default_rng(2), 16, 48)
    assert not np.array_equal(a, c)


@pytest.mark.parametrize("pair", range(len(world.PAIRS)))
def test_every_motion_changes_the_frames(pair):
    rng = np.random.default_rng(pair)
    frames = world.render_clip(world.sample_clip_params(rng, pair, "blue", 0.0), rng, 16, 48)
    first, last = frames[0].astype(int), frames[-1].astype(int)
    assert np.abs(first - last).mean() > 2.0, world.PAIRS[pair]


def _centroids(frames: np.ndarray, colour: str) -> np.ndarray:
    """[T, 2] (x, y) centroid of the pixels close to the named colour, per frame."""
    ref = np.asarray(world.COLOURS[colour], np.float32)
    out = []
    for f in frames.astype(np.float32):
        ys, xs = np.nonzero(np.abs(f - ref).max(-1) < 60)
        out.append((xs.mean(), ys.mean()))
    return np.asarray(out)


@pytest.mark.parametrize("seed", range(4))
def test_circling_clockwise_turns_clockwise_on_screen(seed):
    """The forward verb of the circling pair turns clockwise as seen on screen (image y points
    down), around the distractor in the centre, starting near the top; every step of the
    8-of-16 test sampling (2 frames) turns the same way."""
    rng = np.random.default_rng(seed)
    pair = [p[0] for p in world.PAIRS].index("circling clockwise")
    p = world.sample_clip_params(rng, pair, "red", 1.0)
    assert p.distractor is not None and abs(p.distractor[2] - p.cx) < 0.04
    frames = world.render_clip(p, rng, 16, 48)
    c = _centroids(frames, "red") - np.array([p.cx, p.cy]) * 48
    assert c[0, 1] < -5 and abs(c[0, 0]) < 5  # starts above the centre
    steps = c[2::2]
    prev = c[0:-2:2]
    cross = prev[:, 0] * steps[:, 1] - prev[:, 1] * steps[:, 0]  # > 0: clockwise with y down
    assert (cross > 0).all(), cross


def test_images_and_captions():
    img, cap, attrs = world.render_image(np.random.default_rng(0), 48)
    assert img.shape == (48, 48, 3) and img.dtype == np.uint8
    assert cap.startswith("a ")
    for key in ("colour", "shape", "pos", "motion"):
        assert key in attrs
    # every caption parses into attributes that are true of its image
    for i in range(200):
        _, cap, attrs = world.render_image(np.random.default_rng([3, i]), 48)
        for k, v in world.caption_attributes(cap).items():
            assert attrs[k] == v, (cap, attrs)


def test_class_table_split():
    table = class_table()
    names = [r["name"] for r in table]
    assert len(names) == len(set(names)) == len(world.COLOURS) * len(world.MOTIONS)
    held = [r for r in table if r["heldout"]]
    # one reversal pair per colour is held out: novel combinations of known words
    assert len(held) == 2 * len(world.COLOURS)
    train_words = {w for r in table if not r["heldout"] for w in r["name"].split()}
    for r in held:
        assert set(r["name"].split()) <= train_words


@pytest.fixture(scope="module")
def tiny_dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo_data")
    spec = DataSpec(train_per_class=1, val_per_class=1, pool_per_class=1, test_per_class=1, seed=3)
    meta = generate_dataset(out, spec, workers=1)
    return out, spec, meta


def test_dataset_files_in_the_real_formats(tiny_dataset):
    out, spec, meta = tiny_dataset
    train_names = read_labels_csv(out / "labels.csv")
    held_names = read_labels_csv(out / "heldout" / "labels.csv")
    assert train_names == meta["train_classes"] and held_names == meta["heldout_classes"]
    assert not set(train_names) & set(held_names)
    train = read_video_list(out / "train.txt", num_classes=len(train_names))
    assert len(train) == len(train_names) * spec.train_per_class
    test = read_video_list(out / "heldout" / "test.txt", num_classes=len(held_names))
    assert len(test) == len(held_names) * spec.test_per_class
    for e in train + test:
        assert (out / "videos" / e.path).is_file()
    assert json.loads((out / "dataset.json").read_text())["counts"]["train"] == len(train)


def test_time_reversal_pairs_are_exact_reversals(tiny_dataset):
    """Every clip of a pair's second verb is the first verb's clip played backwards (as decoded;
    the codec is lossy, so frame i of one equals frame T-1-i of the other up to coding noise, and far
    from any other frame)."""
    out, spec, _ = tiny_dataset
    for colour in world.COLOURS:
        for a, b in world.PAIRS:
            fa = out / "videos" / f"{colour}_object_{a.replace(' ', '_')}"
            fb = out / "videos" / f"{colour}_object_{b.replace(' ', '_')}"
            va, vb = sorted(fa.glob("*.mp4"))[0], sorted(fb.glob("*.mp4"))[0]
            assert va.name.split("_")[-2:] == vb.name.split("_")[-2:]  # same split and index
            with open_video(va) as ra, open_video(vb) as rb:
                assert ra.num_frames == rb.num_frames == spec.num_frames
                xa = np.asarray(ra.get_frames(list(range(spec.num_frames)))).astype(float)
                xb = np.asarray(rb.get_frames(list(range(spec.num_frames)))).astype(float)
            err = np.abs(xa - xb[::-1]).mean()
            assert err < 3.0, (colour, a, err)


def test_rendered_reversal_is_bitwise(tmp_path, monkeypatch):
    """What the generator hands to the encoder for the reversed class is exactly the forward
    clip's ``frames[::-1]``."""
    written = {}

    def capture(path, frames, **kwargs):
        written[str(path)] = np.array(frames)
        return str(path)

    monkeypatch.setattr(synthetic, "write_video", capture)
    spec = DataSpec(train_per_class=1)
    for pair in range(len(world.PAIRS)):
        rows = write_clip_pair(
            (str(tmp_path), spec, [0, 1, pair, 0, 0], "green", pair, "train", 0, (7, 8))
        )
        assert [r[2] for r in rows] == [7, 8]
        fwd, rev = (written[str(tmp_path / "videos" / r[1])] for r in rows)
        assert fwd.shape == (spec.num_frames, spec.size, spec.size, 3)
        np.testing.assert_array_equal(rev, fwd[::-1])
        assert not np.array_equal(rev, fwd)


def test_generation_is_deterministic(tmp_path, tiny_dataset):
    out, spec, _ = tiny_dataset
    again = tmp_path / "again"
    generate_dataset(again, spec, workers=1)
    for name in ("train.txt", "val.txt", "labels.csv", "heldout/test.txt", "heldout/labels.csv"):
        assert (out / name).read_text() == (again / name).read_text()
    # Byte-identical videos: the demo writes MPEG-4 Part 2, whose encoder is deterministic
    # (x264 output changes from call to call), so a seed gives the same dataset every time.
    files = sorted((out / "videos").rglob("*.mp4"))
    assert files
    for f in files:
        assert f.read_bytes() == (again / "videos" / f.relative_to(out / "videos")).read_bytes(), f


def test_study_test_set_extends_the_heldout_test_set(tmp_path, tiny_dataset):
    """The study's larger held-out test set holds the dataset's own test clips bit for bit,
    and more clips of the same classes from the same generator."""
    out, spec, _ = tiny_dataset
    made = generate_heldout_test(tmp_path, spec, spec.test_per_class + 1, workers=1)
    held = read_labels_csv(out / "heldout" / "labels.csv")
    assert read_labels_csv(tmp_path / "heldout" / "labels.csv") == held
    entries = read_video_list(tmp_path / "heldout" / "test.txt", num_classes=len(held))
    assert made["test_videos"] == len(entries) == len(held) * (spec.test_per_class + 1)
    original = read_video_list(out / "heldout" / "test.txt", num_classes=len(held))
    assert {(e.path, e.label) for e in original} < {(e.path, e.label) for e in entries}
    for e in original:
        rel = e.path
        assert (tmp_path / "videos" / rel).read_bytes() == (out / "videos" / rel).read_bytes()


def test_clip_checkpoint_has_the_openai_layout(tmp_path):
    """Stage 1 writes exactly the OpenAI CLIP key set, and stage 2 initialises X-CLIP from it
    leaving only the new X-CLIP modules untouched."""
    f = tmp_path / "clip.safetensors"
    with arch.registered() as name:
        spec = PretrainSpec(images=64, steps=2, batch_size=16)
        res = pretrain_clip(name, f, spec, log=lambda s: None)
    assert arch.DEMO_ARCH not in xclip.list_models()  # the registry is left as it was
    sd = read_safetensors(f)
    cfg = arch.DEMO_CONFIG
    assert set(sd) == openai_clip_keys(cfg.vision_layers, cfg.text_layers)
    assert res["num_keys"] == len(sd)
    model = xclip.XCLIP(cfg)
    new = init_from_clip(model, str(f))
    assert new and all(k.startswith(("visual.transformer", "mit.", "prompts")) for k in new)
    assert all("message_" in k for k in new if k.startswith("visual."))


@pytest.mark.slow
def test_demo_quick_end_to_end(tmp_path, capsys):
    """The CI configuration of `xclip-video demo`: every stage runs and learning happened."""
    out = tmp_path / "demo"
    assert cli.main(["demo", "--quick", "--out", str(out)]) == 0
    res = json.loads((out / "report" / "results.json").read_text())
    report = (out / "report" / "report.md").read_text()
    assert "Ablation" in report and "Zero-shot" in report
    for png in ("training_loss.png", "confusion_xclip.png", "clip_pretraining.png"):
        assert (out / "report" / png).stat().st_size > 1000
    n_train = len(res["train_classes"])
    main = res["runs"]["main"]
    chance = 100 / n_train
    assert main["top1"] > 4 * chance, main["top1"]  # well above chance
    assert main["colour_accuracy"] > 60
    assert main["history"][-1]["loss"] < main["history"][0]["loss"]
    assert res["clip"]["zero_shot_image_accuracy"]["colour"] > 60
    z = res["zeroshot"]["main"]
    assert z["top1"] > 100 / z["num_classes"] * 1.5
    assert res["fewshot"]["results"][0]["top1"] >= 0
    # a second run is served from the cache
    capsys.readouterr()
    assert cli.main(["demo", "--quick", "--out", str(out)]) == 0
    assert "[cached]" in capsys.readouterr().out


def test_targets_are_computed_from_the_numbers():
    def run(top1, pairs):
        return {"top1": top1, "pair_accuracy": pairs}

    results = {
        "plan": {"seeds": [0, 1, 2]},
        "runs": {
            "main": {**run(92.0, 99.0), "final_eval": {"top1": 89.0, "views": "4x3"}},
            "clip_mean_s0": run(20.0, 50.0),
            "clip_mean_s1": run(22.0, 52.0),
            "clip_mean_s2": run(21.0, 51.0),
            # +CCT: +1.0, +0.5, +0.8 on the same seeds: the seed spread (std 1) is larger than
            # the gap, but the paired differences agree
            "cct_s0": run(21.0, 49.0),
            "cct_s1": run(22.5, 50.0),
            "cct_s2": run(21.8, 50.0),
            # +MIT: +29, +17.5, -1.8: the mean gap is large, the differences disagree
            "mit_s0": run(50.0, 80.0),
            "mit_s1": run(40.0, 70.0),
            "mit_s2": run(20.0, 50.0),
        },
        "zeroshot": {"main": {"top1": 35.0, "num_classes": 10}},
        # --study paired's stages run after the demo's and outside its 10-minute budget
        "timings": {"a": {"seconds": 500.0, "cached": False},
                    "study/xclip_s3": {"seconds": 900.0, "cached": False}},
    }  # fmt: skip
    rows = {r["target"]: r for r in targets(results)}
    assert not rows["X-CLIP fully supervised top-1 ≥ 90 %"]["met"]  # 4x3 below 90
    assert rows["X-CLIP on the time-reversal pairs ≥ 85 %"]["met"]
    assert rows["CLIP-Mean within each pair ≤ 60 %"]["met"]
    assert rows["zero-shot top-1 ≥ 3x chance (30 %)"]["met"]
    cct = rows["+CCT helps over CLIP-Mean (seen-class top-1)"]
    assert cct["met"] and cct["verdict"] == "helps"
    assert cct["measured"].startswith("+0.8 [") and "over 3 seeds" in cct["measured"]
    mit = rows["+MIT helps over +CCT (seen-class top-1)"]
    assert not mit["met"] and mit["verdict"] == "no effect detectable at this power"
    assert "3 seeds: 80 % power for" in mit["verdict_text"]
    assert not any("prompts" in t for t in rows)  # no +prompts runs in this plan
    assert rows["whole demo ≤ 10 minutes (sum of the stage times)"]["met"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--study-seeds", "0,1"], "--study-seeds needs --study paired"),
        (["--study", "paired", "--study-seeds", "0,x"], "distinct comma-separated seeds"),
        (["--study", "paired", "--study-seeds", "1,1"], "distinct comma-separated seeds"),
    ],
)
def test_study_seeds_mistakes_are_one_line(tmp_path, capsys, argv, message):
    out = tmp_path / "demo"
    assert cli.main(["demo", "--out", str(out), *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err
    assert not out.exists()
