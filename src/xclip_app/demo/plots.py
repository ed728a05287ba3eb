"""PNG plots of the demo report: line charts (training curves), confusion matrices and interval
(forest) plots of paired differences.

matplotlib draws them when it is installed, a small Pillow renderer otherwise (Pillow comes with
torchvision), so a fresh ``make demo`` always writes them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["plot_confusion", "plot_intervals", "plot_lines", "smooth"]

_PALETTE = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189),
            (140, 86, 75), (227, 119, 194), (127, 127, 127)]  # fmt: skip


def smooth(y: np.ndarray, k: int) -> np.ndarray:
    """Moving average of ``y [N]`` over ``k`` points, the ends padded with the edge values
    (same length as ``y``; ``y`` itself when it is shorter than ``k``)."""
    if len(y) < k or k <= 1:
        return y
    kern = np.ones(k) / k
    pad = np.concatenate([np.full(k // 2, y[0]), y, np.full(k - 1 - k // 2, y[-1])])
    return np.convolve(pad, kern, mode="valid")


def plot_lines(path: Path, series: dict[str, tuple[list[float], list[float]]], title: str,
               xlabel: str, ylabel: str) -> Path:  # fmt: skip
    """Line chart of named (x, y) series as a PNG."""
    try:
        import matplotlib  # lazy: optional dependency

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt  # lazy: optional dependency

        fig, ax = plt.subplots(figsize=(7, 4.2))
        for name, (x, y) in series.items():
            ax.plot(x, y, label=name)
        ax.set_title(title)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(path, dpi=110)
        plt.close(fig)
        return path
    except ImportError:
        pass
    from PIL import Image, ImageDraw  # lazy: optional dependency

    w, h, left, right, top, bottom = 760, 440, 60, 20, 34, 46
    img = Image.new("RGB", (w, h), "white")
    d = ImageDraw.Draw(img)
    xs = [v for x, _ in series.values() for v in x]
    ys = [v for _, y in series.values() for v in y if np.isfinite(v)]
    if not xs or not ys:
        img.save(path)
        return path
    x0, x1 = min(xs), max(xs) if max(xs) > min(xs) else min(xs) + 1
    y0, y1 = min(ys), max(ys) if max(ys) > min(ys) else min(ys) + 1
    pad = 0.05 * (y1 - y0)
    y0, y1 = y0 - pad, y1 + pad

    def px(x: float, y: float) -> tuple[float, float]:
        return (left + (x - x0) / (x1 - x0) * (w - left - right),
                h - bottom - (y - y0) / (y1 - y0) * (h - top - bottom))  # fmt: skip

    d.rectangle([left, top, w - right, h - bottom], outline=(0, 0, 0))
    for i in range(6):
        yv = y0 + (y1 - y0) * i / 5
        _, yp = px(x0, yv)
        d.line([left, yp, w - right, yp], fill=(225, 225, 225))
        d.text((4, yp - 6), f"{yv:.3g}", fill=(0, 0, 0))
        xv = x0 + (x1 - x0) * i / 5
        xp, _ = px(xv, y0)
        d.text((xp - 10, h - bottom + 6), f"{xv:.3g}", fill=(0, 0, 0))
    for k, (name, (x, y)) in enumerate(series.items()):
        col = _PALETTE[k % len(_PALETTE)]
        pts = [px(a, b) for a, b in zip(x, y, strict=True) if np.isfinite(b)]
        if len(pts) > 1:
            d.line(pts, fill=col, width=2)
        d.rectangle([left + 10, top + 8 + 14 * k, left + 22, top + 16 + 14 * k], fill=col)
        d.text((left + 28, top + 6 + 14 * k), name, fill=(0, 0, 0))
    d.text((left, 4), title, fill=(0, 0, 0))
    d.text((w // 2 - 20, h - 18), xlabel, fill=(0, 0, 0))
    d.text((4, top - 14), ylabel, fill=(0, 0, 0))
    img.save(path)
    return path


def plot_confusion(path: Path, conf: np.ndarray, names: list[str], title: str) -> Path:
    """Row-normalised confusion matrix with class names as a PNG."""
    conf = np.asarray(conf, float)
    with np.errstate(invalid="ignore", divide="ignore"):
        norm = np.nan_to_num(conf / conf.sum(1, keepdims=True))
    short = [n.removeprefix("a ").replace(" object", "") for n in names]
    try:
        import matplotlib  # lazy: optional dependency

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt  # lazy: optional dependency

        k = len(names)
        fig, ax = plt.subplots(figsize=(max(5, k * 0.22 + 3), max(5, k * 0.22 + 2)))
        im = ax.imshow(norm, cmap="viridis", vmin=0, vmax=1)
        ax.set_xticks(range(k), short, rotation=90, fontsize=6)
        ax.set_yticks(range(k), short, fontsize=6)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(title, fontsize=9)
        fig.colorbar(im, fraction=0.046)
        fig.tight_layout()
        fig.savefig(path, dpi=110)
        plt.close(fig)
        return path
    except ImportError:
        pass
    from PIL import Image, ImageDraw  # lazy: optional dependency

    k = len(names)
    cell = 12
    lab = 6 * max(len(s) for s in short) + 8
    w = h = lab + k * cell + 10
    img = Image.new("RGB", (w, h + 20), "white")
    d = ImageDraw.Draw(img)
    d.text((4, 4), title, fill=(0, 0, 0))
    stops = np.array(
        [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]], float
    )
    for i in range(k):
        d.text((4, 20 + lab + i * cell), short[i], fill=(0, 0, 0))
        for j in range(k):
            v = norm[i, j] * (len(stops) - 1)
            lo = min(int(v), len(stops) - 2)
            c = stops[lo] * (1 - (v - lo)) + stops[lo + 1] * (v - lo)
            x, y = lab + j * cell, 20 + lab + i * cell
            d.rectangle([x, y, x + cell - 1, y + cell - 1], fill=tuple(int(t) for t in c))
    # column labels, written vertically
    for j in range(k):
        txt = Image.new("RGB", (lab, 10), "white")
        ImageDraw.Draw(txt).text((0, 0), short[j][: lab // 6], fill=(0, 0, 0))
        img.paste(txt.rotate(90, expand=True), (lab + j * cell + 1, 20))
    img.save(path)
    return path


def plot_intervals(path: Path, rows: list[tuple[str, float, float, float]], title: str,
                   xlabel: str) -> Path:  # fmt: skip
    """Forest plot as a PNG: one row per ``(label, estimate, low, high)``, the interval as a bar,
    the estimate as a dot, a vertical line at zero (no difference)."""
    finite = [v for _, m, lo, hi in rows for v in (m, lo, hi) if np.isfinite(v)] or [0.0]
    x0, x1 = min(finite + [0.0]), max(finite + [0.0])
    pad = 0.08 * (x1 - x0 or 1.0)
    x0, x1 = x0 - pad, x1 + pad
    try:
        import matplotlib  # lazy: optional dependency

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt  # lazy: optional dependency

        fig, ax = plt.subplots(figsize=(8, 0.42 * len(rows) + 1.4))
        for i, (_, m, lo, hi) in enumerate(rows):
            y = len(rows) - 1 - i
            ax.plot([max(lo, x0), min(hi, x1)], [y, y], color="tab:blue", lw=2)
            ax.plot([m], [y], "o", color="tab:blue")
        ax.axvline(0, color="black", lw=0.8)
        ax.set_yticks(range(len(rows)), [r[0] for r in reversed(rows)], fontsize=8)
        ax.set_xlim(x0, x1)
        ax.set_xlabel(xlabel)
        ax.set_title(title, fontsize=9)
        ax.grid(axis="x", alpha=0.3)
        fig.tight_layout()
        fig.savefig(path, dpi=110)
        plt.close(fig)
        return path
    except ImportError:
        pass
    from PIL import Image, ImageDraw  # lazy: optional dependency

    lab = 6 * max((len(r[0]) for r in rows), default=10) + 12
    w, row_h, top, bottom, right = lab + 420, 22, 30, 40, 20
    h = top + row_h * len(rows) + bottom
    img = Image.new("RGB", (w, h), "white")
    d = ImageDraw.Draw(img)

    def px(x: float) -> float:
        return lab + (min(max(x, x0), x1) - x0) / (x1 - x0) * (w - lab - right)

    d.rectangle([lab, top, w - right, h - bottom], outline=(0, 0, 0))
    d.line([px(0.0), top, px(0.0), h - bottom], fill=(0, 0, 0))
    for i, (name, m, lo, hi) in enumerate(rows):
        y = top + row_h * i + row_h // 2
        d.text((4, y - 6), name, fill=(0, 0, 0))
        d.line([px(lo), y, px(hi), y], fill=_PALETTE[0], width=3)
        d.ellipse([px(m) - 4, y - 4, px(m) + 4, y + 4], fill=_PALETTE[0])
    for i in range(6):
        xv = x0 + (x1 - x0) * i / 5
        d.text((px(xv) - 10, h - bottom + 6), f"{xv:.3g}", fill=(0, 0, 0))
    d.text((4, 6), title, fill=(0, 0, 0))
    d.text((lab + 100, h - 18), xlabel, fill=(0, 0, 0))
    img.save(path)
    return path
