"""Each arm's hand-off policy, and the model arm's line matched to the rules' hand-off rate.

- the `rules` arm hands a lead off when the points rules call it an MQL;
- the `model` arm hands it off when the model's probability reaches the experiment's line,
  a probability chosen at the start so that the model hands off the same share of leads as
  the rules did (`matched_line`): sales gets the same number of leads from both arms, and
  the experiment compares which leads, not how many;
- an A/A experiment hands off by the rules in both arms (the set-up tested against itself).

Leads that are no experiment's (created before it started, or after it stopped) keep the
ordinary hand-off line (`leadscore.handoff.events.HandoffLine`). `ExperimentLine` is that
line with the experiments on top: the daily batch (`leadscore.operations.runs`) and the
event stream (`leadscore.stream.processor`) both decide through it, and both put the
lead's `experiment` and `arm` on its hand-off events.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from leadscore.crm.errors import LeadscoreError
from leadscore.experiment.assignment import MODEL, RULES, unit_of, units
from leadscore.experiment.records import Experiment
from leadscore.handoff.events import HandoffLine


@dataclass(frozen=True)
class MatchedLine:
    """The model arm's line (a probability), the rules' hand-off rate it matches, the
    model's rate at that line, and the leads both were counted on."""

    line: float
    rules_rate: float
    model_rate: float
    leads: int


def matched_line(max_probability: np.ndarray, ever_mql: np.ndarray) -> MatchedLine:
    """The probability line at which the model hands off the share of leads the rules did:
    `max_probability` is each past lead's highest scored probability, `ever_mql` whether the
    rules ever called it an MQL. Tied probabilities are handed off together, so the line is
    the one of the two candidates (just at and just above the k-th highest) whose share is
    nearer the rules'; on a tie between them, the lower share (never more than sales was
    promised)."""
    p = np.asarray(max_probability, dtype=np.float64)
    mql = np.asarray(ever_mql, dtype=bool)
    keep = np.isfinite(p)
    p, mql = p[keep], mql[keep]
    n = len(p)
    if n == 0:
        raise LeadscoreError(
            "no scored leads to match the model arm's line to the rules' hand-off rate: "
            "score the pipeline first (leadscore score), or give the line (--line)"
        )
    rate = float(mql.mean())
    ordered = np.sort(p)[::-1]
    k = int(round(rate * n))
    if k == 0:
        line = float(np.nextafter(ordered[0], np.inf))
    else:
        at = ordered[k - 1]
        higher = ordered[ordered > at]
        candidates = [float(at)] + ([float(higher.min())] if len(higher) else [])
        shares = [float((p >= c).mean()) for c in candidates]
        best = min(range(len(candidates)), key=lambda i: (abs(shares[i] - rate), shares[i]))
        line = candidates[best]
    return MatchedLine(line, rate, float((p >= line).mean()), n)


def per_lead_extremes(history: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Each lead's highest probability and whether it was ever an MQL, from score-history
    rows (lead_id, probability, mql): what `matched_line` matches on."""
    if history.empty:
        return np.zeros(0), np.zeros(0, dtype=bool)
    frame = pd.DataFrame(
        {
            "lead_id": history["lead_id"].astype(str).to_numpy(),
            "p": pd.to_numeric(history["probability"], errors="coerce").to_numpy(),
            "mql": history["mql"].astype("boolean").fillna(False).to_numpy(dtype=bool),
        }
    )
    grouped = frame.groupby("lead_id", sort=True).agg(p=("p", "max"), mql=("mql", "max"))
    return grouped["p"].to_numpy(dtype=np.float64), grouped["mql"].to_numpy(dtype=bool)


def disagreed(history: pd.DataFrame, experiment: Experiment) -> set[str]:
    """The leads on which the two policies disagreed at some stored score (the rules call
    it an MQL and its probability is below the model's line, or the other way round): the
    leads the `disagreements` design counts. Until a lead's first disagreement both arms
    treat it alike, so whether it ever disagrees does not depend on its arm."""
    if history.empty:
        return set()
    mql = history["mql"].astype("boolean").fillna(False).to_numpy(dtype=bool)
    p = pd.to_numeric(history["probability"], errors="coerce").fillna(-1.0).to_numpy()
    ids = history["lead_id"].astype(str).to_numpy()
    return set(ids[mql != (p >= experiment.line)])


log = logging.getLogger("leadscore.experiment")


def handed_off_in_history(history: pd.DataFrame, experiment: Experiment) -> set[str]:
    """The leads whose stored scores (lead_id, probability, mql; the batch's and the
    stream's alike) were ever above their arm's line in `experiment`: its hand-offs, as
    the score history saw them. Leads that are not the experiment's are the caller's to
    drop (the history does not know when a lead was created)."""
    if history.empty:
        return set()
    ids = history["lead_id"].astype(str).to_numpy()
    mql = history["mql"].astype("boolean").fillna(False).to_numpy(dtype=bool)
    p = pd.to_numeric(history["probability"], errors="coerce").fillna(-1.0).to_numpy()
    unique, inverse = np.unique(ids, return_inverse=True)
    model = (units(experiment.name, unique) < experiment.share)[inverse]
    above = mql if experiment.aa else np.where(model, p >= experiment.line, mql)
    return set(ids[above])


REFRESH_S = 60.0  # how often a long-running reader (the stream) looks for new experiments


class ExperimentLine:
    """The hand-off line with the experiments on top (see the module's docstring).

    `experiments`: a list, or a function returning the current list (the event stream's
    service reads the store again through `refresh`, at most every REFRESH_S seconds);
    `created_us`: lead id ->
    creation time (µs) for the batch, which decides for many leads at once."""

    def __init__(
        self,
        base: HandoffLine,
        experiments: Sequence[Experiment] | Callable[[], Sequence[Experiment]],
        created_us: Mapping[str, int] | pd.Series | None = None,
    ) -> None:
        self.base = base
        self._source = experiments if callable(experiments) else None
        self._experiments = None if callable(experiments) else list(experiments)
        self._read_at = -np.inf
        self.created_us = (
            created_us
            if created_us is None or isinstance(created_us, pd.Series)
            else pd.Series(dict(created_us), dtype="int64")
        )

    def refresh(self) -> None:
        """Read the experiments again when the last read is REFRESH_S old (a reader calls
        it between requests, outside any store's transaction). A failed re-read keeps the
        last read; a failed first read raises."""
        if self._source is None or time.monotonic() - self._read_at < REFRESH_S:
            return
        try:
            self._experiments = list(self._source())
        except LeadscoreError:
            if self._experiments is None:
                raise  # never read: no guessing which leads are whose
            log.warning("the experiments could not be read again; kept the last read")
        self._read_at = time.monotonic()

    @property
    def experiments(self) -> list[Experiment]:
        """The experiments as last read (read once first, if never read)."""
        if self._experiments is None:
            self.refresh()
        return self._experiments or []

    @property
    def mql(self) -> bool:
        return self.base.mql

    @property
    def grades(self) -> str:
        return self.base.grades

    def describe(self) -> str:
        running = [e for e in self.experiments if e.running]
        if not running:
            return self.base.describe()
        e = running[0]
        model = "rules MQL" if e.aa else f"model probability >= {e.line:.4f}"
        return (
            f"{self.base.describe()}; experiment {e.name}: rules arm by rules MQL, "
            f"model arm ({e.share:.0%}) by {model}"
        )

    # --- one lead (the stream) ---------------------------------------------------------

    def enrolment(self, lead_id: str, created_us: int | None) -> tuple[Experiment, str] | None:
        """The experiment that has the lead, and its arm (None: no experiment's)."""
        if created_us is None:
            return None
        for e in self.experiments:
            if e.enrols(int(created_us)):
                arm = MODEL if unit_of(e.name, str(lead_id)) < e.share else RULES
                return e, arm
        return None

    def for_lead(self, lead_id: str, created_us: int | None) -> LeadLine:
        """The line one lead is handed off by (the stream decides lead by lead)."""
        return LeadLine(self, self.enrolment(lead_id, created_us))

    # --- many leads (the batch) --------------------------------------------------------

    def _created(self, lead_ids: np.ndarray) -> np.ndarray:
        if self.created_us is None:
            raise LeadscoreError("the experiment's line needs each lead's creation time")
        found = self.created_us.reindex(lead_ids)
        return found.fillna(np.iinfo(np.int64).min).to_numpy(dtype=np.int64)

    def arms(self, lead_ids) -> tuple[np.ndarray, np.ndarray]:
        """Per lead: its experiment's name and its arm (None where no experiment has it)."""
        ids = np.asarray([str(i) for i in lead_ids], dtype=object)
        names = np.full(len(ids), None, dtype=object)
        arms = np.full(len(ids), None, dtype=object)
        created = self._created(ids)
        for e in self.experiments:
            mask = (created >= e.started_us) & (
                created < (e.stopped_us if e.stopped_us is not None else np.iinfo(np.int64).max)
            )
            if not mask.any():
                continue
            model = units(e.name, ids[mask]) < e.share
            names[mask] = e.name
            arms[mask] = np.where(model, MODEL, RULES)
        return names, arms

    def above_rows(self, rows: pd.DataFrame) -> np.ndarray:
        """Per row (lead_id, grade, mql, probability): above its own line."""
        out = np.asarray(self.base.above_rows(rows), dtype=bool).copy()
        if rows.empty or not self.experiments:
            return out
        names, arms = self.arms(rows["lead_id"].to_numpy())
        mql = rows["mql"].astype("boolean").fillna(False).to_numpy(dtype=bool)
        p = pd.to_numeric(rows["probability"], errors="coerce").to_numpy(dtype=np.float64)
        by_name = {e.name: e for e in self.experiments}
        for name in {n for n in names if n is not None}:
            e = by_name[name]
            mine = names == name
            model = mine & (arms == MODEL)
            out[mine & (arms == RULES)] = mql[mine & (arms == RULES)]
            out[model] = mql[model] if e.aa else np.nan_to_num(p[model], nan=-1.0) >= e.line
        return out

    def arm_fields(self, lead_id: str) -> dict:
        """The `experiment` and `arm` of a lead's hand-off event (None, None: no
        experiment's)."""
        names, arms = self.arms([lead_id])
        return {"experiment": names[0], "arm": arms[0]}


class LeadLine:
    """One lead's hand-off line: its arm's policy, or the ordinary line."""

    def __init__(self, line: ExperimentLine, enrolled: tuple[Experiment, str] | None) -> None:
        self.line, self.enrolled = line, enrolled

    def describe(self) -> str:
        return self.line.describe()

    def above_one(self, grade, mql, probability: float | None = None) -> bool:
        if self.enrolled is None:
            return self.line.base.above_one(grade, mql)
        e, arm = self.enrolled
        if arm == RULES or e.aa:
            return bool(mql)
        return probability is not None and float(probability) >= e.line

    def arm_fields(self, lead_id: str) -> dict:
        if self.enrolled is None:
            return {"experiment": None, "arm": None}
        return {"experiment": self.enrolled[0].name, "arm": self.enrolled[1]}
