"""Rule 1 at its root: xclip.atomic never leaves a partial or destroyed file or folder."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from xclip import atomic as atomic_module
from xclip.atomic import (
    atomic_dir,
    atomic_open,
    atomic_write,
    atomic_write_bytes,
    atomic_write_text,
    recover_dir,
)
from xclip.ownership import kept_name

SRC = Path(__file__).resolve().parents[2] / "src"


def _leftovers(folder: Path) -> list[str]:
    """Hidden files other than the ownership manifest (which is meant to stay)."""
    return sorted(
        p.name for p in folder.iterdir() if p.name.startswith(".") and not kept_name(p.name)
    )


def test_write_replaces_and_leaves_nothing_behind(tmp_path):
    target = tmp_path / "out.json"
    atomic_write_text(target, "old")
    atomic_write_text(target, "new")
    assert target.read_text() == "new"
    assert _leftovers(tmp_path) == []


def test_refuses_an_existing_target_without_touching_it(tmp_path):
    target = tmp_path / "victim.mp4"
    target.write_bytes(b"precious")
    with pytest.raises(FileExistsError):
        atomic_write_text(target, "x", overwrite=False)
    with pytest.raises(FileExistsError), atomic_open(target, overwrite=False) as f:
        f.write("x")
    with pytest.raises(FileExistsError):
        atomic_dir(tmp_path / "victim.mp4", lambda d: None, overwrite=False)
    assert target.read_bytes() == b"precious"
    assert _leftovers(tmp_path) == []


@pytest.mark.parametrize("mask,file_mode,dir_mode", [(0o022, 0o644, 0o755), (0o002, 0o664, 0o775)])
def test_permissions_follow_the_umask(tmp_path, mask, file_mode, dir_mode):
    old = os.umask(mask)
    try:
        f = atomic_write_text(tmp_path / "a.txt", "x")
        with atomic_open(tmp_path / "b.txt") as fh:
            fh.write("y")
        d = atomic_dir(tmp_path / "model", lambda p: (p / "w.bin").write_bytes(b"1"))
    finally:
        os.umask(old)
    assert f.stat().st_mode & 0o777 == file_mode
    assert (tmp_path / "b.txt").stat().st_mode & 0o777 == file_mode
    assert d.stat().st_mode & 0o777 == dir_mode


def test_a_full_disk_keeps_the_old_file(tmp_path):
    target = tmp_path / "index.safetensors"
    atomic_write_bytes(target, b"old index")  # an earlier output of xclip's

    def write(tmp: str) -> None:
        with open(tmp, "wb") as f:
            f.write(b"half of the new ")
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(OSError, match="No space"):
        atomic_write(target, write)
    assert target.read_bytes() == b"old index"
    assert _leftovers(tmp_path) == []


def test_an_error_inside_atomic_open_keeps_the_old_file(tmp_path):
    target = tmp_path / "preds.csv"
    atomic_write_text(target, "old")
    with pytest.raises(KeyboardInterrupt), atomic_open(target) as f:
        f.write("partial")
        raise KeyboardInterrupt
    assert target.read_text() == "old"
    assert _leftovers(tmp_path) == []


def test_a_folder_is_replaced_as_a_unit(tmp_path):
    target = tmp_path / "best"
    atomic_dir(target, lambda d: [(d / n).write_text("old") for n in ("a", "b")])
    atomic_dir(target, lambda d: (d / "c").write_text("new"))
    assert sorted(p.name for p in target.iterdir() if not kept_name(p.name)) == ["c"]  # no merge
    assert _leftovers(tmp_path) == []


def test_recover_puts_back_a_folder_left_aside_between_the_two_renames(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    aside = tmp_path / f".xclip-old-best-{atomic_module.HOST}-{dead.pid}"
    aside.mkdir()
    (aside / "model.safetensors").write_text("weights")
    assert recover_dir(tmp_path / "best")
    assert (tmp_path / "best" / "model.safetensors").read_text() == "weights"


_KILLED_WRITER = r"""
import sys, time
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from xclip.atomic import atomic_dir, atomic_write
target, kind = Path(sys.argv[2]), sys.argv[3]

def slow_file(tmp):
    with open(tmp, "wb") as f:
        f.write(b"new" * 1000)
        f.flush()
        Path(str(target) + ".ready").touch()
        time.sleep(60)

def slow_dir(d):
    (d / "model.safetensors").write_bytes(b"new" * 1000)
    Path(str(target) + ".ready").touch()
    time.sleep(60)

if kind == "file":
    atomic_write(target, slow_file)
else:
    atomic_dir(target, slow_dir)
"""


@pytest.mark.parametrize("kind", ["file", "dir"])
def test_sigkill_mid_write_leaves_the_old_content(tmp_path, kind):
    target = tmp_path / ("weights.safetensors" if kind == "file" else "best")
    if kind == "file":
        atomic_write_bytes(target, b"old")  # xclip's earlier output
    else:
        atomic_dir(target, lambda d: (d / "model.safetensors").write_bytes(b"old"))
    proc = subprocess.Popen([sys.executable, "-c", _KILLED_WRITER, str(SRC), str(target), kind])
    ready = Path(str(target) + ".ready")
    deadline = time.monotonic() + 60
    while not ready.exists():
        assert proc.poll() is None, "the writer ended before it was killed"
        assert time.monotonic() < deadline
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    ready.unlink()
    if kind == "file":
        assert target.read_bytes() == b"old"
        atomic_write_text(target, "new")  # the next write cleans what the killed one left
        assert _leftovers(tmp_path) == []
    else:
        assert (target / "model.safetensors").read_bytes() == b"old"
        # the next write cleans what the killed one left
        atomic_dir(target, lambda d: (d / "model.safetensors").write_bytes(b"new"))
        assert _leftovers(tmp_path) == []
        assert (target / "model.safetensors").read_bytes() == b"new"
