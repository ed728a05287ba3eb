"""Rule 5 and rules 1-3 for evaluation: every report records what reproduces its number, is
written whole, never replaces an earlier one or an input, and bad videos, NaN weights and bugs
are told apart (exit 2 with one line, or 70 with a traceback).

A random ``xclip_test`` model saved as a model folder is evaluated on the generated toy dataset.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("av")

import xclip  # noqa: E402
from xclip.ownership import ForeignFileError, kept_name
from xclip_app.cli import main as cli_main  # noqa: E402
from xclip_app.train.evaluate import EvalResult, write_report  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / "configs/test/tiny.yaml"


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    from xclip_app.train.toydata import make_toy_dataset

    out = tmp_path_factory.mktemp("evaltoy")
    files = make_toy_dataset(out, num_classes=2, train_per_class=1, val_per_class=3)
    model = xclip.save_model(xclip.create_model("xclip_test"), out / "model")
    files["model"] = Path(model)
    bad = files["root"] / "red" / "fake.mp4"
    bad.write_text("not a video\n")
    files["bad_val"] = out / "val_bad.txt"
    files["bad_val"].write_text(files["val"].read_text() + "red/fake.mp4 0\n")
    return files


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _eval(toy, *extra: str, val: Path | None = None, model: Path | None = None) -> int:
    return cli_main(
        ["eval", "--checkpoint", str(model or toy["model"]), "--val-file", str(val or toy["val"]),
         "--labels", str(toy["labels"]), "--root", str(toy["root"]), "--workers", "0",
         "--device", "cpu", *extra]
    )  # fmt: skip


def _tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_eval_report_records_what_reproduces_the_number(toy, tmp_path):
    out = tmp_path / "report"
    assert _eval(toy, "--views", "2x3", "--view-mode", "uniform", "--out", str(out)) == 0
    m = json.loads((out / "metrics.json").read_text())
    prov = m["provenance"]
    assert m["num_samples"] == 6 and m["views"] == "2x3" and m["skipped"] == 0
    assert prov["views"] == "2x3" and prov["view_mode"] == "uniform" and prov["seed"] == 1024
    assert prov["evaluated"] == 6 and prov["skipped"] == 0 and prov["videos"] == 6
    assert prov["list_sha256"] == _sha(toy["val"]) and prov["labels_sha256"] == _sha(toy["labels"])
    assert prov["checkpoint"] == str(toy["model"])
    assert prov["checkpoint_sha256"] == {
        "model.safetensors": _sha(toy["model"] / "model.safetensors")
    }
    assert len(prov["weights_sha256"]) == 64 and prov["model_fingerprint"]
    assert prov["precision"] == "fp32" and prov["num_frames"] and prov["sampling"] == "sparse"
    # the same inputs give the same number and the same fingerprints
    again = tmp_path / "again"
    assert _eval(toy, "--views", "2x3", "--view-mode", "uniform", "--out", str(again)) == 0
    m2 = json.loads((again / "metrics.json").read_text())
    assert m2["top1"] == m["top1"] and m2["provenance"] == prov


def test_eval_never_replaces_an_earlier_report_without_overwrite(toy, tmp_path, capsys):
    out = tmp_path / "report"
    assert _eval(toy, "--out", str(out)) == 0
    before = _tree(out)
    capsys.readouterr()
    assert _eval(toy, "--out", str(out)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "already exists" in err[0] and "--overwrite" in err[0]
    assert _tree(out) == before
    (out / "my_notes.txt").write_text("the user's: the folder is no longer xclip's alone")
    assert _eval(toy, "--out", str(out), "--overwrite") == 2
    assert "my_notes.txt" in capsys.readouterr().err and _tree(out) == {**before, **_tree(out)}
    (out / "my_notes.txt").unlink()
    assert _eval(toy, "--out", str(out), "--overwrite") == 0  # xclip's own report: replaced
    assert (out / "metrics.json").is_file()
    assert [
        p.name for p in tmp_path.iterdir() if p.name.startswith(".") and not kept_name(p.name)
    ] == []


def test_eval_default_report_is_versioned_and_never_in_the_checkpoint(toy, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    ckpt_before = _tree(toy["model"])
    assert _eval(toy) == 0 and _eval(toy) == 0
    reports = sorted(p.name for p in (tmp_path / "runs/eval").iterdir() if not kept_name(p.name))
    assert reports == ["model_1x1", "model_1x1-2"]
    assert _tree(toy["model"]) == ckpt_before  # the checkpoint folder is never written into


def test_eval_refuses_outputs_that_are_or_hold_inputs(toy, tmp_path, capsys):
    videos_before = _tree(toy["root"])
    assert _eval(toy, "--out", str(toy["root"]), "--overwrite") == 2
    assert "is also an input" in capsys.readouterr().err
    assert _eval(toy, "--out", str(toy["root"].parent), "--overwrite") == 2
    assert "holds the input" in capsys.readouterr().err
    assert _eval(toy, "--out", str(toy["model"] / "eval"), "--overwrite") == 2
    assert "never written into" in capsys.readouterr().err
    assert _eval(toy, "--out", str(toy["val"]), "--overwrite") == 2
    assert "is also an input" in capsys.readouterr().err
    assert _tree(toy["root"]) == videos_before and toy["val"].stat().st_size > 0


def test_eval_unreadable_video_fails_in_one_line_or_is_skipped_and_recorded(toy, tmp_path, capsys):
    out = tmp_path / "report"
    assert _eval(toy, "--out", str(out), val=toy["bad_val"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("xclip-video eval: error: 1 of 7 evaluation videos")
    assert "fake.mp4" in err[-1] and "data.skip_bad=true" in err[-1]
    assert not out.exists()  # nothing half-written
    assert _eval(toy, "--out", str(out), "data.skip_bad=true", val=toy["bad_val"]) == 0
    m = json.loads((out / "metrics.json").read_text())
    assert m["num_samples"] == 6 and m["skipped"] == 1
    assert m["skipped_files"][0].endswith("red/fake.mp4")
    assert m["provenance"]["skipped"] == 1 and m["provenance"]["videos"] == 7


def test_eval_nan_weights_are_one_line_not_a_ranking(toy, tmp_path, capsys):
    model = xclip.load_model(toy["model"])
    with torch.no_grad():
        model.visual.proj.fill_(float("nan"))
    nan_dir = Path(xclip.save_model(model, tmp_path / "nan_model"))
    assert _eval(toy, "--out", str(tmp_path / "r"), model=nan_dir) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert "NaN/Inf scores" in err[-1] and "--precision fp32" in err[-1]
    assert not (tmp_path / "r").exists()


def test_eval_bug_in_the_model_is_a_bug_not_bad_data(toy, tmp_path, capsys, monkeypatch):
    from xclip_app.train.classifier import TrainableClassifier

    def broken(self, video, text_features=None, tokens=None):
        raise TypeError("unsupported operand in forward")

    monkeypatch.setattr(TrainableClassifier, "forward", broken)
    assert _eval(toy, "--out", str(tmp_path / "r")) == 70
    err = capsys.readouterr().err
    assert "Traceback" in err and "unsupported operand" in err and "bug" in err
    assert "could not be read" not in err


def test_write_report_versions_refuses_or_replaces_as_a_unit(tmp_path):
    k = 2
    res = EvalResult(
        top1=50.0, top5=100.0, mean_class_acc=50.0, num_samples=2, num_classes=k, views="1x1",
        confusion=np.array([[1, 0], [1, 0]]), indices=np.array([0, 1]), labels=np.array([0, 1]),
        probs=np.array([[0.9, 0.1], [0.8, 0.2]], np.float32), provenance={"seed": 0},
    )  # fmt: skip
    first = write_report(res, tmp_path / "r", ["a", "b"])
    second = write_report(res, tmp_path / "r", ["a", "b"])
    assert (first.name, second.name) == ("r", "r-2")
    with pytest.raises(FileExistsError):
        write_report(res, tmp_path / "r", ["a", "b"], if_exists="refuse")
    (first / "extra.txt").write_text("x")  # the user's file inside: never deleted
    with pytest.raises(ForeignFileError, match="extra.txt"):
        write_report(res, tmp_path / "r", ["a", "b"], if_exists="replace", extra={"note": 1})
    (first / "extra.txt").unlink()
    write_report(res, tmp_path / "r", ["a", "b"], if_exists="replace", extra={"note": 1})
    assert json.loads((first / "metrics.json").read_text())["provenance"] == {"seed": 0, "note": 1}
    with pytest.raises(ValueError, match="one string"):
        write_report(res, tmp_path / "s", "ab")


def test_zeroshot_records_provenance_and_refuses_an_earlier_output(toy, tmp_path, capsys):
    sp = toy["test_split1"].parent
    recipe = tmp_path / "zs.yaml"
    recipe.write_text(
        f"base: {TINY}\ndata: {{root: {toy['root']}}}\nprotocol:\n  eval_sets:\n"
        + "".join(
            f"    - {{name: split{k}, val_file: {sp}/test_split{k}.txt, "
            f"label_list: {toy['labels']}}}\n"
            for k in (1, 2)
        )
    )
    out = tmp_path / "zs"
    args = ["zeroshot", "--config", str(recipe), "--checkpoint", str(toy["model"]),
            "--output", str(out), "--device", "cpu"]  # fmt: skip
    assert cli_main(args) == 0
    doc = json.loads((out / "zeroshot_results.json").read_text())
    assert [s["name"] for s in doc["sets"]] == ["split1", "split2"]
    for k, s in zip((1, 2), doc["sets"], strict=True):
        assert s["provenance"]["list_sha256"] == _sha(sp / f"test_split{k}.txt")
        assert s["provenance"]["weights_sha256"]
        m = json.loads((out / f"split{k}" / "metrics.json").read_text())
        assert m["provenance"]["checkpoint_sha256"]["model.safetensors"] == _sha(
            toy["model"] / "model.safetensors"
        )
    before = _tree(out)
    capsys.readouterr()
    assert cli_main(args) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert _tree(out) == before
    shutil.rmtree(out / "split2")
    assert cli_main([*args, "--overwrite"]) == 0
    assert (out / "split2" / "metrics.json").is_file()
