"""``xclip-video serve`` under load and under hostile clients: today's server against the one of
an older commit (default ``15d14f4``, the hand-hardened ``http.server`` one), in the same run.

    python benchmarks/serve_load.py                      # xclip_test (random weights), 20 clients
    python benchmarks/serve_load.py --model xclip_b32_8f --rounds 3

Each server runs in its own process (``PYTHONPATH`` = ``src/`` of this checkout, or of the old
commit extracted with ``git archive``: its own library too), random weights of ``--model``
(seed 0), labels ``LABELS``, 127.0.0.1, and the same settings (``request_timeout`` 10 s,
``body_timeout`` 5 s, uploads up to 100 MiB, 200 MiB held at once); everything else is each
server's default (connection cap: 32 old, 512 new). A fresh server per scenario:

* ``load``: ``--clients`` concurrent classify uploads of a 160x120 3 s clip, ``--rounds`` rounds
  after one warm-up round: p50/p95 latency of every request, throughput (requests/s) per round;
* ``half-open``: 200 connections that each send half a request line and wait, then one
  ``/api/health`` and one classify: their status and latency;
* ``slow headers``: 50 connections sending a header byte a second, then ``/api/health``;
  ``slow body``: one upload of 1 MiB at a byte per 0.2 s: the answer and when it came;
* ``partial uploads``: 8 uploads declaring 50 MiB that send 30 MiB and stall: how many were
  refused (503), the server's RSS before, while they are held, and 2 s after they disconnect;
* ``4096x4096``: an 8-frame 4096x4096 upload: status, seconds, and the server's peak RSS above
  its RSS before (``VmHWM``, reset through ``/proc/PID/clear_refs``);
* ``malformed``: requests with broken syntax: how many were answered in JSON.

Linux only (``/proc``). Numbers vary with the machine's load: run it twice and compare.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LABELS = ["playing guitar", "riding a bike", "cooking", "dancing", "swimming"]
MIB = 1 << 20

LAUNCH = r"""
import sys, torch, xclip
from xclip.inference import VideoClassifier
from xclip_app.serve import ServeConfig, make_server
torch.manual_seed(0)
torch.set_num_threads({threads})
clf = VideoClassifier(xclip.create_model({model!r}), {labels!r})
cfg = ServeConfig(model_name={model!r}, labels={labels!r}, max_upload_bytes=100 << 20,
                  max_upload_memory_bytes=200 << 20, request_timeout=10.0, body_timeout=5.0)
srv = make_server(clf, cfg, "127.0.0.1", 0)
print("PORT", srv.server_address[1], flush=True)
srv.serve_forever()
"""


class Server:
    """One server process (``src``: the ``src/`` folder it runs from)."""

    def __init__(self, src: Path, model: str, threads: int) -> None:
        code = LAUNCH.format(model=model, labels=LABELS, threads=threads)
        env = dict(os.environ, PYTHONPATH=str(src))
        self.proc = subprocess.Popen(
            [sys.executable, "-c", code], env=env, stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL, text=True,
        )  # fmt: skip
        line = self.proc.stdout.readline()
        if not line.startswith("PORT"):
            self.proc.kill()
            raise RuntimeError(f"the server under {src} did not start: {line!r}")
        self.port = int(line.split()[1])

    def status_kb(self, key: str) -> int:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
        return 0

    def reset_peak(self) -> None:
        Path(f"/proc/{self.proc.pid}/clear_refs").write_text("5")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def post(port: int, path: str, body: bytes, timeout: float = 300) -> tuple[int, float, bytes]:
    t0 = time.perf_counter()
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        conn.request("POST", path, body=body, headers={"Content-Type": "video/mp4"})
        r = conn.getresponse()
        data = r.read()
        conn.close()
        return r.status, time.perf_counter() - t0, data
    except OSError as e:
        return 0, time.perf_counter() - t0, str(e).encode()


def get(port: int, path: str, timeout: float = 30) -> tuple[int, float]:
    t0 = time.perf_counter()
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        conn.request("GET", path)
        status = conn.getresponse().status
        conn.close()
    except OSError:
        status = 0
    return status, time.perf_counter() - t0


def raw(port: int, data: bytes, timeout: float = 10) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        out = b""
        with contextlib.suppress(OSError):
            while chunk := s.recv(65536):
                out += chunk
        return out


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


# -- scenarios ----------------------------------------------------------------------------------
def load(srv: Server, clip: bytes, clients: int, rounds: int) -> dict:
    path = "/api/classify?name=clip.mp4"
    lat, rates, errors = [], [], 0
    for r in range(rounds + 1):
        results: list = [None] * clients

        def one(i: int, out: list = results) -> None:
            out[i] = post(srv.port, path, clip)

        threads = [threading.Thread(target=one, args=(i,)) for i in range(clients)]
        t0 = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - t0
        if r == 0:
            continue  # warm-up
        errors += sum(1 for s, _, _ in results if s != 200)
        lat += [t for _, t, _ in results]
        rates.append(clients / wall)
    return {
        "p50_s": percentile(lat, 50), "p95_s": percentile(lat, 95),
        "throughput_rps": statistics.median(rates), "errors": errors,
    }  # fmt: skip


def half_open(srv: Server, clip: bytes) -> dict:
    socks = []
    for _ in range(200):
        s = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
        s.sendall(b"GET /api/he")
        socks.append(s)
    time.sleep(0.5)
    health = get(srv.port, "/api/health", timeout=30)
    status, seconds, _ = post(srv.port, "/api/classify", clip)
    t0, first_ok = time.perf_counter(), None
    while first_ok is None and time.perf_counter() - t0 < 30:  # when does a request get in?
        if get(srv.port, "/api/health", timeout=5)[0] == 200:
            first_ok = time.perf_counter() - t0
        else:
            time.sleep(0.2)
    for s in socks:
        s.close()
    return {
        "health": f"{health[0]} in {health[1]:.2f} s",
        "classify": f"{status} in {seconds:.2f} s",
        "health_ok_after_s": first_ok,
    }


def slow_clients(srv: Server) -> dict:
    socks = []
    for _ in range(50):
        s = socket.create_connection(("127.0.0.1", srv.port), timeout=30)
        s.sendall(b"GET /api/health HTTP/1.1\r\nX-Slow: ")
        socks.append(s)
    stop = threading.Event()

    def trickle() -> None:
        while not stop.is_set():
            for s in socks:
                with contextlib.suppress(OSError):
                    s.send(b"a")
            time.sleep(1)

    t = threading.Thread(target=trickle, daemon=True)
    t.start()
    time.sleep(0.5)
    health = get(srv.port, "/api/health", timeout=30)
    t0 = time.perf_counter()
    closed_after = None
    while time.perf_counter() - t0 < 40:  # when were the slow ones cut off?
        if all(_closed(s) for s in socks):
            closed_after = time.perf_counter() - t0 + 0.5
            break
        time.sleep(0.25)
    stop.set()
    for s in socks:
        s.close()
    # a slow body: 1 MiB declared, a byte every 0.2 s
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=60)
    s.sendall(
        b"POST /api/classify HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: video/mp4\r\n"
        b"Content-Length: 1048576\r\n\r\n"
    )
    t0, answer = time.perf_counter(), b""
    s.settimeout(0.2)
    while time.perf_counter() - t0 < 60 and not answer:
        try:
            answer = s.recv(4096)
            break
        except TimeoutError:
            with contextlib.suppress(OSError):
                s.send(b"x")
        except OSError:
            break
    body_after = time.perf_counter() - t0
    s.close()
    status = answer.split(b" ")[1].decode() if answer.startswith(b"HTTP/") else "closed"
    return {
        "health_meanwhile": f"{health[0]} in {health[1]:.2f} s",
        "slow_headers_cut_after_s": closed_after,
        "slow_body": f"{status} after {body_after:.1f} s",
    }


def _closed(s: socket.socket) -> bool:
    try:
        s.setblocking(False)
        data = s.recv(65536)
        return data == b"" or data.startswith(b"HTTP/")
    except BlockingIOError:
        return False
    except OSError:
        return True
    finally:
        s.setblocking(True)


def partial_uploads(srv: Server) -> dict:
    before = srv.status_kb("VmRSS") / 1024
    head = (
        b"POST /api/classify HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: video/mp4\r\n"
        b"Content-Length: %d\r\n\r\n" % (50 * MIB)
    )
    socks, refused = [], 0
    chunk = b"\0" * MIB
    for _ in range(8):
        s = socket.create_connection(("127.0.0.1", srv.port), timeout=30)
        s.sendall(head)
        s.settimeout(0.3)
        try:
            if s.recv(4096).startswith(b"HTTP/1.1 503"):
                refused += 1
                s.close()
                continue
        except TimeoutError:
            pass
        s.settimeout(30)
        try:
            for _ in range(30):
                s.sendall(chunk)
        except OSError:
            refused += 1
            continue
        socks.append(s)
    time.sleep(1)
    held = srv.status_kb("VmRSS") / 1024
    for s in socks:
        s.close()
    time.sleep(2)
    after = srv.status_kb("VmRSS") / 1024
    return {
        "refused_503": refused,
        "rss_mib": f"{before:.0f} before, {held:.0f} held, {after:.0f} after",
    }


def big_frames(srv: Server, big: bytes) -> dict:
    before = srv.status_kb("VmRSS")
    srv.reset_peak()
    status, seconds, body = post(srv.port, "/api/classify?name=big.mp4", big)
    peak = (srv.status_kb("VmHWM") - before) / 1024
    return {"status": status, "seconds": round(seconds, 2), "peak_rss_above_mib": round(peak)}


MALFORMED = [
    b"HELLO\r\n\r\n",
    b"GET / HTTP/1.1 extra\r\n\r\n",
    b"GET /\r\n\r\n",
    b"BREW /pot HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
    b"GET /" + b"a" * 70000 + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n" + b"X-A: b\r\n" * 101 + b"\r\n",
    b"POST /api/classify HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: video/mp4\r\n"
    b"Content-Length: 5\r\nContent-Length: 6\r\n\r\nabcdef",
    b"POST /api/classify HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
    b"Content-Length: 60000\r\n\r\n" + b"[" * 60000,
]


def malformed(srv: Server) -> dict:
    json_answers, statuses = 0, []
    for data in MALFORMED:
        answer = raw(srv.port, data)
        head, _, body = answer.partition(b"\r\n\r\n")
        statuses.append(head.split(b" ")[1].decode() if head.startswith(b"HTTP/") else "-")
        with contextlib.suppress(ValueError):
            json_answers += isinstance(json.loads(body), dict)
    return {"json_answers": f"{json_answers}/{len(MALFORMED)}", "statuses": " ".join(statuses)}


# -- the run ------------------------------------------------------------------------------------
def old_tree(ref: str, into: Path) -> Path:
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", ref, "src"], check=True, capture_output=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into / "src"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--old-ref", default="15d14f4", help="the commit of the old server")
    p.add_argument("--model", default="xclip_test", help="architecture (random weights)")
    p.add_argument("--clients", type=int, default=20)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--threads", type=int, default=2, help="torch threads of each server")
    p.add_argument("--only", nargs="*", help="scenarios to run (default: all)")
    args = p.parse_args(argv)
    import numpy as np

    from xclip.data.synthetic import make_indexed_clip, write_video

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        make_indexed_clip(tmp / "clip.mp4", 90, size=(160, 120))
        clip = (tmp / "clip.mp4").read_bytes()
        frames = (np.full((4096, 4096, 3), 30 * i, np.uint8) for i in range(8))
        write_video(tmp / "big.mp4", frames, preset="ultrafast", crf=40)
        big = (tmp / "big.mp4").read_bytes()
        print(f"4096x4096 x 8 frames upload: {len(big) / 1024:.0f} KiB", flush=True)
        trees = {"old": old_tree(args.old_ref, tmp), "new": REPO / "src"}
        scenarios = {
            "load": lambda s: load(s, clip, args.clients, args.rounds),
            "half-open": lambda s: half_open(s, clip),
            "slow clients": slow_clients,
            "partial uploads": partial_uploads,
            "4096x4096": lambda s: big_frames(s, big),
            "malformed": malformed,
        }
        for name, fn in scenarios.items():
            if args.only and name not in args.only:
                continue
            for which, src in trees.items():
                srv = Server(src, args.model, args.threads)
                try:
                    get(srv.port, "/api/health")
                    result = fn(srv)
                finally:
                    srv.stop()
                print(f"{name:16} {which}: {json.dumps(result)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
