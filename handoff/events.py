"""Hand-off events: the leads a scoring run should put in front of sales, as JSONL
(delivered to a webhook by `leadscore.handoff.delivery`).

A lead gets one event per run when, against its latest stored score before the run:
- it **crossed the hand-off line**: it is above the line now and was not (or had no
  earlier score: a new lead above the line is handed off too). The line is configurable
  (`HandoffLine`): the rules' MQL flag, and/or model grades (default: MQL or grade A);
- its **grade changed** (the model's A-D grade), up or down.

Every event names the `experiment` and `arm` its lead is in (both None outside one): inside a
randomised hand-off experiment, the lead's arm decides which line it is handed off by
(`leadscore.experiment.policy.ExperimentLine`, which answers the line's calls per lead).

A crossing whose Venn-Abers interval is too wide to act on (`review`: wider than the
model's `interval_review_width`) is sent as `lead.review` instead of `lead.handoff`: the
same crossing and id, for a person to look at rather than for sales to call at once.

Event ids: a crossing's is derived from the lead and the as_of of its last score below the
line (`crossing_id`), whoever saw it cross: the daily batch and the event stream (`stream`)
that both see a lead leave the same score below the line give its crossing one id, so the
outbox, which keeps every id it has delivered, hands it off once. A grade change's id is
derived from (lead, as_of, model version). Re-running the same as_of yields the same ids,
so a receiver that keeps the ids it has seen never acts twice on one event.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from leadscore.crm.errors import LeadscoreError
from leadscore.crm.folders import write_whole
from leadscore.crm.times import to_us
from leadscore.scoring.grades import GRADES


@dataclass(frozen=True)
class HandoffLine:
    """Above the line: the rules call the lead an MQL (`mql`), or the model's grade is one
    of `grades`. Either part can be switched off; not both."""

    mql: bool = True
    grades: str = "A"

    def __post_init__(self) -> None:
        bad = sorted(set(self.grades.upper()) - set(GRADES))
        if bad:
            raise LeadscoreError(f"hand-off grades {self.grades!r}: {', '.join(bad)} not in A-D")
        if not self.mql and not self.grades:
            raise LeadscoreError("the hand-off line needs the MQL flag or at least one grade")

    def describe(self) -> str:
        parts = (["rules MQL"] if self.mql else []) + (
            [f"model grade {' or '.join(self.grades.upper())}"] if self.grades else []
        )
        return " or ".join(parts)

    def above_one(self, grade: str | None, mql: bool | None, probability=None) -> bool:
        """`above` for one lead (the event stream's path: no pandas; the probability is
        what an experiment's model arm decides by, `leadscore.experiment.policy`)."""
        return bool(grade is not None and str(grade).upper() in self.grades.upper()) or bool(
            self.mql and mql
        )

    def above(self, grade: pd.Series, mql: pd.Series) -> np.ndarray:
        hit = grade.astype(object).isin(list(self.grades.upper())).to_numpy()
        if self.mql:
            hit = hit | mql.astype("boolean").fillna(False).to_numpy(dtype=bool)
        return hit

    def above_rows(self, rows: pd.DataFrame) -> np.ndarray:
        """`above` for rows (lead_id, grade, mql, probability): the call an experiment's
        line (`leadscore.experiment.policy.ExperimentLine`) answers per lead's arm."""
        return self.above(rows["grade"].reset_index(drop=True), rows["mql"].reset_index(drop=True))

    def for_lead(self, lead_id: str, created_us: int | None) -> HandoffLine:
        """The line one lead is handed off by: this one (an experiment's line gives its arm's)."""
        return self

    def arm_fields(self, lead_id: str) -> dict:
        """A hand-off event's `experiment` and `arm`: none outside an experiment."""
        return {"experiment": None, "arm": None}


def handoff_events(
    scores: pd.DataFrame,
    previous: pd.DataFrame,
    line: HandoffLine = HandoffLine(),
    *,
    reasons: Mapping[str, Sequence[list[str]]],
) -> list[dict]:
    """The run's events. `scores`: the run's rows (leadscore.scoring.score_row.COLUMNS); `previous`:
    each lead's latest stored row before this run (lead_id, grade, mql; may be empty);
    `reasons`: each row's worded reasons as lists (`reasons_up`, `reasons_down`), as the
    scoring call returned them (never split back out of the file's text)."""
    if scores.empty:
        return []
    prev = (
        previous.drop_duplicates("lead_id", keep="last").set_index("lead_id")
        if len(previous)
        else pd.DataFrame(columns=["grade", "mql", "as_of"])
    )
    ids = scores["lead_id"].astype(str)
    prev_grade = prev["grade"].reindex(ids).reset_index(drop=True)
    prev_mql = prev["mql"].reindex(ids).reset_index(drop=True)
    prev_as_of = (
        prev["as_of"].reindex(ids).reset_index(drop=True)
        if "as_of" in prev
        else pd.Series([None] * len(ids))
    )
    prev_probability = (
        prev["probability"].reindex(ids).reset_index(drop=True)
        if "probability" in prev
        else pd.Series([np.nan] * len(ids))
    )
    seen = prev_grade.notna().to_numpy()
    now_above = line.above_rows(scores.reset_index(drop=True))
    was_above = (
        line.above_rows(
            pd.DataFrame(
                {
                    "lead_id": ids.reset_index(drop=True),
                    "grade": prev_grade,
                    "mql": prev_mql,
                    "probability": prev_probability,
                }
            )
        )
        & seen
    )
    crossed = now_above & ~was_above
    changed = seen & (
        prev_grade.astype(object).to_numpy() != scores["grade"].astype(object).to_numpy()
    )
    events = []
    for i in np.flatnonzero(crossed | changed):
        row = scores.iloc[i]
        triggers = (["crossed_handoff_line"] if crossed[i] else []) + (
            ["grade_changed"] if changed[i] else []
        )
        worded = {name: list(reasons[name][i]) for name in ("reasons_up", "reasons_down")}
        below = _us_or_none(prev_as_of.iloc[i]) if seen[i] else None
        event = handoff_event(row, triggers, prev_grade.iloc[i] if seen[i] else None, line, worded)
        if crossed[i]:
            event["event_id"] = crossing_id(event["lead_id"], below)
        events.append(event)
    return events


def crossing_id(lead_id: str, below_since_us: int | None) -> str:
    """The id of a lead's crossing of the hand-off line: the lead and the as_of (µs) of its
    last score below the line before it (None: its first score was above). The batch run
    and the stream compute it alike, so one crossing is one event."""
    key = f"{lead_id}|crossed_handoff_line|{'first' if below_since_us is None else below_since_us}"
    return hashlib.sha256(key.encode()).hexdigest()[:32]


def _us_or_none(value) -> int | None:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    return to_us(pd.Timestamp(value))


def handoff_event(
    row: Mapping, triggers: list[str], previous_grade, line: HandoffLine, worded: dict
) -> dict:
    """One event's body from a scored row (a row of the scores file, or the stream's
    result for a lead): the one format of every hand-off, batch or stream."""
    as_of = pd.Timestamp(row["as_of"]).isoformat()
    key = "|".join(
        [str(row["lead_id"]), as_of, str(row["model_name"]), str(row["model_version"]), *triggers]
    )
    review = _flag(row.get("review"))
    if "crossed_handoff_line" in triggers:
        kind = "lead.review" if review else "lead.handoff"
    else:
        kind = "lead.grade_changed"
    return {
        "event_id": hashlib.sha256(key.encode()).hexdigest()[:32],
        "type": kind,
        "triggers": triggers,
        "handoff_line": line.describe(),
        "lead_id": str(row["lead_id"]),
        "as_of": as_of,
        "probability": float(row["probability"]),
        "score": int(row["score"]),
        "grade": str(row["grade"]),
        "beyond_trained_age": bool(row.get("beyond_trained_age", False)),
        "p_low": _number(row.get("p_low")),
        "p_high": _number(row.get("p_high")),
        "review": review,
        "previous_grade": None if previous_grade is None else str(previous_grade),
        "rule_score": None if pd.isna(row["rule_score"]) else int(row["rule_score"]),
        "rule_grade": None if pd.isna(row["rule_grade"]) else str(row["rule_grade"]),
        "mql": None if pd.isna(row["mql"]) else bool(row["mql"]),
        "trend": str(row.get("trend", "not enough history")),
        "reasons_up": worded["reasons_up"],
        "reasons_down": worded["reasons_down"],
        "model": {"name": str(row["model_name"]), "version": str(row["model_version"])},
        **line.arm_fields(str(row["lead_id"])),
    }


def _flag(value) -> bool:
    return False if value is None or pd.isna(value) else bool(value)


def _number(value) -> float | None:
    return None if value is None or pd.isna(value) else float(value)


def write_events(events: list[dict], path: str | Path) -> Path:
    """One JSON object per line, written whole or not at all, on disk before it returns."""
    text = "".join(json.dumps(e, sort_keys=True) + "\n" for e in events)
    return write_whole(path, lambda tmp: tmp.write_text(text), sync=True)


def summarize(events: Iterable[dict]) -> dict[str, int]:
    counts = {"crossed_handoff_line": 0, "review": 0, "grade_up": 0, "grade_down": 0}
    for e in events:
        if "crossed_handoff_line" in e["triggers"]:
            counts["crossed_handoff_line"] += 1
            counts["review"] += e["type"] == "lead.review"
        if "grade_changed" in e["triggers"]:
            up = GRADES.index(e["grade"]) < GRADES.index(e["previous_grade"])
            counts["grade_up" if up else "grade_down"] += 1
    return counts


def first_above_line(rows: pd.DataFrame, line: HandoffLine) -> pd.DataFrame:
    """Each lead's first score above the hand-off line among scored rows (a score history:
    lead_id, as_of, grade, mql, probability): lead_id, handed_off_at and the grade it had
    then. The line may be an experiment's (`leadscore.experiment.policy.ExperimentLine`):
    each lead is then judged by its own arm's line."""
    above = rows[np.asarray(line.above_rows(rows), dtype=bool)]
    first = above.sort_values(["as_of", "lead_id"], kind="stable").drop_duplicates("lead_id")
    return (
        first[["lead_id", "as_of", "grade"]]
        .rename(columns={"as_of": "handed_off_at"})
        .reset_index(drop=True)
    )
