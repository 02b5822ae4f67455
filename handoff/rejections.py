"""The hand-offs sales rejected, analysed: by reason, lever and the model's grade; the rejected
leads that won all the same (sales was wrong) and the accepted leads the model rated low
(the model may be wrong), each group with the model's expected wins next to the observed
ones; and worded findings first ("sales rejected 31 % of trade-show hand-offs, mostly
'wrong contact'; 6 of the 40 rejected grade-A leads won within 90 days").

The model's view of a decided lead is its score just before sales decided (`scored_at`:
features from what was known one second before the decision, so the deal sales opened on
accepting is not seen). Expected and observed wins are counted within the model's horizon
after that moment, on the decisions whose horizon ended by the data's end (matured).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from leadscore.crm.dataset import Dataset
from leadscore.crm.lead_index import lead_positions
from leadscore.crm.times import days_us, timestamps_us
from leadscore.features.batch import behaviour_matrix, lead_frame
from leadscore.features.labels import Timeline
from leadscore.handoff.kpis import ALL, LoopFacts
from leadscore.stats.bootstrap import rate_interval

LOW_GRADES = ("C", "D")
NO_REASON = "(no reason given)"


@dataclass(frozen=True)
class Rejections:
    findings: list[str]
    by_reason: pd.DataFrame  # reason, rejected, share, won_later
    by_lever: pd.DataFrame  # source, decided, rejected, rejection_rate (+ interval), top_reason
    by_grade: pd.DataFrame  # grade, decided, accepted, rejected, rejection_rate, won after each
    groups: pd.DataFrame  # group, leads, matured, expected_wins, observed_wins
    won_anyway: pd.DataFrame  # the rejected leads that won: lead_id, source, reason, grade
    horizon_days: float | None = None
    notes: list[str] = field(default_factory=list)


def scored_at(
    dataset: Dataset, scorer, lead_ids: pd.Series, at: pd.Series, *, before: bool = True
) -> pd.DataFrame:
    """The model's probability and grade of each lead one second before `at` (at `at` with
    `before=False`; never before the lead's creation), from the batch engine's features and
    the scorer's one scoring call, and whether the lead won within the model's horizon after
    that moment: lead_id, as_of, probability, grade, won_within, matured (the horizon ended
    by the data's end)."""
    if not len(lead_ids):
        return pd.DataFrame(
            columns=["lead_id", "as_of", "probability", "grade", "won_within", "matured"]
        )
    positions = lead_positions(
        lead_ids.astype(str).reset_index(drop=True), dataset.leads["lead_id"]
    )
    created_us = timestamps_us(dataset.leads["created_at"])[positions]
    as_of_us = np.maximum(
        timestamps_us(pd.to_datetime(at, utc=True).reset_index(drop=True))
        - (1_000_000 if before else 0),
        created_us,
    )
    snaps = pd.DataFrame({"lead": positions, "created_us": created_us, "as_of_us": as_of_us})
    frame = lead_frame(
        dataset, scorer.spec, snaps, behaviour_matrix(dataset, scorer.spec, snaps), {}
    )
    record = scorer.score(scorer.frame_batch(frame), reasons=0)
    horizon_us = days_us(scorer.spec.horizon_days)
    timeline = Timeline.of_dataset(dataset)
    end_us = int(timestamps_us(pd.Series([dataset.data_end]))[0])
    return pd.DataFrame(
        {
            "lead_id": frame["lead_id"].astype(str).to_numpy(),
            "as_of": frame["as_of"].to_numpy(),
            "probability": record.probability,
            "grade": np.asarray(record.grade).astype(str),
            "won_within": timeline.won_within(positions, as_of_us, horizon_us).astype(bool),
            "matured": as_of_us + horizon_us <= end_us,
        }
    )


def analyse_rejections(
    loop: LoopFacts, scored: pd.DataFrame | None = None, horizon_days: float | None = None
) -> Rejections:
    """Rejections by reason, lever and grade, and the groups where sales or the model may be
    wrong. `scored`: `scored_at` of the decided leads at their decision (None: no model,
    the grade tables and expected wins are left out, and the findings say so)."""
    facts = loop.facts
    notes: list[str] = []
    decided = facts[facts["handed_off"] & facts["decision"].isin(["accepted", "rejected"])].copy()
    if not loop.has_status:
        return Rejections(
            ["no lead_status table: what sales did with its hand-offs is unknown, so there is "
             "no rejection to analyse"],
            *(pd.DataFrame() for _ in range(5)),
        )  # fmt: skip
    if not len(decided):
        return Rejections(
            ["sales decided on none of the hand-offs in the window (no accepted or rejected status)"],
            *(pd.DataFrame() for _ in range(5)),
        )  # fmt: skip
    decided["reason"] = decided["reason"].where(decided["reason"].notna(), NO_REASON)
    rejected = decided[decided["decision"] == "rejected"]
    if scored is not None and len(scored):
        view = scored.set_index("lead_id")
        for column in ("probability", "grade", "won_within", "matured"):
            decided[f"model_{column}"] = decided["lead_id"].map(view[column])
        rejected = decided[decided["decision"] == "rejected"]

    by_reason = (
        rejected.groupby("reason", sort=False)
        .agg(rejected=("lead_id", "size"), won_later=("won", "sum"))
        .reset_index()
        .sort_values(["rejected", "reason"], ascending=[False, True], kind="stable")
        .reset_index(drop=True)
    )
    by_reason["share"] = by_reason["rejected"] / max(len(rejected), 1)
    by_reason = by_reason[["reason", "rejected", "share", "won_later"]]

    lever_rows = []
    for source, g in [*decided.groupby("source", sort=True), (ALL, decided)]:
        r = g[g["decision"] == "rejected"]
        low, high = rate_interval(len(r), len(g), len(g))
        reasons = r["reason"].value_counts()
        lever_rows.append(
            {
                "source": source,
                "decided": len(g),
                "rejected": len(r),
                "rejection_rate": len(r) / len(g),
                "rejection_rate_low": low,
                "rejection_rate_high": high,
                "top_reason": _top(reasons),
                "top_reason_share": float(reasons.iloc[0] / len(r)) if len(r) else np.nan,
                "won_after_rejection": int(r["won"].sum()),
            }
        )
    by_lever = pd.DataFrame(lever_rows)

    won_anyway = rejected[rejected["won"]]
    keep = ["lead_id", "source", "reason", "decided_at"] + (
        ["model_grade", "model_probability"] if "model_grade" in rejected else []
    )
    won_anyway = won_anyway[keep].sort_values("lead_id").reset_index(drop=True)

    by_grade = pd.DataFrame()
    groups = pd.DataFrame()
    findings = _lever_findings(by_lever)
    if "model_grade" in decided:
        by_grade = _by_grade(decided)
        groups = _groups(decided)
        findings += _model_findings(groups, horizon_days)
    else:
        notes.append("no model given: the grades and the model's expected wins are left out")
        n_rejected, n_won = len(rejected), len(won_anyway)
        findings.append(
            f"{n_won:,} of the {n_rejected:,} rejected hand-offs won all the same by the data's end"
        )
    return Rejections(
        findings, by_reason, by_lever, by_grade, groups, won_anyway, horizon_days, notes
    )


def _top(counts: pd.Series) -> str | None:
    if not len(counts):
        return None
    best = counts[counts == counts.max()].index
    return sorted(str(v) for v in best)[0]  # ties: the first by name, whatever the row order


def _by_grade(decided: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for grade, g in decided.groupby("model_grade", sort=True):
        acc, rej = g[g["decision"] == "accepted"], g[g["decision"] == "rejected"]
        rows.append(
            {
                "grade": grade,
                "decided": len(g),
                "accepted": len(acc),
                "rejected": len(rej),
                "rejection_rate": len(rej) / len(g),
                "won_after_acceptance": int(acc["won"].sum()),
                "won_after_rejection": int(rej["won"].sum()),
            }
        )
    return pd.DataFrame(rows)


GROUPS = (
    ("rejected", lambda d: d["decision"] == "rejected"),
    ("rejected, grade A", lambda d: (d["decision"] == "rejected") & (d["model_grade"] == "A")),
    ("accepted", lambda d: d["decision"] == "accepted"),
    (
        "accepted, grade C or D",
        lambda d: (d["decision"] == "accepted") & d["model_grade"].isin(LOW_GRADES),
    ),
)


def _groups(decided: pd.DataFrame) -> pd.DataFrame:
    """Per group: decided leads, those whose horizon matured, the model's expected wins
    (the sum of its probabilities) and the wins observed within the horizon, on the
    matured ones."""
    rows = []
    for name, select in GROUPS:
        g = decided[select(decided).to_numpy(bool)]
        m = g[g["model_matured"].astype(bool)]
        rows.append(
            {
                "group": name,
                "leads": len(g),
                "matured": len(m),
                "expected_wins": float(m["model_probability"].sum()),
                "observed_wins": int(m["model_won_within"].astype(bool).sum()),
                "won_by_data_end": int(g["won"].sum()),
            }
        )
    return pd.DataFrame(rows)


def _lever_findings(by_lever: pd.DataFrame) -> list[str]:
    levers = by_lever[(by_lever["source"] != ALL) & (by_lever["decided"] > 0)]
    overall = by_lever[by_lever["source"] == ALL].iloc[0]
    out = [
        f"sales rejected {overall['rejection_rate']:.0%} of the {int(overall['decided']):,} "
        f"hand-offs it decided on"
        + (f", mostly {overall['top_reason']!r}" if overall["top_reason"] else "")
    ]
    if len(levers) > 1:
        worst = levers.sort_values(["rejection_rate", "source"], ascending=[False, True]).iloc[0]
        out.append(
            f"sales rejected {worst['rejection_rate']:.0%} of {worst['source']} hand-offs "
            f"({int(worst['rejected']):,} of {int(worst['decided']):,}; interval "
            f"{worst['rejection_rate_low']:.0%}-{worst['rejection_rate_high']:.0%})"
            + (
                f", mostly {worst['top_reason']!r} ({worst['top_reason_share']:.0%})"
                if worst["top_reason"]
                else ""
            )
        )
    return out


def _model_findings(groups: pd.DataFrame, horizon_days: float | None) -> list[str]:
    within = f"within {horizon_days:g} days" if horizon_days else "within the horizon"
    g = groups.set_index("group")
    out = []
    a = g.loc["rejected, grade A"]
    if a["leads"]:
        out.append(
            f"{int(a['observed_wins']):,} of the {int(a['matured']):,} rejected grade-A leads "
            f"(of {int(a['leads']):,}; the others are too recent to tell) won {within}; the model "
            f"expected {a['expected_wins']:.1f}"
        )
    r = g.loc["rejected"]
    if r["matured"]:
        verdict = (
            "sales' rejections are sound: they win less than the model expected"
            if r["observed_wins"] < r["expected_wins"]
            else "sales rejects leads that win as often as the model expected: look at why"
        )
        out.append(
            f"rejected leads won {int(r['observed_wins']):,} times {within} where the model "
            f"expected {r['expected_wins']:.1f} ({int(r['matured']):,} matured): {verdict}"
        )
    low = g.loc["accepted, grade C or D"]
    if low["matured"]:
        out.append(
            f"{int(low['observed_wins']):,} of the {int(low['matured']):,} accepted grade C-D leads "
            f"won {within}; the model expected {low['expected_wins']:.1f}"
            + (
                ": the model may rate such leads too low"
                if low["observed_wins"] > 1.5 * low["expected_wins"] + 2
                else ""
            )
        )
    return out
