"""Leaks on a simulated CRM: what the audit catches, what the model and the learned points
reach next to the Bayes oracle, and how long `rules suggest` takes. Prints one JSON object.

The simulated CRM gets three undeclared columns (`leadscore.simulation.leaks`): a post-outcome status,
a sector filled only once a deal closed (a missingness leak) and a record id. Figures:
- the audit's verdict on each planted column (and that no honest column is flagged);
- out-of-time test ROC AUC of the model, the learned points (fitted on the columns the
  audit allowed) and the oracle; and of learned points fitted on every column, as the
  points were before the audit governed them (the leak they would have shown marketing);
- `leadscore rules suggest` wall time as a user runs it (a subprocess), and the scorecard
  fit alone, with the leak allowed in too (the worst case for the solver).

Usage: python -m benchmarks.leakage [--leads 20000]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--leads", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    from sklearn.metrics import roc_auc_score

    from leadscore.crm import load_dataset
    from leadscore.features.batch import build_training_set
    from leadscore.rules.config import load_rules
    from leadscore.rules.scorecard import suggest_rules
    from leadscore.rules.scorer import RuleScorer, batch_rule_inputs
    from leadscore.simulation import SimulationConfig, simulate_apart
    from leadscore.simulation.leaks import plant_leaks
    from leadscore.simulation.oracle import oracle_probability, read_truth
    from leadscore.training.config import TrainConfig
    from leadscore.training.fit import fit_models
    from leadscore.training.report import compare

    root = Path(__file__).resolve().parents[1]
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "crm"
        simulate_apart(SimulationConfig(n_leads=args.leads, seed=args.seed), data)
        planted = plant_leaks(data, seed=args.seed)
        ds = load_dataset(data)

        start = time.perf_counter()
        cli = subprocess.run(
            [sys.executable, "-m", "leadscore", "rules", "suggest", "--data", str(data),
             "--out", str(Path(tmp) / "suggested.yaml")],
            cwd=root, capture_output=True, text=True, check=True,
        )  # fmt: skip
        cli_seconds = time.perf_counter() - start

        df, spec, _ = build_training_set(ds)
        truth = read_truth(data)
        config = TrainConfig()
        result = fit_models(
            df,
            spec,
            config,
            references={
                "oracle": lambda t: oracle_probability(
                    truth, t["lead_id"].to_numpy(), t["as_of"].to_numpy(), spec.horizon_days
                )
            },
        )
        comp = compare(ds, result.scorer, load_rules(root / "conf/rules.yaml"), config,
                       training_set=df, bootstrap=50)  # fmt: skip
        h = comp.headline.set_index("scorer")

        split = result.split
        train, val, test = df[split.train], df[split.validation], df[split.test]
        every_column = ["source", *ds.profile_columns]
        start = time.perf_counter()
        leaky = suggest_rules(ds, train, val, columns=every_column, seed=config.seed)
        leaky_seconds = time.perf_counter() - start
        x = batch_rule_inputs(leaky.rules, ds, test["lead_id"], test["as_of"])
        leaky_auc = roc_auc_score(test["label"], RuleScorer(leaky.rules).rule_scores(x))

    audit = result.leakage
    print(
        json.dumps(
            {
                "leads": args.leads,
                "activities": int(len(ds.activities)),
                "snapshots": int(len(df)),
                "planted": planted,
                "audit": {
                    column: {
                        "excluded": column in audit.excluded,
                        "why": next((w for w in audit.warnings() if repr(column) in w), ""),
                    }
                    for column in planted.values()
                },
                "flagged_honest_columns": sorted(set(audit.flagged) - set(planted.values())),
                "test_roc_auc": {
                    "oracle": round(result.metrics["oracle"]["roc_auc"], 4),
                    "model": round(result.metrics["model"]["roc_auc"], 4),
                    "learned_points_audited": round(float(h.loc["learned", "roc_auc"]), 4),
                    "rules": round(float(h.loc["rules", "roc_auc"]), 4),
                    "learned_points_every_column": round(float(leaky_auc), 4),
                },
                "learned_points_columns": sorted(comp.learned_rules.profile),
                "rules_suggest_cli_seconds": round(cli_seconds, 1),
                "scorecard_fit_every_column_seconds": round(leaky_seconds, 1),
                "cli_excluded_line": next(
                    (line for line in cli.stdout.splitlines() if "leakage audit" in line), ""
                ),
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
