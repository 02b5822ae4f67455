"""X Education: test ROC AUC with and without the leaky columns, out of time vs random split.

Imports Leads.csv with the built-in mapping, then fits the same model under each setting
and prints one JSON object (AUC with its 95 % bootstrap interval, what the leakage audit
flagged, what was excluded), plus the X Education points rules on the same test rows.

Settings:
- declared: the mapping's leaky columns excluded (what `leadscore train` does);
- audit only: nothing declared, the leakage audit alone decides;
- all columns: nothing excluded (--allow-leaky), the leaky ceiling.

Usage: python -m benchmarks.xeducation [--leads-csv ../shared/datasets/xeducation/Leads.csv]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--leads-csv", type=Path, default=ROOT.parent / "shared/datasets/xeducation/Leads.csv"
    )
    parser.add_argument("--rules", type=Path, default=ROOT / "crm/mappings/xeducation.rules.yaml")
    parser.add_argument("--seeds", type=int, default=5, help="random splits to average")
    args = parser.parse_args()

    from sklearn.metrics import roc_auc_score

    from leadscore.crm.importer import import_tables
    from leadscore.crm.mapping import builtin_mapping_path, load_mapping
    from leadscore.features.batch import build_training_set
    from leadscore.rules.config import load_rules
    from leadscore.rules.scorer import RuleScorer, batch_rule_inputs
    from leadscore.training.config import TrainConfig
    from leadscore.training.fit import fit_models

    with tempfile.TemporaryDirectory() as tmp:
        mapping = load_mapping(builtin_mapping_path("xeducation"))
        ds = import_tables(mapping, leads=args.leads_csv, out_dir=Path(tmp) / "xe").dataset
    df, spec, _ = build_training_set(ds)
    rules = load_rules(args.rules)
    settings = {
        "declared": {"declared_leaky": ds.spec.columns.leaky},
        "audit_only": {"declared_leaky": []},
        "all_columns": {"declared_leaky": [], "allow_leaky": True},
    }
    results = {}
    for split in ("time", "random"):
        config = TrainConfig(split=split)
        for name, kwargs in settings.items():
            start = time.perf_counter()
            r = fit_models(df, spec, config, **kwargs)
            m = r.metrics["model"]
            test = df[r.split.test]
            x = batch_rule_inputs(rules, ds, test["lead_id"], test["as_of"])
            results[f"{split}/{name}"] = {
                "test_rows": int(r.split.test.sum()),
                "test_won": int(test["label"].sum()),
                "model_auc": round(m["roc_auc"], 4),
                "model_auc_ci": [round(v, 4) for v in m["roc_auc_ci"]],
                "logistic_auc": round(r.metrics["logistic"]["roc_auc"], 4),
                "rules_auc": round(
                    float(roc_auc_score(test["label"], RuleScorer(rules).rule_scores(x))), 4
                ),
                "flagged_by_audit": r.leakage.flagged,
                "excluded": r.leakage.excluded,
                "features_used": len(r.scorer.features),
                "seconds": round(time.perf_counter() - start, 2),
            }
    # One random split is one draw: the spread over seeds says how much it can differ.
    for name, kwargs in settings.items():
        aucs = [
            fit_models(
                df, spec, TrainConfig(split="random", seed=seed, bootstrap=0), **kwargs
            ).metrics["model"]["roc_auc"]
            for seed in range(args.seeds)
        ]
        results[f"random/{name}"]["model_auc_over_seeds"] = {
            "seeds": args.seeds,
            "mean": round(float(sum(aucs) / len(aucs)), 4),
            "min": round(min(aucs), 4),
            "max": round(max(aucs), 4),
        }
    print(json.dumps({"dataset": str(args.leads_csv), "leads": len(ds.leads), **results}, indent=1))


if __name__ == "__main__":
    main()
