"""`xclip-video study`: options of a recipe trained on the same seeds, the paired table."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("av")

from xclip_app.cli import main as cli_main  # noqa: E402
from xclip_app.train.toydata import make_toy_dataset  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "configs/test/tiny.yaml"


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    out = tmp_path_factory.mktemp("toy")
    return make_toy_dataset(out, num_classes=3, train_per_class=4, val_per_class=2)


def _study(toy, tmp_path: Path, options: str, baseline: str = "plain") -> Path:
    f = tmp_path / "study.yaml"
    f.write_text(
        f"base: {TINY}\n"
        f"data: {{root: {toy['root']}, train_file: {toy['train']}, val_file: {toy['val']}, "
        f"label_list: {toy['labels']}}}\n"
        "train: {epochs: 1, warmup_epochs: 0, batch_size: 2}\n"
        "test: {eval_every: 0, final_eval: false}\n"
        f"protocol:\n  baseline: {baseline}\n  options:\n{options}"
    )
    return f


OPTIONS = (
    "    - {name: plain, overrides: []}\n"
    "    - {name: again, overrides: []}\n"
    "    - {name: fast, overrides: [train.lr=2.0e-2]}\n"
)


def test_study_writes_the_paired_table(toy, tmp_path, capsys):
    cfg, out = _study(toy, tmp_path, OPTIONS), tmp_path / "out"
    assert cli_main(["study", "--config", str(cfg), "-o", str(out), "--seeds", "0,1"]) == 0
    printed = capsys.readouterr().out
    res = json.loads((out / "study_results.json").read_text())
    assert (out / "study_table.md").read_text().strip() in printed
    assert res["seeds"] == [0, 1] and res["baseline"] == "plain" and res["sets"] == ["val"]
    assert len(res["runs"]) == 6
    for r in res["runs"]:
        assert Path(r["run"]) == out / "runs" / f"{r['option']}_s{r['seed']}"
    by = {(r["option"], r["seed"]): r["top1"]["val"] for r in res["runs"]}
    paired = {p["option"]: p for p in res["paired"]}
    assert set(paired) == {"again", "fast"}
    # the same option on the same seed is the same run: the pairing leaves no difference
    again = paired["again"]
    assert again["differences"] == [0.0, 0.0] and again["low"] == again["high"] == 0.0
    fast = paired["fast"]
    assert fast["n"] == 2 and fast["seeds"] == [0, 1]
    assert fast["differences"] == pytest.approx([by["fast", s] - by["plain", s] for s in (0, 1)])
    assert fast["low"] <= fast["mean"] <= fast["high"]
    assert fast["verdict"] in ("helps", "hurts", "no effect detectable at this power")
    assert "| val | fast |" in printed and "paired t interval" in printed
    # a third seed trains only the new runs; the table is refused without --overwrite
    before = {p: p.stat().st_mtime_ns for p in (out / "runs").glob("*_s[01]/summary.json")}
    assert cli_main(["study", "--config", str(cfg), "-o", str(out), "--seeds", "0,1,2"]) == 2
    assert "--overwrite" in capsys.readouterr().err
    rc = cli_main(["study", "--config", str(cfg), "-o", str(out), "--seeds", "0,1,2",
                   "--overwrite"])  # fmt: skip
    assert rc == 0
    res3 = json.loads((out / "study_results.json").read_text())
    assert {p["option"]: p["n"] for p in res3["paired"]} == {"again": 3, "fast": 3}
    assert before == {p: p.stat().st_mtime_ns for p in before}
    assert [r["top1"] for r in res3["runs"][:6]] == [r["top1"] for r in res["runs"]]


@pytest.mark.parametrize(
    ("options", "baseline", "message"),
    [
        ("    - {name: plain, overrides: []}\n", "plain", "compares at least two"),
        (OPTIONS, "nope", "protocol.baseline 'nope' is not one of protocol.options"),
        ("    - {name: plain, overrides: []}\n    - {name: plain, overrides: []}\n", "plain",
         "'plain' is given twice"),
        ("    - {name: plain, overrides: []}\n    - {name: b, overrides: [train.seed=3]}\n",
         "plain", "sets train.seed; the study sets it"),
        ("    - {name: plain, overrides: []}\n    - {name: b, overrides: [train.lrr=3]}\n",
         "plain", "unknown config key 'train.lrr'"),
    ],
)  # fmt: skip
def test_study_mistakes_are_one_line(toy, tmp_path, capsys, options, baseline, message):
    cfg = _study(toy, tmp_path, options, baseline)
    assert cli_main(["study", "--config", str(cfg), "-o", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err and "Traceback" not in err
    assert not (tmp_path / "o").exists()


def test_options_that_add_modules_share_the_initialisation_of_the_others(tmp_path):
    """What pairing by seed gives across architectures: built from the same CLIP weights after
    the same seed, +prompts has +MIT's weights, and +MIT has +CCT's, in every module they have
    in common (the new modules are built after the ones they add to)."""
    import torch
    from safetensors.torch import save_file

    import xclip

    # an image CLIP in the OpenAI layout: the X-CLIP model with every video module off
    clip = xclip.create_model("xclip_test", cross_frame=False, use_mit=False, use_prompts=False)
    weights = tmp_path / "clip.safetensors"
    save_file({k: v.contiguous() for k, v in clip.state_dict().items()}, str(weights))

    def built(**switches):
        torch.manual_seed(3)
        return xclip.create_model("xclip_test", clip_weights=weights, **switches).state_dict()

    cct = built(use_mit=False, use_prompts=False)
    mit = built(use_prompts=False)
    full = built()
    for smaller, larger in ((cct, mit), (mit, full)):
        shared = [k for k in smaller if k in larger]
        assert len(shared) == len(smaller) < len(larger)
        assert all(torch.equal(smaller[k], larger[k]) for k in shared)
