"""The marketing report's tables, each from the scored test rows: the headline with its
intervals, deciles, the capacity-matched comparison and its quadrants, example leads with
their reasons, calibration, per-source figures and the funnel. Every ranking cut is
tie-aware (`leadscore.stats.ranking`) and every interval comes from the one bootstrap over leads."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, roc_auc_score

from leadscore.crm.dataset import Dataset
from leadscore.rules.scorer import RuleScorer
from leadscore.scoring.scorer import LeadScorer
from leadscore.stats.bootstrap import lead_resample_weights, percentile_interval
from leadscore.stats.metrics import (
    calibration_bins,
    deciles,
    expected_calibration_error,
)
from leadscore.stats.ranking import day_index, same_day_auc, top_share, top_share_by_day

SCORERS = {
    "model": "Model (LightGBM)",
    "rules": "Points rules",
    "learned": "Learned points",
    "lead_age": "Lead age alone",
}
EXAMPLES = 3


def _metrics(
    y: np.ndarray, ranking: np.ndarray, p: np.ndarray, day: np.ndarray
) -> dict[str, float]:
    return {
        "roc_auc": float(roc_auc_score(y, ranking)),
        # among the leads open on the same day (`leadscore.stats.ranking.same_day_auc`)
        "same_day_auc": same_day_auc(y, ranking, day),
        "pr_auc": float(average_precision_score(y, ranking)),
        "brier": float(np.mean((p - y) ** 2)),
        "lift_top_decile": deciles(y, ranking)[0]["lift"],
    }


def headline_table(rows, rankings, probabilities, bootstrap: int, seed: int):
    """Point estimates and 95 % intervals from `leadscore.stats.bootstrap` (leads resampled with
    their snapshots, stratified by outcome); every interval contains its estimate."""
    y = rows["label"].to_numpy().astype(int)
    day = day_index(rows["as_of"].to_numpy())
    names = list(rankings)
    point = {n: _metrics(y, rankings[n], probabilities[n], day) for n in names}
    draws: dict[str, list[dict]] = {n: [] for n in names}
    for weights in lead_resample_weights(rows["lead_id"].to_numpy(), y, bootstrap, seed):
        idx = np.repeat(np.arange(len(y)), weights)
        for n in names:
            draws[n].append(_metrics(y[idx], rankings[n][idx], probabilities[n][idx], day[idx]))
    table = []
    for n in names:
        row = {"scorer": n}
        for metric, value in point[n].items():
            low, high = percentile_interval([d[metric] for d in draws[n]], value)
            row[metric] = value
            row[f"{metric}_low"], row[f"{metric}_high"] = low, high
        row["ece"] = expected_calibration_error(y, probabilities[n])
        table.append(row)
    differences = {}
    if "rules" in names:
        for metric in ("roc_auc", "same_day_auc", "pr_auc", "brier", "lift_top_decile"):
            diff = point["model"][metric] - point["rules"][metric]
            diffs = [
                m[metric] - r[metric] for m, r in zip(draws["model"], draws["rules"], strict=True)
            ]
            differences[metric] = [diff, *percentile_interval(diffs, diff)]
    return pd.DataFrame(table), differences


def decile_table(rows: pd.DataFrame, rankings: dict[str, np.ndarray]) -> pd.DataFrame:
    """Per scorer, `leadscore.stats.metrics.deciles` of its own ranking (the training table's
    definition of lift and capture)."""
    y = rows["label"].to_numpy()
    return pd.DataFrame(
        [{"scorer": name, **row} for name, r in rankings.items() for row in deciles(y, r)]
    )


def capacity_table(
    rows: pd.DataFrame, rankings: dict[str, np.ndarray], n: int, *, same_day: bool = False
) -> pd.DataFrame:
    """The rules' MQLs against the same number of top leads by each other scorer (tied
    scores at the cut share the remaining places: expected wins and revenue).

    same_day: matched day by day: on each day, as many of that day's open leads as the
    rules hand off that day (`leadscore.stats.ranking.top_share_by_day`); else the top `n`
    of the whole window (leads of different days compete: pooled)."""
    y, revenue = rows["label"].to_numpy(), rows["revenue"].to_numpy()
    mql = rows["mql"].to_numpy().astype(np.float64)
    picks = {"rules (score >= threshold)": mql}
    day = day_index(rows["as_of"].to_numpy()) if same_day else None
    for name, r in rankings.items():
        if name == "rules":
            continue
        if same_day:
            picks[f"{name} (top {n:,}, matched day by day)"] = top_share_by_day(r, mql, day)
        else:
            picks[f"{name} (top {n:,})"] = top_share(r, n)
    out = []
    for name, share in picks.items():
        leads, wins = float(share.sum()), float(share @ y)
        out.append(
            {
                "handed to sales": name,
                "leads": leads,
                "wins": wins,
                "win_rate": wins / leads if leads else np.nan,
                "share_of_all_wins": wins / max(float(y.sum()), 1.0),
                "revenue": float(share @ np.nan_to_num(revenue))
                if np.isfinite(revenue).any()
                else np.nan,
            }
        )
    return pd.DataFrame(out)


QUADRANTS = {
    "both": "rules MQL and model top-N",
    "model_only": "model top-N only",
    "rules_only": "rules MQL only",
    "neither": "neither",
}


def _quadrant_shares(rows: pd.DataFrame, top_column: str = "model_top_n") -> dict[str, np.ndarray]:
    """Each row's share of each quadrant (a tied row at the model's cut is part top-N)."""
    mql = rows["mql"].to_numpy().astype(np.float64)
    top = rows[top_column].to_numpy().astype(np.float64)
    return {
        "both": mql * top,
        "model_only": (1 - mql) * top,
        "rules_only": mql * (1 - top),
        "neither": (1 - mql) * (1 - top),
    }


def quadrant_table(rows: pd.DataFrame, top_column: str = "model_top_n") -> pd.DataFrame:
    y, revenue = rows["label"].to_numpy(), rows["revenue"].to_numpy()
    p, points = rows["probability"].to_numpy(), rows["rule_score"].to_numpy()
    out = []
    for key, share in _quadrant_shares(rows, top_column).items():
        leads = float(share.sum())
        out.append(
            {
                "quadrant": QUADRANTS[key],
                "leads": leads,
                "wins": float(share @ y),
                "win_rate": float(share @ y) / leads if leads else np.nan,
                "revenue": float(share @ np.nan_to_num(revenue))
                if np.isfinite(revenue).any()
                else np.nan,
                "mean_probability": float(share @ p) / leads if leads else np.nan,
                "mean_rule_score": float(share @ points) / leads if leads else np.nan,
            }
        )
    return pd.DataFrame(out)


def example_leads(
    rows, test, scorer: LeadScorer, rule_scorer: RuleScorer, x_test
) -> dict[str, list[dict]]:
    """For the disagreements (and agreements), the leads each side is most sure of, with
    the model's reasons and the rules' biggest point items."""
    shares = _quadrant_shares(rows)  # rows not at a hand-off have no share of the decision
    decision = rows["hand_off"].to_numpy()
    shares = {key: np.where(decision, share, 0.0) for key, share in shares.items()}
    contributions = rule_scorer.contributions(x_test)
    # tie-break by lead and time, never by row order
    tiebreak = np.lexsort((rows["as_of"].to_numpy(), rows["lead_id"].astype(str).to_numpy()))
    rank = np.empty(len(rows), dtype=np.int64)
    rank[tiebreak] = np.arange(len(rows))
    out: dict[str, list[dict]] = {}
    for key in QUADRANTS:
        idx = np.flatnonzero(shares[key] > 0.5)
        if not len(idx):
            continue
        # model_only: the model's strongest picks; rules_only: the rules' strongest
        # (ties broken by the model's doubt); both/neither: the extremes.
        if key == "rules_only":
            keys = rows["rule_score"].to_numpy()[idx] - rows["probability"].to_numpy()[idx]
        elif key == "neither":
            keys = -rows["probability"].to_numpy()[idx]
        else:
            keys = rows["probability"].to_numpy()[idx]
        chosen = idx[np.lexsort((rank[idx], -keys))[:EXAMPLES]]
        reasons = scorer.score(scorer.frame_batch(test.iloc[chosen]), reasons=3).reasons
        items = []
        for j, i in enumerate(chosen):
            points = sorted(
                ((name, float(v[i])) for name, v in contributions.items() if abs(v[i]) >= 0.5),
                key=lambda kv: -abs(kv[1]),
            )[:4]
            items.append(
                {
                    "lead_id": rows["lead_id"].iat[i],
                    "as_of": pd.Timestamp(rows["as_of"].iat[i]).isoformat(),
                    "probability": float(rows["probability"].iat[i]),
                    "rule_score": int(rows["rule_score"].iat[i]),
                    "won": bool(rows["label"].iat[i]),
                    "model_up": [r["text"] for r in reasons[j]["positive"]],
                    "model_down": [r["text"] for r in reasons[j]["negative"]],
                    "rule_points": [_rule_item(name, v, x_test, i) for name, v in points],
                }
            )
        out[key] = items
    return out


def _rule_item(name: str, points: float, x: dict, i: int) -> str:
    sign = "+" if points >= 0 else "-"
    if name == "days_inactive":
        return f"{sign}{abs(points):.0f} no engagement for {x[name][i]:.0f} days"
    key = f"activity:{name}"
    if key in x:
        return f"{sign}{abs(points):.0f} {name.replace('_', ' ')} (decayed count {x[key][i]:.1f})"
    return f"{sign}{abs(points):.0f} {name.replace('_', ' ')} = {x[name][i]}"


def calibration_table(
    y: np.ndarray, probabilities: dict[str, np.ndarray], bins: int = 10
) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {"scorer": name, **b}
            for name, p in probabilities.items()
            for b in calibration_bins(y, p, bins)
        ]
    )


def interval_table(rows: pd.DataFrame) -> pd.DataFrame:
    """Per model grade (and all rows): the mean Venn-Abers interval against what happened.
    Rows, mean p_low, mean probability, mean p_high, the observed win rate and whether it
    lies within [mean p_low, mean p_high], the mean width and the share sent to review.
    Empty for a model without intervals."""
    if "p_low" not in rows or rows["p_low"].isna().all():
        return pd.DataFrame()
    y = rows["label"].to_numpy(dtype=float)
    grades = rows["grade"].astype(str).to_numpy()
    low, high = rows["p_low"].to_numpy(float), rows["p_high"].to_numpy(float)
    p, review = rows["probability"].to_numpy(float), rows["review"].to_numpy(bool)
    out = []
    for grade in [*sorted(set(grades)), "all"]:
        mask = np.ones(len(rows), bool) if grade == "all" else grades == grade
        if not mask.any():
            continue
        observed = float(y[mask].mean())
        out.append(
            {
                "grade": grade,
                "rows": int(mask.sum()),
                "mean_p_low": float(low[mask].mean()),
                "mean_probability": float(p[mask].mean()),
                "mean_p_high": float(high[mask].mean()),
                "win_rate": observed,
                "win_rate_inside": bool(low[mask].mean() <= observed <= high[mask].mean()),
                "mean_width": float((high - low)[mask].mean()),
                "share_review": float(review[mask].mean()),
            }
        )
    return pd.DataFrame(out)


MIN_SEGMENT_WINS = 5  # fewer won rows in a segment: its figures are listed, not judged


def segment_table(
    rows: pd.DataFrame,
    evidence: dict[str, dict],
    bootstrap: int,
    seed: int,
) -> pd.DataFrame:
    """Per segment of the test rows (`rows["segment"]`): rows, wins, the model's ROC AUC and,
    with rules, theirs and the paired difference with its 95 % interval (the one bootstrap
    over leads, within the segment), the expected calibration error of the global and of
    the segment's calibration (`probability_global`, `probability`), the calibration rows
    the segment had and the share of its own correction it kept (`evidence`), and the
    verdict: the model beats the rules there, the rules hold, or too few wins to tell."""
    out = []
    has_rules = "rule_score" in rows
    for segment, part in rows.groupby("segment", sort=True, dropna=False):
        y = part["label"].to_numpy().astype(int)
        name = "(none)" if pd.isna(segment) else str(segment)
        row = {"segment": name, "rows": int(len(part)), "wins": int(y.sum())}
        fitted = evidence.get(name, {})
        row["calibration_rows"] = fitted.get("rows", 0)
        row["own_share"] = fitted.get("weight", 0.0)
        row["mean_probability"] = float(part["probability"].mean())
        row["win_rate"] = float(y.mean())
        if y.sum() < MIN_SEGMENT_WINS or y.sum() == len(y):
            row["verdict"] = f"too few wins to judge (< {MIN_SEGMENT_WINS})"
            out.append(row)
            continue
        row["ece_global"] = expected_calibration_error(y, part["probability_global"].to_numpy())
        row["ece_segment"] = expected_calibration_error(y, part["probability"].to_numpy())
        rankings = {"model": part["probability"].to_numpy()}
        probabilities = {"model": part["probability"].to_numpy()}
        if has_rules:
            rankings["rules"] = part["rule_score"].to_numpy()
            probabilities["rules"] = part["rule_probability"].to_numpy()
        head, differences = headline_table(part, rankings, probabilities, bootstrap, seed)
        row["model_auc"] = float(head.loc[0, "roc_auc"])
        if has_rules:
            row["rules_auc"] = float(head.loc[1, "roc_auc"])
            estimate, low, high = differences["roc_auc"]
            row["auc_difference"] = f"{estimate:+.3f} [{low:+.3f}, {high:+.3f}]"
            row["verdict"] = (
                "the model beats the rules"
                if low > 0
                else "the rules beat the model"
                if high < 0
                else "cannot tell: keep the rules"
            )
        else:
            row["verdict"] = "no rules to compare"
        out.append(row)
    return pd.DataFrame(out)


def sources_table(rows: pd.DataFrame, opportunities: bool = True) -> pd.DataFrame:
    """Per first-touch source; rule columns only with rules, opportunities only when the
    data has that stage."""
    g = rows.groupby("source", sort=False, observed=True)
    out = pd.DataFrame({"rows": g.size(), "leads": g["lead_id"].nunique()})
    if "mql" in rows:
        out["mqls"] = g["mql"].sum()
    out["opportunities"] = g["opportunity"].sum() if opportunities else np.nan
    out["wins"] = g["label"].sum()
    out["revenue"] = g["revenue"].sum(min_count=1)
    out["mean_probability"] = g["probability"].mean()
    if "rule_score" in rows:
        out["mean_rule_score"] = g["rule_score"].mean()
    out["win_rate"] = out["wins"] / out["rows"]
    out = out.reset_index().sort_values(["rows", "source"], ascending=[False, True])
    out = out.reset_index(drop=True)
    order = ["source", "rows", "leads", "mqls", "opportunities", "wins", "win_rate", "revenue",
             "mean_probability", "mean_rule_score"]  # fmt: skip
    return out[[c for c in order if c in out]]


def opportunity_stage_absent(dataset: Dataset) -> str | None:
    """Why the data cannot tell an opportunity apart from a win, or a hand-off from a lead
    (None when it can): no deals table, only won deals, won deals created when they closed,
    or deals opened with their leads (`deals_at_creation`)."""
    if dataset.is_flat or not len(dataset.deals):
        return "the data has no deals table, so no opportunity stage"
    deals = dataset.deals
    if (deals["status"] == "won").all():
        return "every deal in the data is won: no opportunity is seen before its outcome"
    won = deals[deals["status"] == "won"]
    if len(won) and (won["created_at"] >= won["closed_at"]).mean() > 0.5:
        return "won deals are created when they close: the opportunity stage is not recorded"
    return deals_at_creation(dataset)


# A deal opened this close to its lead's creation came with the lead, not after a hand-off.
AT_CREATION = pd.Timedelta(days=1)


def deals_at_creation(dataset: Dataset) -> str | None:
    """Why deals say nothing about a hand-off (None when they can): most leads have a deal
    opened within a day of their creation, as when the application is the opportunity.
    Every row then has an open deal, and "rows without an open deal" would be none."""
    if dataset.is_flat or not len(dataset.deals) or not len(dataset.leads):
        return None
    first = dataset.deals.groupby("lead_id", sort=False)["created_at"].min()
    created = dataset.leads.set_index("lead_id")["created_at"]
    at_creation = first - created.reindex(first.index) <= AT_CREATION
    share = float(at_creation.sum()) / len(dataset.leads)
    if share <= 0.5:
        return None
    return (
        f"{share:.0%} of leads have a deal opened within a day of their creation (the "
        "application is the opportunity): a deal is no sign of a hand-off"
    )


def funnel_table(rows: pd.DataFrame, has_opportunities: bool) -> pd.DataFrame:
    """Per lead seen in the test period: MQL at any of its test snapshots, accepted by sales
    (when the data has a lead_status table: an `accepted` column), an opportunity (deal)
    created after its first test snapshot, a won deal after it; by source. A stage the data
    does not have (no rules: no MQL; no opportunity stage) is NaN, shown as '-'."""
    has_mql = "mql" in rows
    has_accepted = "accepted" in rows
    stages = {
        "source": ("source", "first"),
        "mql": ("mql", "max"),
        "opportunity": ("opportunity", "max"),
        "won": ("label", "max"),
    }
    if has_accepted:
        stages["accepted"] = ("accepted", "max")
    per_lead = (
        rows.assign(mql=rows["mql"] if has_mql else False)
        .groupby("lead_id", sort=False)
        .agg(**stages)
    )
    out = []
    for source, g in [("all sources", per_lead), *per_lead.groupby("source", sort=True)]:
        n = len(g)
        mql = g["mql"].to_numpy(bool)
        won = g["won"].to_numpy(bool)
        opp = g["opportunity"].to_numpy(bool)
        mql_to_opp = opp[mql].mean() if mql.any() else np.nan
        row = {
            "source": source,
            "leads": n,
            "lead_to_mql": mql.mean() if has_mql else np.nan,
        }
        if has_accepted:  # lead -> MQL -> accepted -> opportunity -> won
            acc = g["accepted"].to_numpy(bool)
            row["mql_to_accepted"] = acc[mql].mean() if has_mql and mql.any() else np.nan
            row["lead_to_accepted"] = acc.mean()
            row["accepted_to_opportunity"] = (
                opp[acc].mean() if has_opportunities and acc.any() else np.nan
            )
        row.update(
            {
                "mql_to_opportunity": mql_to_opp if has_opportunities and has_mql else np.nan,
                "opportunity_to_won": won[opp].mean()
                if has_opportunities and opp.any()
                else np.nan,
                "lead_to_won": won.mean(),
                "won_from_mqls": won[mql].mean() if has_mql and mql.any() else np.nan,
                "won_from_non_mqls": won[~mql].mean() if has_mql and (~mql).any() else np.nan,
            }
        )
        out.append(row)
    return pd.DataFrame(out)
