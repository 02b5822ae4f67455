"""What a model or a service needs to run somewhere else: our code it imports and the pinned
third-party distributions that code imports, both derived from the code itself.

One derivation serves the MLflow model (its `code_paths` and `pip_requirements`) and the
bento (its source and `python.packages`): start from an entry module, follow every import of
ours (lazy ones inside functions too, read from the source, nothing imported), ship the
packages reached under the one `leadscore` namespace, and pin what they import from outside
to the versions installed here. A list written by hand falls behind the code (the bento once
missed `numba`, and `POST /events` lazily imported packages the bento did not carry).
"""

from __future__ import annotations

import ast
import shutil
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from importlib import metadata
from importlib.metadata import requires, version
from importlib.util import find_spec
from pathlib import Path

from leadscore.crm.errors import LeadscoreError

NAMESPACE = "leadscore"
# The namespace's own __init__ shipped with a subset of its packages: where the full
# leadscore is installed next to the shipped code (a notebook that loads a model, then runs a
# job), the rest of the namespace is still found on sys.path.
SHIPPED_INIT = '''"""leadscore code shipped with a model or a bento: the packages it runs.

Where the whole leadscore distribution is installed too, its other packages stay importable.
"""

from pkgutil import extend_path

__path__ = extend_path(__path__, __name__)
'''
SKIP = shutil.ignore_patterns("__pycache__", "*.pyc")


@dataclass(frozen=True)
class Shipment:
    """The code and requirements of one entry point.

    packages: our packages reached (`leadscore.crm`, ...), sorted.
    third_party: the top-level modules of other distributions their modules import.
    requirements: `name==version` per distribution of `third_party` installed here.
    optional: imports of optional adapters (an extra of ours) not installed here, left out.
    """

    packages: tuple[str, ...]
    third_party: tuple[str, ...]
    requirements: tuple[str, ...]
    optional: tuple[str, ...]

    def stage(self, dest: Path) -> Path:
        """Write `dest/leadscore/` holding the shipped packages (sources and data files);
        returns that folder (an MLflow code path, or a bento's source)."""
        root = Path(dest) / NAMESPACE
        if root.exists():
            shutil.rmtree(root)
        root.mkdir(parents=True)
        (root / "__init__.py").write_text(SHIPPED_INIT, encoding="utf-8")
        for package in self.packages:
            shutil.copytree(package_folder(package), root / package.split(".", 1)[1], ignore=SKIP)
        return root


def package_folder(package: str) -> Path:
    """The source folder of one of our packages, wherever it is installed (a checkout's
    top-level folder mapped into the namespace, or site-packages)."""
    return _folder(package)


@cache
def _folder(package: str) -> Path:
    try:
        spec = find_spec(package)
    except ModuleNotFoundError:
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise LeadscoreError(f"{package}: not an installed package of leadscore")
    return Path(next(iter(spec.submodule_search_locations)))


def _module_file(module: str) -> Path | None:
    """The source file of one of our modules, found without importing it (None: a name
    inside a module, `from leadscore.x.y import name`)."""
    parts = module.split(".")
    if len(parts) == 1:
        spec = find_spec(module)
        return Path(spec.origin) if spec is not None and spec.origin else None
    try:
        base = _folder(".".join(parts[:2]))
    except LeadscoreError:
        base = _folder(parts[0]) / parts[1]
    path = base.joinpath(*parts[2:])
    for candidate in (path / "__init__.py", path.with_suffix(".py")):
        if candidate.is_file():
            return candidate
    return None


def _imports(path: Path) -> Iterable[str]:
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module
            yield from (f"{node.module}.{alias.name}" for alias in node.names)


@cache
def _distributions() -> dict[str, list[str]]:
    """Top-level module -> the installed distributions providing it (read once: the walk
    over every installed distribution's files takes seconds)."""
    return metadata.packages_distributions()


def _is_package(module: str) -> bool:
    path = _module_file(module)
    return path is not None and path.name == "__init__.py"


def _ours(name: str) -> bool:
    return name == NAMESPACE or name.startswith(NAMESPACE + ".")


def reached(entries: Iterable[str]) -> tuple[set[str], set[str]]:
    """Our modules reached from `entries` by their imports, and the top-level names of every
    other (non-standard-library) module they import."""
    seen: set[str] = set()
    outside: set[str] = set()
    todo = list(entries)
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        path = _module_file(module)
        if path is None or path.suffix != ".py":
            continue  # `from leadscore.x import name`: a name, not a module
        seen.add(module)
        parts = module.split(".")
        todo += [".".join(parts[:i]) for i in range(2, len(parts))]  # the parent packages
        for name in _imports(path):
            if _ours(name):
                todo.append(name)
            else:
                top = name.split(".")[0]
                if top not in sys.stdlib_module_names and top != "__future__":
                    outside.add(top)
    return seen, outside


@cache
def _declared() -> dict[str, tuple[str, bool]]:
    """leadscore's own requirements: distribution -> (its extras as written, whether only an
    extra of leadscore asks for it). `psycopg[binary]` ships as declared."""
    import re

    out: dict[str, tuple[str, bool]] = {}
    for line in requires(NAMESPACE) or ():
        spec, _, marker = line.partition(";")
        m = re.match(r"\s*([A-Za-z0-9_.\-]+)\s*(\[[^\]]*\])?", spec)
        if m:
            name = _canonical(m.group(1))
            optional = "extra ==" in marker
            if name not in out or not optional:
                out[name] = ((m.group(2) or "").replace(" ", ""), optional)
    return out


def _canonical(name: str) -> str:
    return name.strip().lower().replace("_", "-").replace(".", "-")


def ship(*entries: str) -> Shipment:
    """The shipment of the entry modules (`leadscore.scoring.pyfunc_entry`,
    `leadscore.serving.service`): the packages they reach and the pinned distributions
    those import (a library no import of the entry reaches, such as the Spark engine's
    pyspark next to the model, is neither pinned nor required).

    Raises:
        LeadscoreError: a module they import belongs to no installed distribution.
    """
    modules, outside = reached(entries)
    by_module = _distributions()
    pins, optional = set(), set()
    declared = _declared()
    for top in sorted(outside):
        dists = by_module.get(top)
        if not dists:
            if declared.get(_canonical(top), ("", False))[1]:  # an optional adapter's library
                optional.add(top)
                continue
            raise LeadscoreError(
                f"the shipped code imports {top!r}, which no installed distribution provides: "
                "install it"
            )
        # mlflow's module comes in three distributions: the one named like it pulls the rest.
        named = [d for d in dists if _canonical(d) == _canonical(top)]
        for dist in named or list(dict.fromkeys(dists)):
            extras = declared.get(_canonical(dist), ("", False))[0]
            pins.add(f"{_canonical(dist)}{extras}=={version(dist)}")
    loose = sorted(m for m in modules if m.count(".") == 1 and not _is_package(m))
    if loose:
        raise LeadscoreError(
            f"the shipped code imports {', '.join(loose)}: modules of the leadscore package "
            "itself (the command line's floor), which a model or a bento does not carry"
        )
    packages = sorted({".".join(m.split(".")[:2]) for m in modules if m.count(".") >= 1})
    return Shipment(
        packages=tuple(packages),
        third_party=tuple(sorted(outside - optional)),
        requirements=tuple(sorted(pins)),
        optional=tuple(sorted(optional)),
    )
