"""Where the configs and points rules come from, in one lookup order for every command.

1. The file given on the command line (`--config`, `--features-config`, `--rules`).
2. `conf/<name>.yaml` in the working folder: a project made by `leadscore init`, or the
   checkout, whose `conf/` is the copy users edit.
3. The defaults shipped with the package (`leadscore/defaults/`, the checkout's `conf/`
   files themselves), so that an installed wheel run in an empty folder has them too.

The points rules have one more step, before the defaults: the rules packed with a model,
then the dataset folder's own `rules.yaml` (see `leadscore.commands.compare.resolve_rules`).
"""

from __future__ import annotations

import shutil
from importlib.resources import files
from pathlib import Path

from leadscore.crm.errors import LeadscoreError

NAMES = ("features", "train", "rules")
PROJECT_CONF = Path("conf")


def packaged(name: str) -> Path:
    """The default `<name>.yaml` shipped with the package."""
    return Path(str(files("leadscore") / "defaults" / f"{name}.yaml"))


def config_path(name: str, explicit: str | Path | None = None) -> Path | None:
    """The config file a command reads for `name` (features, train or rules)."""
    if explicit is not None:
        return Path(explicit)
    local = Path.cwd() / PROJECT_CONF / f"{name}.yaml"
    if local.is_file():
        return local
    default = packaged(name)
    return default if default.is_file() else None


STARTER_README = """# A leadscore project

`conf/` holds the configs every command reads from this folder (a file given with
`--config`, `--features-config` or `--rules` wins; without one, the package's defaults):

- `conf/features.yaml`: the point-in-time features (horizon, snapshot ages, windows);
- `conf/train.yaml`: splits, LightGBM, calibration, grade cut-offs, the MLflow names;
- `conf/rules.yaml`: marketing's points rules, here the simulated B2B CRM's. For your
  own export, `leadscore rules init --data DATA --out conf/rules.yaml --overwrite` writes a
  template of its profile values and activity types to fill in, and
  `leadscore rules suggest --data DATA` learns one.

Next:

    leadscore simulate --out crm          # or: leadscore import csv ... --out crm
    leadscore validate crm
    leadscore train --data crm            # MLflow store: mlflow.db in this folder
    leadscore compare --data crm          # reports/compare.html
"""


def init_project(folder: str | Path, *, overwrite: bool = False) -> list[Path]:
    """Write a starter project into `folder`: `conf/` with the default configs and points
    rules, and a README saying what to do next. Refuses to replace a file unless
    `overwrite`; returns the files written."""
    root = Path(folder)
    targets = [root / PROJECT_CONF / f"{name}.yaml" for name in NAMES] + [root / "README.md"]
    existing = [p for p in targets if p.exists()]
    if existing and not overwrite:
        raise LeadscoreError(
            f"{existing[0]} exists: nothing written (--overwrite replaces the starter files)"
        )
    (root / PROJECT_CONF).mkdir(parents=True, exist_ok=True)
    for name, target in zip(NAMES, targets, strict=False):
        shutil.copyfile(packaged(name), target)
    (root / "README.md").write_text(STARTER_README)
    return targets
