"""The hand-off SLA: how soon sales must first touch a lead handed to it (5 minutes for a
grade-A lead, a day for any other, by default), when a hand-off falls due, and which
hand-offs missed it by a given time.

Plain functions on plain values, so that the daily batch (`leadscore score`, `leadscore
kpis`) and the event stream (its sweep, when it lands) decide a miss the same way: a
hand-off missed its SLA at `due_at` when no sales touch came at or before it; it is only
known to be missed once `due_at` has passed (a hand-off still inside its window is open,
neither kept nor missed).
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, field_validator

from leadscore.crm.errors import LeadscoreError
from leadscore.crm.times import from_us, timestamps_us
from leadscore.scoring.grades import GRADES

UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_duration(text: str, what: str = "duration") -> pd.Timedelta:
    """A duration written as a number and a unit: 90s, 5m, 4h, 1d, 2w (a bare number is
    minutes). A LeadscoreError naming `what` otherwise."""
    found = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*", str(text).lower())
    if not found:
        raise LeadscoreError(
            f"{what} {text!r}: not a duration; expected a number and a unit such as 5m, 4h, 1d"
        )
    value, unit = float(found.group(1)), found.group(2) or "m"
    if value <= 0:
        raise LeadscoreError(f"{what} {text!r}: must be longer than zero")
    return pd.Timedelta(**{UNITS[unit]: value})


class SlaConfig(BaseModel):
    """Time from a hand-off to the first sales touch, per model grade (`by_grade`) and for
    every other hand-off (`otherwise`, also for a hand-off without a grade)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    by_grade: dict[str, str] = Field(
        default_factory=lambda: {"A": "5m"},
        description="grade -> the time sales has to touch a hand-off of that grade (5m, 4h, 1d)",
    )
    otherwise: str = Field("1d", description="the time for any other hand-off")

    @field_validator("by_grade")
    @classmethod
    def _grades(cls, value: dict[str, str]) -> dict[str, str]:
        for grade, text in value.items():
            if grade not in GRADES:
                raise ValueError(f"grade {grade!r} is not one of {', '.join(GRADES)}")
            parse_duration(text, f"sla.by_grade.{grade}")
        return value

    @field_validator("otherwise")
    @classmethod
    def _otherwise(cls, value: str) -> str:
        parse_duration(value, "sla.otherwise")
        return value

    def limit(self, grade: str | None) -> pd.Timedelta:
        """The time sales has for a hand-off of this grade."""
        text = self.by_grade.get(str(grade)) if grade is not None else None
        return parse_duration(text if text is not None else self.otherwise)

    def limits(self, grades: pd.Series | None, n: int) -> pd.Series:
        """The limit of each of `n` hand-offs (all `otherwise` without grades)."""
        if grades is None:
            return pd.Series([self.limit(None)] * n, dtype="timedelta64[us]")
        return pd.Series(
            [self.limit(None if pd.isna(g) else g) for g in grades], dtype="timedelta64[us]"
        )

    def describe(self) -> str:
        parts = [f"grade {g}: {t}" for g, t in sorted(self.by_grade.items())]
        return ", ".join([*parts, f"otherwise: {self.otherwise}"])


def due_at(handed_off_at: pd.Timestamp, grade: str | None, sla: SlaConfig) -> pd.Timestamp:
    """When sales must have touched a hand-off by (one lead: what the stream asks)."""
    return pd.Timestamp(handed_off_at) + sla.limit(grade)


def is_missed(
    handed_off_at: pd.Timestamp,
    grade: str | None,
    first_touch_at: pd.Timestamp | None,
    now: pd.Timestamp,
    sla: SlaConfig,
) -> bool:
    """True once the hand-off's SLA has passed at `now` without a sales touch by then."""
    due = due_at(handed_off_at, grade, sla)
    touched = first_touch_at is not None and pd.notna(first_touch_at)
    return bool(now >= due and not (touched and first_touch_at <= due))


def sla_misses(
    handoffs: pd.DataFrame, first_touch: pd.Series, now: pd.Timestamp, sla: SlaConfig
) -> pd.DataFrame:
    """The hand-offs that missed their SLA by `now`, most overdue first.

    Args:
        handoffs: one row per hand-off: lead_id, handed_off_at, optional grade.
        first_touch: each lead's first sales touch at or after its hand-off (lead_id ->
            time; a lead without one is absent).
        now: the time the misses are looked for (hand-offs due later are still open).

    Returns:
        lead_id, handed_off_at, grade, due_at, first_touch_at (NaT: none yet), late_minutes
        (to the late touch, or to `now` when none came) and `touched_late` (a late touch
        came by now).
    """
    now = pd.Timestamp(now)
    frame = handoffs.reset_index(drop=True)
    grades = frame.get("grade")
    at = pd.to_datetime(frame["handed_off_at"], utc=True)
    due = at + sla.limits(grades, len(frame)).to_numpy()
    ids = frame["lead_id"].astype(str)
    touch = pd.Series(
        pd.to_datetime(first_touch, utc=True).reindex(ids.to_numpy()).to_numpy(),
        index=frame.index,
        dtype="datetime64[us, UTC]",
    )
    kept = touch.notna() & (touch <= due)
    missed = (due <= now) & ~kept
    late = touch.where(touch.notna() & (touch <= now), now)
    out = pd.DataFrame(
        {
            "lead_id": ids,
            "handed_off_at": at,
            "grade": grades if grades is not None else pd.Series(None, index=frame.index),
            "due_at": due,
            "first_touch_at": touch.where(touch <= now),
            "late_minutes": (late - due) / pd.Timedelta(minutes=1),
            "touched_late": touch.notna() & (touch <= now),
        }
    )[missed.to_numpy(bool)]
    return out.sort_values(["late_minutes", "lead_id"], ascending=[False, True]).reset_index(
        drop=True
    )


# A lead sales touched this long before its hand-off is already being worked: the hand-off
# counts as worked at once (a daily batch's first run hands off leads sales is on already).
ALREADY_WORKED = pd.Timedelta(days=7)


def first_touch_after(
    handoffs: pd.DataFrame,
    touches: pd.DataFrame | None,
    statuses: pd.DataFrame | None = None,
    already: pd.Timedelta = ALREADY_WORKED,
) -> pd.Series:
    """Each handed-off lead's first sign that sales worked it at or after its hand-off: a
    sales touch (lead_id, occurred_at) or a status change sales made (lead_id, changed_at,
    stage other than `new`); one within `already` before the hand-off counts as at the
    hand-off (sales was on the lead already). lead_id -> time; leads without one are absent."""
    parts = []
    if touches is not None and len(touches):
        parts.append(touches[["lead_id", "occurred_at"]].rename(columns={"occurred_at": "at"}))
    if statuses is not None and len(statuses):
        worked = statuses[statuses["stage"].astype(str) != "new"]
        parts.append(worked[["lead_id", "changed_at"]].rename(columns={"changed_at": "at"}))
    if not parts or not len(handoffs):
        return pd.Series(dtype="datetime64[us, UTC]")
    events = pd.concat(parts, ignore_index=True)
    events["lead_id"] = events["lead_id"].astype(str)
    at = handoffs.assign(lead_id=handoffs["lead_id"].astype(str)).set_index("lead_id")[
        "handed_off_at"
    ]
    events = events[events["lead_id"].isin(at.index)]
    handed = timestamps_us(pd.to_datetime(at.reindex(events["lead_id"].to_numpy()), utc=True))
    when = timestamps_us(pd.to_datetime(events["at"], utc=True))
    kept = when >= handed - already // pd.Timedelta(microseconds=1)
    worked = pd.Series(from_us(np.maximum(when, handed)), index=events.index)
    return worked[kept].groupby(events.loc[kept, "lead_id"]).min()
