"""Rule 7: the local server survives hostile clients and files, and stays local.

Every client here talks to a server on 127.0.0.1 (or ::1) through raw sockets, with deadlines:
slow bodies and headers, connections left half open (past the cap, and 200 of them under it),
oversize and deeply nested JSON, malformed request lines, frames above the pixel cap, a slow
file beside a quick one, playlists that point outside the served folder (picked and uploaded;
inotify proves the outside file is never opened), path traversal, foreign Host headers.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import json
import logging
import os
import select
import socket
import sys
import threading
import time
from pathlib import Path

import pytest
import torch

import xclip
from xclip.data.video import VideoDecodeError, open_video
from xclip.inference import VideoClassifier, VideoProcessor
from xclip_app.serve import ServeConfig, make_server
from xclip_app.serve import app as serve_app
from xclip_app.serve.allowed_hosts import AllowedHosts
from xclip_app.serve.api_errors import redact_paths

LABELS = ["cooking", "dancing"]
MAX_CONNECTIONS = 8
REQUEST_TIMEOUT = 1.0
BODY_TIMEOUT = 1.0

# -- the outside of the served folder, and proof that nothing opens it -------------------------


class OpenWatch:
    """inotify ``IN_OPEN`` on some files: did anyone open them since the watch started?"""

    IN_OPEN = 0x20

    def __init__(self, *paths: Path) -> None:
        name = ctypes.util.find_library("c")
        libc = ctypes.CDLL(name, use_errno=True)
        self.fd = libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        if self.fd < 0:
            raise OSError(ctypes.get_errno(), "inotify_init1")
        for p in paths:
            if libc.inotify_add_watch(self.fd, os.fsencode(p), self.IN_OPEN) < 0:
                raise OSError(ctypes.get_errno(), f"inotify_add_watch {p}")

    def opened(self) -> bool:
        try:
            return bool(os.read(self.fd, 4096))
        except BlockingIOError:
            return False

    def close(self) -> None:
        os.close(self.fd)


@pytest.fixture
def watch():
    if not sys.platform.startswith("linux"):
        pytest.skip("inotify (the proof that a file was never opened) is Linux only")
    made = []

    def start(*paths: Path) -> OpenWatch:
        w = OpenWatch(*paths)
        made.append(w)
        return w

    yield start
    for w in made:
        w.close()


# -- the server ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def layout(tmp_path_factory, clip_factory):
    """served/ (what the server offers) and outside/ (what no request may reach)."""
    root = tmp_path_factory.mktemp("serve_faults")
    served, outside = root / "served", root / "outside"
    (served / "sub").mkdir(parents=True)
    outside.mkdir()
    clip = clip_factory("faults_serve.mp4", 40, size=(64, 48)).read_bytes()
    ts = clip_factory("faults_serve.ts", 40, size=(64, 48)).read_bytes()
    (served / "clip.mp4").write_bytes(clip)
    (served / "sub" / "second.mkv").write_bytes(
        clip_factory("faults_serve.mkv", 40, size=(64, 48)).read_bytes()
    )
    (served / "broken.mp4").write_text("not a video\n")
    (served / "notes.txt").write_text("a note\n")
    (served / "hidden.bin").write_bytes(clip)  # a video, but not listed (no video extension)
    (outside / "marker.mp4").write_bytes(clip)
    (outside / "marker.ts").write_bytes(ts)
    # a playlist with a video extension whose entry, a link, leads out of the folder
    os.symlink(outside / "marker.mp4", served / "link.bin")
    (served / "playlist.mp4").write_text("ffconcat version 1.0\nfile link.bin\n")
    # an HLS playlist naming the outside file by absolute path
    (served / "evil.m3u8").write_text(
        "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXTINF:1.0,\n"
        f"{outside / 'marker.ts'}\n#EXT-X-ENDLIST\n"
    )
    os.symlink(served / "notes.txt", served / "fake.mp4")  # a video name for a text file
    os.symlink(outside, served / "linkdir")  # a folder link out of the folder
    os.symlink(served / "loop.mp4", served / "loop.mp4")  # a symlink loop
    return root


def _start(layout, host="127.0.0.1", **overrides) -> object:
    torch.manual_seed(0)
    clf = VideoClassifier(xclip.create_model("xclip_test"), LABELS)
    settings = dict(
        model_name="tiny",
        labels=LABELS,
        videos_dir=layout / "served",
        max_upload_bytes=1 << 20,
        max_upload_memory_bytes=3 << 19,  # 1.5 MiB: one full upload at a time
        max_connections=MAX_CONNECTIONS,
        request_timeout=REQUEST_TIMEOUT,
        body_timeout=BODY_TIMEOUT,
        allow_hosts=["box.example"],
    )
    cfg = ServeConfig(**(settings | overrides))
    srv = make_server(clf, cfg, host, 0)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    return srv


@pytest.fixture(scope="module")
def server(layout):
    srv = _start(layout)
    yield srv
    srv.shutdown()
    srv.server_close()


@pytest.fixture
def quiet(server):
    """Each test starts with no connection open (an earlier test's may still be timing out)."""
    deadline = time.monotonic() + 10
    while server.connections or server.held_bytes:
        assert time.monotonic() < deadline, "connections of an earlier test never closed"
        time.sleep(0.05)
    return server


# -- raw HTTP -----------------------------------------------------------------------------------


def connect(server, timeout: float = 10.0) -> socket.socket:
    host, port = server.server_address[:2]
    s = socket.create_connection((host, port), timeout=timeout)
    return s


def read_response(sock: socket.socket, timeout: float = 10.0):
    """``(status, headers, body)`` of one answer; ``None`` if the server closed without one."""
    deadline = time.monotonic() + timeout
    data = b""
    while b"\r\n\r\n" not in data:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            return None if not data else pytest.fail(f"half an answer: {data[:200]!r}")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, v in (ln.split(":", 1) for ln in lines[1:])}
    n = int(headers.get("content-length", "0"))
    while len(body) < n:
        assert time.monotonic() < deadline, "the answer's body never arrived"
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        chunk = sock.recv(65536)
        assert chunk, "the answer was cut short"
        body += chunk
    return status, headers, body[:n]


def exchange(server, raw: bytes, timeout: float = 10.0):
    with contextlib.closing(connect(server, timeout)) as s:
        s.sendall(raw)
        return read_response(s, timeout)


def request(server, method, path, body=b"", headers=None, timeout=60.0):
    host, port = server.server_address[:2]
    hdrs = {"Host": f"127.0.0.1:{port}", "Content-Length": str(len(body))} | (headers or {})
    head = f"{method} {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in hdrs.items())
    return exchange(server, head.encode() + b"\r\n" + body, timeout)


def pick(server, video, **extra):
    body = json.dumps({"video": video} | extra).encode()
    return request(server, "POST", "/api/classify", body, {"Content-Type": "application/json"})


def upload(server, data: bytes, name="up.mp4"):
    return request(
        server, "POST", f"/api/classify?name={name}", data, {"Content-Type": "video/mp4"}
    )


def json_error(answer, status: int | tuple[int, ...]) -> str:
    """The message of a JSON error answer with ``status``."""
    assert answer is not None, "the server closed the connection without an answer"
    code, headers, body = answer
    assert code in (status if isinstance(status, tuple) else (status,)), (code, body[:300])
    assert headers["content-type"].startswith("application/json"), headers
    doc = json.loads(body)
    assert doc["status"] == code and doc["error"] and "\n" not in doc["error"]
    return doc["error"]


# -- slow clients -------------------------------------------------------------------------------


def _trickle(sock: socket.socket, head: bytes, byte: bytes, limit: float) -> float:
    """Send ``head``, then ``byte`` every 0.1 s until the server answers or closes; returns the
    seconds it took (fails past ``limit``)."""
    t0 = time.monotonic()
    sock.sendall(head)
    while time.monotonic() - t0 < limit:
        if select.select([sock], [], [], 0.1)[0]:
            return time.monotonic() - t0
        try:
            sock.send(byte)
        except (BrokenPipeError, ConnectionResetError):
            return time.monotonic() - t0
    pytest.fail(f"the server still waited for the slow client after {limit} s")


def test_a_slow_body_is_cut_off_with_408(quiet):
    server = quiet
    port = server.server_address[1]
    head = (
        f"POST /api/classify HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        "Content-Type: video/mp4\r\nContent-Length: 100000\r\n\r\n"
    ).encode()
    with contextlib.closing(connect(server)) as s:
        took = _trickle(s, head, b"x", limit=10)
        msg = json_error(read_response(s), 408)
    # body_timeout (1 s) + 100 kB at MIN_UPLOAD_RATE (0.4 s), not the 100,000 s the trickle needs
    assert took < 5 and "did not arrive" in msg


def test_slow_headers_are_cut_off(quiet):
    server = quiet
    with contextlib.closing(connect(server)) as s:
        took = _trickle(s, b"GET /api/health HTTP/1.1\r\nX-Slow: ", b"a", limit=10)
        json_error(read_response(s), 408)
    assert took < REQUEST_TIMEOUT + 3


def test_an_idle_connection_is_closed(quiet):
    with contextlib.closing(connect(quiet)) as s:
        t0 = time.monotonic()
        assert read_response(s) is None  # nothing sent, nothing to answer: just closed
        assert time.monotonic() - t0 < REQUEST_TIMEOUT + 3


def test_many_half_open_connections(quiet):
    server = quiet
    threads_before = threading.active_count()
    socks = []
    try:
        for _ in range(3 * MAX_CONNECTIONS):
            s = connect(server)
            s.sendall(b"GET /api/he")  # half a request line, then nothing
            socks.append(s)
        # past the cap, connections get a quick 503 (or, racing the request, a reset) and are
        # closed: no thread each
        answered = 0
        for s in socks[MAX_CONNECTIONS:]:
            try:
                answer = read_response(s, timeout=3)  # TimeoutError: still open, a failure
            except ConnectionResetError:
                answer = None
            if answer is not None:
                assert "--max-connections" in json_error(answer, 503)
                assert answer[1]["retry-after"]
                answered += 1
        assert answered >= MAX_CONNECTIONS  # most of the 2 x MAX_CONNECTIONS were answered
        assert threading.active_count() <= threads_before + MAX_CONNECTIONS + 2
        # a normal request gets through within a few seconds (the half-open ones time out)
        t0 = time.monotonic()
        while True:
            assert time.monotonic() - t0 < REQUEST_TIMEOUT + 4, "the server never answered"
            try:
                answer = request(server, "GET", "/api/health", timeout=5)
            except (ConnectionResetError, BrokenPipeError):
                answer = None
            if answer is not None and answer[0] == 200:
                break
            time.sleep(0.1)
        # and the half-open ones were told why and closed
        for s in socks[:MAX_CONNECTIONS]:
            json_error(read_response(s, timeout=REQUEST_TIMEOUT + 3), 408)
    finally:
        for s in socks:
            s.close()


def test_200_half_open_connections_do_not_delay_a_request(layout):
    """Under the default cap, waiting connections cost no thread: a request is answered at once
    while 200 others hold half a request line each."""
    srv = _start(layout, max_connections=ServeConfig.max_connections, request_timeout=30.0)
    socks = []
    try:
        for _ in range(200):
            s = connect(srv)
            s.sendall(b"GET /api/he")
            socks.append(s)
        deadline = time.monotonic() + 5
        while srv.connections < 200:
            assert time.monotonic() < deadline, f"only {srv.connections} connections open"
            time.sleep(0.02)
        t0 = time.monotonic()
        assert request(srv, "GET", "/api/health", timeout=2)[0] == 200
        assert pick(srv, "clip.mp4")[0] == 200
        assert time.monotonic() - t0 < 2
        assert srv.connections >= 200  # (all still held)
    finally:
        for s in socks:
            s.close()
        srv.shutdown()
        srv.server_close()


def test_frames_above_the_pixel_cap_are_refused_before_decoding(layout, server, monkeypatch):
    from xclip.data.video.pyav_reader import PyAVReader

    opened = []  # the first frame PyAV decodes on opening
    real = PyAVReader._first_frame
    monkeypatch.setattr(PyAVReader, "_first_frame", lambda r: opened.append(r) or real(r))
    srv = _start(layout, max_pixels=64 * 48 - 1)  # the clips are 64x48
    try:
        clip = (layout / "served" / "clip.mp4").read_bytes()
        msg = json_error(upload(srv, clip, "big.mp4"), 413)
        assert "64x48 pixels" in msg and "--max-pixels" in msg
        assert "--max-pixels" in json_error(pick(srv, "clip.mp4"), 413)
        assert opened == []  # refused from the container's header: nothing was decoded
    finally:
        srv.shutdown()
        srv.server_close()
    assert pick(server, "clip.mp4")[0] == 200 and opened  # under the cap: decoded


def test_a_slow_file_does_not_stall_other_clients(quiet, monkeypatch):
    """Decoding runs outside the model's thread: while one video takes 3 s to open, another
    request is answered."""
    server = quiet
    real = serve_app.open_checked

    def slow(clf, source, name, limits):
        if name == "slow.mp4":
            time.sleep(3)
        return real(clf, source, name, limits)

    monkeypatch.setattr(serve_app, "open_checked", slow)
    clip = (server.config.videos_dir / "clip.mp4").read_bytes()
    slow_answer = []
    t = threading.Thread(target=lambda: slow_answer.append(upload(server, clip, "slow.mp4")))
    t.start()
    time.sleep(0.3)
    t0 = time.monotonic()
    assert pick(server, "clip.mp4")[0] == 200
    assert time.monotonic() - t0 < 2
    t.join(30)
    assert slow_answer and slow_answer[0][0] == 200


# -- sizes and bodies ---------------------------------------------------------------------------


def test_oversize_body_is_refused_before_it_is_read(quiet):
    port = quiet.server_address[1]
    head = (
        f"POST /api/classify HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Content-Type: video/mp4\r\nContent-Length: {50 << 20}\r\n\r\n"
    ).encode()
    t0 = time.monotonic()
    assert "--max-upload-mb" in json_error(exchange(quiet, head), 413)
    assert time.monotonic() - t0 < 3
    body = json.dumps({"video": "clip.mp4", "labels": ["x" * 70000]}).encode()
    assert "limit" in json_error(
        request(quiet, "POST", "/api/classify", body, {"Content-Type": "application/json"}), 413
    )


def test_upload_bytes_held_at_once_are_capped(quiet):
    server = quiet
    port = server.server_address[1]
    n = 1 << 20
    head = (
        f"POST /api/classify HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Content-Type: video/mp4\r\nContent-Length: {n}\r\n\r\n"
    ).encode()
    with contextlib.closing(connect(server)) as first:
        first.sendall(head + b"\0" * 1000)  # 1 MiB reserved, 1 kB sent so far
        deadline = time.monotonic() + 5
        while server.held_bytes < n:
            assert time.monotonic() < deadline, "the first upload was never counted"
            time.sleep(0.02)
        msg = json_error(exchange(server, head), 503)  # a second 1 MiB upload does not fit
        assert "--max-upload-memory-mb" in msg
        small = json_error(upload(server, b"not a video" * 10), 422)  # a small one still does
        assert "could not be read" in small
    deadline = time.monotonic() + 10
    while server.held_bytes:  # the first one's client left: its bytes are released
        assert time.monotonic() < deadline, "held upload bytes were never released"
        time.sleep(0.05)


def test_deeply_nested_json_is_a_400(quiet):
    for body in (b"[" * 60000, b'{"a":' * 10000 + b"1" + b"}" * 10000):
        answer = request(quiet, "POST", "/api/classify", body, {"Content-Type": "application/json"})
        assert "nested too deeply" in json_error(answer, 400)
    assert request(quiet, "GET", "/api/health")[0] == 200  # and the server is fine


# -- malformed requests: always a 4xx JSON answer ------------------------------------------------

_LONG = "a" * 70000


@pytest.mark.parametrize(
    "raw, status",
    [
        (b"HELLO\r\n\r\n", 400),  # no method, no path
        (b"GET / HTTP/1.1 extra\r\n\r\n", 400),
        (b"GET / HTTP/1.x\r\nHost: 127.0.0.1\r\n\r\n", 400),
        (b"GET / HTTP/9.9\r\nHost: 127.0.0.1\r\n\r\n", 400),  # h11 parses any d.d
        (b"GET /\r\n\r\n", 400),  # HTTP/0.9
        (b"PUT /api/classify HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", 405),
        (b"BREW /pot HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", 405),
        (b"OPTIONS * HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", 405),
        (f"GET /{_LONG} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode(), 431),  # (the head)
        (f"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Long: {_LONG}\r\n\r\n".encode(), 431),
        (b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n" + b"X-A: b\r\n" * 101 + b"\r\n", 431),
        (b"GET http://[/x HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", 404),
        (b"GET /api/health HTTP/1.1\r\n\r\n", 400),  # no Host: h11 refuses HTTP/1.1 without
        (b"POST /api/classify HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: video/mp4\r\n"
         b"Content-Length: 1_0\r\n\r\n", 400),
        (b"POST /api/classify HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: video/mp4\r\n"
         b"Content-Length: 5\r\nContent-Length: 6\r\n\r\nabcdef", 400),
        (b"POST /api/classify HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: video/mp4\r\n"
         b"Content-Length: -5\r\n\r\n", 400),
        (b"POST /api/classify HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: video/mp4\r\n"
         b"Transfer-Encoding: chunked\r\n\r\n5\r\nabcde\r\n0\r\n\r\n", 411),
    ],
)  # fmt: skip
def test_malformed_requests_get_a_json_4xx(quiet, raw, status):
    answer = exchange(quiet, raw)
    json_error(answer, status)
    assert b"<html" not in answer[2].lower()
    if status == 405:
        assert "GET" in answer[1]["allow"]


def test_a_body_cut_short_is_dropped(quiet):
    # (uvicorn closes a connection whose client half-closed it: no answer can be sent; what
    # matters is that the request ends and its bytes are released)
    server = quiet
    port = server.server_address[1]
    with contextlib.closing(connect(server)) as s:
        s.sendall(
            f"POST /api/classify HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            "Content-Type: video/mp4\r\nContent-Length: 1000\r\n\r\nonly this".encode()
        )
        s.shutdown(socket.SHUT_WR)
        assert read_response(s) is None
    deadline = time.monotonic() + 5
    while server.held_bytes or server.connections:
        assert time.monotonic() < deadline, "the cut request was never released"
        time.sleep(0.05)


def _raise(exc: BaseException):
    def f(*args, **kwargs):
        raise exc

    return f


def test_a_bug_is_a_logged_500_and_never_bad_data(quiet, monkeypatch, caplog):
    server = quiet
    clf = server.classifier
    # a TypeError in the (batched) model call: a bug
    monkeypatch.setattr(clf, "predict_batch", _raise(TypeError("bug")))
    with caplog.at_level(logging.ERROR, logger="xclip_app.serve.app"):
        answer = pick(server, "clip.mp4")
    assert json_error(answer, 500).startswith("internal error")
    assert any(r.exc_info and r.exc_info[0] is TypeError for r in caplog.records)
    monkeypatch.undo()
    # out of memory while preprocessing a readable video: not "could not be read as a video"
    for where in ("preprocess", "sample_indices"):  # (the second runs while decoding)
        monkeypatch.setattr(VideoProcessor, where, _raise(RuntimeError("CUDA out of memory")))
        msg = json_error(pick(server, "clip.mp4"), 500)
        assert "could not be read" not in msg and "memory" not in msg
        monkeypatch.undo()
    # a bug behind a GET answers too (the standard library would close without a word)
    monkeypatch.setattr(server.service.folder, "list_videos", _raise(ZeroDivisionError()))
    assert json_error(request(server, "GET", "/api/info"), 500).startswith("internal error")
    monkeypatch.undo()
    answer = pick(server, "clip.mp4")
    assert answer[0] == 200, answer


# -- what may be read: listed videos only, FFmpeg kept to the one file ---------------------------


def test_the_reader_restriction_itself(layout, watch):
    served, outside = layout / "served", layout / "outside"
    w = watch(outside / "marker.ts", outside / "marker.mp4")
    with pytest.raises(VideoDecodeError, match="playlists"):
        open_video(served / "evil.m3u8", untrusted=True)
    with pytest.raises(VideoDecodeError, match="playlists"):
        open_video(served / "playlist.mp4", untrusted=True)
    assert not w.opened()
    # without the restriction, FFmpeg follows both playlists out of the folder (the threat)
    with open_video(served / "evil.m3u8") as r:
        assert r.num_frames == 40
    assert w.opened()
    with open_video(served / "playlist.mp4") as r:
        assert r.num_frames == 40
    assert w.opened()
    # real videos decode the same with it
    for name in ("clip.mp4", "sub/second.mkv"):
        with open_video(served / name, untrusted=True) as a, open_video(served / name) as b:
            assert (a.get_frames([0, 20, 39]) == b.get_frames([0, 20, 39])).all()
    with open_video((served / "clip.mp4").read_bytes(), untrusted=True) as r:
        assert r.num_frames == 40
    with pytest.raises(ValueError, match="pyav"):
        open_video(served / "clip.mp4", "decord", untrusted=True)


def test_a_playlist_in_the_folder_cannot_read_outside_it(quiet, layout, watch):
    outside = layout / "outside"
    w = watch(outside / "marker.ts", outside / "marker.mp4")
    # listed (a video name), but an ffconcat playlist whose entry leads outside
    msg = json_error(pick(quiet, "playlist.mp4"), 422)
    assert "playlist.mp4 could not be read as a video" in msg and "playlists" in msg
    # not listed: an HLS playlist, and the link the concat playlist uses
    json_error(pick(quiet, "evil.m3u8"), 404)
    json_error(pick(quiet, "link.bin"), 403)  # (it leads out of the folder)
    assert not w.opened()


def test_an_uploaded_playlist_cannot_read_files(quiet, layout, watch, monkeypatch):
    outside = layout / "outside"
    monkeypatch.chdir(outside)  # a relative entry would be read from the server's folder
    w = watch(outside / "marker.ts", outside / "marker.mp4")
    concat = b"ffconcat version 1.0\nfile marker.mp4\n"
    hls = (
        f"#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:1.0,\n{outside / 'marker.ts'}\n#EXT-X-ENDLIST\n"
    ).encode()
    for data, name in ((concat, "list.mp4"), (hls, "list.m3u8")):
        assert "could not be read as a video" in json_error(upload(quiet, data, name), 422)
    assert not w.opened()
    with open_video(concat) as r:  # the threat: without the restriction it reads marker.mp4
        assert r.num_frames == 40
    assert w.opened()


def test_only_listed_videos_can_be_picked(quiet):
    listed = json.loads(request(quiet, "GET", "/api/info")[2])["videos"]
    assert listed == ["broken.mp4", "clip.mp4", "playlist.mp4", "sub/second.mkv"]
    for name in ("notes.txt", "hidden.bin", "fake.mp4", "evil.m3u8", "loop.mp4", "sub"):
        assert "GET /api/info lists" in json_error(pick(quiet, name), 404), name
    assert pick(quiet, "sub/second.mkv")[0] == 200


@pytest.mark.parametrize(
    "video, status",
    [
        ("../outside/marker.mp4", 403),
        ("sub/../../outside/marker.mp4", 403),
        ("./../outside/marker.mp4", 403),
        ("linkdir/marker.mp4", 403),  # a folder link out of the folder
        ("/etc/passwd", 403),
        ("..\\outside\\marker.mp4", 404),  # a name with backslashes on POSIX: no such file
        ("%2e%2e/outside/marker.mp4", 404),
        ("clip.mp4\x00.txt", 403),
        ("a" * 5000 + ".mp4", 400),
        ("x/" * 300 + "clip.mp4", 404),
        (["clip.mp4"], 400),
    ],
)
def test_path_traversal_is_refused(quiet, layout, watch, video, status):
    w = watch(layout / "outside" / "marker.mp4")
    json_error(pick(quiet, video), status)
    assert not w.opened()


# -- staying local ------------------------------------------------------------------------------


def test_host_header_allow_list(quiet):
    port = quiet.server_address[1]
    for host in ("attacker.example", f"attacker.example:{port}", "localhost.attacker.example",
                 "127.0.0.1.nip.io", "[::1", "[nope]:80", "a b"):  # fmt: skip
        msg = json_error(request(quiet, "GET", "/api/info", headers={"Host": host}), 403)
        assert "not allowed" in msg, host
    assert "--allow-host attacker.example" in json_error(
        request(quiet, "GET", "/api/info", headers={"Host": "attacker.example:80"}), 403
    )
    for host in (f"127.0.0.1:{port}", "localhost", f"LOCALHOST:{port}", f"[::1]:{port}",
                 "app.localhost", "box.example", "box.example.:80"):  # fmt: skip
        assert request(quiet, "GET", "/api/info", headers={"Host": host})[0] == 200, host


def test_binding_beyond_loopback_keeps_the_allow_list():
    # (checked on the allow-list itself: the tests never listen beyond loopback)
    hosts = AllowedHosts("0.0.0.0", ["box.example", ".corp.example"], loopback=False)
    assert not hosts.allows("attacker.example:8000")
    assert not hosts.allows("")
    for ok in ("localhost:8000", "192.168.1.5:8000", "[fe80::1]:80", socket.gethostname(),
               "box.example", "a.corp.example"):  # fmt: skip
        assert hosts.allows(ok), ok
    assert AllowedHosts("my-box.lan", loopback=False).allows("my-box.lan:8000")


def _has_ipv6_loopback() -> bool:
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.mark.skipif(not _has_ipv6_loopback(), reason="this machine has no IPv6 loopback")
def test_ipv6_loopback(layout):
    srv = _start(layout, host="::1")
    try:
        assert srv.url.startswith("http://[::1]:") and srv.loopback
        port = srv.server_address[1]
        answer = request(srv, "GET", "/api/health", headers={"Host": f"[::1]:{port}"})
        assert answer[0] == 200 and json.loads(answer[2]) == {"ok": True}
        json_error(request(srv, "GET", "/api/health", headers={"Host": "evil.example"}), 403)
    finally:
        srv.shutdown()
        srv.server_close()


# -- what error messages reveal -----------------------------------------------------------------


def test_no_absolute_path_in_any_error(quiet, layout):
    secrets = {str(layout), str(layout.resolve()), str(Path.cwd())}
    answers = [
        pick(quiet, "broken.mp4"),
        pick(quiet, "playlist.mp4"),
        pick(quiet, "missing.mp4"),
        pick(quiet, "linkdir/marker.mp4"),
        pick(quiet, "sub"),
        upload(quiet, b"garbage" * 100, "x.mp4"),
        upload(quiet, b"ffconcat version 1.0\nfile /etc/hostname\n", "y.mp4"),
        request(quiet, "GET", "/nothing"),
    ]
    for answer in answers:
        msg = json_error(answer, (403, 404, 422))
        assert not any(s in msg for s in secrets), msg
    assert "broken.mp4" in json_error(answers[0], 422)


def test_redact_paths():
    root = Path("/srv/videos")
    text = "x: Invalid data: '/srv/videos/sub/a.mp4' near /home/me/tmp/z.ts (C:\\Users\\me\\b.mp4)"
    assert redact_paths(text, root) == "x: Invalid data: 'sub/a.mp4' near z.ts (b.mp4)"
    assert redact_paths("rate 3/4 at 10 MiB/s", root) == "rate 3/4 at 10 MiB/s"
