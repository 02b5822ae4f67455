"""Account scores on the simulator with buying groups, where each account's true probability
is known: the account model against the contacts taken as independent leads, the best
contact, the points rules and the Bayes oracle (test accounts, out of time); how often the
oracle's probability lies inside the account model's Venn-Abers interval; and what scoring
accounts costs (the open accounts in batch, one account from its contacts' payloads against
scoring the same contacts as leads). Prints one JSON object.

    python -m benchmarks.accounts --leads 20000
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
from pathlib import Path

import numpy as np


def _percentiles(ms: list[float]) -> dict:
    return {f"p{q}": round(float(np.percentile(ms, q)), 3) for q in (50, 95, 99)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leads", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--bootstrap", type=int, default=30)
    parser.add_argument("--accounts-timed", type=int, default=200)
    args = parser.parse_args()

    from leadscore.crm import load_dataset
    from leadscore.crm.payloads import lead_payloads
    from leadscore.features.batch import build_training_set
    from leadscore.rules.config import load_rules
    from leadscore.scoring.accounts import open_account_scores
    from leadscore.simulation import SimulationConfig, simulate_apart
    from leadscore.simulation.config import AccountsConfig
    from leadscore.simulation.oracle import account_oracle_probability, read_truth
    from leadscore.training.accounts import fit_accounts
    from leadscore.training.config import AccountsConfig as AccountModel
    from leadscore.training.config import TrainConfig
    from leadscore.training.fit import fit_models, fit_rules
    from leadscore.training.refit import ship

    out: dict = {"leads": args.leads, "seed": args.seed}
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "crm"
        simulate_apart(
            SimulationConfig(n_leads=args.leads, seed=args.seed, accounts=AccountsConfig()), data
        )
        ds = load_dataset(data)
        truth = read_truth(data)
        config = TrainConfig(
            bootstrap=args.bootstrap, accounts=AccountModel(role_column="job_role")
        )
        df, spec, _ = build_training_set(ds)
        lead = fit_models(df, spec, config)
        lead = ship(lead, df, config)
        lead.scorer.rules = fit_rules(load_rules("conf/rules.yaml"), ds, df[lead.split.validation])
        start = time.perf_counter()
        result = fit_accounts(
            ds, lead.scorer, config, excluded=lead.leakage.excluded,
            references={"oracle": lambda t: account_oracle_probability(
                truth, t["account_id"].to_numpy(), t["as_of"].to_numpy(), spec.horizon_days
            )},
        )  # fmt: skip
        out["account_fit_seconds"] = round(time.perf_counter() - start, 2)
        out["accounts"] = int(ds.leads["account_id"].nunique())
        out["account_snapshots"] = result.stats
        out["test"] = {
            name: {k: round(float(v), 4) if k != "roc_auc_ci" else [round(x, 4) for x in v]
                   for k, v in m.items()}
            for name, m in result.summary().items()
        }  # fmt: skip
        out["capacity"] = result.capacity.round(2).to_dict("records")
        test = result.test
        low, high = test["interval_low_model"], test["interval_high_model"]
        inside = (test["p_oracle"] >= low) & (test["p_oracle"] <= high)
        out["interval"] = {
            "mean_width": round(float((high - low).mean()), 4),
            "oracle_inside_share": round(float(inside.mean()), 4),
            "by_grade": {
                g: {"rows": int(m.sum()), "oracle_inside_share": round(float(inside[m].mean()), 4),
                    "mean_p_low": round(float(low[m].mean()), 4),
                    "observed": round(float(test.loc[m, "label"].mean()), 4),
                    "mean_p_high": round(float(high[m].mean()), 4)}
                for g in "ABCD"
                for m in [(result.scorer.grades(test["p_model"].to_numpy()) == g)]
                if m.sum()
            },
        }  # fmt: skip

        scorer = lead.scorer
        scorer.accounts = result.scorer
        start = time.perf_counter()
        scored, contacts = open_account_scores(ds, result.scorer, ds.data_end)
        seconds = time.perf_counter() - start
        out["batch_open_accounts"] = {
            "accounts": len(scored),
            "contacts": len(contacts),
            "seconds": round(seconds, 3),
            "accounts_per_second": round(len(scored) / seconds, 1),
        }
        rng = np.random.default_rng(0)
        picks = rng.choice(len(scored), min(args.accounts_timed, len(scored)), replace=False)
        account_ms, leads_ms = [], []
        for i in picks:
            ids = contacts.loc[contacts["row"] == i, "lead_id"].astype(str).tolist()
            payloads = lead_payloads(ds, ids, iso=True)
            t0 = time.perf_counter()
            scorer.score_account(scored["account_id"].iloc[i], payloads, ds.data_end)
            t1 = time.perf_counter()
            scorer.score_leads(payloads, ds.data_end)
            t2 = time.perf_counter()
            account_ms.append(1000 * (t1 - t0))
            leads_ms.append(1000 * (t2 - t1))
        out["one_account_ms"] = _percentiles(account_ms)
        out["its_contacts_as_leads_ms"] = _percentiles(leads_ms)
        out["one_account_over_contacts_p50"] = round(
            out["one_account_ms"]["p50"] / out["its_contacts_as_leads_ms"]["p50"], 3
        )
    out["peak_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
