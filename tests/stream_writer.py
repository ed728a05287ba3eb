"""A live MPEG-TS source on 127.0.0.1 for the watch tests, in its own process (PyAV, no torch).

    python tests/stream_writer.py udp PORT SECONDS      # sends to udp://127.0.0.1:PORT
    python tests/stream_writer.py tcp PORT SECONDS      # listens; one client at a time
    python tests/stream_writer.py http PORT SECONDS     # an HTTP server streaming video/mp2t
    python tests/stream_writer.py garbage PORT SECONDS  # listens (TCP), sends random bytes
    python tests/stream_writer.py silent PORT SECONDS   # listens (TCP), accepts, sends nothing

Frames are 64x48 at 25 fps (MPEG-2 video, a keyframe a second), paced in real time; the
brightness ramps with the frame number. ``ready`` is printed once the port is bound (or, for
UDP, at once).
"""

from __future__ import annotations

import os
import socket
import sys
import time

import av
import numpy as np

FPS = 25


def _encode_paced(out: av.container.OutputContainer, seconds: float) -> None:
    stream = out.add_stream("mpeg2video", rate=FPS)
    stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
    stream.gop_size = FPS
    t0 = time.monotonic()
    for i in range(int(seconds * FPS)):
        img = np.full((48, 64, 3), (i * 7) % 256, np.uint8)
        img[:, : 1 + i % 64] = 255 - img[0, 0]
        frame = av.VideoFrame.from_ndarray(img, format="rgb24")
        frame.pts = i
        for packet in stream.encode(frame):
            out.mux(packet)
        wait = t0 + (i + 1) / FPS - time.monotonic()
        if wait > 0:
            time.sleep(wait)
    for packet in stream.encode():
        out.mux(packet)


def main(proto: str, port: int, seconds: float) -> None:
    t_end = time.monotonic() + seconds
    if proto == "udp":
        print("ready", flush=True)
        with av.open(f"udp://127.0.0.1:{port}?pkt_size=1316", "w", format="mpegts") as out:
            _encode_paced(out, seconds)
        return
    server = socket.create_server(("127.0.0.1", port))
    server.settimeout(max(0.1, seconds))
    print("ready", flush=True)
    if proto == "garbage":  # every connection gets random bytes until the reader hangs up
        while time.monotonic() < t_end:
            try:
                conn, _ = server.accept()
            except TimeoutError:
                return
            with conn:
                try:
                    while time.monotonic() < t_end:
                        conn.sendall(os.urandom(4096))
                        time.sleep(0.01)
                except OSError:
                    continue
        return
    conn, _ = server.accept()
    if proto == "silent":
        time.sleep(max(0.0, t_end - time.monotonic()))
        return
    if proto == "http":
        conn.recv(65536)  # the request; any path is the stream
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: video/mp2t\r\nConnection: close\r\n\r\n")
    with conn, av.open(conn.makefile("wb", buffering=0), "w", format="mpegts") as out:
        _encode_paced(out, seconds)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), float(sys.argv[3]))
