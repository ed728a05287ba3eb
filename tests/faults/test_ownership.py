"""xclip.ownership: what proves a file is xclip's, and the writer lock (docs/reliability.md)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from xclip import ownership
from xclip.atomic import atomic_dir, atomic_write, atomic_write_text
from xclip.ownership import ForeignFileError, OutputBusyError

SRC = Path(__file__).resolve().parents[2] / "src"


def test_a_file_is_ours_until_someone_edits_it(tmp_path):
    out = tmp_path / "out.json"
    atomic_write_text(out, "ours")
    assert ownership.is_owned(out)
    atomic_write_text(out, "ours again")  # replaced: it was ours
    out.write_text("edited by hand")
    assert not ownership.is_owned(out)
    with pytest.raises(ForeignFileError, match="not written by xclip"):
        atomic_write_text(out, "x")
    assert out.read_text() == "edited by hand"
    assert not ownership.is_owned(tmp_path / "missing")


def test_a_unit_stays_ours_when_copied_and_is_refused_with_a_foreign_file(tmp_path):
    unit = atomic_dir(tmp_path / "m", lambda d: (d / "w.bin").write_bytes(b"1"), kind="model")
    copy = tmp_path / "copy"
    shutil.copytree(unit, copy)  # new inodes and times: the SHA-256 proves it
    assert ownership.is_owned(copy, "model") and not ownership.is_owned(copy, "export")
    (copy / "notes.txt").write_text("mine")
    with pytest.raises(ForeignFileError, match="notes.txt"):
        ownership.remove_owned(copy)
    assert (copy / "notes.txt").exists() and (copy / "w.bin").exists()
    with pytest.raises(ForeignFileError, match="not a export output|not a export"):
        atomic_dir(unit, lambda d: None, kind="export")


def test_one_threads_write_never_removes_another_threads_temporary_file(tmp_path):
    """Issue 20: the stale-file sweep took its own process id for dead, so a write removed the
    temporary file another thread of the same process was filling."""
    target = tmp_path / "out.bin"
    started, release = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def slow(tmp: str) -> None:
        Path(tmp).write_bytes(b"slow")
        started.set()
        release.wait(10)

    def writer() -> None:
        try:
            atomic_write(target, slow)
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    t = threading.Thread(target=writer)
    t.start()
    started.wait(10)
    atomic_write_text(target, "fast")  # sweeps stale temporary files of `out.bin` first
    release.set()
    t.join(10)
    assert not errors, errors
    assert target.read_bytes() == b"slow"


def test_a_second_live_writer_is_told_who_holds_the_output(tmp_path):
    out = tmp_path / "out.jsonl"
    code = (
        "import sys, time; sys.path.insert(0, sys.argv[1]); from xclip import ownership\n"
        "ownership.lock_output(sys.argv[2]); print('locked', flush=True); time.sleep(60)\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code, str(SRC), str(out)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout.readline().strip() == "locked"
        with pytest.raises(OutputBusyError, match=rf"process {proc.pid} on \S+"):
            ownership.lock_output(out)
    finally:
        proc.kill()
        proc.wait()
    ownership.lock_output(out)  # the killed holder's lock died with it
    ownership.release_outputs()


def test_a_failed_start_leaves_no_folder_behind(tmp_path):
    out = tmp_path / "new" / "deeper" / "out.jsonl"
    ownership.lock_output(out)
    ownership.release_outputs()  # the command failed before writing anything
    assert not (tmp_path / "new").exists()
