"""The shape of the code: no import cycles, a package that imports nothing heavy, one formats table that every stage
and the README agree with, and modules of a readable size."""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

import sqnxt_edge
from sqnxt_edge import runner
from sqnxt_edge.formats import ALL_FORMATS, FORMATS, format_of, markdown_table

PACKAGE = Path(sqnxt_edge.__file__).parent
ROOT = PACKAGE.parent


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in PACKAGE.rglob("*.py")}


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """Every package module `name` imports, anywhere in the file (module level, functions, TYPE_CHECKING blocks,
    importlib calls with a literal name). Importing a.b.c also runs a and a.b, unless they are `name`'s own
    ancestors (those are always initialised first)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    targets: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            targets.add(base)
            targets |= {f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in known}
        elif (
            isinstance(node, ast.Call)
            and getattr(node.func, "attr", getattr(node.func, "id", "")) == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            targets.add(node.args[0].value)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.split(":")[0] in known:
            targets.add(node.value.split(":")[0])  # a module named by a string ("module:Class" plugins)
    edges = set()
    ancestors = {".".join(name.split(".")[:i]) for i in range(1, name.count(".") + 2)}
    for target in targets:
        parts = target.split(".")
        for i in range(1, len(parts) + 1):
            mod = ".".join(parts[:i])
            if mod in known and mod not in ancestors and mod != name:
                edges.add(mod)
    return edges


def import_graph() -> dict[str, set[str]]:
    modules = _modules()
    known = set(modules)
    return {name: _imports(name, path, known) for name, path in modules.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in graph:
        if v not in index:
            visit(v)
    return out


def test_the_graph_sees_imports_in_functions_and_packages():
    graph = import_graph()
    assert "sqnxt_edge.runner" in graph["sqnxt_edge.artifacts"]  # module level
    assert "sqnxt_edge.bench.torch_runtime" in graph["sqnxt_edge.bench.local"]  # a plugin named by a string
    assert "sqnxt_edge.quantize" in graph["sqnxt_edge.export.context"]  # in a function
    assert "sqnxt_edge.quantize.tune" in graph["sqnxt_edge.export.onnx_steps"]  # a submodule in a function


def test_no_import_cycles():
    assert _cycles(import_graph()) == []


# The "may import" column of docs/architecture.md as data: which of the package's parts each part may import (beyond
# the shared utilities in SHARED, which every part may use). `pipeline` and `cli` sit on top and may import anything.
SHARED = {"errors", "_version", "progress", "plots", "interrupts", "cache"}
MAY_IMPORT: dict[str, set[str]] = {
    "runner": set(),
    "formats": {"runner"},
    "interrupts": set(),
    "artifacts": {"runner"},
    "cache": set(),
    "layer_names": set(),
    "models": set(),
    "data": {"runner"},
    "importer": set(),
    "checkpoint": {"importer", "models", "artifacts", "data"},
    "training": {"models", "data", "checkpoint", "artifacts", "formats", "runner", "devices"},
    "quantize": {"runner", "artifacts", "data", "layer_names"},
    "export": {"quantize", "runner", "artifacts", "formats", "devices", "checkpoint", "data", "models"},
    "devices": {"runner", "artifacts"},
    "bench": {"runner", "devices", "formats", "profiling", "artifacts", "checkpoint", "data"},
    "profiling": {"runner", "devices", "models", "artifacts", "checkpoint", "layer_names"},
    "plots": {"artifacts"},
    "predict": {"runner", "devices", "data", "bench"},
}
ON_TOP = {"pipeline", "cli", "__init__", "__main__"}


def _part(module: str) -> str:
    return module.split(".")[1] if "." in module else "__init__"


def test_every_import_is_one_the_architecture_allows():
    parts = {_part(m) for m in import_graph()}
    assert parts <= set(MAY_IMPORT) | SHARED | ON_TOP, (
        "a new part of the package: give it a row in MAY_IMPORT and the docs"
    )
    wrong = {
        (a, d)
        for a, deps in import_graph().items()
        for d in deps
        if _part(a) not in ON_TOP
        and _part(d) != _part(a)
        and _part(d) not in MAY_IMPORT.get(_part(a), set()) | (SHARED - {_part(a)})
    }
    assert wrong == set()


def test_the_architecture_doc_says_what_the_code_allows():
    """Each row of docs/architecture.md names, in its "may import" column, exactly the parts MAY_IMPORT allows (the
    shared utilities aside; text after "never" lists what is forbidden)."""
    doc = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    said = {}
    for line in doc.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 3 or not cells[0].startswith("`"):
            continue
        for name in re.findall(r"`([\w/.]+)`", cells[0]):
            part = name.removesuffix("/").removesuffix(".py")
            allowed = cells[2].split("never")[0]
            said[part] = {n for n in re.findall(r"`(\w+)`", allowed) if n not in SHARED}
    assert set(MAY_IMPORT) - SHARED <= set(said)
    assert {part: said[part] for part in MAY_IMPORT if part not in SHARED} == {
        part: allowed for part, allowed in MAY_IMPORT.items() if part not in SHARED
    }


def test_runner_and_devices_stand_alone():
    graph = import_graph()
    runner_modules = {name for name in graph if name == "sqnxt_edge.runner" or name.startswith("sqnxt_edge.runner.")}
    assert len(runner_modules) > 5 and "sqnxt_edge.runner.backends.onnxruntime" in runner_modules
    for name in runner_modules:  # the runner package imports only itself (and stdlib, numpy, runtimes: test_runner)
        assert graph[name] <= runner_modules, (name, graph[name] - runner_modules)
    for name, deps in graph.items():
        if name.startswith("sqnxt_edge.devices"):
            assert not {
                d for d in deps if d.startswith(("sqnxt_edge.bench", "sqnxt_edge.export", "sqnxt_edge.training"))
            }


@pytest.mark.parametrize(
    "code",
    [
        "import sqnxt_edge",
        "from sqnxt_edge.cli.main import app",
        "import sqnxt_edge.devices, sqnxt_edge.formats, sqnxt_edge.artifacts",
    ],
)
def test_importing_loads_no_framework_and_changes_no_setting(code):
    probe = (
        f"import os, sys, logging; before = dict(os.environ); level = logging.getLogger().level\n{code}\n"
        "import json; print(json.dumps({'heavy': sorted(m for m in ('torch', 'onnx', 'onnxruntime', 'matplotlib',"
        " 'litert_torch') if m in sys.modules), 'env': sorted(set(os.environ.items()) ^ set(before.items())),"
        " 'level': logging.getLogger().level == level}))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True)
    assert json.loads(out.stdout) == {"heavy": [], "env": [], "level": True}


@pytest.mark.parametrize(
    "argv",
    [["--help"], ["devices", "list"], ["devices", "--help"], ["bench", "--help"]]
    + [[command, "--help"] for command in ("profile", "estimate", "select", "predict")],
)
def test_cli_help_and_devices_never_import_torch(argv, tmp_path):
    probe = (
        "import sys\nfrom sqnxt_edge.cli.main import app\n"
        f"try:\n    app({argv!r})\nexcept SystemExit:\n    pass\n"
        "print('TORCH' if 'torch' in sys.modules else 'CLEAN')"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "SQNXT_EDGE_DEVICES": str(tmp_path / "d.toml"), "PYTHONPATH": str(ROOT)},
    )
    assert out.stdout.strip().splitlines()[-1] == "CLEAN", out.stderr


def test_formats_table_drives_runner_export_and_eval():
    for fmt in ALL_FORMATS.values():
        for suffix in fmt.suffixes:
            row = runner.SUFFIXES[suffix]
            assert (row[0], row[1], row[2]) == (fmt.name, fmt.layout, fmt.runtimes)
            assert format_of(f"x{suffix.upper()}") is fmt
            assert runner.runtimes_for(f"x{suffix}", fmt.runtime) == [fmt.runtime]
    assert set(runner.SUFFIXES) == {s for f in ALL_FORMATS.values() for s in f.suffixes}
    from sqnxt_edge.export.exporter import FAMILIES

    assert {f.family for f in FORMATS.values()} == set(FAMILIES)
    assert all(f.exportable for f in FORMATS.values()) and not ALL_FORMATS["pytorch"].exportable


def test_readme_format_table_is_the_formats_table():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert markdown_table() in readme


def test_module_sizes():
    sizes = {p.relative_to(ROOT).as_posix(): len(p.read_text().splitlines()) for p in PACKAGE.rglob("*.py")}
    assert {p: n for p, n in sizes.items() if n > 400} == {}  # the runner's modules too: it grows by modules


def test_every_slow_test_is_marked():
    """The fast lane (`pytest -m "not slow"`) must stay fast: a test module that trains or converts says so."""
    heavy = re.compile(r"digits_checkpoint|squeezenet_digits_checkpoint|tflite_export|int8_export|LoopbackSshd\(")
    for path in Path(__file__).parent.glob("test_*.py"):
        text = path.read_text(encoding="utf-8")
        for match in re.finditer(r"((?:@pytest\.mark\.[^\n]+\n)*)def (test_\w+)\(([^)]*)\)", text):
            marks, name, args = match.groups()
            if heavy.search(args) and "slow" not in marks and "pytestmark" not in text.split("def ", 1)[0]:
                pytest.fail(f"{path.name}::{name} uses a trained or converted fixture but is not marked slow")
