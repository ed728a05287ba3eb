"""The layout rules of docs/architecture.md, checked on the source tree itself.

- the library (``xclip``) never imports the application (``xclip_app``);
- no import cycle between modules of ``src/``, counting imports inside functions;
- no module imports another module's private names (``from m import _x`` or ``m._x``);
- an import inside a function says why it is there: ``# lazy: optional dependency`` (a package
  the core install does not have) or ``# lazy: CLI start-up`` (kept out of ``xclip-video --help``).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
LAZY_REASONS = ("# lazy: optional dependency", "# lazy: CLI start-up")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(SRC.rglob("*.py"))}


MODULES = _modules()


def _is_package(name: str) -> bool:
    return MODULES[name].name == "__init__.py"


def _resolve(importer: str, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = importer.split(".")
    if not _is_package(importer):
        base = base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _type_checking_lines(tree: ast.AST) -> set[int]:
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for sub in node.body:
                lines.update(range(sub.lineno, (sub.end_lineno or sub.lineno) + 1))
    return lines


def _imports(name: str):
    """(line number, imported module, imported names, inside a function) for every import."""
    tree = ast.parse(MODULES[name].read_text())
    skip = _type_checking_lines(tree)
    in_function: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for sub in ast.walk(node):
                if isinstance(sub, (ast.Import, ast.ImportFrom)):
                    in_function.add(id(sub))
    for node in ast.walk(tree):
        if node.__class__ not in (ast.Import, ast.ImportFrom) or node.lineno in skip:
            continue
        local = id(node) in in_function
        if isinstance(node, ast.Import):
            for a in node.names:
                yield node.lineno, a.name, [], local
        else:
            yield node.lineno, _resolve(name, node), [a.name for a in node.names], local


def _edges() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {m: set() for m in MODULES}
    for m in MODULES:
        for _, target, names, _ in _imports(m):
            for n in names:
                if f"{target}.{n}" in MODULES:
                    graph[m].add(f"{target}.{n}")
            if target in MODULES and target != m:
                graph[m].add(target)
    return graph


def test_library_never_imports_the_application():
    bad = [
        f"{m}:{line} imports {target}"
        for m in MODULES
        if m.split(".")[0] == "xclip"
        for line, target, _, _ in _imports(m)
        if target.split(".")[0] == "xclip_app"
    ]
    assert not bad, "\n".join(bad)


def test_no_import_cycles():
    graph = _edges()
    # a package's __init__ re-exporting its modules is not a cycle when those modules import
    # siblings through the package path; count edges into __init__ only from outside the package
    for m, targets in graph.items():
        graph[m] = {t for t in targets if not (_is_package(t) and m.startswith(t + "."))}
    state: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(m: str) -> None:
        state[m] = 1
        stack.append(m)
        for t in sorted(graph[m]):
            if state.get(t) == 1:
                cycles.append(stack[stack.index(t) :] + [t])
            elif t not in state:
                visit(t)
        stack.pop()
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m)
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_no_private_names_across_modules():
    bad = []
    for m, path in MODULES.items():
        tree = ast.parse(path.read_text())
        aliases: dict[str, str] = {}
        for line, target, names, _ in _imports(m):
            if target in MODULES and target != m:
                bad += [f"{m}:{line} imports {target}.{n}" for n in names if _private(n)]
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for a in node.names:
                    if a.name in MODULES:
                        aliases[a.asname or a.name] = a.name
            elif isinstance(node, ast.ImportFrom):
                base = _resolve(m, node)
                for a in node.names:
                    if f"{base}.{a.name}" in MODULES:
                        aliases[a.asname or a.name] = f"{base}.{a.name}"
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and _private(node.attr)
                and isinstance(node.value, ast.Name)
                and node.value.id in aliases
            ):
                bad.append(f"{m}:{node.lineno} uses {aliases[node.value.id]}.{node.attr}")
    assert not bad, "\n".join(bad)


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def test_imports_inside_functions_say_why():
    bad = []
    for m, path in MODULES.items():
        lines = path.read_text().splitlines()
        for line, target, _, local in _imports(m):
            if local and not any(r in lines[line - 1] for r in LAZY_REASONS):
                bad.append(f"{path.relative_to(SRC)}:{line}: import of {target} inside a function")
    assert not bad, (
        "imports inside functions must be marked with one of "
        f"{LAZY_REASONS} or moved to the top of the module:\n" + "\n".join(bad)
    )


@pytest.mark.parametrize("name", sorted(m for m in MODULES if not m.endswith("__main__")))
def test_every_module_imports(name):
    __import__(name)


def test_the_command_line_starts_without_torch():
    # `xclip-video --help` builds every subcommand's parser; it must not load torch or the
    # library (measured: 5 s with them, 0.13 s without, on the 2-core CPU machine)
    code = (
        "import sys; from xclip_app.cli import build_parser; build_parser(); "
        "print(sorted(m for m in ('torch', 'xclip', 'numpy') if m in sys.modules))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert proc.stdout.strip() == "[]", proc.stdout
