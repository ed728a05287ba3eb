"""What the inference commands write and return: the output file, the result formats (table,
json, jsonl, csv) of predictions, timelines and search hits, the progress bar, the report of
skipped videos and the exit code.

Output files never destroy anything (rule 1 of docs/reliability.md):

- :func:`xclip_app.outputs.check_outputs` runs before the model is loaded (an output that is
  also an input, an existing output without ``--overwrite``, an unwritable location: one line,
  exit code 2).
- :func:`open_output` writes through :func:`xclip.atomic.atomic_open`: results stream into a
  hidden temporary file beside the target, which is renamed into place only when the run ends
  without error. A run that fails, is interrupted or killed leaves any earlier file as it was; a
  write error (a full disk) is one line naming the file, exit code 2.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import sys
from collections.abc import Iterator, Sequence
from typing import IO, TYPE_CHECKING, Any

from tqdm import tqdm

from xclip_app.exit_codes import EXIT_OK, EXIT_SOME_FAILED, EXIT_USAGE
from xclip_app.outputs import output_error

if TYPE_CHECKING:
    from xclip.inference import Moment, Prediction, SearchHit, VideoFailure

__all__ = [
    "FORMATS",
    "PredictionWriter",
    "exit_code",
    "format_timestamp",
    "open_output",
    "progress_bar",
    "report_failures",
    "write_moment_results",
    "write_search_results",
]

FORMATS = ("table", "json", "jsonl", "csv")


class _OutputFile:
    """A text file whose write errors become :func:`output_error` (not mistaken for input
    errors: they are raised as :class:`UsageError`)."""

    def __init__(self, f: IO[str], path: str):
        self.f, self.path = f, path

    def write(self, s: str) -> int:
        try:
            return self.f.write(s)
        except OSError as e:
            raise output_error(self.path, e) from e

    def flush(self) -> None:
        try:
            self.f.flush()
        except OSError as e:
            raise output_error(self.path, e) from e


@contextlib.contextmanager
def open_output(path: str | None, *, overwrite: bool = False) -> Iterator[IO[str]]:
    """stdout for ``None`` or ``-``; else a temporary file beside ``path`` (its folder created),
    renamed onto ``path`` when the block ends without error (see the module docstring).

    Call :func:`check_outputs` first, before any expensive work; ``overwrite`` is checked again
    here, atomically, when the file is published.
    """
    from xclip.atomic import atomic_open  # lazy: CLI start-up

    if path in (None, "-"):
        yield sys.stdout
        return
    stage = "open"
    try:
        with atomic_open(path, "w", overwrite=overwrite, encoding="utf-8", newline="") as f:
            stage = "write"
            yield _OutputFile(f, path)  # type: ignore[misc]
            stage = "publish"
    except OSError as e:
        if stage == "write":
            raise  # raised by the command's own work, not by writing the output
        raise output_error(path, e) from e


def progress_bar(args: argparse.Namespace, total: int, desc: str) -> tqdm:
    """A tqdm bar on stderr (hidden for one video, with --no-progress, or when not a terminal)."""
    disable = getattr(args, "no_progress", False) or total <= 1 or not sys.stderr.isatty()
    return tqdm(total=total, desc=desc, unit="video", disable=disable, file=sys.stderr)


def exit_code(n_ok: int, n_failed: int) -> int:
    """0 when nothing failed, 1 when some videos failed (each named), 2 when no video could be
    read at all (nothing usable came out of the run; nothing is written)."""
    if n_failed and not n_ok:
        return EXIT_USAGE
    return EXIT_SOME_FAILED if n_failed else EXIT_OK


def report_failures(failures: Sequence[VideoFailure], n_total: int) -> None:
    """One line on stderr per skipped video, then how many of ``n_total`` were skipped."""
    for f in failures:
        print(f"xclip-video: skipped {f.source}: {f.error}", file=sys.stderr)
    if failures:
        print(
            f"xclip-video: {len(failures)} of {n_total} video(s) could not be read and were skipped",
            file=sys.stderr,
        )


def format_timestamp(seconds: float) -> str:
    """A position in a video as ``m:ss.ss`` (``75.5`` -> ``1:15.50``)."""
    m, sec = divmod(seconds, 60)
    return f"{int(m):d}:{sec:05.2f}"


class PredictionWriter:
    """Streams predictions, timelines and failures to ``out`` in one of :data:`FORMATS`; json is
    written as one document (``header`` + results + failures) at :meth:`close`."""

    def __init__(self, fmt: str, out: IO[str], top_k: int | None, header: dict[str, Any]):
        self.fmt, self.out, self.k, self.header = fmt, out, top_k, header
        self.results: list[dict[str, Any]] = []
        self.failures: list[dict[str, str]] = []
        if fmt == "csv":
            self.csv = csv.writer(out)
            self.csv.writerow(["video", "start", "end", "rank", "label", "prob", "error"])

    def prediction(self, pred: Prediction) -> None:
        """The top-k labels of one video."""
        d = pred.to_dict(self.k)
        if self.fmt == "table":
            self.out.write(f"{pred.source}\n" + _table(pred, self.k) + "\n")
        elif self.fmt == "jsonl":
            self.out.write(json.dumps(d) + "\n")
        elif self.fmt == "csv":
            for r, (lb, p) in enumerate(pred.top(self.k), 1):
                self.csv.writerow([pred.source, "", "", r, lb, f"{p:.6f}", ""])
        else:
            self.results.append(d)
        self.out.flush()

    def timeline(self, source: str, windows: list[Prediction]) -> None:
        """The windows of one video (the table shows at most 3 labels per window)."""
        if self.fmt == "table":
            k = min(self.k or 3, 3)
            self.out.write(f"{source}\n")
            for w in windows:
                tops = "  ".join(f"{lb} {p:.3f}" for lb, p in w.top(k))
                self.out.write(f"  {format_timestamp(w.start)}-{format_timestamp(w.end)}  {tops}\n")
            self.out.write("\n")
        elif self.fmt == "jsonl":
            for w in windows:
                self.out.write(json.dumps(w.to_dict(self.k)) + "\n")
        elif self.fmt == "csv":
            for w in windows:
                for r, (lb, p) in enumerate(w.top(self.k), 1):
                    self.csv.writerow(
                        [source, f"{w.start:.3f}", f"{w.end:.3f}", r, lb, f"{p:.6f}", ""]
                    )
        else:
            self.results.append(
                {
                    "video": source,
                    "timeline": [
                        {k: v for k, v in w.to_dict(self.k).items() if k != "video"}
                        for w in windows
                    ],
                }
            )
        self.out.flush()

    def failure(self, f: VideoFailure) -> None:
        """A skipped video (not shown in the table: the command reports it on stderr)."""
        if self.fmt == "jsonl":
            self.out.write(json.dumps(f.to_dict()) + "\n")
        elif self.fmt == "csv":
            self.csv.writerow([f.source, "", "", "", "", "", f.error])
        elif self.fmt == "json":
            self.failures.append(f.to_dict())
        self.out.flush()

    def close(self) -> None:
        """Write the json document (other formats are already written); ``out`` stays open."""
        if self.fmt == "json":
            doc = {**self.header, "results": self.results, "failures": self.failures}
            self.out.write(json.dumps(doc, indent=2) + "\n")
        self.out.flush()


def _table(pred: Prediction, k: int | None) -> str:
    width = max(len(lb) for lb in pred.labels[: k or None])
    lines = [f"  {'rank':>4}  {'prob':>6}  label"]
    for r, (lb, p) in enumerate(pred.top(k), 1):
        bar = "#" * int(round(p * 20))
        lines.append(f"  {r:>4}  {p:6.3f}  {lb:<{width}}  {bar}")
    return "\n".join(lines) + "\n"


def write_search_results(
    out: IO[str],
    fmt: str,
    results: list[tuple[str, list[SearchHit]]],
    header: dict[str, Any],
) -> None:
    """The hits of each query in one of :data:`FORMATS`; ``header`` heads the json document."""
    if fmt == "table":
        for q, hits in results:
            out.write(f"query: {q}\n  {'rank':>4}  {'score':>7}  video\n")
            for h in hits:
                out.write(f"  {h.rank:>4}  {h.score:7.4f}  {h.path}\n")
            out.write("\n")
    elif fmt == "json":
        doc = {
            **header,
            "results": [{"query": q, "hits": [h.to_dict() for h in hits]} for q, hits in results],
        }
        out.write(json.dumps(doc, indent=2) + "\n")
    elif fmt == "jsonl":
        for q, hits in results:
            for h in hits:
                out.write(json.dumps({"query": q, **h.to_dict()}) + "\n")
    else:
        w = csv.writer(out)
        w.writerow(["query", "rank", "video", "score"])
        for q, hits in results:
            for h in hits:
                w.writerow([q, h.rank, h.path, f"{h.score:.6f}"])


def write_moment_results(
    out: IO[str], fmt: str, results: list[tuple[str, list[Moment]]], header: dict[str, Any]
) -> None:
    """The moments found for each query (:func:`xclip.inference.search_moments`) in one of
    :data:`FORMATS`; ``header`` heads the json document."""
    if fmt == "table":
        for q, moments in results:
            out.write(f"query: {q}\n  {'rank':>4}  {'score':>7}  {'start':>9}  {'end':>9}  video\n")
            for m in moments:
                out.write(f"  {m.rank:>4}  {m.score:7.4f}  {format_timestamp(m.start):>9}  "
                          f"{format_timestamp(m.end):>9}  {m.path}\n")  # fmt: skip
            out.write("\n")
    elif fmt == "json":
        doc = {**header, "results": [{"query": q, "moments": [m.to_dict() for m in ms]}
                                     for q, ms in results]}  # fmt: skip
        out.write(json.dumps(doc, indent=2) + "\n")
    elif fmt == "jsonl":
        for q, moments in results:
            for m in moments:
                out.write(json.dumps({"query": q, **m.to_dict()}) + "\n")
    else:
        w = csv.writer(out)
        w.writerow(["query", "rank", "video", "start", "end", "score", "windows"])
        for q, moments in results:
            for m in moments:
                w.writerow([q, m.rank, m.path, f"{m.start:.3f}", f"{m.end:.3f}",
                            f"{m.score:.6f}", m.windows])  # fmt: skip
