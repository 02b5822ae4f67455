"""Validity of the hand-off experiment's readout on the closed-loop world, where each
lead's win probability under both arms is known: prints one JSON object.

Each run simulates a world (`leadscore.simulation.experiment_world`: a pre-period under the
rules, a model trained on it, then the experiment with the experiment's own keyed-hash
assignment and matched line) and reads it out as `leadscore experiment report` does
(`leadscore.experiment.readout.difference`, on the matured leads):

- coverage: how often the 95 % intervals (the anytime-valid sequence and the fixed-horizon
  interval), read once when every lead has matured, contain the world's true effect;
- A/A: both arms hand off by the rules; the readout is read every week from the first
  matured lead to the last, and a run is a false alarm when any weekly read excludes 0
  (the confidence sequence, and for contrast the fixed-horizon interval read the same way);
- power at 10k, 50k and 200k leads: the share of runs that reach a verdict (the sequence
  excludes 0 at some weekly read), and the share whose verdict is the right one;
- the disagreements design: the same worlds counted on the leads whose two policies
  disagree only (its coverage of the true effect per disagreeing lead, its width scaled to
  the whole intake, and its power next to the all-leads design's);
- the bias the experiment removes: the offline capacity-matched comparison (the model's top
  leads against the rules' MQLs, as many of each, counted on the pre-period's history)
  against the true effect, on the same worlds.

Usage: python -m benchmarks.experiment [--runs 60] [--power-runs 20] [--leads 20000]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from leadscore.crm.times import US_PER_DAY
from leadscore.experiment.readout import difference
from leadscore.jobs.experiment import simulated_world
from leadscore.simulation.experiment_world import (
    HORIZON_DAYS,
    WorldConfig,
    disagreement_effect,
)

WEEK_US = 7 * US_PER_DAY


def weekly_reads(world, planned: int, counted: np.ndarray | None = None) -> np.ndarray:
    """(weeks, 5): effect, sequence low/high, fixed low/high at each weekly read from the
    week the first lead matures to the week the last does (leads by creation; `counted`:
    the leads the design counts, all by default)."""
    keep = np.ones(len(world.exp.created_us), dtype=bool) if counted is None else counted
    created = world.exp.created_us[keep]  # sorted by creation
    arm, won = world.exp_model_arm[keep], world.exp_won[keep]
    matures = created + int(HORIZON_DAYS * US_PER_DAY)
    first = world.started_us + int(HORIZON_DAYS * US_PER_DAY)
    first += WEEK_US - (first - world.started_us) % WEEK_US
    reads = []
    for when in range(
        int(first), int(world.stopped_us + HORIZON_DAYS * US_PER_DAY) + WEEK_US, WEEK_US
    ):
        k = int(np.searchsorted(matures, when, side="right"))
        if k < 20 or arm[:k].all() or not arm[:k].any():
            continue
        effect, low, high, flow, fhigh, _ = difference(arm[:k], won[:k], planned_leads=planned)
        reads.append((effect, low, high, flow, fhigh))
    return np.array(reads).reshape(-1, 5)


def run(leads: int, seed: int, aa: bool = False) -> dict:
    config = WorldConfig(leads=leads, seed=seed, aa=aa, name=f"bench-{seed}")
    world = simulated_world(config)
    effect, low, high, flow, fhigh, _ = difference(
        world.exp_model_arm, world.exp_won, planned_leads=leads
    )
    reads = weekly_reads(world, leads)
    alarm = (reads[:, 1] > 0) | (reads[:, 2] < 0)
    fixed_alarm = (reads[:, 3] > 0) | (reads[:, 4] < 0)
    right = (reads[:, 1] > 0) if world.true_effect > 0 else (reads[:, 2] < 0)
    differ = world.rules_handoff != world.model_handoff
    dis = {"disagreement_share": float(differ.mean())}
    if differ.any() and not aa:
        truth_d = disagreement_effect(world)
        eff_d, low_d, high_d, *_ = difference(
            world.exp_model_arm[differ], world.exp_won[differ],
            planned_leads=max(100, int(differ.sum())),
        )  # fmt: skip
        reads_d = weekly_reads(world, max(100, int(differ.sum())), differ)
        dis |= {
            "covered_disagreements": bool(low_d <= truth_d <= high_d),
            "verdict_disagreements": bool(((reads_d[:, 1] > 0) | (reads_d[:, 2] < 0)).any()),
            "width_disagreements_per_100_leads": (high_d - low_d) * float(differ.mean()),
        }
    return dis | {
        "truth": world.true_effect,
        "offline": world.offline_effect,
        "effect": effect,
        "covered": bool(low <= world.true_effect <= high),
        "fixed_covered": bool(flow <= world.true_effect <= fhigh),
        "width": high - low,
        "fixed_width": fhigh - flow,
        "reads": len(reads),
        "verdict": bool(alarm.any()),
        "right_verdict": bool(right.any()),
        "fixed_alarm": bool(fixed_alarm.any()),
        "model_rate": float(world.exp_handed[world.exp_model_arm].mean()),
        "rules_rate": float(world.exp_handed[~world.exp_model_arm].mean()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=60, help="worlds for coverage and A/A")
    parser.add_argument("--power-runs", type=int, default=20, help="worlds per power size")
    parser.add_argument("--leads", type=int, default=20_000, help="leads per coverage world")
    args = parser.parse_args()
    t0 = time.perf_counter()
    effect_runs = [run(args.leads, seed) for seed in range(args.runs)]
    aa_runs = [run(args.leads, 10_000 + seed, aa=True) for seed in range(args.runs)]
    power = {}
    for size in (10_000, 50_000, 200_000):
        runs = [run(size, 20_000 + size // 1000 + seed) for seed in range(args.power_runs)]
        power[str(size)] = {
            "runs": len(runs),
            "verdict": float(np.mean([r["verdict"] for r in runs])),
            "right_verdict": float(np.mean([r["right_verdict"] for r in runs])),
            "mean_true_effect": float(np.mean([r["truth"] for r in runs])),
            "mean_interval_width": float(np.mean([r["width"] for r in runs])),
            "verdict_disagreements_design": float(
                np.mean([r["verdict_disagreements"] for r in runs])
            ),
        }
    truth = np.array([r["truth"] for r in effect_runs])
    offline = np.array([r["offline"] for r in effect_runs])
    estimate = np.array([r["effect"] for r in effect_runs])
    print(
        json.dumps(
            {
                "benchmark": "experiment",
                "units": "wins per 100 leads assigned, model arm minus rules arm",
                "coverage": {
                    "runs": len(effect_runs),
                    "leads": args.leads,
                    "anytime_valid": float(np.mean([r["covered"] for r in effect_runs])),
                    "fixed_horizon": float(np.mean([r["fixed_covered"] for r in effect_runs])),
                    "mean_width_anytime_valid": float(np.mean([r["width"] for r in effect_runs])),
                    "mean_width_fixed": float(np.mean([r["fixed_width"] for r in effect_runs])),
                    "hand_off_rate_model_arm": float(
                        np.mean([r["model_rate"] for r in effect_runs])
                    ),
                    "hand_off_rate_rules_arm": float(
                        np.mean([r["rules_rate"] for r in effect_runs])
                    ),
                },
                "disagreements_design": {
                    "runs": len(effect_runs),
                    "disagreement_share": float(
                        np.mean([r["disagreement_share"] for r in effect_runs])
                    ),
                    "anytime_valid_coverage": float(
                        np.mean([r["covered_disagreements"] for r in effect_runs])
                    ),
                    "mean_width_per_100_leads_of_the_intake": float(
                        np.mean([r["width_disagreements_per_100_leads"] for r in effect_runs])
                    ),
                },
                "aa_weekly": {
                    "runs": len(aa_runs),
                    "leads": args.leads,
                    "weekly_reads": float(np.mean([r["reads"] for r in aa_runs])),
                    "false_alarms_anytime_valid": float(np.mean([r["verdict"] for r in aa_runs])),
                    "false_alarms_fixed_horizon": float(
                        np.mean([r["fixed_alarm"] for r in aa_runs])
                    ),
                },
                "power": power,
                "offline_bias": {
                    "runs": len(effect_runs),
                    "mean_true_effect": float(truth.mean()),
                    "mean_offline_capacity_matched": float(offline.mean()),
                    "mean_bias_offline": float((offline - truth).mean()),
                    "offline_wrong_sign": float(np.mean(np.sign(offline) != np.sign(truth))),
                    "mean_bias_experiment": float((estimate - truth).mean()),
                },
                "seconds": round(time.perf_counter() - t0, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
