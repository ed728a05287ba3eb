"""The demo's stage cache: each stage's JSON result under ``OUT/stages``, keyed by its inputs.

A stage is recomputed only when the hash of everything it depends on (its settings, the recipe
files, the upstream stages' keys, :data:`CODE_VERSION`) differs from the stored one.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from xclip.atomic import atomic_write_text

__all__ = ["CODE_VERSION", "StageCache"]

# Bump when a change of the code changes results, so cached stages are recomputed.
CODE_VERSION = "3"


def _hash(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


class StageCache:
    """``run(name, key_obj, fn)``: ``fn()``'s JSON result, cached under ``OUT/stages``."""

    def __init__(self, out: Path, log: Callable[[str], None]) -> None:
        self.dir = out / "stages"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.log = log
        self.keys: dict[str, str] = {}
        self.timings: dict[str, dict[str, Any]] = {}

    def run(self, name: str, key_obj: Any, fn: Callable[[], dict]) -> dict:
        key = _hash([CODE_VERSION, name, key_obj])
        self.keys[name] = key
        path = self.dir / f"{name.replace('/', '__')}.json"
        if path.is_file():
            with contextlib.suppress(ValueError, KeyError):
                rec = json.loads(path.read_text(encoding="utf-8"))
                if rec["key"] == key:
                    self.log(f"  [cached] {name} ({rec['seconds']:.0f}s when computed)")
                    self.timings[name] = {"seconds": rec["seconds"], "cached": True}
                    return rec["result"]
        t0 = time.perf_counter()
        result = fn()
        seconds = round(time.perf_counter() - t0, 2)
        record = {"key": key, "seconds": seconds, "result": result}
        atomic_write_text(path, json.dumps(record, indent=1, default=str))
        self.timings[name] = {"seconds": seconds, "cached": False}
        return result
