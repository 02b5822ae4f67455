"""The package layout (docs/architecture.md): every import arrow points down the table, with
no exception, and no two modules import each other, directly or through others (lazy
imports inside functions count too)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# package -> the packages of ours it may import (itself always allowed)
ALLOWED = {
    "stats": set(),
    "pages": set(),
    "crm": set(),
    "features": {"stats", "crm"},
    "rules": {"stats", "crm", "features"},
    "scoring": {"stats", "crm", "features", "rules"},
    "training": {"stats", "pages", "crm", "features", "rules", "scoring"},
    "handoff": {"stats", "crm", "features", "rules", "scoring"},
    "experiment": {"stats", "pages", "crm", "features", "rules", "scoring", "handoff"},
    "stream": {"stats", "crm", "features", "rules", "scoring", "handoff"},
    "serving": {"stats", "crm", "features", "rules", "scoring", "handoff", "experiment", "stream"},
    "simulation": {"stats", "crm", "features"},
    "operations": {
        "stats",
        "pages",
        "crm",
        "features",
        "rules",
        "scoring",
        "handoff",
        "experiment",
        "stream",
    },
    "jobs": {
        "stats",
        "pages",
        "crm",
        "features",
        "rules",
        "scoring",
        "training",
        "handoff",
        "experiment",
        "stream",
        "serving",
        "simulation",
        "operations",
    },
    "leadscore": {
        "jobs",
        "stats",
        "pages",
        "crm",
        "features",
        "rules",
        "scoring",
        "training",
        "handoff",
        "experiment",
        "stream",
        "serving",
        "simulation",
        "operations",
    },
}
OURS = set(ALLOWED) | {"tests", "benchmarks", "notebooks"}
# What runs in production (the service, the stream, the daily batch and its hand-offs):
# never `training`, not even lazily inside a function, so that a bento, a scoring job or a
# loaded model carries and loads none of it.
RUN_TIME = (
    "crm",
    "features",
    "rules",
    "scoring",
    "handoff",
    "experiment",
    "stream",
    "serving",
    "operations",
)
# The run-time entry points: importing them (calling nothing) loads no training module.
RUN_TIME_ENTRIES = (
    "leadscore.jobs.score",
    "leadscore.jobs.monitor",
    "leadscore.serving.service",
    "leadscore.stream.processor",
    "leadscore.operations.pipeline",
)
# Every package is installed as leadscore.<package> (pyproject's package-dir): the folders
# stay at the top of the checkout, the imports name the namespace.
NAMESPACE = "leadscore"


def local_name(module: str) -> str:
    """`leadscore.features.batch` -> `features.batch` (the folder it lives in); the
    namespace's own modules (`leadscore.cli`) keep their name."""
    head, _, rest = module.partition(".")
    if head == NAMESPACE and rest.split(".")[0] in ALLOWED and rest.split(".")[0] != NAMESPACE:
        return rest
    return module


def _imports(path: Path) -> list[tuple[str, list[str]]]:
    """(module imported from, names) for every import statement of a file, lazy ones too."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(alias.name, []) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.module, [alias.name for alias in node.names]))
    return found


def imported_packages(path: Path) -> set[str]:
    """Top-level packages of ours that a module imports (anywhere in it, lazily too)."""
    return {local_name(module).split(".")[0] for module, _ in _imports(path)} & OURS


def violations(root: Path) -> list[str]:
    out = []
    for package, allowed in ALLOWED.items():
        for path in sorted((root / package).rglob("*.py")):
            rel = path.relative_to(root).as_posix()
            for target in sorted(imported_packages(path) - allowed - {package}):
                out.append(f"{rel} imports {target} (allowed: {sorted(allowed) or 'nothing'})")
    return out


def module_graph(root: Path) -> dict[str, set[str]]:
    """Module -> the modules of ours it imports (`from a.b import c` is a.b.c when that is a
    module, else a.b; a package is its __init__)."""
    modules = {}
    for package in ALLOWED:
        for path in (root / package).rglob("*.py"):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            modules[".".join(parts)] = path
    graph = {}
    for name, path in modules.items():
        targets = set()
        for module, names in _imports(path):
            module = local_name(module)
            hits = {f"{module}.{n}" for n in names} & modules.keys()
            targets |= hits or ({module} & modules.keys())
        graph[name] = targets - {name}
    return graph


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(found)


def test_every_arrow_points_down():
    assert violations(ROOT) == []


def training_imports(root: Path) -> list[str]:
    """The imports of `training` by a run-time package's modules (lazy ones too)."""
    return [
        f"{path.relative_to(root).as_posix()} imports training"
        for package in RUN_TIME
        for path in sorted((root / package).rglob("*.py"))
        if "training" in imported_packages(path)
    ]


def test_nothing_at_run_time_imports_training():
    assert training_imports(ROOT) == []


def test_the_run_time_entry_points_load_no_training():
    """In a fresh interpreter, importing the entry points leaves no `leadscore.training`
    module loaded (an import at a module's top, or a package's __init__, would)."""
    import subprocess
    import sys

    code = (
        "import importlib, sys\n"
        f"for name in {RUN_TIME_ENTRIES!r}:\n"
        "    importlib.import_module(name)\n"
        "print(sorted(m for m in sys.modules if m.split('.')[:2] == ['leadscore', 'training']))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert done.stdout.strip() == "[]"


def test_no_import_circle_between_modules():
    assert circles(module_graph(ROOT)) == []


def test_every_package_is_in_the_table():
    """The installed packages are the table's, each `leadscore.<folder>`, and the only
    top-level import name the distribution installs is `leadscore`."""
    import tomllib

    setup = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    mapped = setup["package-dir"]
    assert {name.split(".")[0] for name in setup["packages"]} == {NAMESPACE}
    assert mapped == {NAMESPACE: NAMESPACE} | {
        f"{NAMESPACE}.{p}": p for p in ALLOWED if p != NAMESPACE
    }
    folders = {p.parent.name for p in ROOT.glob("*/__init__.py")} - {"tests", "benchmarks"}
    assert folders == set(ALLOWED)


def _tree(tmp_path: Path) -> Path:
    for package in ALLOWED:
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text("")
    return tmp_path


def test_an_upward_import_is_caught(tmp_path):
    root = _tree(tmp_path)
    (root / "serving" / "bad.py").write_text(
        "def f():\n    from leadscore.training.fit import fit_models\n"
    )
    (root / "crm" / "bad.py").write_text("import leadscore.features.batch\n")
    assert violations(root) == [
        "crm/bad.py imports features (allowed: nothing)",
        "serving/bad.py imports training (allowed: ['crm', 'experiment', 'features', 'handoff', 'rules', 'scoring', 'stats', 'stream'])",
    ]


def test_a_run_time_import_of_training_is_caught(tmp_path):
    root = _tree(tmp_path)
    (root / "operations" / "lazy.py").write_text(
        "def f():\n    from leadscore.training.mlflow_runs import start_run\n"
    )
    (root / "scoring" / "top.py").write_text("import leadscore.training.accounts\n")
    (root / "jobs" / "train.py").write_text("from leadscore.training.fit import fit_models\n")
    assert training_imports(root) == [
        "scoring/top.py imports training",
        "operations/lazy.py imports training",
    ]


def test_a_circle_is_caught_even_through_a_lazy_import(tmp_path):
    root = _tree(tmp_path)
    (root / "operations" / "a.py").write_text("from leadscore.operations.b import X\nY = 1\n")
    (root / "operations" / "b.py").write_text(
        "X = 1\n\n\ndef f():\n    from leadscore.operations import c\n"
    )
    (root / "operations" / "c.py").write_text("from leadscore.operations.a import Y\n")
    (root / "operations" / "d.py").write_text("from leadscore.operations.a import Y\n")  # no circle
    assert circles(module_graph(root)) == [["operations.a", "operations.b", "operations.c"]]


SKIPPED = {".git", ".venv", "fixtures", "build", "site", "demo", "__pycache__"}


def _sources(root: Path):
    """(path, code) of every Python file and notebook code cell of the checkout."""
    import json
    import os

    found = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if d not in SKIPPED]
        found += [Path(folder, f) for f in files]
    for path in sorted(found):
        if path.suffix == ".py":
            yield path, path.read_text()
        elif path.suffix == ".ipynb":
            for cell in json.loads(path.read_text())["cells"]:
                if cell["cell_type"] == "code":
                    yield path, "".join(cell["source"]).replace("%", "#")


def bare_imports(root: Path) -> list[str]:
    """Imports of our packages by their bare names (`import features`, `from stats import`),
    which a user's own `stats.py` or `features/` would shadow."""
    bare = set(ALLOWED) - {NAMESPACE}
    out = []
    for path, code in _sources(root):
        tree = ast.parse(code, filename=str(path))
        for node in ast.walk(tree):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module]
                if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module
                else []
            )
            for name in names:
                if name.split(".")[0] in bare:
                    out.append(f"{path.relative_to(root).as_posix()}:{node.lineno} {name}")
    return out


def path_edits(root: Path) -> list[str]:
    """Assignments to sys.path and calls that change it, anywhere in the checkout."""
    out = []
    for path, code in _sources(root):
        for node in ast.walk(ast.parse(code, filename=str(path))):
            target = None
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                if node.func.attr in {"insert", "append", "extend", "remove"}:
                    target = node.func.value
            elif isinstance(node, ast.Assign | ast.AugAssign):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                target = next(iter(targets))
                target = target.value if isinstance(target, ast.Subscript) else target
            if target is not None and ast.unparse(target) == "sys.path":
                out.append(f"{path.relative_to(root).as_posix()}:{node.lineno}")
    return sorted(out)


def test_every_import_names_the_namespace():
    assert bare_imports(ROOT) == []


def test_nothing_edits_sys_path():
    assert path_edits(ROOT) == []


def test_a_bare_import_and_a_path_edit_are_caught(tmp_path):
    root = _tree(tmp_path)
    (root / "serving" / "bad.py").write_text(
        "import sys\nimport stats\nfrom features.batch import x\n"
        "from leadscore.stats import ranking\nsys.path.insert(0, '.')\n"
        "sys.path[:] = []\n"
    )
    assert bare_imports(root) == ["serving/bad.py:2 stats", "serving/bad.py:3 features.batch"]
    assert path_edits(root) == ["serving/bad.py:5", "serving/bad.py:6"]


def test_the_readme_layout_table_lists_every_package():
    """The README's layout table names every package folder (and deploy/), nothing else."""
    import re

    text = (ROOT / "README.md").read_text()
    table = text[text.index("| folder | holds |") :].split("\n\n")[0]
    listed = {name for name in re.findall(r"`(\w+)/`", table)}
    assert listed == set(ALLOWED) | {"deploy"}
