"""Synthetic videos: the one encoder every generated clip goes through, and test clips whose
frames encode their own index.

:func:`write_video` encodes RGB frames to a file with fixed, machine-independent codec settings;
the bar-coded test clips, the data benchmark, the toy training set
(``xclip_app.train.toydata``) and the demo's procedural world (``xclip_app.demo``) all write
their clips with it. Each keeps its own frame content.

The bar-coded frames carry a bar code in their top band: a grid of black/white cells holding two
fixed marker cells, the frame index (14 bits) and two parity bits. Below the band is a panning
texture, a moving square and mild noise, so that the encoder produces realistic P/B frames and
bitrates. After decoding, :func:`read_frame_index` reads the index back, which lets tests and
benchmarks verify that "frame i" really is frame ``i`` of the stream::

    from xclip.data.synthetic import make_indexed_clip, read_frame_index

    make_indexed_clip("clip.mp4", num_frames=90, size=(160, 120), fps=30, gop=30)
    ...
    assert read_frame_index(frames[k]) == indices[k]

Only PyAV is needed (its wheels bundle FFmpeg with libx264, libvpx and the native mpeg4 encoder).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from fractions import Fraction

import numpy as np

from xclip.errors import InputError

__all__ = [
    "BARCODE_BITS",
    "CODECS",
    "make_indexed_clip",
    "make_indexed_frame",
    "read_frame_index",
    "write_video",
]

# Bar code layout: ROWS x COLS cells in the top BAND_FRACTION of the frame.
_ROWS, _COLS = 2, 9
_BAND_FRACTION = 0.4
BARCODE_BITS = _ROWS * _COLS - 4  # 2 marker cells + 2 parity cells -> 14 index bits (0..16383)
_MAX_INDEX = (1 << BARCODE_BITS) - 1

# Short codec names -> FFmpeg encoder names.
CODECS = {
    "h264": "libx264",
    "hevc": "libx265",
    "mpeg4": "mpeg4",
    "vp9": "libvpx-vp9",
    "vp8": "libvpx",
    "av1": "libsvtav1",
}


def _cells(width: int, height: int) -> list[tuple[int, int, int, int]]:
    """Cell rectangles (y0, y1, x0, x1), row-major."""
    band_h = max(_ROWS * 4, int(round(height * _BAND_FRACTION)))
    ys = np.linspace(0, band_h, _ROWS + 1).round().astype(int)
    xs = np.linspace(0, width, _COLS + 1).round().astype(int)
    return [
        (int(ys[r]), int(ys[r + 1]), int(xs[c]), int(xs[c + 1]))
        for r in range(_ROWS)
        for c in range(_COLS)
    ]


def _bits_for(index: int) -> list[int]:
    if not 0 <= index <= _MAX_INDEX:
        raise InputError(f"frame index {index} does not fit the bar code (0..{_MAX_INDEX})")
    data = [(index >> b) & 1 for b in range(BARCODE_BITS)]
    parity = [sum(data[0::2]) & 1, sum(data[1::2]) & 1]
    # cell 0 = white marker, cell _COLS (first cell of row 1) = black marker
    bits = data + parity
    out = []
    it = iter(bits)
    for k in range(_ROWS * _COLS):
        if k == 0:
            out.append(1)
        elif k == _COLS:
            out.append(0)
        else:
            out.append(next(it))
    return out


def make_indexed_frame(index: int, size: tuple[int, int], seed: int = 0) -> np.ndarray:
    """One RGB uint8 frame ``[H, W, 3]`` of ``size=(width, height)`` showing ``index``."""
    width, height = size
    if width < _COLS * 3 or height < 16:
        raise InputError(f"frame size {size} is too small for the bar code (min {_COLS * 3}x16)")
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    t = float(index)
    # panning texture
    r = 128 + 60 * np.sin((xx + 3.0 * t) / 7.0) * np.cos(yy / 11.0)
    g = 128 + 60 * np.sin((yy + 2.0 * t) / 9.0)
    b = 128 + 60 * np.cos((xx - yy + t) / 13.0)
    img = np.stack([r, g, b], axis=-1)
    # moving square
    sq = max(4, min(width, height) // 6)
    x0 = int((index * 2) % max(1, width - sq))
    y0 = int(height * 0.5 + (height * 0.5 - sq) * 0.5 * (1 + np.sin(t / 10.0))) % max(
        1, height - sq
    )
    img[y0 : y0 + sq, x0 : x0 + sq] = (230, 40, 40)
    # mild deterministic noise
    rng = np.random.default_rng(seed * 1_000_003 + index)
    img += rng.normal(0.0, 4.0, size=img.shape).astype(np.float32)
    img = np.clip(img, 0, 255).astype(np.uint8)
    for bit, (y_0, y_1, x_0, x_1) in zip(_bits_for(index), _cells(width, height), strict=True):
        img[y_0:y_1, x_0:x_1] = 255 if bit else 0
    return img


def read_frame_index(frame) -> int:
    """Read the index back from a decoded frame (``[H, W, 3]`` uint8 RGB, numpy or torch).

    Raises ``ValueError`` when the frame does not carry a readable bar code (wrong frame
    orientation, garbage from a broken decoder, a frame not made by this module).
    """
    if hasattr(frame, "detach"):  # torch tensor
        frame = frame.detach().cpu().numpy()
    arr = np.asarray(frame)
    if arr.ndim != 3 or arr.shape[-1] != 3:
        raise InputError(f"expected an [H, W, 3] frame, got shape {arr.shape}")
    height, width = arr.shape[:2]
    gray = arr.astype(np.float32).mean(axis=-1)
    bits = []
    for y_0, y_1, x_0, x_1 in _cells(width, height):
        dy, dx = (y_1 - y_0) // 4, (x_1 - x_0) // 4
        v = float(gray[y_0 + dy : y_1 - dy, x_0 + dx : x_1 - dx].mean())
        if v > 170:
            bits.append(1)
        elif v < 85:
            bits.append(0)
        else:
            raise InputError(f"unreadable bar code cell (mean {v:.0f})")
    if bits[0] != 1 or bits[_COLS] != 0:
        raise InputError("bar code markers not found (frame rotated or not synthetic?)")
    payload = [b for k, b in enumerate(bits) if k not in (0, _COLS)]
    data, parity = payload[:BARCODE_BITS], payload[BARCODE_BITS:]
    if parity != [sum(data[0::2]) & 1, sum(data[1::2]) & 1]:
        raise InputError("bar code parity mismatch")
    return sum(bit << k for k, bit in enumerate(data))


def write_video(
    path: str | os.PathLike,
    frames: np.ndarray | Iterable[np.ndarray],
    fps: float = 30,
    codec: str = "h264",
    gop: int = 30,
    crf: int = 20,
    *,
    bframes: int | None = None,
    preset: str = "medium",
    pix_fmt: str | None = None,
    rotation: int = 0,
    timestamps: Sequence[float] | None = None,
    faststart: bool = False,
) -> str:
    """Encode RGB uint8 frames (``[T, H, W, 3]`` array or an iterable of ``[H, W, 3]``) to ``path``.

    * ``codec``: a short name from :data:`CODECS` (``h264``, ``mpeg4``, ``vp9``, ...) or any
      FFmpeg encoder name. The container follows the file extension (.mp4, .mkv, .webm, .avi).
    * ``gop``: fixed keyframe interval (x264: ``keyint=min-keyint=gop``, no scene-cut keyframes).
    * ``crf``: quality for x264/x265/vpx (lower is better); mpeg4 uses a matching ``qscale``.
    * ``bframes``: B-frames for x264 (``None`` = encoder default, 3 for x264).
    * ``rotation``: counter-clockwise display rotation written as a display matrix (what phones
      write); the frames are stored as given, players show them rotated by ``rotation``.
    * ``timestamps``: presentation time of each frame in seconds (variable frame rate); by
      default frame ``i`` is at ``i / fps``.
    * ``faststart``: mp4 header (moov atom) before the frames, as streaming sites write it; a copy
      cut short then still has a header that lists every frame.
    Odd frame sizes are supported (x264 then uses yuv444p, since 4:2:0 needs even sizes).
    """
    import av  # lazy: optional dependency

    path = os.fspath(path)
    encoder = CODECS.get(codec, codec)
    it = iter(frames)
    try:
        first = next(it)
    except StopIteration:
        raise InputError("write_video needs at least one frame") from None
    first = np.ascontiguousarray(first, dtype=np.uint8)
    height, width = first.shape[:2]
    odd = width % 2 or height % 2
    if pix_fmt is None:
        pix_fmt = "yuv444p" if (odd and encoder in ("libx264", "libx265")) else "yuv420p"

    rate = Fraction(fps).limit_denominator(1001)
    options: dict[str, str] = {}
    if encoder in ("libx264", "libx265"):
        params = f"keyint={gop}:min-keyint={gop}:scenecut=0"
        if bframes is not None:
            params += f":bframes={bframes}"
        # One encoder thread: x264/x265 pick their threading (and sliced threads, which change
        # the stream's structure: 2 slices per frame on 2 cores, 1 under taskset) from the CPUs
        # they see; a fixed count makes the written stream independent of the machine.
        params += ":threads=1" if encoder == "libx264" else ":pools=1:frame-threads=1"
        options = {"crf": str(crf), "preset": preset}
        options["x264-params" if encoder == "libx264" else "x265-params"] = params
    elif encoder.startswith("libvpx"):
        options = {
            "crf": str(min(63, crf + 12)),
            "b": "0",
            "deadline": "good",
            "cpu-used": "5",
            "keyint_min": str(gop),
            "auto-alt-ref": "0",
        }
    elif encoder == "mpeg4":
        options = {"qscale": str(max(2, min(31, crf // 5)))}
    elif encoder == "libsvtav1":
        options = {"crf": str(min(63, crf + 15)), "preset": "10"}

    container = av.open(path, "w", options={"movflags": "faststart"} if faststart else {})
    try:
        stream = container.add_stream(encoder, rate=rate, options=options)
        stream.width = width
        stream.height = height
        stream.pix_fmt = pix_fmt
        stream.codec_context.gop_size = gop
        if encoder == "mpeg4":
            stream.codec_context.qscale = True  # constant quality
            stream.codec_context.global_quality = max(2, min(31, crf // 5)) * 118  # FF_QP2LAMBDA
        if timestamps is not None:
            stream.codec_context.time_base = Fraction(1, 90000)
            stream.time_base = Fraction(1, 90000)
        else:
            stream.codec_context.time_base = 1 / rate
        if rotation:
            stream.set_display_rotation(rotation)

        def frames_all():
            yield first
            yield from it

        count = 0
        for i, arr in enumerate(frames_all()):
            arr = np.ascontiguousarray(arr, dtype=np.uint8)
            if arr.shape[:2] != (height, width):
                raise InputError(f"frame {i} has shape {arr.shape}, expected {(height, width, 3)}")
            frame = av.VideoFrame.from_ndarray(arr, format="rgb24")
            if timestamps is not None:
                frame.pts = int(round(timestamps[i] * 90000))
                frame.time_base = Fraction(1, 90000)
            else:
                frame.pts = i
                frame.time_base = 1 / rate
            for packet in stream.encode(frame):
                container.mux(packet)
            count += 1
        if timestamps is not None and count != len(timestamps):
            raise InputError(f"{count} frames but {len(timestamps)} timestamps")
        for packet in stream.encode():
            container.mux(packet)
    finally:
        container.close()
    return path


def make_indexed_clip(
    path: str | os.PathLike,
    num_frames: int,
    size: tuple[int, int] = (160, 120),
    fps: float = 30,
    gop: int = 30,
    codec: str = "h264",
    *,
    crf: int = 20,
    rotation: int = 0,
    timestamps: Sequence[float] | None = None,
    seed: int = 0,
    **kwargs,
) -> str:
    """Write a clip of ``num_frames`` bar-coded frames of ``size=(width, height)``.

    With ``rotation`` (counter-clockwise degrees, multiple of 90) the frames are stored rotated by
    ``-rotation`` and the file carries a display matrix of ``rotation``, so a decoder that applies
    the rotation (as players do) returns upright ``size`` frames whose bar codes read correctly.
    Extra keyword arguments go to :func:`write_video` (``bframes``, ``preset``, ``pix_fmt``,
    ``faststart``).
    """
    if rotation % 90:
        raise InputError("rotation must be a multiple of 90 degrees")
    k = (rotation // 90) % 4

    def gen():
        for i in range(num_frames):
            img = make_indexed_frame(i, size, seed=seed)
            yield np.rot90(img, k=-k) if k else img

    return write_video(
        path,
        gen(),
        fps=fps,
        codec=codec,
        gop=gop,
        crf=crf,
        rotation=rotation,
        timestamps=timestamps,
        **kwargs,
    )
