"""A closed-loop world for hand-off experiments: a CRM whose sales team reacts to the
hand-offs, and whose leads qualify more often the sooner they are touched.

Each lead has an observable profile fit, an engagement level (a noisy view of its hidden
interest) and whether it asked for a demo (a noisy view of its hidden urgency). Its win
probability within the horizon is

    P(win) = sigmoid(base + SPEED_BONUS[first touch]),  base = B0 + a z + b fit + c urgency,

where the first touch is `fast` (minutes to hours) for a lead handed off while sales has
capacity, and late (`slow`, days) or `never` for the others. The policy in force therefore
shapes the history: the rules' hand-offs win more partly because they were called at once.

The world runs in two periods:
- a **pre-period** under the rules only, whose history a model is trained on (a logistic
  regression on the observable columns: what a data scientist would fit on that export; it
  learns part of the rules' own effect), and where the offline capacity-matched comparison
  is made on the last third (model's top leads against the rules' MQLs, as many of each);
- an **experiment period** where each lead is assigned an arm (`assign`, the experiment's
  keyed hash) and handed off by its arm's policy: the rules' MQL flag, or the model's
  probability against a line matched to the rules' hand-off rate (`match`).

The world knows each lead's win probability under both arms (`p_rules`, `p_model`): the true
effect is their mean difference over the experiment's leads, in wins per 100 leads. The
plain simulator (`leadscore.simulation.simulator`) is untouched by all this.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from leadscore.crm.folders import staged_folder, write_whole

TRUTH_FOLDER = "truth"
TRUTH_JSON = "experiment.json"
SOURCES = ("website", "advertising", "partner", "trade_show", "emailing")
SOURCE_FIT = np.array([0.0, -0.3, 0.5, 0.1, -0.2])
SPEED = ("fast", "slow", "never")
SPEED_BONUS = np.array([2.0, 0.5, 0.0])  # log-odds of a win by how soon sales touched it
LATE = np.array([0.0, 0.7, 0.3])  # first touch of a lead not handed off: slow or never
B0, A_Z, B_FIT, C_URGENCY = -3.4, 0.9, 0.5, 0.6
HORIZON_DAYS = 90.0
US_PER_DAY = 86_400_000_000


class WorldConfig(BaseModel):
    """The world's size and knobs. `leads`: the experiment period's leads; the pre-period
    has `pre_leads` (default: as many, within 2,000-20,000: enough to fit the model). `share`: the model arm's share.
    `capacity`: the hand-offs per day sales can touch fast (None: all of them). `aa`: both
    arms hand off by the rules (an A/A test)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    leads: int = Field(10_000, ge=100, le=5_000_000)
    pre_leads: int | None = Field(None, ge=500)
    share: float = Field(0.5, gt=0.0, lt=1.0)
    seed: int = Field(0, ge=0)
    start: str = "2025-01-01"
    pre_days: float = Field(180.0, gt=0)
    days: float = Field(180.0, gt=0)
    capacity: float | None = Field(None, gt=0)
    rules_threshold: float = Field(75.0, description="the rules' MQL threshold, in points")
    aa: bool = False
    name: str = "simulated-experiment"


@dataclass(frozen=True)
class Period:
    """One period's leads: ids, creation (µs), the observable columns, the hidden base
    log-odds, the rules' points, the model's probability."""

    lead_id: np.ndarray
    created_us: np.ndarray
    source: np.ndarray
    fit: np.ndarray
    engagement: np.ndarray
    demo_request: np.ndarray
    base: np.ndarray
    points: np.ndarray


@dataclass(frozen=True)
class World:
    """A simulated experiment: its periods, who was handed off and won, each experiment
    lead's arm and win probability under both arms, the matched line, the true effect and
    the offline capacity-matched estimate (both in wins per 100 leads)."""

    config: WorldConfig
    pre: Period
    exp: Period
    pre_handed: np.ndarray
    pre_won: np.ndarray
    exp_model_arm: np.ndarray
    exp_handed: np.ndarray
    exp_won: np.ndarray
    p_rules: np.ndarray
    p_model: np.ndarray
    model_probability: np.ndarray  # the experiment leads' model probabilities
    pre_probability: np.ndarray  # the pre-period leads' (the model scores its own history)
    rules_handoff: np.ndarray  # per experiment lead: the rules' policy hands it off
    model_handoff: np.ndarray  # per experiment lead: the model arm's policy hands it off
    line: float
    rules_rate: float
    true_effect: float
    offline_effect: float
    started_us: int
    stopped_us: int


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _period(rng: np.random.Generator, n: int, start_us: int, days: float, prefix: str) -> Period:
    source = rng.choice(len(SOURCES), size=n, p=[0.35, 0.2, 0.15, 0.15, 0.15])
    z = rng.normal(size=n)
    urgency = rng.normal(size=n)
    fit = rng.normal(size=n) + SOURCE_FIT[source]
    engagement = np.round(np.maximum(0.0, 3.0 + 1.5 * (z + rng.normal(scale=0.9, size=n))), 1)
    demo = (urgency + rng.normal(size=n)) > 1.2
    base = B0 + A_Z * z + B_FIT * fit + C_URGENCY * urgency
    # Marketing's points: fit and engagement, demo requests, source; tuned by hand, not fitted.
    points = 45 + 20 * fit + 2 * engagement + 4 * demo + 20 * (source == 3)
    created = start_us + np.sort(rng.uniform(0, days * US_PER_DAY, size=n)).astype(np.int64)
    width = len(str(n))
    ids = np.array([f"{prefix}{i:0{width}d}" for i in range(n)], dtype=object)
    return Period(ids, created, source, fit, engagement, demo, base, points)


def _touch_mix(handed: np.ndarray, fast_share: float) -> np.ndarray:
    """P(first touch class) per lead (n, 3): handed off -> fast while sales has capacity
    (`fast_share` of them), else like the others (slow or never)."""
    mix = np.tile(LATE, (len(handed), 1))
    mix[handed] = fast_share * np.array([1.0, 0.0, 0.0]) + (1 - fast_share) * LATE
    return mix


def _win_probability(base: np.ndarray, handed: np.ndarray, fast_share: float) -> np.ndarray:
    mix = _touch_mix(handed, fast_share)
    return (mix * _sigmoid(base[:, None] + SPEED_BONUS[None, :])).sum(axis=1)


def _features(p: Period) -> np.ndarray:
    onehot = (p.source[:, None] == np.arange(1, len(SOURCES))[None, :]).astype(float)
    return np.column_stack([p.fit, p.engagement, p.demo_request.astype(float), onehot])


def run_world(
    config: WorldConfig,
    *,
    assign: Callable[[np.ndarray], np.ndarray],
    match: Callable[[np.ndarray, np.ndarray], float],
) -> World:
    """Simulate the pre-period and the experiment. `assign(lead_ids)`: True for the model
    arm (the experiment's keyed hash); `match(probability, mql)`: the model's line for the
    rules' hand-off rate on those leads (the experiment's own matching)."""
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(config.seed)
    start_us = int(pd.Timestamp(config.start, tz="UTC").value // 1000)
    pre_n = config.pre_leads or int(np.clip(config.leads, 2_000, 20_000))
    pre = _period(rng, pre_n, start_us, config.pre_days, "P")
    started_us = start_us + int(config.pre_days * US_PER_DAY)
    exp = _period(rng, config.leads, started_us, config.days, "E")
    stopped_us = started_us + int(config.days * US_PER_DAY)

    # Sales' capacity for fast touches, per day; the same in both periods (matched lines).
    pre_handed = pre.points >= config.rules_threshold
    per_day = pre_handed.sum() / config.pre_days
    fast_share = 1.0 if config.capacity is None else min(1.0, config.capacity / max(per_day, 1e-9))
    pre_won = rng.random(pre_n) < _win_probability(pre.base, pre_handed, fast_share)

    # The model: fitted on the older two thirds of the pre-period's history (all of it
    # shaped by the rules), its line matched to the rules' rate; the offline comparison on
    # the newest third, as a backtest would.
    cut = (2 * pre_n) // 3
    x = _features(pre)
    model = LogisticRegression(C=1.0, max_iter=500).fit(x[:cut], pre_won[:cut])
    pre_p = model.predict_proba(x)[:, 1]
    line = float(match(pre_p[:cut], pre_handed[:cut]))
    rules_rate = float(pre_handed[:cut].mean())
    test = slice(cut, None)
    k = int(pre_handed[test].sum())
    ranked = np.argsort(-pre_p[test], kind="stable")[:k]
    offline = (pre_won[test][ranked].sum() - pre_won[test][pre_handed[test]].sum()) / max(
        pre_n - cut, 1
    )

    exp_p = model.predict_proba(_features(exp))[:, 1]
    rules_hand = exp.points >= config.rules_threshold
    model_hand = rules_hand if config.aa else exp_p >= line
    p_rules = _win_probability(exp.base, rules_hand, fast_share)
    p_model = _win_probability(exp.base, model_hand, fast_share)
    arm = np.asarray(assign(exp.lead_id), dtype=bool)
    handed = np.where(arm, model_hand, rules_hand)
    won = rng.random(config.leads) < np.where(arm, p_model, p_rules)
    return World(
        config=config,
        pre=pre,
        exp=exp,
        pre_handed=pre_handed,
        pre_won=pre_won,
        exp_model_arm=arm,
        exp_handed=handed,
        exp_won=won,
        p_rules=p_rules,
        p_model=p_model,
        model_probability=exp_p,
        pre_probability=pre_p,
        rules_handoff=rules_hand,
        model_handoff=model_hand,
        line=line,
        rules_rate=rules_rate,
        true_effect=float((p_model - p_rules).mean() * 100.0),
        offline_effect=float(offline * 100.0),
        started_us=started_us,
        stopped_us=stopped_us,
    )


def disagreement_effect(world: World) -> float | None:
    """The true effect per 100 leads on which the two policies disagree (the disagreements
    design's estimand); None when they never do (an A/A world)."""
    differ = world.rules_handoff != world.model_handoff
    if not differ.any():
        return None
    return float((world.p_model - world.p_rules)[differ].mean() * 100.0)


def truth(world: World) -> dict:
    """What `truth/experiment.json` says: the experiment's name and its true effect (model
    minus rules, wins per 100 leads assigned), with what it was computed on."""
    return {
        "name": world.config.name,
        "effect": world.true_effect,
        "unit": "wins per 100 leads assigned, model arm minus rules arm",
        "leads": int(world.config.leads),
        "share": world.config.share,
        "aa": world.config.aa,
        "line": world.line,
        "rules_rate": world.rules_rate,
        "offline_capacity_matched_effect": world.offline_effect,
        "disagreement_share": float(np.mean(world.rules_handoff != world.model_handoff)),
        "effect_disagreements": disagreement_effect(world),
        "seed": world.config.seed,
    }


def _iso(us: np.ndarray) -> pd.Series:
    return pd.Series(pd.to_datetime(us, unit="us", utc=True)).dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def world_tables(world: World) -> dict[str, pd.DataFrame]:
    """The world's CRM export (leads and deals, the data contract) and its hand-offs:
    each won lead a won deal closed within the horizon; a share of the others a lost one."""
    rng = np.random.default_rng([world.config.seed, 1])
    periods = (
        (world.pre, world.pre_handed, world.pre_won),
        (world.exp, world.exp_handed, world.exp_won),
    )
    leads, deals, handoffs = [], [], []
    for p, handed, won in periods:
        leads.append(
            pd.DataFrame(
                {
                    "lead_id": p.lead_id,
                    "created_at": _iso(p.created_us),
                    "source": np.array(SOURCES)[p.source],
                    "fit": np.round(p.fit, 3),
                    "engagement": p.engagement,
                    "demo_request": np.where(p.demo_request, "yes", "no"),
                }
            )
        )
        lost = ~won & (rng.random(len(won)) < 0.3)
        closing = won | lost
        opened = p.created_us + (rng.uniform(2, 20, len(won)) * US_PER_DAY).astype(np.int64)
        closed = opened + (rng.uniform(5, 60, len(won)) * US_PER_DAY).astype(np.int64)
        closed = np.minimum(closed, p.created_us + int((HORIZON_DAYS - 1) * US_PER_DAY))
        amount = np.round(rng.lognormal(9.5, 0.6, len(won)), 0)
        deals.append(
            pd.DataFrame(
                {
                    "deal_id": ["D" + str(i) for i in p.lead_id[closing]],
                    "lead_id": p.lead_id[closing],
                    "created_at": _iso(opened[closing]),
                    "closed_at": _iso(closed[closing]),
                    "status": np.where(won[closing], "won", "lost"),
                    "amount": amount[closing],
                }
            )
        )
        handoffs.append(
            pd.DataFrame({"lead_id": p.lead_id[handed], "handed_off_us": p.created_us[handed]})
        )
    return {
        "leads": pd.concat(leads, ignore_index=True),
        "deals": pd.concat(deals, ignore_index=True),
        "handoffs": pd.concat(handoffs[1:], ignore_index=True),
    }


def world_scores(world: World) -> pd.DataFrame:
    """Each lead's score at its creation, as the score history keeps it (lead_id, as_of,
    probability, score, rule_score, mql; the model's name and version): what the daily
    batch would have stored, for matching a line and for the disagreements design."""
    frames = []
    for p, probability in (
        (world.pre, world.pre_probability),
        (world.exp, world.model_probability),
    ):
        frames.append(
            pd.DataFrame(
                {
                    "lead_id": p.lead_id,
                    "as_of": pd.to_datetime(p.created_us, unit="us", utc=True),
                    "probability": probability,
                    "score": np.round(100 * probability).astype(int),
                    "rule_score": np.round(p.points).astype(int),
                    "mql": p.points >= world.config.rules_threshold,
                }
            )
        )
    out = pd.concat(frames, ignore_index=True)
    out["model_name"] = "experiment-world-logistic"
    out["model_version"] = "1"
    out["feature_set_version"] = "experiment-world"
    out["trend"] = "not enough history"
    out["scored_at"] = out["as_of"]
    return out


def write_world(world: World, out: str | Path, *, overwrite: bool = False) -> Path:
    """The world's export into `out` (leads.csv, deals.csv, dataset.yaml) and its truth
    (`truth/experiment.json`), written whole or not at all."""
    import yaml

    tables = world_tables(world)
    with staged_folder(out, overwrite=overwrite) as tmp:
        tables["leads"].to_csv(tmp / "leads.csv", index=False)
        tables["deals"].to_csv(tmp / "deals.csv", index=False)
        (tmp / "dataset.yaml").write_text(
            yaml.safe_dump(
                {"name": f"closed-loop experiment world (seed {world.config.seed})"},
                sort_keys=False,
            )
        )
        (tmp / TRUTH_FOLDER).mkdir()
        write_whole(
            tmp / TRUTH_FOLDER / TRUTH_JSON,
            lambda f: f.write_text(json.dumps(truth(world), indent=2, sort_keys=True) + "\n"),
        )
    return Path(out)
