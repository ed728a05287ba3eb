"""Installing and running like a well-kept library: optional decoders that cannot work, the
recipes shipped as package data, typing marker, dependency ranges and the constraints file.
The installed-wheel checks (a fresh virtual environment, an empty folder outside the clone) are
marked slow."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

import xclip
from xclip.data.video import TorchCodecReader, available_backends, backend_problem, open_video
from xclip.errors import InputError
from xclip_app.cli import main
from xclip_app.recipe_files import RECIPES_ROOT, list_recipes, recipe_path, resolve_recipe

tomllib = pytest.importorskip("tomllib")  # Python >= 3.11

ROOT = Path(__file__).resolve().parents[1]

# ------------------------------------------------------------------------------------------------
# optional decoders: installed but unusable = unavailable, with one line


@pytest.fixture
def torchcodec_without_ffmpeg(monkeypatch):
    """torchcodec as on a fresh machine without FFmpeg: it imports, its core library did not
    load (``ffmpeg_major_version`` is ``None``)."""
    torchcodec = pytest.importorskip("torchcodec")
    monkeypatch.setattr(torchcodec, "ffmpeg_major_version", None)


def test_unusable_torchcodec_is_unavailable(torchcodec_without_ffmpeg, small_clip):
    assert "torchcodec" not in available_backends() and "pyav" in available_backends()
    problem = backend_problem("torchcodec")
    assert problem and "\n" not in problem and "FFmpeg" in problem
    with pytest.raises(InputError, match="no usable FFmpeg"):
        open_video(small_clip, "torchcodec")
    # the reader itself says what is missing, rather than calling a good video unreadable
    # (a VideoDecodeError would let a job skip every file as broken)
    with pytest.raises(InputError, match="no usable FFmpeg"):
        TorchCodecReader(small_clip)
    assert backend_problem("pyav") is None


def test_missing_decoder_is_one_line(monkeypatch):
    monkeypatch.setitem(sys.modules, "decord", None)  # import decord -> ImportError
    assert backend_problem("decord") == "decord is not installed (pip install 'xclip[decoders]')"
    assert "decord" not in available_backends()
    with pytest.raises(InputError, match="unknown video backend"):
        backend_problem("opencv")


def test_bench_data_names_an_unusable_decoder(torchcodec_without_ffmpeg, tmp_path, capsys):
    argv = [
        "bench", "data", "--clips", "h264_320x240_gop30", "--frames", "8", "--repeats", "1",
        "--backends", "pyav", "torchcodec", "--dataloader-workers",
        "--clips-dir", str(tmp_path / "clips"),
    ]  # fmt: skip
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert "backend torchcodec unavailable: torchcodec is installed but finds no usable" in err
    assert "Traceback" not in err


# ------------------------------------------------------------------------------------------------
# recipes as package data


def test_recipes_are_package_data():
    names = list_recipes()
    assert {"k400/b16_8f", "test/tiny", "demo/xclip", "zeroshot/ucf101"} <= set(names)
    assert RECIPES_ROOT.is_relative_to(Path(xclip.__file__).resolve().parents[1])
    # configs/ of the clone is the same folder, so its paths in tests and docs keep working
    assert (ROOT / "configs").resolve() == RECIPES_ROOT
    assert recipe_path("k400/b16_8f") == recipe_path("configs/k400/b16_8f.yaml")
    assert recipe_path("../pyproject") is None and recipe_path("nope") is None
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    data = pyproject["tool"]["setuptools"]["package-data"]["xclip_app"]
    shipped = {p for pat in data for p in (ROOT / "src/xclip_app").glob(pat)}
    assert set(RECIPES_ROOT.rglob("*.yaml")) <= shipped  # every recipe is in the wheel


def test_resolve_recipe(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert resolve_recipe("test/tiny") == RECIPES_ROOT / "test/tiny.yaml"
    (tmp_path / "test").mkdir()
    (tmp_path / "test/tiny.yaml").write_text("train: {epochs: 1}\n")
    assert resolve_recipe("test/tiny.yaml") == Path("test/tiny.yaml")  # a file wins
    from xclip_app.exit_codes import UsageError

    with pytest.raises(UsageError, match="xclip-video recipes"):
        resolve_recipe("k400/b99")


def test_recipes_command(capsys):
    assert main(["recipes"]) == 0
    out = capsys.readouterr().out.split()
    assert out == list_recipes()
    assert main(["recipes", "test/tiny"]) == 0
    assert capsys.readouterr().out == (RECIPES_ROOT / "test/tiny.yaml").read_text()
    assert main(["recipes", "--path", "k400/b16_8f"]) == 0
    assert Path(capsys.readouterr().out.strip()) == RECIPES_ROOT / "k400/b16_8f.yaml"
    assert main(["recipes", "k400/nope"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "xclip-video recipes" in err


# ------------------------------------------------------------------------------------------------
# metadata: ranges in the package, exact versions in the constraints file


def test_dependencies_are_ranges_and_constraints_pin_them():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    deps = pyproject["project"]["dependencies"]
    assert not [d for d in deps if "==" in d], deps
    names = {d.split(">")[0].split("<")[0].split("=")[0].strip().lower() for d in deps}
    assert {"torch", "torchvision", "av", "huggingface_hub"} <= names
    pins = (ROOT / ".ci/constraints.txt").read_text()
    assert "torch==" in pins and "torchvision==" in pins
    for tool in ("Makefile", ".ci/run"):
        text = (ROOT / tool).read_text()
        assert "constraints.txt" in text, tool
    assert (Path(xclip.__file__).parent / "py.typed").is_file()


# ------------------------------------------------------------------------------------------------
# installed wheel (slow): a fresh virtual environment that already has torch, no network


def _run(cmd, cwd, env=None, timeout=900):
    r = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, f"{cmd}\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    return r.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """A wheel built from this tree, installed (not editable) into a new venv that sees the
    running virtual environment's packages (torch among them) through a ``.pth`` file; pip may
    not download anything (``PIP_NO_INDEX``), so a resolver that wanted another torch fails."""
    if sys.prefix == sys.base_prefix:
        pytest.skip("needs to run inside a virtual environment that has torch")
    tmp = tmp_path_factory.mktemp("wheel")
    _run(
        [
            sys.executable,
            "-m",
            "build",
            "--wheel",
            "--no-isolation",
            "-o",
            str(tmp / "dist"),
            str(ROOT),
        ],
        ROOT,
    )
    wheel = next((tmp / "dist").glob("xclip-*.whl"))
    venv = tmp / "venv"
    # a venv on top of the running one: its site-packages (torch ...) are seen through a .pth
    # file (not --system-site-packages: the base interpreter's unrelated packages are not ours)
    base = Path(sys.base_prefix) / "bin" / "python3"
    _run([str(base), "-m", "venv", str(venv)], tmp)
    pth = (
        venv
        / "lib"
        / f"python{sys.version_info.major}.{sys.version_info.minor}"
        / "site-packages"
        / "outer.pth"
    )
    pth.write_text(sysconfig.get_paths()["purelib"] + "\n")
    py = venv / "bin" / "python"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PIP_NO_INDEX"] = "1"
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    # ensurepip's own (older) setuptools would shadow the outer one that torch requires
    _run([str(py), "-m", "pip", "uninstall", "-y", "setuptools"], tmp, env)
    before = _run(
        [str(py), "-c", "import torch; print(torch.__version__, torch.__file__)"], tmp, env
    )
    _run(
        [str(py), "-m", "pip", "install", "--no-deps", "--no-build-isolation", str(wheel)], tmp, env
    )
    return {"py": py, "bin": venv / "bin", "env": env, "tmp": tmp, "torch": before, "wheel": wheel}


@pytest.mark.slow
def test_wheel_keeps_the_torch_it_finds_and_pip_check_is_clean(installed):
    py, env, tmp = installed["py"], installed["env"], installed["tmp"]
    # resolving the wheel's requirements against what is installed changes nothing
    out = _run([str(py), "-m", "pip", "install", "--dry-run", str(installed["wheel"])], tmp, env)
    assert "Would install" not in out or "torch" not in out.split("Would install", 1)[1], out
    after = _run(
        [str(py), "-c", "import torch; print(torch.__version__, torch.__file__)"], tmp, env
    )
    assert after == installed["torch"]
    _run([str(py), "-m", "pip", "check"], tmp, env)
    where = _run([str(py), "-c", "import xclip, xclip_app; print(xclip.__file__)"], tmp, env)
    assert Path(where.strip()).is_relative_to(tmp / "venv")  # the wheel's copy, not a clone
    shipped = Path(where.strip()).parents[1] / "xclip_app" / "recipes" / "k400" / "b16_8f.yaml"
    assert shipped.is_file() and (Path(where.strip()).parent / "py.typed").is_file()


@pytest.mark.slow
def test_wheel_recipe_train_from_an_empty_folder(installed, tmp_path):
    cli = str(installed["bin"] / "xclip-video")
    env = installed["env"]
    run = tmp_path / "empty"
    run.mkdir()
    assert "test/tiny" in _run([cli, "recipes"], run, env).split()
    _run([installed["py"], "-m", "xclip_app.train.toydata", "runs/toy"], run, env)
    _run(
        [cli, "train", "--config", "test/tiny", "--output", "runs/tiny", "--device", "cpu"],
        run,
        env,
    )
    assert any((run / "runs/tiny").iterdir())


@pytest.mark.slow
def test_wheel_demo_quick_from_an_empty_folder(installed, tmp_path):
    cli = str(installed["bin"] / "xclip-video")
    run = tmp_path / "empty"
    run.mkdir()
    _run([cli, "demo", "--quick"], run, installed["env"], timeout=1800)
    assert any(run.iterdir())


# ------------------------------------------------------------------------------------------------
# a typed package with a reference


def test_public_api_is_typed_and_documented():
    """Every function and public method of ``xclip.__all__`` has type hints and a docstring (the
    API reference, ``make docs-api``, is generated from them)."""
    import inspect

    problems = []
    for name in xclip.__all__:
        obj = getattr(xclip, name)
        if inspect.isfunction(obj):
            funcs = [(name, obj)]
        elif inspect.isclass(obj):
            if not obj.__doc__:
                problems.append(f"{name}: no docstring")
            funcs = [
                (f"{name}.{k}", v)
                for k, v in vars(obj).items()
                if inspect.isfunction(v) and (not k.startswith("_") or k == "__init__")
            ]
        else:
            continue
        for qual, f in funcs:
            sig = inspect.signature(f)
            untyped = [
                p
                for p, v in sig.parameters.items()
                if v.annotation is inspect.Parameter.empty and p not in ("self", "cls")
            ]
            if untyped:
                problems.append(f"{qual}: no hints for {untyped}")
            if qual.endswith("__init__"):
                continue
            if sig.return_annotation is inspect.Signature.empty:
                problems.append(f"{qual}: no return hint")
            if not f.__doc__:
                problems.append(f"{qual}: no docstring")
    assert not problems, problems
