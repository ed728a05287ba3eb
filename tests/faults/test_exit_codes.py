"""Rule 2: one exit-code contract for every command; verbosity never changes the code."""

from __future__ import annotations

import errno
import subprocess
import sys

import pytest

from xclip_app import cli
from xclip_app.commands import models as models_command
from xclip_app.exit_codes import EXIT_BUG, EXIT_INTERRUPTED, EXIT_USAGE, UsageError


def _run(monkeypatch, capsys, exc: BaseException | None, *flags: str) -> tuple[int, str]:
    def run(args):
        if exc is not None:
            raise exc
        return 0

    monkeypatch.setattr(models_command, "run", run)
    code = cli.main([*flags, "models"])
    return code, capsys.readouterr().err


@pytest.mark.parametrize("verbose", [(), ("-v",)])
@pytest.mark.parametrize(
    "exc",
    [
        UsageError("--top-k must be >= 1, got 0"),
        FileNotFoundError(errno.ENOENT, "No such file or directory", "missing.mp4"),
        PermissionError(errno.EACCES, "Permission denied", "/root/out.json"),
        OSError(errno.ENOSPC, "No space left on device"),
    ],
    ids=["usage", "missing-file", "permission", "full-disk"],
)
def test_user_mistakes_and_environment_are_one_line_and_exit_2(monkeypatch, capsys, exc, verbose):
    code, err = _run(monkeypatch, capsys, exc, *verbose)
    assert code == EXIT_USAGE
    last = err.strip().splitlines()[-1]
    assert last.startswith("xclip-video models: error: ")
    if not verbose:
        assert err.count("\n") == 1 and "Traceback" not in err


def test_library_input_errors_are_exit_2(monkeypatch, capsys):
    import xclip

    with pytest.raises(xclip.InputError) as info:
        xclip.create_model("xclip_nope")
    code, err = _run(monkeypatch, capsys, info.value)
    assert code == EXIT_USAGE and "unknown model 'xclip_nope'" in err and err.count("\n") == 1


@pytest.mark.parametrize("verbose", [(), ("-v",)])
@pytest.mark.parametrize(
    "exc",
    [TypeError("unsupported operand"), RuntimeError("CUDA out of memory"), KeyError("x")],
    ids=["type-error", "oom", "key-error"],
)
def test_a_bug_is_a_traceback_a_report_request_and_exit_70(monkeypatch, capsys, exc, verbose):
    code, err = _run(monkeypatch, capsys, exc, *verbose)
    assert code == EXIT_BUG
    assert "Traceback" in err and type(exc).__name__ in err
    assert "this is a bug in xclip" in err.strip().splitlines()[-1]


def test_a_plain_value_error_from_deep_inside_is_a_bug(monkeypatch, capsys):
    # our own checks raise InputError; a bare ValueError (e.g. from numpy) is not the user's fault
    code, err = _run(monkeypatch, capsys, ValueError("operands could not be broadcast"))
    assert code == EXIT_BUG and "Traceback" in err


def test_ctrl_c_is_130(monkeypatch, capsys):
    code, err = _run(monkeypatch, capsys, KeyboardInterrupt())
    assert code == EXIT_INTERRUPTED and "interrupted" in err


def test_bad_flags_are_exit_2_one_line():
    proc = subprocess.run(
        [sys.executable, "-m", "xclip_app.cli", "models", "--no-such-flag"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == EXIT_USAGE
    assert "unrecognized arguments: --no-such-flag" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("verbose", [[], ["-v"]])
def test_real_mistakes_through_the_real_commands(tmp_path, verbose):
    # one per kind: a missing input, an unknown architecture, an unknown config key
    cases = [
        (["classify", str(tmp_path / "nope.mp4"), "--labels", "a,b", "--model", "xclip_test"],
         "nope.mp4"),
        (["flops", "xclip_nope"], "unknown model"),
        (["train", "--config", "configs/test/tiny.yaml", "train.no_such_key=1"], "no_such_key"),
    ]  # fmt: skip
    for argv, needle in cases:
        proc = subprocess.run(
            [sys.executable, "-m", "xclip_app.cli", *verbose, *argv],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert proc.returncode == EXIT_USAGE, (argv, proc.stderr)
        assert needle in proc.stderr
        if not verbose:
            assert "Traceback" not in proc.stderr, proc.stderr
