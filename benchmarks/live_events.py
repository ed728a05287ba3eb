"""The Live view of ``xclip-video serve --live``: how soon a window's result reaches the browsers
(with 1 and with 20 event-stream clients), and what the Live view costs in memory.

    python benchmarks/live_events.py                         # xclip_test, 1 and 20 clients, 20 s
    python benchmarks/live_events.py --model xclip_b32_8f --clients 1,20 --seconds 30

A server runs in its own process (``PYTHONPATH`` = ``src/`` of this checkout, random weights of
``--model``), its Live view on a generated 640x360, 25 fps clip paced with ``--realtime``
(window 2 s, stride 0.5 s). Each client is a thread reading ``/api/live/events``; for each window
event it receives, the latency is its arrival (``time.time()``) minus the event's ``wall`` (the
time the watcher made the result, in the server). The server's RSS (``VmRSS``) is read after the
clients ran, and for the same server started without ``--live`` (the model loaded, no request).
Linux only (``/proc``). The figures move with the machine's load: run it twice.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

SRC = Path(__file__).resolve().parents[1] / "src"


def _clip(folder: Path, seconds: float) -> Path:
    sys.path.insert(0, str(SRC))
    from xclip.data.synthetic import write_video

    n = int(seconds * 25)
    frames = np.random.default_rng(0).integers(0, 60, (n, 360, 640, 3), dtype=np.uint8)
    return Path(write_video(folder / "live.mp4", frames, fps=25))


def _server(model: str, live: Path | None) -> tuple[subprocess.Popen, int]:
    argv = [sys.executable, "-m", "xclip_app.cli", "serve", "--model", model, "--port", "0",
            "--labels", "a person waving,an empty room,a car passing,someone sitting down"]  # fmt: skip
    if live is not None:
        argv += ["--live", str(live), "--realtime", "--window", "2", "--stride", "0.5"]
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    proc = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, text=True
    )
    line = proc.stdout.readline()
    port = int(line.split("http://127.0.0.1:")[1].split("/")[0])
    return proc, port


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def _client(port: int, until: float, out: list[float]) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", "/api/live/events")
    r = conn.getresponse()
    kind = None
    while time.monotonic() < until:
        line = r.readline().decode()
        if not line:
            break
        if line.startswith("event: "):
            kind = line[7:].strip()
        elif line.startswith("data: ") and kind == "window":
            out.append(time.time() - json.loads(line[6:])["wall"])
    conn.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="xclip_test")
    ap.add_argument("--clients", default="1,20")
    ap.add_argument("--seconds", type=float, default=20.0)
    args = ap.parse_args()
    counts = [int(c) for c in args.clients.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        clip = _clip(Path(tmp), args.seconds * len(counts) + 30)
        proc, port = _server(args.model, None)
        time.sleep(3)
        rss_without = _rss_mb(proc.pid)
        proc.terminate()
        proc.wait()
        proc, port = _server(args.model, clip)
        try:
            time.sleep(3)
            for n in counts:
                until = time.monotonic() + args.seconds
                lat: list[list[float]] = [[] for _ in range(n)]
                threads = [threading.Thread(target=_client, args=(port, until, lat[i]))
                           for i in range(n)]  # fmt: skip
                for t in threads:
                    t.start()
                for t in threads:
                    t.join()
                flat = sorted(x for xs in lat for x in xs)
                p50 = statistics.median(flat) * 1e3
                p95 = flat[int(0.95 * (len(flat) - 1))] * 1e3
                print(f"{n:3d} clients: {len(flat)} window events received, latency from the "
                      f"result to a client p50 {p50:.1f} ms, p95 {p95:.1f} ms")  # fmt: skip
            rss_with = _rss_mb(proc.pid)
        finally:
            proc.terminate()
            proc.wait()
    print(f"server RSS: {rss_without:.0f} MB without --live, {rss_with:.0f} MB with it "
          f"(+{rss_with - rss_without:.0f} MB); load average {os.getloadavg()[0]:.1f}")  # fmt: skip


if __name__ == "__main__":
    main()
