"""Data-loading benchmark; same as ``xclip-video bench data`` (see src/xclip_app/bench_data.py)."""

import sys

from xclip_app.bench_data import main

if __name__ == "__main__":
    sys.exit(main())
