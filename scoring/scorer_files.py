"""A scorer's saved folder: `scorer.json` (feature spec, features, categories, calibration,
grades, info, interval, segment corrections), LightGBM's `booster.txt`, the rules
(`rules.json`), and in sub-folders the evaluated model, the account model and the segment
champions. Written and read without pickling, so a saved scorer names no Python module and
loads whatever module its class lives in."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, TypeVar

import lightgbm as lgb

from leadscore.crm.errors import LeadscoreError
from leadscore.features.definitions import FeatureSpec
from leadscore.rules.scorer import RuleScorer
from leadscore.scoring.accounts import ACCOUNT_FILE, ACCOUNT_FOLDER, AccountScorer
from leadscore.scoring.grades import Grades
from leadscore.stats.calibration import Calibrator
from leadscore.stats.pooling import SegmentCalibration
from leadscore.stats.venn_abers import VennAbers

SCORER_FILE = "scorer.json"
BOOSTER_FILE = "booster.txt"
RULES_FILE = "rules.json"
EVALUATED_FOLDER = "evaluated"  # the evaluated model inside the shipped one's folder
CHAMPIONS_FOLDER = "segment_champions"  # a segment's own model, when it serves its segment

S = TypeVar("S")


def write_scorer_folder(scorer: Any, folder: str | Path) -> Path:
    """Write a `LeadScorer` into `folder`: JSON and LightGBM's text, nothing pickled."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    scorer.booster.save_model(str(folder / BOOSTER_FILE))
    meta = {
        "spec": scorer.spec.model_dump(),
        "features": scorer.features,
        "categories": scorer.categories,
        "calibrator": scorer.calibrator.__dict__,
        "grades": scorer.grades.model_dump(),
        "info": scorer.info,
    }
    if scorer.interval is not None:
        meta["interval"] = scorer.interval.to_dict()
    if scorer.segments is not None:
        meta["segments"] = scorer.segments.to_dict()
    (folder / SCORER_FILE).write_text(json.dumps(meta, indent=1, default=float))
    if scorer.rules is not None:
        (folder / RULES_FILE).write_text(json.dumps(scorer.rules.to_dict(), indent=1))
    if scorer.evaluated is not None:
        scorer.evaluated.save(folder / EVALUATED_FOLDER)
    if scorer.accounts is not None:
        scorer.accounts.save(folder / ACCOUNT_FOLDER)
    if scorer.segment_champions:
        index = {"column": scorer.champion_column, "values": {}}
        for k, (value, champion) in enumerate(sorted(scorer.segment_champions.items())):
            champion.save(folder / CHAMPIONS_FOLDER / f"s{k}")
            index["values"][value] = f"s{k}"
        (folder / CHAMPIONS_FOLDER / "index.json").write_text(json.dumps(index, indent=1))
    return folder


def read_scorer_folder(cls: type[S], folder: str | Path) -> S:
    """A scorer of class `cls` (`LeadScorer`) from its folder; a LeadscoreError when the
    folder holds no saved scorer."""
    folder = Path(folder)
    try:
        meta = json.loads((folder / SCORER_FILE).read_text())
        booster = lgb.Booster(model_file=str(folder / BOOSTER_FILE))
        rules_path = folder / RULES_FILE
        rules = (
            RuleScorer.from_dict(json.loads(rules_path.read_text()))
            if rules_path.is_file()
            else None
        )
    except (OSError, ValueError, lgb.basic.LightGBMError) as exc:
        raise LeadscoreError(f"{folder}: not a saved lead scorer ({exc})") from exc
    spec = FeatureSpec.model_validate(meta["spec"])
    index_path = folder / CHAMPIONS_FOLDER / "index.json"
    index = json.loads(index_path.read_text()) if index_path.is_file() else None
    return cls(
        spec,
        booster,
        meta["features"],
        meta["categories"],
        Calibrator(**meta["calibrator"]),
        Grades.model_validate(meta["grades"]),
        meta.get("info"),
        rules=rules,
        interval=VennAbers.from_dict(meta["interval"]) if "interval" in meta else None,
        segments=SegmentCalibration.from_dict(meta["segments"]) if "segments" in meta else None,
        evaluated=read_scorer_folder(cls, folder / EVALUATED_FOLDER)
        if (folder / EVALUATED_FOLDER / SCORER_FILE).is_file()
        else None,
        accounts=AccountScorer.load(folder / ACCOUNT_FOLDER, spec)
        if (folder / ACCOUNT_FOLDER / ACCOUNT_FILE).is_file()
        else None,
        champion_column=index["column"] if index else None,
        segment_champions={
            value: read_scorer_folder(cls, folder / CHAMPIONS_FOLDER / sub)
            for value, sub in index["values"].items()
        }
        if index
        else None,
    )
