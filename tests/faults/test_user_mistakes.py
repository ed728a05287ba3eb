"""Every user mistake is exit 2 and one line on stderr, never a traceback with exit 70 (issue 20).

Each case runs the real command (``xclip_app.cli.main``, in this process: argparse's own exit is
caught) on a tiny model, generated videos and a generated toy dataset: a window that is not a
finite number of seconds, too many windows, a labels file that is not UTF-8, NaN / infinite /
out-of-range config values and float options, pretrained weights without a network, labels the
text encoder would cut, and missing annotation files (refused before anything is written).
"""

from __future__ import annotations

import argparse
import dataclasses
import socket
import time
import typing
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("av")

import xclip  # noqa: E402
from xclip.errors import InputError  # noqa: E402
from xclip.inference import VideoClassifier  # noqa: E402
from xclip_app import cli  # noqa: E402
from xclip_app.exit_codes import EXIT_USAGE  # noqa: E402
from xclip_app.train import config as train_config  # noqa: E402

TINY_RECIPE = Path(__file__).resolve().parents[2] / "configs" / "test" / "tiny.yaml"
LONG = "a person " + "very " * 80


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    return xclip.save_model(xclip.create_model("xclip_test"), tmp_path_factory.mktemp("m") / "m")


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    from xclip_app.train.toydata import make_toy_dataset

    return make_toy_dataset(
        tmp_path_factory.mktemp("toy"), num_classes=2, train_per_class=4, val_per_class=1
    )


def _cli(capsys, *argv) -> tuple[int, str]:
    try:
        rc = cli.main([str(a) for a in argv])
    except SystemExit as e:  # argparse exits by itself
        rc = e.code
    return rc, capsys.readouterr().err


def _one_line(result: tuple[int, str], *needles: str) -> str:
    rc, err = result
    assert "Traceback" not in err, err
    assert rc == EXIT_USAGE, err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("xclip-video "), err
    for n in needles:
        assert n in lines[0], lines[0]
    return lines[0]


# -- classify --window / --stride ----------------------------------------------------------------


@pytest.mark.parametrize("value", ["inf", "nan", "-inf", "0", "-1", "1e400"])
@pytest.mark.parametrize("flag", ["--window", "--stride"])
def test_a_window_that_is_not_a_positive_finite_number_is_one_line(
    capsys, tiny, small_clip, flag, value
):
    extra = [f"{flag}={value}"] if flag == "--window" else ["--window", "1", f"{flag}={value}"]
    argv = ["classify", small_clip, "--labels", "a,b", "--model", tiny, "--no-progress", *extra]
    _one_line(_cli(capsys, *argv), flag, value)


def test_a_window_shorter_than_one_frame_is_refused(capsys, tiny, small_clip):
    # small_clip: 30 fps, so one frame is 0.033 s
    base = ["classify", small_clip, "--labels", "a,b", "--model", tiny, "--no-progress"]
    _one_line(_cli(capsys, *base, "--window", "0.01"), "--window", "one frame")
    _one_line(_cli(capsys, *base, "--window", "1", "--stride", "0.001"), "--stride", "one frame")


def test_too_many_windows_are_refused_unless_confirmed(capsys, tiny, small_clip, tmp_path):
    # 60 frames at 30 fps, windows of 1.02 frames every 1.02 frames: 59 windows
    base = ["classify", small_clip, "--labels", "a,b", "--model", tiny, "--no-progress"]
    line = _one_line(_cli(capsys, *base, "--window", "0.034", "--max-windows", "10"))
    assert "59 windows" in line and "--max-windows=59" in line, line
    out = tmp_path / "t.jsonl"
    rc, err = _cli(
        capsys, *base, "--window", "0.034", "--max-windows", "59", "--format", "jsonl", "-o", out
    )
    assert rc == 0, err
    assert len(out.read_text().splitlines()) == 59


def test_the_default_window_limit_holds_in_the_library(tiny):
    clf = VideoClassifier(tiny, ["a", "b"])
    frames = np.zeros((10_001, 8, 8, 3), np.uint8)  # one frame per window: 10,001 windows
    t0 = time.perf_counter()
    with pytest.raises(InputError, match="10001 windows.*max_windows=10000"):
        clf.timeline(frames, 1 / 30, fps=30)
    assert time.perf_counter() - t0 < 5  # refused before any window runs
    with pytest.raises(InputError, match="finite"):
        clf.timeline(frames, float("inf"), fps=30)


# -- labels ----------------------------------------------------------------------------------------


def test_a_labels_file_that_is_not_utf8_is_one_line(capsys, tiny, small_clip, tmp_path):
    latin1 = tmp_path / "labels_latin1.txt"
    latin1.write_bytes("café\nthe dog\n".encode("latin-1"))
    base = ["classify", small_clip, "--model", tiny, "--no-progress"]
    _one_line(_cli(capsys, *base, "--labels-file", latin1), str(latin1), "UTF-8")
    _one_line(
        _cli(capsys, *base, "--labels", "a,b", "--templates-file", latin1), str(latin1), "UTF-8"
    )


def test_labels_longer_than_the_text_encoder_reads_are_refused(capsys, tiny, small_clip):
    # the two labels differ only after the 77th token: cut, they would be the same label
    first, second = LONG + "walking", LONG + "running"
    base = ["classify", small_clip, "--model", tiny, "--no-progress"]
    line = _one_line(_cli(capsys, *base, "--labels", f"short,{first},{second}"), "77 tokens")
    assert "label 2" in line and "cut after" in line, line
    # a template that makes a short label too long
    line = _one_line(_cli(capsys, *base, "--labels", "a,b", "--template", LONG + "{}"), "template")
    # the library refuses them too (VideoClassifier, and the prompts of training)
    with pytest.raises(InputError, match="77 tokens"):
        VideoClassifier(tiny, [first, second])
    from xclip.inference.labels import prompts

    with pytest.raises(InputError, match="77 tokens"):
        prompts(["a", first], ["{}"])
    assert prompts(["a", "b"], ["a video of {}"]) == ["a video of a", "a video of b"]


# -- training config -----------------------------------------------------------------------------


def _float_keys() -> list[str]:
    """Every float (or optional float, or tuple of floats) key of RunConfig."""
    keys = []
    for section in dataclasses.fields(train_config.RunConfig):
        hints = typing.get_type_hints(section.default_factory)
        for f in dataclasses.fields(section.default_factory):
            if "float" in str(hints[f.name]):
                keys.append(f"{section.name}.{f.name}")
    return keys


def test_the_float_keys_are_found():
    keys = _float_keys()
    assert {"train.lr", "train.clip_grad_norm", "train.betas", "aug.mixup"} <= set(keys), keys


@pytest.mark.parametrize("key", _float_keys())
@pytest.mark.parametrize("value", [".nan", ".inf", "-.inf"])
def test_no_float_key_takes_nan_or_inf(key, value):
    default = train_config.load_config(None)
    section, name = key.split(".")
    current = getattr(getattr(default, section), name)
    if isinstance(current, tuple):
        override = f"{key}=[{value}, {', '.join(str(v) for v in current[1:])}]"
    else:
        override = f"{key}={value}"
    with pytest.raises(train_config.ConfigError, match=key.split(".")[1]):
        train_config.load_config(None, [override])


@pytest.mark.parametrize(
    "override",
    [
        "train.clip_grad_norm=-1",
        "train.clip_grad_norm=0",
        "train.eps=-1",
        "train.min_lr=-1e-6",
        "train.betas=[1.5,0.9]",
        "train.new_module_lr_mult=-1",
        "train.prompts_lr_mult=-1",
    ],
)
def test_out_of_range_floats_are_config_errors(override):
    with pytest.raises(train_config.ConfigError, match=override.split("=")[0]):
        train_config.load_config(None, [override])


@pytest.mark.parametrize(
    "override", ["train.lr=nan", "train.lr=.inf", "train.betas=[.nan,0.9]", "train.eps=-1",
                 "train.clip_grad_norm=-1", "aug.mixup=.nan"]
)  # fmt: skip
def test_bad_floats_stop_train_before_the_run_folder(capsys, toy, tmp_path, override):
    run = tmp_path / "run"
    argv = [
        "train", "--config", TINY_RECIPE, f"data.root={toy['root']}",
        f"data.train_file={toy['train']}", f"data.val_file={toy['val']}",
        f"data.label_list={toy['labels']}", f"output.dir={run}", "train.epochs=1",
        "test.final_eval=false", override,
    ]  # fmt: skip
    _one_line(_cli(capsys, *argv), override.split("=")[0])
    assert not run.exists()


# -- every float option of every command -----------------------------------------------------------


def _float_options() -> list[tuple[str, argparse.Action]]:
    out = []

    def walk(parser: argparse.ArgumentParser, prefix: str) -> None:
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    walk(sub, f"{prefix} {name}".strip())
            elif action.type is float or getattr(action.type, "finite_float", False):
                out.append((f"{prefix} {action.option_strings[0]}", action))

    walk(cli.build_parser(), "")
    return out


def test_every_float_option_refuses_nan_and_inf():
    options = _float_options()
    names = [n for n, _ in options]
    assert "classify --window" in names and "serve --max-upload-mb" in names, names
    for name, action in options:
        for text in ("nan", "inf", "-inf", "1e999"):
            with pytest.raises(argparse.ArgumentTypeError):
                action.type(text)
                pytest.fail(f"{name} accepted {text}")


def test_float_options_in_range_and_out(capsys, tiny, small_clip, tmp_path):
    _one_line(_cli(capsys, "interpolate", tiny, "--source", tiny, "-o", tmp_path / "x",
                   "--alpha", "nan"), "--alpha")  # fmt: skip
    _one_line(_cli(capsys, "interpolate", tiny, "--source", tiny, "-o", tmp_path / "x",
                   "--alpha", "1.5"), "--alpha")  # fmt: skip
    _one_line(_cli(capsys, "serve", "--max-upload-mb", "-1"), "--max-upload-mb")
    _one_line(_cli(capsys, "serve", "--max-upload-mb", "inf"), "--max-upload-mb")


# -- pretrained weights without a network ----------------------------------------------------------


@pytest.fixture
def empty_caches(tmp_path, monkeypatch):
    import huggingface_hub.constants as hf_constants

    monkeypatch.setenv("XCLIP_CACHE", str(tmp_path / "xclip-cache"))
    monkeypatch.setattr(hf_constants, "HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    monkeypatch.delenv("HF_ENDPOINT", raising=False)


def test_pretrained_weights_with_hf_hub_offline_are_one_line(capsys, small_clip, empty_caches,
                                                             monkeypatch):  # fmt: skip
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    t0 = time.perf_counter()
    argv = ["classify", small_clip, "--labels", "a,b", "--model", "xclip_b32_8f.kinetics400"]
    _one_line(_cli(capsys, *argv, "--no-progress"), "HF_HUB_OFFLINE", "--model PATH")
    assert time.perf_counter() - t0 < 10


def test_pretrained_weights_without_a_network_fail_fast(capsys, small_clip, empty_caches,
                                                        monkeypatch):  # fmt: skip
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)

    def no_dns(*args, **kwargs):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_dns)
    t0 = time.perf_counter()
    argv = ["classify", small_clip, "--labels", "a,b", "--model", "xclip_b32_8f.kinetics400"]
    _one_line(_cli(capsys, *argv, "--no-progress"), "no network", "huggingface.co")
    assert time.perf_counter() - t0 < 10  # before: 23 s of huggingface_hub retries


# -- annotation files ----------------------------------------------------------------------------


def test_a_missing_annotation_file_fails_before_any_work(capsys, toy, tiny, tmp_path):
    run = tmp_path / "run"
    base = [
        "train", "--config", TINY_RECIPE, f"data.root={toy['root']}",
        f"data.val_file={toy['val']}", f"data.label_list={toy['labels']}", f"output.dir={run}",
    ]  # fmt: skip
    missing = tmp_path / "nope.txt"
    _one_line(_cli(capsys, *base, f"data.train_file={missing}"), "data.train_file", str(missing))
    assert not run.exists()  # not even config.yaml or a log
    # eval: before the model is loaded or a report folder is made
    out = tmp_path / "report"
    argv = ["eval", "--checkpoint", tiny, "--val-file", missing, "--labels", toy["labels"],
            "--root", toy["root"], "-o", out]  # fmt: skip
    _one_line(_cli(capsys, *argv), "data.val_file", str(missing))
    assert not out.exists()
    argv = ["eval", "--checkpoint", tiny, "--val-file", toy["val"], "--labels", missing,
            "--root", toy["root"], "-o", out]  # fmt: skip
    _one_line(_cli(capsys, *argv), "data.label_list", str(missing))
