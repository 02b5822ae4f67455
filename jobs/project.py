"""Where the configs and points rules come from, in one lookup order for every command.

1. The file given on the command line (`--config`, `--features-config`, `--rules`).
2. `conf/<name>.yaml` in the working folder: a project made by `leadscore init`, or the
   checkout, whose `conf/` is the copy users edit.
3. The defaults shipped with the package (`leadscore/defaults/`, the checkout's `conf/`
   files themselves), so that an installed wheel run in an empty folder has them too.

The points rules have one more step, before the defaults: the rules packed with a model,
then the dataset folder's own `rules.yaml` (`resolve_rules`).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
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


@dataclass(frozen=True)
class FoundRules:
    rules: object  # RulesConfig | None
    source: str  # where they came from (a file, or "packed with the model")
    absent: str = ""  # why there are none


def resolve_rules(explicit: Path | None, dataset, packed=None) -> FoundRules:
    """Marketing's rules for a dataset: `--rules` (its errors are the user's), else the
    rules packed with the model, else the dataset folder's own `rules.yaml`, else
    conf/rules.yaml when it fits the data; otherwise none, with the reason."""
    from leadscore.rules.config import check_rules, load_rules

    if explicit is not None:
        return FoundRules(load_rules(explicit), str(explicit))
    if packed is not None:
        return FoundRules(packed, "the rules packed with the model")
    own = Path(dataset.path) / "rules.yaml"
    if own.is_file():
        return FoundRules(load_rules(own), str(own))
    default = default_rules_path()
    if default is None:
        return FoundRules(None, "", "no rules file (pass --rules, or `leadscore rules init`)")
    rules = load_rules(default)
    try:
        check_rules(rules, dataset, file=str(default))
    except LeadscoreError as exc:
        return FoundRules(
            None,
            "",
            f"{default} does not fit this data ({exc}); `leadscore rules init --data "
            f"{dataset.path}` writes a template for it",
        )
    return FoundRules(rules, str(default))


def default_rules_path() -> Path | None:
    """conf/rules.yaml of the working folder, else the package's."""
    return config_path("rules")
