"""Live recognition (``xclip.live``, ``xclip-video watch``): the ring, the segmenter, the watcher's
keeping up, and real MPEG-TS streams on 127.0.0.1 (UDP, TCP, HTTP) from a PyAV writer process
(``tests/stream_writer.py``): killed and restarted, garbage bytes, a source that never sends,
Ctrl-C and SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch

import xclip
from xclip.data.synthetic import write_video
from xclip.inference import VideoClassifier
from xclip.live import FrameRing, Segmenter, Watcher, WindowResult
from xclip.ownership import is_owned
from xclip_app.cli import main

WRITER = Path(__file__).with_name("stream_writer.py")
SRC = Path(__file__).resolve().parents[1] / "src"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    return xclip.save_model(
        xclip.create_model("xclip_test"), tmp_path_factory.mktemp("watch") / "tiny"
    )


@pytest.fixture(scope="module")
def clip4s(tmp_path_factory) -> Path:
    """4 s at 25 fps, 64x48: dark for the first 2 s, bright after."""
    frames = np.zeros((100, 48, 64, 3), np.uint8)
    frames[50:] = 220
    frames += np.random.default_rng(0).integers(0, 20, frames.shape, dtype=np.uint8)
    return Path(write_video(tmp_path_factory.mktemp("clips") / "clip4s.mp4", frames, fps=25))


@pytest.fixture(scope="module")
def clip30s(tmp_path_factory) -> Path:
    """30 s at 25 fps, 64x48: long enough that a signal always arrives while it still plays."""
    frames = np.random.default_rng(1).integers(0, 40, (750, 48, 64, 3), dtype=np.uint8)
    return Path(write_video(tmp_path_factory.mktemp("clips") / "clip30s.mp4", frames, fps=25))


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _writer(proto: str, port: int, seconds: float) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, str(WRITER), proto, str(port), str(seconds)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout.readline().strip() == "ready"
    return proc


def _rows(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def _watch(capsys, *argv: str) -> tuple[int, list[dict], str]:
    code = main(["watch", *argv])
    out, err = capsys.readouterr()
    return code, _rows(out), err


# -- the pieces --------------------------------------------------------------------------------


def test_segmenter_hysteresis_min_duration_and_flush():
    seg = Segmenter(threshold=0.6, release=0.4, min_duration=1.0)
    events = []
    probs = [0.2, 0.7, 0.5, 0.45, 0.3, 0.65, 0.2, 0.9, 0.9]
    for i, p in enumerate(probs):  # slots of 0.5 s
        events += seg.update(i * 0.5, i * 0.5 + 0.5, {"wave": p, "other": 1 - p})
    rows = [(e.label, e.start, e.end, e.open) for e in events if e.label == "wave"]
    # 0.7 opens at 0.5; 0.5 and 0.45 hold it (above release); 0.3 ends it at 2.0. 0.65 alone
    # (0.5 s) is shorter than min_duration: never reported. 0.9 0.9 is open at the end.
    assert rows == [("wave", 0.5, 1.5, True), ("wave", 0.5, 2.0, False), ("wave", 3.5, 4.5, True)]
    flushed = seg.flush()
    assert [(e.label, e.start, e.end, e.open, e.peak) for e in flushed if e.label == "wave"] == [
        ("wave", 3.5, 4.5, False, 0.9)
    ]
    assert seg.open_labels == []


def test_segmenter_ends_the_segments_of_a_removed_label():
    seg = Segmenter(threshold=0.5)
    seg.update(0, 1, {"a": 0.9, "b": 0.1})
    ended = seg.update(1, 2, {"b": 0.1, "c": 0.9})
    assert [(e.label, e.end, e.open) for e in ended if not e.open] == [("a", 1, False)]


def test_live_ring_drops_the_oldest_and_stays_bounded():
    ring = FrameRing(horizon=1.0)
    img = np.zeros((2, 2, 3), np.uint8)
    for i in range(100):
        assert ring.put(i / 25, img)
    frames = ring.window(0, 10)
    assert len(frames) == 25 and frames[0].time == pytest.approx(75 / 25)
    assert ring.dropped == 75


def test_lossless_ring_waits_for_the_model():
    ring = FrameRing(horizon=1.0, lossless=True)
    img = np.zeros((2, 2, 3), np.uint8)
    for i in range(25):
        ring.put(i / 25, img)
    done = threading.Event()
    t = threading.Thread(target=lambda: (ring.put(1.0, img), done.set()))
    t.start()
    assert not done.wait(0.3)  # the ring spans its horizon: the producer waits
    ring.release(0.5)
    assert done.wait(2.0)
    t.join()
    assert ring.dropped == 0 and ring.window(0, 2)[0].time == pytest.approx(0.52)


# -- the watcher -------------------------------------------------------------------------------


def test_a_file_read_losslessly_gives_every_window(tiny, clip4s):
    clf = VideoClassifier(tiny, ["dark", "bright"], device="cpu")
    w = Watcher(clf, str(clip4s), window=1.0, stride=0.5, threshold=0.5)
    got: list = []
    w.subscribe(got.append)
    stats = w.run()
    windows = [e for e in got if isinstance(e, WindowResult)]
    assert [(x.start, x.end) for x in windows] == [(k * 0.5, k * 0.5 + 1.0) for k in range(7)]
    assert stats.skipped == 0 and stats.ended == "end" and stats.frames == 100
    assert all(x.frames == 25 for x in windows)  # [k/2, k/2 + 1) of a 25 fps clip
    assert all(sum(x.probs) == pytest.approx(1, abs=1e-5) for x in windows)


def test_labels_change_while_it_runs(tiny, clip4s):
    clf = VideoClassifier(tiny, ["dark", "bright"], device="cpu")
    w = Watcher(clf, str(clip4s), window=1.0, stride=0.5)
    seen: list = []

    def on_event(e):
        seen.append(e)
        if isinstance(e, WindowResult) and e.index == 2:
            w.set_labels(["a cat", "a dog", "a bird"])

    w.subscribe(on_event)
    w.run()
    windows = [e for e in seen if isinstance(e, WindowResult)]
    assert all(set(x.labels) == {"dark", "bright"} for x in windows[:3])
    assert all(set(x.labels) == {"a cat", "a dog", "a bird"} for x in windows[3:])
    with pytest.raises(xclip.errors.InputError):
        w.set_labels(["same", "same"])


class _SlowClassifier(VideoClassifier):
    """A model that needs 0.25 s a window: slower than the stride."""

    def predict(self, prepared, labels=None, template=None):
        time.sleep(0.25)
        return super().predict(prepared, labels, template)


def test_a_slow_model_skips_windows_and_latency_does_not_grow(tiny, clip4s):
    clf = _SlowClassifier(tiny, ["dark", "bright"], device="cpu")
    w = Watcher(clf, str(clip4s), window=0.4, stride=0.04, realtime=True)
    results: list[WindowResult] = []
    w.subscribe(lambda e: results.append(e) if isinstance(e, WindowResult) else None)
    stats = w.run()
    # 91 windows in 4 s of stream, >= 0.25 s of model each: most are skipped, and counted
    assert stats.windows + stats.skipped == 91 and stats.skipped > stats.windows
    # never a backlog: the model always takes the newest complete window, whose last frame came
    # at most a stride (and a frame) before the model was free, so a result's latency is its
    # own work and little else. Working through all 91 windows instead would end 19 s behind.
    waited = [r.latency - sum(r.timings.values()) for r in results]
    assert max(waited) < 0.5, waited


# -- the command on real streams ---------------------------------------------------------------


def _base(tiny: Path) -> list[str]:
    return ["--labels", "dark,bright", "--model", str(tiny), "--window", "1", "--stride", "0.5"]


@pytest.mark.parametrize("proto", ["udp", "tcp", "http"])
def test_watch_a_stream(proto, tiny, capsys):
    port = _port()
    url = {"udp": f"udp://127.0.0.1:{port}", "tcp": f"tcp://127.0.0.1:{port}",
           "http": f"http://127.0.0.1:{port}/live.ts"}[proto]  # fmt: skip
    if proto == "udp":  # the reader binds the port; the writer sends to it
        holder = threading.Thread(
            target=lambda: time.sleep(1.0) or _writer("udp", port, 6).wait(), daemon=True
        )
        holder.start()
    else:
        writer = _writer(proto, port, 6)
    code, rows, err = _watch(capsys, url, *_base(tiny), "--duration", "2.5", "--timeout", "5")
    assert code == 0, err
    windows = [r for r in rows if r["type"] == "window"]
    # the 4 windows up to 2.5 s: classified, or skipped (and counted) when the model was late
    starts = [w["start"] for w in windows]
    assert set(starts) <= {0.0, 0.5, 1.0, 1.5} and starts == sorted(starts)
    assert len(windows) + windows[-1]["skipped"] == 4 and len(windows) >= 2
    assert all(w["frames"] >= 20 and w["latency"] >= 0 for w in windows)
    assert "ended: duration" in err
    if proto != "udp":
        writer.kill()
        writer.wait()


def test_the_writer_killed_and_restarted(tiny, capsys, caplog):
    port = _port()
    first = _writer("tcp", port, 30)
    result: dict = {}

    def run():
        result["code"] = main(["watch", f"tcp://127.0.0.1:{port}", *_base(tiny),
                               "--duration", "8", "--timeout", "6"])  # fmt: skip

    t = threading.Thread(target=run)
    t.start()
    time.sleep(3.0)
    first.kill()  # mid-stream, no goodbye
    first.wait()
    time.sleep(1.0)
    second = _writer("tcp", port, 30)
    t.join(60)
    second.kill()
    second.wait()
    out, err = capsys.readouterr()
    windows = [r for r in _rows(out) if r["type"] == "window"]
    assert result["code"] == 0, err
    logged = [r.getMessage() for r in caplog.records]
    assert any("disconnected" in m for m in logged) and any("reconnecting" in m for m in logged)
    assert "ended: duration" in err
    # the clock went on through the outage (by the wall time it lasted): windows before and
    # after it, none twice, and the ones in the outage counted as skipped
    starts = [w["start"] for w in windows]
    assert starts == sorted(set(starts)) and starts[0] == 0.0 and starts[-1] >= 5.0
    gap = max(b - a for a, b in zip(starts, starts[1:], strict=False))
    assert gap >= 1.0 and windows[-1]["skipped"] >= 1


def test_garbage_bytes_are_one_line_and_exit_2(tiny, capsys):
    port = _port()
    writer = _writer("garbage", port, 20)
    t0 = time.monotonic()
    # FFmpeg probes a few seconds of bytes before it gives up on them: a timeout above that
    code, rows, err = _watch(capsys, f"tcp://127.0.0.1:{port}", *_base(tiny), "--timeout", "6")
    writer.kill()
    writer.wait()
    assert code == 2 and rows == []
    lines = [ln for ln in err.splitlines() if "error:" in ln]
    assert len(lines) == 1 and "no frames for 6 s" in lines[0] and "Invalid data" in lines[0]
    assert time.monotonic() - t0 < 20


@pytest.mark.parametrize("how", ["udp-nothing", "tcp-silent"])
def test_a_source_that_never_sends_ends_after_the_timeout(how, tiny, capsys):
    port = _port()
    writer = _writer("silent", port, 10) if how == "tcp-silent" else None
    url = f"{how[:3]}://127.0.0.1:{port}"
    t0 = time.monotonic()
    code, rows, err = _watch(capsys, url, *_base(tiny), "--timeout", "1.5")
    elapsed = time.monotonic() - t0
    if writer is not None:
        writer.kill()
        writer.wait()
    assert code == 2 and rows == []
    assert err.strip().splitlines()[-1].startswith(f"xclip-video watch: error: {url}: no frames")
    assert 1.5 <= elapsed < 10


def test_corrupt_packets_are_skipped(tiny, tmp_path, capsys):
    frames = np.random.default_rng(1).integers(0, 255, (100, 48, 64, 3), dtype=np.uint8)
    ts = Path(write_video(tmp_path / "clean.ts", frames, fps=25, codec="mpeg4", gop=10))
    data = bytearray(ts.read_bytes())
    rng = np.random.default_rng(2)
    for pos in rng.integers(len(data) // 4, 3 * len(data) // 4, 40):
        data[pos : pos + 40] = rng.integers(0, 255, 40, dtype=np.uint8).tobytes()
    bad = tmp_path / "corrupt.ts"
    bad.write_bytes(bytes(data))
    code, rows, err = _watch(capsys, str(bad), *_base(tiny))
    assert code == 0, err
    windows = [r for r in rows if r["type"] == "window"]
    assert windows and windows[-1]["end"] >= 3.5  # it went on to the end of the stream


def test_output_file_grows_and_is_xclips(tiny, clip4s, tmp_path, capsys):
    out = tmp_path / "rows.jsonl"
    code, rows, err = _watch(capsys, str(clip4s), *_base(tiny), "-o", str(out))
    assert code == 0 and rows == []
    written = _rows(out.read_text())
    assert [r["type"] for r in written].count("window") == 7
    assert is_owned(out)
    code, _, err = _watch(capsys, str(clip4s), *_base(tiny), "-o", str(out))
    assert code == 2 and "--overwrite" in err
    assert _watch(capsys, str(clip4s), *_base(tiny), "-o", str(out), "--overwrite")[0] == 0
    assert len(_rows(out.read_text())) == len(written)  # started afresh, not appended


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_interrupt_flushes_the_open_segments(sig, code, tiny, clip30s, tmp_path):
    """(A 4 s clip let a fast machine finish the stream before the signal arrived: exit 0.)"""
    out = tmp_path / "rows.jsonl"
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    # the tiny model puts about 0.5 on one of two labels: a low threshold keeps a segment open
    proc = subprocess.Popen(
        [sys.executable, "-m", "xclip_app.cli", "watch", str(clip30s), *_base(tiny),
         "--realtime", "--threshold", "0.05", "-o", str(out)],
        env=env, stderr=subprocess.PIPE, text=True,
        # Ctrl-C as in a terminal: a background job of a non-interactive shell (CI scripts)
        # inherits SIGINT ignored, and Python then never raises KeyboardInterrupt
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        text = out.read_text() if out.exists() else ""
        complete = text[: text.rfind("\n") + 1]  # a line being written is not read yet
        if any(r.get("open") for r in _rows(complete)):
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the stream ended before the signal could be sent"
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == code, err
    rows = _rows(out.read_text())
    closed = [r for r in rows if r["type"] == "segment" and not r["open"]]
    assert closed, rows  # the open segments were ended and written before the exit
    assert err.strip().splitlines()[-1].endswith("interrupted" if code == 130 else "(SIGTERM)")


# -- the benchmarks ----------------------------------------------------------------------------


def test_match_segments_needs_the_label_and_the_overlap():
    from xclip_app.bench.segments import TrueSegment, false_kinds, match_segments, tiou

    assert tiou(0, 2, 1, 3) == pytest.approx(1 / 3)
    truth = [TrueSegment("a", 0, 2), TrueSegment("b", 4, 6)]

    class P:
        def __init__(self, label, start, end):
            self.label, self.start, self.end = label, start, end

    # two good ones for one true segment (the better is matched), one with the wrong label,
    # one too short
    pred = [P("a", 0.2, 2.1), P("a", 4, 6), P("b", 4, 4.5), P("a", 0, 2)]
    assert match_segments(pred, truth) == {3: 0}
    assert match_segments([*pred, P("b", 4.5, 6.5)], truth) == {3: 0, 4: 1}
    more = [*pred, P("a", 2.5, 3.5)]
    assert false_kinds(more, truth, match_segments(more, truth)) == {
        "in_stills": 1, "wrong_label": 1, "misaligned": 2,
    }  # fmt: skip


def test_bench_watch_smoke(tmp_path, capsys):
    out = tmp_path / "watch.json"
    argv = ["bench", "watch", "--models", "xclip_test", "--precisions", "fp32", "--strides",
            "1", "--window", "1", "--seconds", "3", "--size", "64x48", "--fps", "10",
            "--clips-dir", str(tmp_path / "clips"), "--json", str(out)]  # fmt: skip
    assert main(argv) == 0
    assert "RTF" in capsys.readouterr().out
    (run,) = json.loads(out.read_text())["runs"]
    assert run["windows_in_stream"] == 3 and run["windows"] + run["skipped"] == 3
    assert run["windows"] >= 1 and 0 <= run["latency_p50"] <= run["latency_p95"]
    assert run["rtf"] > 0 and set(run["stage_means"]) == {"sample", "preprocess", "model"}


def test_bench_segments_smoke(tiny, tmp_path):
    from xclip_app.bench.segments import motion_stream
    from xclip_app.demo.generate import class_table

    classes = [r["name"] for r in class_table() if not r["heldout"]]
    truth = motion_stream(tmp_path / "s.mp4", classes, segments=3, seed=5)
    assert len(truth) == 3 and all(t.end - t.start == pytest.approx(2.0) for t in truth)
    assert all(a.end < b.start for a, b in zip(truth, truth[1:], strict=False))
    assert {t.label for t in truth} <= set(classes)
    out = tmp_path / "seg.json"
    argv = ["bench", "segments", "--model", str(tiny), "--segments", "2", "--work-dir",
            str(tmp_path / "w"), "--thresholds", "0.02,0.5", "--min-durations", "0",
            "--json", str(out)]  # fmt: skip
    assert main(argv) == 0
    res = json.loads(out.read_text())
    assert [g["threshold"] for g in res["grid"]] == [0.02, 0.5]
    assert all(0 <= g["found"] <= 1 and g["false_per_minute"] >= 0 for g in res["grid"])
    # a threshold below 1/40 keeps some label open all the time: segments are reported
    assert res["grid"][0]["reported"] >= 1


@pytest.mark.parametrize(
    ("source", "extra", "says"),
    [
        ("srt://127.0.0.1:9", [], "built without this protocol"),
        ("/dev/video0", ["--input-format", "no-such-demuxer"], "no-such-demuxer"),
    ],
)
def test_what_ffmpeg_cannot_open_is_one_line_at_once(source, extra, says, tiny, capsys):
    t0 = time.monotonic()
    code, rows, err = _watch(capsys, source, *_base(tiny), *extra, "--timeout", "30")
    assert code == 2 and rows == []
    assert err.strip().splitlines()[-1].startswith(f"xclip-video watch: error: {source}: cannot")
    assert says in err and time.monotonic() - t0 < 25  # not retried until the timeout


def test_a_silent_pipe_ends_after_the_timeout(tiny):
    """FFmpeg's timeout does not reach a blocking read on a pipe: the watcher gives up itself."""
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "xclip_app.cli", "watch", "-", *_base(tiny), "--timeout", "1"],
        env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        proc.wait(timeout=60)  # stdin stays open and silent (communicate() would close it)
    finally:
        proc.kill()
    out, err = proc.stdout.read(), proc.stderr.read()
    proc.stdin.close()
    assert proc.returncode == 2 and out == ""
    assert err.strip().splitlines()[-1] == "xclip-video watch: error: -: no frames for 1 s"


def test_editing_the_labels_file_changes_the_labels(tiny, clip4s, tmp_path, capsys):
    labels = tmp_path / "labels.txt"
    labels.write_text("dark\nbright\n", encoding="utf-8")
    out = tmp_path / "rows.jsonl"

    def edit():  # once the first window is out
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (out.exists() and out.read_text().strip()):
            time.sleep(0.02)
        labels.write_text("a cat\n# a comment\na dog\na bird\n", encoding="utf-8")

    t = threading.Thread(target=edit)
    t.start()
    code, _, err = _watch(capsys, str(clip4s), "--labels-file", str(labels), "--model",
                          str(tiny), "--window", "1", "--stride", "0.5", "--realtime",
                          "-o", str(out))  # fmt: skip
    t.join()
    assert code == 0, err
    rows = _rows(out.read_text())
    sets = [frozenset(p["label"] for p in r["predictions"]) for r in rows if r["type"] == "window"]
    old, new = frozenset({"dark", "bright"}), frozenset({"a cat", "a dog", "a bird"})
    assert sets[0] == old and sets[-1] == new  # changed mid-stream, once
    assert all(x == new for x in sets[sets.index(new) :])
