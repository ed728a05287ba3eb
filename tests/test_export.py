"""Export to ONNX / torch.export and running an exported folder (xclip.export).

The default suite exports the tiny ``xclip_test`` model once per format (module fixtures) and
checks the exported graphs against eager PyTorch at several batch sizes and label counts; the
slow tests do the same for ``xclip_b32_8f``, int8 quantisation and the LitServe example.
"""

from __future__ import annotations

import importlib.util
import json
import shutil

import pytest
import torch

import xclip
from xclip.errors import InputError
from xclip.export import ExportedModel, is_export_folder, read_manifest
from xclip.export.folder import LABEL_BANK, MANIFEST
from xclip.inference import VideoClassifier, embed_videos, load_inference_model
from xclip.inference.loading import model_fingerprint
from xclip.ownership import kept_name
from xclip_app.cli import main

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

LABELS = ["cooking", "dancing", "riding a bike"]
SIZES = [(1, 1), (2, 4), (3, 7)]  # (videos, labels)


def _tiny_model() -> xclip.XCLIP:
    torch.manual_seed(0)
    model = xclip.create_model("xclip_test")
    with torch.no_grad():  # non-trivial prompt generator and MIT (zero-initialised otherwise)
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return model.eval()


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    model = _tiny_model()
    return model, xclip.save_model(model, tmp_path_factory.mktemp("models") / "tiny")


@pytest.fixture(scope="module")
def onnx_dir(tiny, tmp_path_factory):
    """The tiny model exported by the command, with a label bank."""
    out = tmp_path_factory.mktemp("exports") / "tiny-onnx"
    rc = main(["export", str(tiny[1]), "-o", str(out), "--labels", ",".join(LABELS)])
    assert rc == 0
    return out


@pytest.fixture(scope="module")
def pt2_dir(tiny, tmp_path_factory):
    out = tmp_path_factory.mktemp("exports") / "tiny-pt2"
    return xclip.export_model(tiny[0], out, format="pt2")


def _max_logit_error(model: xclip.XCLIP, exported: ExportedModel, b: int, k: int) -> float:
    cfg = model.cfg
    g = torch.Generator().manual_seed(b * 100 + k)
    video = torch.randn(b, cfg.num_frames, 3, cfg.image_size, cfg.image_size, generator=g)
    tokens = xclip.tokenize([f"label number {i} of {k}" for i in range(k)])
    with torch.no_grad():
        ref = model(video, tokens)
    got = exported.logits(exported.encode_video(video), exported.encode_text(tokens))
    assert got.shape == ref.shape == (b, k)
    return float((got - ref).abs().max())


@pytest.mark.parametrize(("b", "k"), SIZES)
def test_onnx_logits_match_eager(tiny, onnx_dir, b, k):
    exported = load_inference_model(onnx_dir)
    assert isinstance(exported, ExportedModel) and exported.backend == "onnx"
    assert _max_logit_error(tiny[0], exported, b, k) < 1e-4


@pytest.mark.parametrize(("b", "k"), SIZES)
def test_pt2_logits_match_eager(tiny, pt2_dir, b, k):
    exported = load_inference_model(pt2_dir)
    assert exported.backend == "pt2"
    assert _max_logit_error(tiny[0], exported, b, k) < 1e-4


def test_folder_carries_preprocessing_fingerprint_and_label_bank(tiny, onnx_dir):
    model = tiny[0]
    assert is_export_folder(onnx_dir) and not is_export_folder(tiny[1])
    m = read_manifest(onnx_dir)
    assert m.config == model.cfg and m.preprocess == model.preprocess
    assert m.fingerprint == model_fingerprint(model) == model_fingerprint(ExportedModel(onnx_dir))
    assert m.source_fingerprint == m.fingerprint  # float32 graphs: the source's weights
    assert m.labels == tuple(LABELS) and m.template == "{}"
    assert sorted(p.name for p in onnx_dir.iterdir() if not kept_name(p.name)) == sorted(
        [MANIFEST, LABEL_BANK, "video.onnx", "text.onnx", "head.onnx"]
    )
    exported = ExportedModel(onnx_dir)
    with torch.no_grad():
        want = model.encode_text(xclip.tokenize(LABELS))
    assert torch.allclose(exported.label_bank.features, want, atol=1e-5)
    # the bank answers for its own tokens; other tokens run the text graph
    assert exported.encode_text(xclip.tokenize(LABELS)) is not None
    assert torch.allclose(exported.encode_text(xclip.tokenize(LABELS)), want, atol=1e-5)


def test_classifier_on_export_ranks_as_the_saved_model(tiny, onnx_dir, pt2_dir, small_clip):
    ref = VideoClassifier(tiny[1], LABELS, num_clips=2)(small_clip)
    for d in (onnx_dir, pt2_dir):
        got = VideoClassifier(d, LABELS, num_clips=2)(small_clip)
        assert got.labels == ref.labels
        assert got.probs == pytest.approx(ref.probs, abs=1e-5)


def test_cli_classify_and_embed_on_export(tiny, onnx_dir, small_clip, tmp_path, capsys):
    docs = []
    for model in (tiny[1], onnx_dir):
        rc = main(
            ["classify", str(small_clip), "--labels", ",".join(LABELS), "--model", str(model),
             "--format", "json"]
        )  # fmt: skip
        out, err = capsys.readouterr()
        assert rc == 0, err
        docs.append(json.loads(out))
    ranked = [[p["label"] for p in d["results"][0]["predictions"]] for d in docs]
    assert ranked[0] == ranked[1]
    assert docs[1]["model_info"]["fingerprint"] == model_fingerprint(tiny[0])

    a = embed_videos(tiny[1], [small_clip])
    b = embed_videos(onnx_dir, [small_clip])
    assert torch.allclose(a.embeds, b.embeds, atol=1e-4)
    assert a.model["fingerprint"] == b.model["fingerprint"]
    rc = main(
        [
            "embed",
            str(small_clip),
            "--model",
            str(onnx_dir),
            "-o",
            str(tmp_path / "i.safetensors"),
            "--no-progress",
        ]
    )
    assert rc == 0, capsys.readouterr().err


def test_export_by_an_older_xclip_is_recognised(
    tiny, onnx_dir, small_clip, tmp_path, caplog, capsys
):
    # an export written before fingerprint v2: 16 hex digits, no source_fingerprint
    old = tmp_path / "old-export"
    shutil.copytree(onnx_dir, old)
    manifest = json.loads((old / MANIFEST).read_text())
    manifest["fingerprint"] = "0123456789abcdef"
    del manifest["source_fingerprint"]
    (old / MANIFEST).write_text(json.dumps(manifest))
    with caplog.at_level("WARNING"):
        exported = load_inference_model(old)  # still runs
    assert "older xclip" in caplog.text and "export it again" in caplog.text
    # an index it would be compared with: the message names what to redo, in one line
    index = embed_videos(tiny[0], [small_clip])
    with pytest.raises(InputError, match="older xclip.*export it again"):
        index.check_model(exported)
    # a Parquet job would mix its rows with another export's: refused before any work
    pytest.importorskip("pyarrow")
    out = tmp_path / "rows.parquet"
    rc = main(["embed", str(small_clip), "--model", str(old), "-o", str(out), "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 2 and "older xclip" in err and "export it again" in err, err
    assert len(err.strip().splitlines()) == 1 and not out.exists()


def test_without_onnxruntime_one_line_names_the_extra(onnx_dir, small_clip, monkeypatch, capsys):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda n, *a: None if n == "onnxruntime" else real(n, *a)
    )
    with pytest.raises(InputError, match=r"pip install 'xclip\[onnx\]'"):
        load_inference_model(onnx_dir)
    rc = main(["classify", str(small_clip), "--labels", "a,b", "--model", str(onnx_dir)])
    err = capsys.readouterr().err
    assert rc == 2 and "pip install 'xclip[onnx]'" in err and len(err.strip().splitlines()) == 1


def test_export_refusals(tiny, onnx_dir, tmp_path, capsys):
    # an existing output without --overwrite, onnx-only quantisation, frame counts it lacks
    assert main(["export", str(tiny[1]), "-o", str(onnx_dir)]) == 2
    assert "--overwrite" in capsys.readouterr().err
    out = tmp_path / "q"
    assert (
        main(["export", str(tiny[1]), "-o", str(out), "--format", "pt2", "--quantize", "int8"]) == 2
    )
    assert "--format onnx" in capsys.readouterr().err and not out.exists()
    assert main(["export", str(tiny[1]), "-o", str(tiny[1] / "inside")]) == 2
    assert "model folder" in capsys.readouterr().err
    with pytest.raises(InputError, match="export the model again"):
        load_inference_model(onnx_dir, num_frames=tiny[0].cfg.num_frames + 1)
    with pytest.raises(InputError, match="format must be"):
        xclip.export_model(tiny[0], tmp_path / "x", format="tflite")


def test_damaged_export_is_one_clear_error(onnx_dir, tmp_path):
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(onnx_dir, broken)
    (broken / "head.onnx").unlink()
    with pytest.raises(InputError, match="head graph"):
        load_inference_model(broken)


def test_execution_providers_by_device(monkeypatch):
    import onnxruntime as ort

    from xclip.export.runtime import onnx_providers

    assert onnx_providers(torch.device("cpu")) == ["CPUExecutionProvider"]
    monkeypatch.setattr(ort, "get_available_providers", lambda: ["CPUExecutionProvider"])
    with pytest.raises(InputError, match="pip install onnxruntime-gpu"):
        onnx_providers(torch.device("cuda"))
    monkeypatch.setattr(
        ort,
        "get_available_providers",
        lambda: ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"],
    )
    assert onnx_providers(torch.device("cuda:0"))[:2] == [
        "TensorrtExecutionProvider",
        "CUDAExecutionProvider",
    ]
    with pytest.raises(InputError, match="cpu or cuda"):
        onnx_providers(torch.device("meta"))


@pytest.mark.slow
def test_int8_export_keeps_the_ranking_close(tiny, onnx_dir, tmp_path):
    out = xclip.export_model(tiny[0], tmp_path / "int8", quantize="int8")
    exported = load_inference_model(out)
    assert read_manifest(out).quantization == "int8-dynamic"
    assert (out / "video.onnx").stat().st_size < 0.6 * (onnx_dir / "video.onnx").stat().st_size
    err = _max_logit_error(tiny[0], exported, 2, 4)
    assert 0 < err < 1.0  # quantised: not exact, but close (logits are scaled cosines, ~+-14)
    # other weights, another fingerprint: a resumed job or an index never mixes int8 rows with
    # the fp32 rows of its source (the fp32 export keeps the source's: the same weights)
    fp32 = model_fingerprint(load_inference_model(onnx_dir))
    assert fp32 == model_fingerprint(tiny[0])
    assert model_fingerprint(exported) != fp32
    assert read_manifest(out).source_fingerprint == fp32


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["onnx", "pt2"])
def test_b32_8f_export_matches_eager(fmt, tmp_path):
    torch.manual_seed(0)
    model = xclip.create_model("xclip_b32_8f").eval()
    out = xclip.export_model(model, tmp_path / fmt, format=fmt)
    exported = load_inference_model(out)
    for b, k in [(1, 3), (2, 10)]:
        assert _max_logit_error(model, exported, b, k) < 1e-4


@pytest.mark.slow
def test_bench_model_has_onnx_runtime_rows(tmp_path, capsys):
    pytest.importorskip("transformers")
    out = tmp_path / "bench.json"
    argv = ["bench", "model", "--arch", "xclip_test", "--repeats", "1", "--warmup", "1"]
    assert main([*argv, "--dtypes", "fp32", "--no-peak", "--json", str(out)]) == 0
    res = json.loads(out.read_text())
    names = {f"{r['impl']} {r['dtype']} {r['text']}" for r in res["results"]}
    assert {"ort fp32 cached", "ort fp32 uncached", "ort int8 cached", "hf fp32 cached"} <= names
    assert res["targets"]["ort_fp32_cached_vs_ours_fp32_cached >= 1.3"]["median"] > 0
    assert res["top1"]["vs_reference"]["ort fp32"]["max_abs_logit_diff"] < 1e-4
    assert "ort int8" in capsys.readouterr().out


@pytest.mark.slow
def test_litserve_example_serves_an_export_on_localhost(onnx_dir, small_clip):
    """docs/examples/litserve_server.py on 127.0.0.1 answers as VideoClassifier does."""
    pytest.importorskip("litserve")
    import base64
    import os
    import signal
    import socket
    import subprocess
    import sys
    import time
    import urllib.request
    from pathlib import Path

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    script = Path(__file__).resolve().parents[1] / "docs" / "examples" / "litserve_server.py"
    proc = subprocess.Popen(
        [sys.executable, str(script), str(onnx_dir), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # LitServe starts worker processes: stop them with it
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as r:
                    if r.status == 200 and r.read().strip() == b"ok":
                        break
            except OSError:
                pass
            assert proc.poll() is None, proc.stdout.read().decode(errors="replace")
            assert time.monotonic() < deadline, "the server did not come up in 120 s"
            time.sleep(0.5)
        body = json.dumps({"video": base64.b64encode(small_clip.read_bytes()).decode(), "top_k": 2})
        req = urllib.request.Request(
            f"{url}/predict", body.encode(), {"content-type": "application/json"}
        )
        with urllib.request.urlopen(req, timeout=60) as r:
            got = json.loads(r.read())
        want = VideoClassifier(onnx_dir, LABELS)(small_clip)
        assert got["labels"] == list(want.labels[:2])
        assert got["probs"] == pytest.approx(want.probs[:2], abs=1e-5)
        bad = urllib.request.Request(
            f"{url}/predict", b'{"video": "not base64!"}', {"content-type": "application/json"}
        )
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(bad, timeout=30)
        assert e.value.code == 400
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)


def test_an_exported_model_pickles_as_its_folder_and_is_never_compiled(onnx_dir, tiny):
    """Issue 20: `--engine ray` pickled an ONNX Runtime session (exit 70), and `--compile on`
    sent an exported folder through torch.compile. An ExportedModel now pickles as its folder
    (each worker loads it), and only an XCLIP is ever compiled."""
    import pickle

    from xclip.inference.pipeline import VideoPipeline

    m = ExportedModel(onnx_dir)
    again = pickle.loads(pickle.dumps(m))
    assert isinstance(again, ExportedModel) and again.folder == m.folder
    cfg = m.cfg
    clips = torch.randn(2, cfg.num_frames, 3, cfg.image_size, cfg.image_size)
    with torch.inference_mode():
        torch.testing.assert_close(again.encode_video(clips).embeds, m.encode_video(clips).embeds)
    assert VideoPipeline(m, device="cpu", compile="auto")._encoder is None
    with pytest.raises(InputError, match="drop --compile"):
        VideoPipeline(m, device="cpu", compile=True)


def test_an_export_of_an_export_and_a_damaged_export_are_one_line(onnx_dir, tmp_path, capsys):
    """Issue 20: both were tracebacks with exit 70."""
    assert main(["export", str(onnx_dir), "-o", str(tmp_path / "again")]) == 2
    assert "already an exported folder" in capsys.readouterr().err
    damaged = tmp_path / "damaged"
    shutil.copytree(onnx_dir, damaged)
    (damaged / "video.onnx").write_bytes((onnx_dir / "video.onnx").read_bytes()[:1000])
    with pytest.raises(InputError, match="'video.onnx' cannot be loaded.*export the model again"):
        ExportedModel(damaged)
