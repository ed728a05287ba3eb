"""Model benchmark: xclip against ``transformers.XCLIPModel`` holding the same weights.

    python benchmarks/bench_model.py                              # CPU, ~2-3 minutes
    python benchmarks/bench_model.py --device cuda --json out.json  # GPU: fp32/bf16/fp16, batch 1 and 16

Same as ``xclip-video bench model``; the code lives in ``xclip_app.bench.model`` so the installed
console command has it too. Everything measured is described there (interleaved repeats, median
and min, text features cached and not, matmul peak in the same run, top-1 agreement).
"""

from __future__ import annotations

import argparse
import sys

from xclip_app.commands import bench


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    bench.add_model_arguments(parser)
    return bench.run_model(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
