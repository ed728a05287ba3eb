"""The hostile matrix: every output option of every ``xclip-video`` subcommand, found from the
parser itself, against the ways a user's files get destroyed (issue 19, docs/reliability.md).

For each (command, output option) and each case, with and without ``--overwrite``, a fresh world
of user files is built (videos, a labels file, an annotation list, a model folder xclip saved,
the case's foreign files), the command runs in-process, and the test asserts that

- every user file is still there, byte for byte (the model folder's files included);
- the exit code is the one the case expects (0 done, 2 refused) and a refusal is one line.

A new subcommand with an output option and no entry in ``RECIPES`` fails
``test_every_output_option_is_in_the_matrix``: nobody has to remember to add it. The table of
outcomes (cases, passes, refusals and their messages) is printed by
``python tests/faults/test_hostile_matrix.py`` for docs/reliability.md.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

import xclip
from xclip.data.annotations import write_video_list
from xclip.data.synthetic import write_video
from xclip.ownership import HOLDER_SUFFIX, LOCK_SUFFIX, kept_name
from xclip_app.cli import build_parser, main

SRC = Path(__file__).resolve().parents[2] / "src"
OUTPUT_OPTIONS = {"-o", "--output", "--out", "--json", "--clean-list"}
OUTPUT_POSITIONALS = {"output", "dst"}


def output_options(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()) -> list:
    """``[(command path, option)]`` for every option that names a file or folder to write."""
    found = []
    for a in parser._actions:
        if isinstance(a, argparse._SubParsersAction):
            for name, sp in a.choices.items():
                found += output_options(sp, (*prefix, name))
        elif a.nargs == 0:
            continue  # a flag (e.g. flops --json prints JSON), not a path
        elif OUTPUT_OPTIONS & set(a.option_strings):
            found.append((" ".join(prefix), max(a.option_strings, key=len)))
        elif not a.option_strings and a.dest in OUTPUT_POSITIONALS:
            found.append((" ".join(prefix), a.dest.upper()))
    return found


# -- the world ---------------------------------------------------------------------------------


@dataclass
class World:
    root: Path
    videos: Path  # a folder of two videos
    video: Path
    labels: Path
    annotations: Path
    model: Path  # a model folder xclip saved (its files are the user's to keep)

    def user_files(self) -> dict[str, str]:
        """sha256 of every file under root but xclip's bookkeeping and outputs it may write."""
        out = {}
        for p in sorted(self.root.rglob("*")):
            if p.is_file() and not p.is_symlink() and not kept_name(p.name):
                out[str(p.relative_to(self.root))] = hashlib.sha256(p.read_bytes()).hexdigest()
        return out


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    base = tmp_path_factory.mktemp("matrix-assets")
    torch.manual_seed(0)
    model = xclip.create_model("xclip_test")
    xclip.save_model(model, base / "tiny")
    frames = torch.randint(0, 255, (12, 48, 64, 3), dtype=torch.uint8).numpy()
    write_video(base / "a.mp4", frames, fps=12)
    write_video(base / "b.mp4", frames[::-1].copy(), fps=12)
    return base


@pytest.fixture
def world(assets, tmp_path) -> World:
    root = tmp_path / "home"
    vids = root / "vids"
    vids.mkdir(parents=True)
    for n in ("a.mp4", "b.mp4"):
        shutil.copy2(assets / n, vids / n)
    labels = root / "labels.txt"
    labels.write_text("cooking\ndancing\n", encoding="utf-8")
    ann = root / "list.txt"
    write_video_list(ann, [("a.mp4", 0), ("b.mp4", 1)])
    model = root / "models" / "tiny"
    shutil.copytree(assets / "tiny", model)
    return World(root, vids, vids / "a.mp4", labels, ann, model)


# -- how each command is run: argv with OUT in the output's place -------------------------------


@dataclass
class Recipe:
    argv: Callable[[World, str], list[str]]
    folder: bool = False  # the output is a folder
    suffix: str = ".out"  # the name the cases give a new output
    family: Callable[[Path], Path] | None = None  # a sibling of the output's family
    slow: bool = False  # the command runs minutes when it is not refused
    runs: bool = True  # the world has what a full run needs (else a run may end in exit 2)


def _cls(w: World, out: str) -> list[str]:
    return ["classify", str(w.videos), "--labels", "a,b", "--model", str(w.model),
            "--no-progress", "-o", out]  # fmt: skip


def _embed(w: World, out: str) -> list[str]:
    return ["embed", str(w.videos), "--model", str(w.model), "--no-progress", "-o", out]


def _search(w: World, out: str) -> list[str]:
    idx = w.root / "idx.safetensors"
    if not idx.exists():
        assert main(["embed", str(w.videos), "--model", str(w.model), "--no-progress",
                     "-o", str(idx)]) == 0  # fmt: skip
    return ["search", "cooking", "--index", str(idx), "--model", str(w.model), "-o", out]


def _scan(opt: str) -> Callable[[World, str], list[str]]:
    def argv(w: World, out: str) -> list[str]:
        base = ["scan", str(w.annotations), "--root", str(w.videos), "--no-progress"]
        if opt == "-o":
            return [*base, "-o", out]
        return [*base, "-o", str(w.root / "scan-report.json"), "--clean-list", out]

    return argv


def _convert(w: World, out: str) -> list[str]:
    return ["convert", str(w.model), out]


def _export(w: World, out: str) -> list[str]:
    return ["export", str(w.model), "--format", "onnx", "-o", out]


def _prepare(w: World, out: str) -> list[str]:
    return ["prepare", str(w.videos), out, "--no-progress", "--workers", "1"]


def _watch(w: World, out: str) -> list[str]:
    # a file read to its end: the watch ends by itself
    return ["watch", str(w.video), "--labels", "a,b", "--model", str(w.model), "--window",
            "0.5", "--stride", "0.25", "-o", out]  # fmt: skip


RECIPES: dict[tuple[str, str], Recipe] = {
    ("classify", "--output"): Recipe(_cls, suffix=".jsonl"),
    ("embed", "--output"): Recipe(
        _embed, suffix=".npy", family=lambda out: out.with_suffix(".json")
    ),
    ("search", "--output"): Recipe(_search, suffix=".json"),
    ("scan", "--output"): Recipe(_scan("-o"), suffix=".json"),
    ("scan", "--clean-list"): Recipe(_scan("--clean-list"), suffix=".txt"),
    ("convert", "OUTPUT"): Recipe(_convert, folder=True, suffix=""),
    ("export", "--output"): Recipe(_export, folder=True, suffix="", slow=True),
    ("prepare", "DST"): Recipe(_prepare, folder=True, suffix="", slow=True),
    ("watch", "--output"): Recipe(_watch, suffix=".jsonl"),
}
RECIPES[("splits kshot", "--output")] = Recipe(
    lambda w, out: ["splits", "kshot", "--list", str(w.annotations), "--k", "1", "-o", out],
    suffix=".txt",
)


def _needs_more(w: World, out: str, command: str) -> list[str]:
    """argv of the commands whose full run needs data this world does not have (official split
    files, a training set, OpenAI weights) or takes minutes (training, the demo, benchmarks)."""
    cfg = ["--config", "test/tiny.yaml"]
    return {
        "splits ucf101": ["splits", "ucf101", "--official-dir", str(w.root / "ucf"), "-o", out],
        "splits hmdb51": ["splits", "hmdb51", "--official-dir", str(w.root / "hmdb"), "-o", out],
        "splits k600-zeroshot": ["splits", "k600-zeroshot", "--k400-labels", str(w.labels),
                                 "--k600-labels", str(w.labels), "-o", out],
        "train": ["train", *cfg, "-o", out],
        "eval": ["eval", *cfg, "--out", out],
        "zeroshot": ["zeroshot", *cfg, "-o", out],
        "fewshot": ["fewshot", *cfg, "-o", out],
        "study": ["study", *cfg, "-o", out, "protocol.baseline=a",
                  "protocol.options=[{name: a}, {name: b, overrides: [train.lr=0.1]}]"],
        "demo": ["demo", "--quick", "--out", out],
        "interpolate": ["interpolate", str(w.model), "--source", str(w.model), "--alpha",
                        "0.5", "-o", out],
        "convert-openai": ["convert-openai", str(w.labels), out],
        "bench model": ["bench", "model", "--json", out],
        "bench data": ["bench", "data", "--json", out],
        "bench engines": ["bench", "engines", "--json", out],
        "bench search": ["bench", "search", "--json", out],
        # the benchmarks' code paths in seconds: a tiny model, a short stream
        "bench watch": ["bench", "watch", "--models", "xclip_test", "--precisions", "fp32",
                        "--strides", "1", "--window", "1", "--seconds", "2", "--size", "64x48",
                        "--clips-dir", str(w.root / "bench-clips"), "--json", out],
        "bench segments": ["bench", "segments", "--model", str(w.model), "--segments", "1",
                           "--work-dir", str(w.root / "bench-segments"), "--json", out],
    }[command]  # fmt: skip


# Every case still checks that no user file changes and that a refusal is one line; a case where
# such a command would proceed may end in exit 2 on the missing data instead of 0.
for command, option, folder in [
    ("splits ucf101", "--output", True), ("splits hmdb51", "--output", True),
    ("splits k600-zeroshot", "--output", True), ("train", "--output", True),
    ("eval", "--output", True), ("zeroshot", "--output", False),
    ("fewshot", "--output", False), ("study", "--output", False),
    ("demo", "--output", True),
    ("interpolate", "--output", True), ("convert-openai", "OUTPUT", False),
    ("bench model", "--json", False), ("bench data", "--json", False),
    ("bench engines", "--json", False), ("bench search", "--json", False),
    ("bench watch", "--json", False), ("bench segments", "--json", False),
]:  # fmt: skip
    RECIPES[(command, option)] = Recipe(
        lambda w, out, c=command: _needs_more(w, out, c),
        folder=folder,
        suffix="" if folder else ".json",
        slow=True,
        runs=False,
    )


def test_every_output_option_is_in_the_matrix():
    found = set(output_options(build_parser()))
    missing = found - set(RECIPES)
    assert not missing, f"output options with no hostile-matrix recipe: {sorted(missing)}"
    assert set(RECIPES) <= found, f"recipes of options that are gone: {set(RECIPES) - found}"


# -- the cases ---------------------------------------------------------------------------------

REFUSED, DONE = {2}, {0}


def _hold_lock(out: Path, kill: bool) -> subprocess.Popen:
    """A process that takes ``out``'s lock as :func:`xclip.ownership.lock_output` does (the
    same lock file and holder note, without importing torch: seconds per case), SIGKILLed at
    once when ``kill``."""
    code = (
        "import json, os, socket, sys, time; from filelock import FileLock\n"
        "lock, holder = sys.argv[1:3]\n"
        "held = FileLock(lock, timeout=0); held.acquire()\n"
        "open(holder, 'w').write(json.dumps({'pid': os.getpid(), 'host': socket.gethostname()}))\n"
        "print('locked', flush=True); time.sleep(120)\n"
    )
    out = Path(os.path.abspath(out))
    lock = out.parent / f".{out.name}{LOCK_SUFFIX}"
    holder = out.parent / f".{out.name}{HOLDER_SUFFIX}"
    proc = subprocess.Popen(
        [sys.executable, "-c", code, str(lock), str(holder)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout.readline().strip() == "locked"
    if kill:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    return proc


def _case(name: str, w: World, r: Recipe) -> tuple[str, set[int], subprocess.Popen | None]:
    """Set up the case in ``w``; the output path, the exit codes it allows, a lock holder."""
    out = w.root / f"out{r.suffix}"
    proc = None
    if name == "output is an input":
        out, codes = (w.model if r.folder else w.video), REFUSED
    elif name == "output inside an input folder":
        out, codes = w.videos / f"out{r.suffix or '-dir'}", REFUSED | DONE
    elif name == "an input inside the output":
        out, codes = w.videos if r.folder else w.root, REFUSED
    elif name == "output is the model folder":
        out, codes = w.model, REFUSED
    elif name == "output is the model's parent":
        out, codes = w.model.parent, REFUSED
    elif name == "an existing foreign file":
        out.write_bytes(b"the user's own file")
        codes = REFUSED
    elif name == "a foreign folder":
        out = w.root / "mine"
        out.mkdir()
        (out / "notes.txt").write_text("keep me")
        codes = REFUSED
    elif name == "a folder holding the user's other files":
        (w.root / "other").mkdir()
        (w.root / "other" / "notes.txt").write_text("keep me")
        out, codes = w.root / "other" / f"out{r.suffix}", DONE
    elif name == "a family with one foreign sibling":
        if r.family is not None:
            r.family(out).write_text("the user's sibling")
            codes = REFUSED
        elif r.folder:
            out.mkdir()
            (out / "part-000000.parquet").write_bytes(b"user bytes")
            codes = REFUSED
        else:  # a file output has no siblings: a user's file beside it is simply kept
            out.with_name(out.name + ".bak").write_text("the user's backup")
            codes = DONE
    elif name == "a read-only location":
        ro = w.root / "ro"
        ro.mkdir()
        (ro / "keep.txt").write_text("keep me")
        out = ro / f"out{r.suffix}"
        ro.chmod(0o555)
        codes = REFUSED if os.geteuid() != 0 else REFUSED | DONE  # root writes anyway
    elif name == "a dangling symlink":
        out.symlink_to(w.root / "nowhere")
        codes = REFUSED
    elif name == "an empty path":
        out, codes = Path(""), REFUSED
    elif name == "a second live process":
        proc = _hold_lock(out, kill=False)
        codes = REFUSED
    elif name == "a rerun after kill -9":
        _hold_lock(out, kill=True)  # its lock is released by the kernel, its holder note stays
        codes = DONE
    else:
        raise AssertionError(name)
    return ("" if str(out) == "." else str(out)), codes, proc


CASES = [
    "output is an input",
    "output inside an input folder",
    "an input inside the output",
    "output is the model folder",
    "output is the model's parent",
    "an existing foreign file",
    "a foreign folder",
    "a folder holding the user's other files",
    "a family with one foreign sibling",
    "a read-only location",
    "a dangling symlink",
    "an empty path",
    "a second live process",
    "a rerun after kill -9",
]
PROCEEDS = {"a folder holding the user's other files", "a rerun after kill -9",
            "output inside an input folder", "a read-only location",
            "a family with one foreign sibling"}  # fmt: skip


# The demo and the benchmarks run for minutes once they start: their cases that proceed (a
# demo into a folder beside the user's files, ...) run only with XCLIP_MATRIX_FULL=1, to keep
# CI within its budget; every case that must be refused runs always.
HEAVY = {"demo", "bench model", "bench data", "bench engines", "bench search"}


# Outputs whose form follows their name: the same option, another writer (Parquet collections:
# `-o X.parquet` one file, `-o X` any other name a folder of parts).
VARIANTS: dict[tuple[str, str], Recipe] = {
    ("classify", "--output (X.parquet)"): Recipe(_cls, suffix=".parquet"),
    ("embed", "--output (a Parquet folder)"): Recipe(
        lambda w, out: _embed(w, f"{out}/" if out else out), folder=True, suffix=""
    ),
    ("embed", "--output (a moments library)"): Recipe(
        lambda w, out: [*_embed(w, out), "--window", "1"], folder=True, suffix=""
    ),
}
ALL_RECIPES = {**RECIPES, **VARIANTS}


def _params():
    full = os.environ.get("XCLIP_MATRIX_FULL") == "1"
    for key, r in ALL_RECIPES.items():
        for case in CASES:
            if key[0] in HEAVY and case in PROCEEDS and not full:
                continue
            for overwrite in (False, True):
                marks = [pytest.mark.slow] if r.slow and case in PROCEEDS else []
                yield pytest.param(key, case, overwrite, marks=marks,
                                   id=f"{key[0]}:{key[1]}:{case}:{'ow' if overwrite else 'new'}")  # fmt: skip


def run_case(key, case, overwrite, w: World, capsys, monkeypatch) -> tuple[int, str, set[int]]:
    monkeypatch.chdir(w.root)  # an empty path that became "." would write here, seen below
    r = ALL_RECIPES[key]
    out, codes, proc = _case(case, w, r)
    if not r.runs and codes == DONE:  # the data a full run needs is not in this world
        codes = DONE | REFUSED
    argv = r.argv(w, out) + (["--overwrite"] if overwrite else [])
    before = w.user_files()
    top = set(os.listdir(w.root))
    capsys.readouterr()
    try:
        rc = main(argv)
    finally:
        if proc is not None:
            proc.kill()
            proc.wait()
        for p in w.root.rglob("*"):
            if p.is_dir() and not p.is_symlink():
                p.chmod(0o755)
    err = capsys.readouterr().err
    after = w.user_files()
    lost = {f for f in before if f not in after or after[f] != before[f]}
    assert not lost, f"{argv}: user files changed or gone: {sorted(lost)}"
    if case == "an empty path":  # nothing written into the current folder instead
        assert not {n for n in set(os.listdir(w.root)) - top if not kept_name(n)}, argv
    return rc, err, codes


@pytest.mark.parametrize(("key", "case", "overwrite"), list(_params()))
def test_hostile_matrix(key, case, overwrite, world, capsys, monkeypatch):
    rc, err, codes = run_case(key, case, overwrite, world, capsys, monkeypatch)
    if os.environ.get("XCLIP_MATRIX_LOG"):  # the outcomes, for docs/reliability.md
        line = next((ln for ln in err.splitlines() if ": error: " in ln), "")
        row = {
            "command": key[0],
            "option": key[1],
            "case": case,
            "overwrite": overwrite,
            "rc": rc,
            "ok": rc in codes,
            "message": line.split(": error: ", 1)[-1],
        }
        with open(os.environ["XCLIP_MATRIX_LOG"], "a", encoding="utf-8") as f:
            f.write(json.dumps(row) + "\n")
    assert rc in codes, f"exit {rc}, expected {sorted(codes)}; stderr:\n{err}"
    if rc == 2:
        errors = [ln for ln in err.splitlines() if ": error: " in ln]
        assert len(errors) == 1 and "Traceback" not in err, err


def _unchanged(w: World, before: dict[str, str]) -> list[str]:
    after = w.user_files()
    return sorted(f for f in before if after.get(f) != before[f])


def test_issue_19_example_embed_into_a_folder_of_user_files(world, capsys):
    """``embed VIDEOS -o OUT/``: a rerun with the same settings after the user put a file in
    OUT (it was deleted at publishing, exit 0), and OUT holding the input videos."""
    w = world
    out = w.root / "lib"
    argv = ["embed", str(w.videos), "--model", str(w.model), "-o", f"{out}/", "--no-progress"]
    assert main(argv) == 0
    (out / "notes.txt").write_text("keep me")
    before = w.user_files()
    assert main(argv) == 2
    assert main([*argv, "--overwrite"]) == 2
    assert main([*argv[:-3], "-o", f"{w.videos}/", "--no-progress"]) == 2
    assert _unchanged(w, before) == []
    err = capsys.readouterr().err
    assert err.count(": error: ") == 3 and "notes.txt" in err


def test_issue_19_example_prepare_into_a_dst_with_user_files(world, capsys):
    """``prepare SRC DST`` where DST holds the user's a.mp4 and an annotation list."""
    w = world
    dst = w.root / "dst"
    dst.mkdir()
    (dst / "a.mp4").write_bytes(b"the user's own a.mp4")
    shutil.copy2(w.annotations, dst / "list.txt")
    before = w.user_files()
    for extra in ([], ["--overwrite"]):
        rc = main(["prepare", str(w.videos), str(dst), "--annotations", str(dst / "list.txt"),
                   "--no-progress", *extra])  # fmt: skip
        assert rc == 2
    assert _unchanged(w, before) == []
    assert capsys.readouterr().err.count(": error: ") == 2


def test_issue_19_example_export_into_the_models_parent(world, capsys):
    """``export M -o PARENT --overwrite`` where PARENT holds M."""
    w = world
    before = w.user_files()
    assert main(["export", str(w.model), "-o", str(w.model.parent), "--overwrite"]) == 2
    assert _unchanged(w, before) == []
    assert capsys.readouterr().err.count(": error: ") == 1


if __name__ == "__main__":  # the counts for docs/reliability.md, from XCLIP_MATRIX_LOG
    import collections

    rows = [json.loads(x) for x in Path(sys.argv[1]).read_text(encoding="utf-8").splitlines()]
    by = collections.defaultdict(lambda: [0, 0, 0])
    for r in rows:
        k = f"{r['command']} {r['option']}"
        by[k][0] += 1
        by[k][1] += r["ok"]
        by[k][2] += r["rc"] == 2
    print("| command, output | cases | pass | refused (exit 2) |\n|---|---|---|---|")
    for k, (n, ok, refused) in sorted(by.items()):
        print(f"| `{k}` | {n} | {ok} | {refused} |")
    print(
        f"| all | {len(rows)} | {sum(r['ok'] for r in rows)} | {sum(r['rc'] == 2 for r in rows)} |"
    )
