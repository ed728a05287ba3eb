"""The Live view of ``xclip-video serve --live``: its routes, the event stream (order, label
changes, slow and stalled clients, the client cap, shutdown with open streams), the frame, the
command line, a live source killed and restarted, and the page in headless Chromium."""

from __future__ import annotations

import asyncio
import http.client
import io
import json
import os
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
from serve_requests import request
from xclip.data.synthetic import write_video
from xclip.inference import VideoClassifier
from xclip_app.cli import main
from xclip_app.serve import ServeConfig, make_server
from xclip_app.serve.event_stream import EventHub
from xclip_app.serve.live_view import LiveView, shown_source

LABELS = ["dark", "bright"]
WRITER = Path(__file__).with_name("stream_writer.py")
SETTINGS = dict(window=0.5, stride=0.25, threshold=0.3, release=0.2, min_duration=0.0)


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return xclip.create_model("xclip_test")


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    """120 s at 25 fps, 64x48 (long enough to play through every test that uses it)."""
    frames = np.random.default_rng(0).integers(0, 40, (3000, 48, 64, 3), dtype=np.uint8)
    frames[::50] += 150  # (a flash every 2 s: the frames differ)
    path = tmp_path_factory.mktemp("live") / "clip.mp4"
    return Path(write_video(path, frames, fps=25))


class Served:
    def __init__(self, srv, view, thread):
        self.srv, self.view, self.thread = srv, view, thread
        self.host, self.port = srv.server_address[:2]

    def request(self, method, path, body=None, headers=None):
        return request(self.srv, method, path, body, headers, timeout=30)

    def post_labels(self, labels, ctype="application/json"):
        body = labels if isinstance(labels, bytes) else json.dumps({"labels": labels})
        return self.request("POST", "/api/live/labels", body, {"Content-Type": ctype})

    def events(self, timeout=30.0) -> EventReader:
        return EventReader(self.host, self.port, timeout)

    def stop(self):
        self.srv.shutdown()
        self.srv.server_close()


class EventReader:
    """A client of /api/live/events that parses the server-sent events as they come."""

    def __init__(self, host, port, timeout):
        self.conn = http.client.HTTPConnection(host, port, timeout=timeout)
        self.conn.request("GET", "/api/live/events")
        self.response = self.conn.getresponse()
        self.status = self.response.status

    def next(self) -> tuple[str, dict] | None:
        kind, data = None, []
        while True:
            line = self.response.readline()
            if not line:
                return None  # the stream ended
            line = line.decode().rstrip("\n")
            if line.startswith("event: "):
                kind = line[7:]
            elif line.startswith("data: "):
                data.append(line[6:])
            elif line == "" and kind is not None:
                return kind, json.loads("\n".join(data))

    def until(self, pred, timeout=30.0) -> list[tuple[str, dict]]:
        seen, deadline = [], time.monotonic() + timeout
        while time.monotonic() < deadline:
            ev = self.next()
            assert ev is not None, "the stream ended"
            seen.append(ev)
            if pred(ev, seen):
                return seen
        raise AssertionError(f"not seen in {timeout} s: {[k for k, _ in seen][-20:]}")

    def close(self):
        self.conn.close()


def serve_live(model, source, *, max_clients=32, **settings) -> Served:
    clf = VideoClassifier(model, LABELS, device="cpu")
    live_clf = VideoClassifier(model, LABELS, device="cpu", compile=False)
    s = {**SETTINGS, "realtime": False, "timeout": 10.0, "duration": None, "options": None,
         "input_format": None, **settings}  # fmt: skip
    view = LiveView(live_clf, str(source), s, max_clients=max_clients)
    srv = make_server(clf, ServeConfig(model_name="tiny", labels=LABELS), "127.0.0.1", 0, (view,))
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    return Served(srv, view, thread)


@pytest.fixture(scope="module")
def served(model, clip):
    s = serve_live(model, clip, realtime=True)
    yield s
    s.stop()


def _windows(events):
    return [d for k, d in events if k == "window"]


# -- the routes --------------------------------------------------------------------------------


def test_state_and_info(served, clip):
    status, info, _ = served.request("GET", "/api/info")
    assert status == 200 and info["live"]["source"] == "clip.mp4"  # (a file: its name only)
    assert info["live"]["labels"] == LABELS and info["live"]["stride"] == 0.25
    deadline = time.monotonic() + 30
    while True:
        status, st, _ = served.request("GET", "/api/live")
        if len(st["windows"]) >= 3 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert status == 200 and st["status"]["state"] == "playing", st["status"]
    ws = st["windows"]
    assert len(ws) >= 3 and [w["index"] for w in ws] == sorted({w["index"] for w in ws})
    assert all(sorted(w["labels"]) == sorted(LABELS) for w in ws)
    assert all(abs(sum(w["probs"]) - 1) < 1e-3 for w in ws)
    assert st["status"]["windows"] >= len(ws) and st["status"]["frame"] is not None
    # threshold 0.3 with two labels: some label is above it from the first window on
    assert st["segments"] and all(g["label"] in LABELS for g in st["segments"])


def test_events_come_in_order(served):
    ev = served.events()
    try:
        first = ev.next()
        assert first[0] == "snapshot" and first[1]["labels"] == LABELS
        seen = ev.until(lambda e, s: len(_windows(s)) >= 8)
    finally:
        ev.close()
    ws = _windows(seen)
    last_before = first[1]["windows"][-1]["index"] if first[1]["windows"] else -1
    idx = [w["index"] for w in ws]
    assert idx == sorted(idx) and len(set(idx)) == len(idx) and idx[0] > last_before
    assert [w["start"] for w in ws] == sorted(w["start"] for w in ws)
    assert all(w["end"] == pytest.approx(w["start"] + 0.5) for w in ws)
    assert all(w["latency"] >= 0 and w["wall"] > 0 for w in ws)
    frames = [d["frame"] for k, d in seen if k == "status" and d["frame"] is not None]
    assert frames and frames == sorted(frames)
    assert {k for k, _ in seen} <= {"window", "segment", "status", "labels", "source"}


def test_frame_jpeg(served):
    from PIL import Image

    status, data, headers = served.request("GET", "/api/live/frame.jpg")
    assert status == 200 and headers["Content-Type"] == "image/jpeg"
    img = Image.open(io.BytesIO(data))
    # the ring's frame: scaled as the model's preprocessing would (short side <= its resize)
    assert img.format == "JPEG" and min(img.size) <= 64 and len(data) < 20_000
    assert float(headers["X-Frame-Time"]) >= 0


def test_labels_change_while_it_streams(model, clip):
    s = serve_live(model, clip, realtime=True)
    try:
        ev = s.events()
        ev.until(lambda e, seen: len(_windows(seen)) >= 2)
        status, res, _ = s.post_labels(["a person waving", "an empty room", "a cat"])
        assert status == 200 and res["labels"] == ["a person waving", "an empty room", "a cat"]
        seen = ev.until(lambda e, seen: len(_windows(seen)) >= 3 and any(
            k == "labels" for k, _ in seen))  # fmt: skip
        changed = next(d for k, d in seen if k == "labels")
        assert changed["labels"] == ["a person waving", "an empty room", "a cat"]
        after = [w for w in _windows(seen) if w["index"] >= changed["from_window"]]
        assert after and all(sorted(w["labels"]) == sorted(changed["labels"]) for w in after)
        # the segments of the labels no longer asked for end there
        ended = [d for k, d in seen if k == "segment" and not d["open"]]
        assert {d["label"] for d in ended} & set(LABELS)
        ev.close()
        assert s.request("GET", "/api/live")[1]["labels"] == changed["labels"]
    finally:
        s.stop()


@pytest.mark.parametrize(
    "body, ctype, code, says",
    [
        (["run", "Run"], "application/json", 400, "duplicate"),
        ([], "application/json", 400, "label"),
        (["a", ""], "application/json", 400, "empty"),
        ("a,b", "application/json", 400, "list of strings"),
        ([f"label {i}" for i in range(1001)], "application/json", 400, "at most 1000"),
        (b"{nope", "application/json", 400, "not valid JSON"),
        (b"[" * 50_000 + b"]" * 10_000, "application/json", 400, "JSON"),
        (b"x" * (65 * 1024), "application/json", 413, "limit"),
        (["a"], "text/plain", 415, "application/json"),
        (b'{"other": 1}', "application/json", 400, '{"labels"'),
    ],
)
def test_bad_labels_are_400_json(served, body, ctype, code, says):
    if isinstance(body, list | str):
        body = json.dumps({"labels": body}).encode()
    status, res, _ = served.post_labels(body, ctype)
    assert status == code, res
    assert says in res["error"] and res["status"] == code
    assert served.view.labels == tuple(LABELS)  # (unchanged on refusal)


def test_event_hub_drops_old_windows_for_a_slow_client():
    """Unit: a client that reads nothing keeps at most queue_size events; what it lost is
    counted and told before its next event; events that matter are kept over windows."""

    async def scenario():
        hub = EventHub(max_clients=2, queue_size=8, keepalive=60, droppable=("window",))
        response = hub.response([("snapshot", {})])
        stream = response.body_iterator
        assert (await stream.__anext__()).startswith(b"retry:")
        hub.publish("segment", {"n": -1})
        for i in range(10_000):
            hub.publish("window", {"n": i})
        assert hub.queued() == 8 and hub.dropped == 10_000 - 7
        chunk = (await stream.__anext__()).decode()
        assert chunk.startswith('event: lost\ndata: {"events":9993}')
        assert '"n":-1' in chunk and '"n":9999' in chunk and '"n":9992' not in chunk
        hub.response([])  # the second client
        with pytest.raises(Exception) as e:
            hub.response([])
        assert e.value.status == 503 and hub.refused == 1
        hub.close()
        with pytest.raises(StopAsyncIteration):
            await stream.__anext__()

    asyncio.run(scenario())


def test_clients_that_never_read_do_not_stall_the_others(model, clip):
    """Streams of clients that read nothing: the model thread and a reading client go on at
    full pace, the queues stay bounded, and the connection's send deadline drops them."""
    s = serve_live(model, clip, realtime=True)
    s.srv.limits.send_timeout = 2.0
    try:
        # 1000 labels: a window event is ~20 kB, so a stalled socket fills within seconds
        assert s.post_labels([f"label number {i}" for i in range(1000)])[0] == 200
        reader = s.events()
        reader.until(lambda e, seen: e[0] == "labels", timeout=30)
        stalled = []
        for _ in range(10):
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 2048)
            sock.connect((s.host, s.port))
            sock.sendall(b"GET /api/live/events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            stalled.append(sock)
        t0 = time.monotonic()
        deadline = t0 + 30
        walls, peak_queued, peak_clients = [], 0, 0
        while time.monotonic() < deadline:
            kind, data = reader.next()
            if kind == "window":
                walls.append(time.monotonic())
            peak_queued = max(peak_queued, s.view.hub.queued())
            peak_clients = max(peak_clients, s.view.hub.clients)
            if s.view.hub.clients == 1 and time.monotonic() - t0 > 3:
                break
        assert peak_clients == 11
        assert s.view.hub.clients == 1, "the stalled clients were not dropped"
        assert peak_queued <= 11 * s.view.hub.queue_size
        gaps = np.diff(walls)
        assert len(walls) >= 8 and gaps.max() < 2.0, gaps  # stride 0.25 s: no stall
        reader.close()
        for sock in stalled:
            sock.close()
    finally:
        s.stop()


def test_the_client_cap_and_slots_given_back(model, clip):
    s = serve_live(model, clip, realtime=True, max_clients=2)
    try:
        a, b = s.events(), s.events()
        assert a.status == b.status == 200
        status, res, headers = s.request("GET", "/api/live/events")
        assert status == 503 and "2 event streams" in res["error"] and headers["Retry-After"]

        # opening and closing streams in a loop gives every slot back (once the server has
        # seen the client go: a disconnect arrives a moment after the close)
        def slot_free():
            deadline = time.monotonic() + 5
            while s.view.hub.clients > 1 and time.monotonic() < deadline:
                time.sleep(0.01)
            return s.view.hub.clients == 1

        a.close()
        for _ in range(30):
            assert slot_free()
            c = s.events()
            assert c.status == 200
            c.close()
        assert slot_free()
        b.close()
    finally:
        s.stop()


def test_shutdown_with_open_streams_is_quick(model, clip):
    s = serve_live(model, clip, realtime=True)
    readers = [s.events() for _ in range(3)]
    for r in readers:
        assert r.next()[0] == "snapshot"
    t0 = time.monotonic()
    s.srv.shutdown(timeout=15)
    took = time.monotonic() - t0
    s.srv.server_close()
    assert not s.thread.is_alive() and took < 3.0, took
    for r in readers:  # each stream ended cleanly (the chunked answer's end)
        while (e := r.next()) is not None:
            assert e[0] in ("window", "status", "segment", "source")
        r.close()
    assert not s.view._thread.is_alive()  # noqa: SLF001 (the watcher's thread ended too)


def test_shown_source_hides_credentials():
    assert shown_source("rtsp://admin:secret@cam.local:554/live?token=x") == (
        "rtsp://cam.local:554/live"
    )
    assert shown_source("/home/someone/videos/door.mp4") == "door.mp4"
    assert shown_source("/dev/video0") == "/dev/video0" and shown_source("-") == "stdin"


# -- the command line --------------------------------------------------------------------------


def test_serve_live_command_errors(capsys, tmp_path):
    def run(*argv):
        rc = main(["serve", "--model", "xclip_test", "--port", "0", *argv])
        err = capsys.readouterr().err
        assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
        return rc, err

    # what watch says of a file that is not there, before the model is loaded
    rc, err = run("--live", str(tmp_path / "none.mp4"))
    assert rc == 2 and "none.mp4: not a file, URL" in err
    assert main(["watch", str(tmp_path / "none.mp4"), "--labels", "a", "--model", "x"]) == 2
    assert capsys.readouterr().err.strip().endswith(err.strip().split(": ", 1)[1])
    rc, err = run("--live", "udp://127.0.0.1:9", "--realtime")
    assert rc == 2 and "--realtime paces a file" in err
    rc, err = run("--live", "-")
    assert rc == 2 and "stdin" in err
    rc, err = run("--window", "3", "--stride", "1")
    assert rc == 2 and "--window" in err and "--live" in err
    rc, err = run("--live", "x.mp4", "--threshold", "0.5", "--release", "0.6")
    assert rc == 2 and "--release 0.6 is above --threshold 0.5" in err


# -- a live source killed mid-stream and restarted -----------------------------------------------


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _writer(port: int, seconds: float) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, str(WRITER), "tcp", str(port), str(seconds)], stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    assert proc.stdout.readline().strip() == "ready"
    return proc


def test_a_source_killed_and_restarted_shows_reconnecting_then_playing(model):
    port = _port()
    first = _writer(port, 60)
    s = serve_live(model, f"tcp://127.0.0.1:{port}", timeout=15.0)
    second = None
    try:
        ev = s.events()
        ev.until(lambda e, seen: len(_windows(seen)) >= 2)
        first.kill()  # mid-stream, no goodbye
        first.wait()
        seen = ev.until(lambda e, seen: e[0] == "status" and e[1]["state"] == "reconnecting")
        assert any(k == "source" and d["event"] == "disconnected" for k, d in seen)
        second = _writer(port, 60)
        seen = ev.until(lambda e, seen: e[0] == "window", timeout=30)
        after = _windows(seen)[-1]
        status = ev.until(lambda e, seen: e[0] == "status")[-1][1]
        assert status["state"] == "playing" and status["reconnects"] >= 1
        assert after["run"] == 1  # the same run: the watcher reconnected, its clock went on
        ev.close()
    finally:
        s.stop()
        first.kill()
        if second is not None:
            second.kill()


# -- the page in headless Chromium -------------------------------------------------------------


def test_live_page_in_chromium(served):
    from test_serve import CHROMIUM, CHROMIUM_ARGS, _browser, _wait

    pw = _browser()
    with pw.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1000, "height": 1400})
            errors = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("console", lambda m: m.type == "error" and errors.append(m.text))
            page.goto(served.srv.url + "?page=live&span=30")
            assert page.is_visible("#page-live") and page.is_hidden("#page-label")
            assert page.input_value("#live-span") == "30"
            # the frame loads; the plot gains points; the state is said in words
            _wait(page, "#live-frame", "i => i.complete && i.naturalWidth > 0")
            page.wait_for_selector("#live-plot .series", timeout=30_000)
            _wait(page, "#live-plot .series", "s => Number(s.dataset.points) > 0")
            first = float(page.get_attribute("#live-plot", "data-end"))
            _wait(page, "#live-plot", f"s => Number(s.dataset.end) >= {first} + 1")  # rolls on
            assert "Playing:" in page.inner_text("#live-state")
            _wait(page, "#live-segments", "t => t.tBodies[0].rows.length > 0")
            # change the labels in the editor: the legend follows, the plot draws them
            page.fill("#live-labels", "someone waving\nan empty room")
            page.click("#live-apply")
            _wait(page, "#live-legend",
                  "l => [...l.querySelectorAll('.key')].map(k => k.dataset.label).join('|') "
                  "=== 'someone waving|an empty room'", timeout=30)  # fmt: skip
            _wait(page, "#live-plot", "s => Number(s.querySelector('.series')"
                  ".dataset.points) > 1", timeout=30)  # fmt: skip
            _wait(page, "#live-segments",
                  "t => [...t.tBodies[0].rows].some(r => r.dataset.label === 'someone waving' "
                  "|| r.dataset.label === 'an empty room')", timeout=30)  # fmt: skip
            # a bad edit is refused in words, the labels stay
            page.fill("#live-labels", "same\nSame")
            page.click("#live-apply")
            _wait(page, "#live-labels-status", "p => p.textContent.includes('duplicate')")
            assert "span=30" in page.url and "page=live" in page.url
            if os.environ.get("XCLIP_SCREENSHOT"):
                page.screenshot(path=os.environ["XCLIP_SCREENSHOT"], full_page=True)
            assert all("status of 400" in e for e in errors), errors  # (the refused edit)
        finally:
            browser.close()
    # (the labels the page set are the server's now: put them back for other tests)
    assert served.post_labels(LABELS)[0] == 200
