"""The package layout (README "Layout"): every import arrow points down the table."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# package -> the packages of ours it may import (itself always allowed)
ALLOWED = {
    "stats": set(),
    "crm": set(),
    "features": {"stats", "crm"},
    "rules": {"stats", "crm", "features"},
    "scoring": {"stats", "crm", "features", "rules"},
    "training": {"stats", "crm", "features", "rules", "scoring"},
    "serving": {"stats", "crm", "features", "rules", "scoring"},
    "simulation": {"stats", "crm", "features"},
    "operations": {"stats", "crm", "features", "rules", "scoring", "training"},
    "leadscore": {
        "stats",
        "crm",
        "features",
        "rules",
        "scoring",
        "training",
        "serving",
        "simulation",
        "operations",
    },
}
OURS = set(ALLOWED) | {"tests", "benchmarks", "notebooks"}
# The one sanctioned exception: a lazy alias that lets models registered with the 0.1
# layout (whose logged entry file imports features.mlflow_model) still load.
LEGACY_ALIASES = {("features/mlflow_model.py", "scoring")}


def imported_packages(path: Path) -> set[str]:
    """Top-level packages of ours that a module imports (anywhere in it, lazily too)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        found |= {name.split(".")[0] for name in names} & OURS
    return found


def violations(root: Path) -> list[str]:
    out = []
    for package, allowed in ALLOWED.items():
        for path in sorted((root / package).rglob("*.py")):
            rel = path.relative_to(root).as_posix()
            for target in sorted(imported_packages(path) - allowed - {package}):
                if (rel, target) not in LEGACY_ALIASES:
                    out.append(f"{rel} imports {target} (allowed: {sorted(allowed) or 'nothing'})")
    return out


def test_every_arrow_points_down():
    assert violations(ROOT) == []


def test_every_package_is_in_the_table():
    packages = {p.parent.name for p in ROOT.glob("*/__init__.py")} - {"tests"}
    assert packages == set(ALLOWED)


def test_an_upward_import_is_caught(tmp_path):
    for package in ALLOWED:
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text("")
    (tmp_path / "serving" / "bad.py").write_text(
        "def f():\n    from training.fit import fit_models\n"
    )
    (tmp_path / "crm" / "bad.py").write_text("import features.batch\n")
    assert violations(tmp_path) == [
        "crm/bad.py imports features (allowed: nothing)",
        "serving/bad.py imports training (allowed: ['crm', 'features', 'rules', 'scoring'])",
    ]
