"""``python -m xclip_app.demo ARGS``: ``xclip-video ARGS`` with the demo architecture registered,
to run the recipes of ``configs/demo/`` by hand, e.g.
``python -m xclip_app.demo train --config configs/demo/xclip.yaml``."""

import sys

from xclip_app import cli
from xclip_app.demo.arch import registered

with registered():
    sys.exit(cli.main(sys.argv[1:]))
