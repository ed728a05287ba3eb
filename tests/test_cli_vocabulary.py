"""One vocabulary on the command line: the same option means the same thing in every command
(views, -o, --model, devices), labels files with a byte-order mark, an index that finds its model
relative to itself, and the API agreeing with the CLI on ``top_k=0``."""

from __future__ import annotations

import argparse
import os

import pytest

from xclip.errors import InputError
from xclip.inference import Prediction
from xclip_app.cli import build_parser
from xclip_app.exit_codes import UsageError
from xclip_app.inference_args import (
    index_model_name,
    model_from_index,
    parse_views,
    read_labels,
)


@pytest.fixture(scope="module")
def parser():
    return build_parser()


@pytest.mark.parametrize("command", ["classify", "embed"])
def test_views_works_for_inference_commands(parser, command):
    extra = ["--labels", "a,b"] if command == "classify" else ["-o", "i.safetensors"]
    a = parser.parse_args([command, "v.mp4", *extra, "--views", "4x3"])
    assert (a.num_clips, a.num_crops) == (4, 3)
    a = parser.parse_args([command, "v.mp4", *extra, "--num-clips", "2"])
    assert (a.num_clips, a.num_crops) == (2, 1)
    with pytest.raises(SystemExit) as e:
        parser.parse_args([command, "v.mp4", *extra, "--views", "4x2"])
    assert e.value.code == 2


def test_eval_takes_the_same_spellings(parser):
    a = parser.parse_args(["eval", "--model", "m", "--views", "4x3", "-o", "out"])
    assert (a.checkpoint, a.views, a.out) == ("m", "4x3", "out")
    a = parser.parse_args(["eval", "-m", "m", "--output", "out2"])
    assert (a.checkpoint, a.out) == ("m", "out2")
    a = parser.parse_args(["eval", "--checkpoint", "m", "--out", "o3"])  # the old spellings stay
    assert (a.checkpoint, a.out) == ("m", "o3")
    assert parse_views("4X3") == (4, 3)
    with pytest.raises(UsageError, match="4x3"):
        parse_views("four")


@pytest.mark.parametrize("command", ["train", "zeroshot", "fewshot", "demo"])
def test_output_is_dash_o_everywhere(parser, command):
    argv = [command, "-o", "somewhere"] + ([] if command == "demo" else ["--config", "x.yaml"])
    argv += ["--model", "m"] if command == "zeroshot" else []
    a = parser.parse_args(argv)
    assert (a.out if command == "demo" else a.output) == "somewhere"


def test_labels_file_with_a_byte_order_mark(tmp_path):
    f = tmp_path / "labels.txt"
    f.write_bytes("\ufeffcooking\r\ndancing\r\n".encode())
    labels = read_labels(argparse.Namespace(labels_file=str(f), labels=None))
    assert labels == ["cooking", "dancing"]


def test_index_names_its_model_relative_to_itself(tmp_path, monkeypatch):
    (tmp_path / "models/m1").mkdir(parents=True)
    (tmp_path / "indexes").mkdir()
    monkeypatch.chdir(tmp_path)
    recorded = index_model_name("models/m1", "indexes/clips.safetensors")
    assert recorded == os.path.join("..", "models", "m1")
    assert index_model_name("xclip_b16_32f.zero_shot", "i.safetensors") == "xclip_b16_32f.zero_shot"
    # from another folder, the index still finds it
    other = tmp_path / "elsewhere"
    other.mkdir()
    monkeypatch.chdir(other)
    found = model_from_index(recorded, str(tmp_path / "indexes/clips.safetensors"))
    assert os.path.samefile(found, tmp_path / "models/m1")
    # names and paths that are not beside the index pass through unchanged
    assert model_from_index("xclip_b16_32f.zero_shot", "x/i.npy") == "xclip_b16_32f.zero_shot"


def test_top_k_zero_means_all_in_the_api_as_on_the_command_line():
    p = Prediction(labels=("a", "b", "c"), probs=(0.5, 0.3, 0.2))
    assert p.top(0) == p.top(None) == p.top(10) == [("a", 0.5), ("b", 0.3), ("c", 0.2)]
    assert p.top(1) == [("a", 0.5)]
    with pytest.raises(InputError, match=">= 0"):
        p.top(-1)
