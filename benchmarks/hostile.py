"""Issue 24's cases rerun as an operator, an attacker and a clumsy integrator would: real
`leadscore` processes against a simulated CRM, a local HTTP receiver, DuckDB files and
kill -9. Prints one JSON object: per case what it showed, and the totals the issue's goal
counts (tracebacks, events lost, duplicate history rows, secrets shown) next to the DST
import ratio (`benchmarks/dst_import.py`).

Usage: python -m benchmarks.hostile [--leads 3000]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SECRETS = ("hunter2", "hook-user", "pw-9931", "tok-5521", "pw-7", "t-8")
PAYLOAD = '=HYPERLINK("http://x","click")'


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--leads", type=int, default=3_000)
    args = parser.parse_args()

    from leadscore.crm.loading import load_dataset
    from leadscore.features.batch import build_training_set
    from leadscore.operations.history import ScoreHistory
    from leadscore.simulation import SimulationConfig, simulate
    from leadscore.training.config import LightGBMParams, TrainConfig
    from leadscore.training.fit import fit_models
    from tests.handoff.test_delivery import Receiver  # the tests' local receiver

    cases: dict[str, dict] = {}
    env = {**os.environ, "LEADSCORE_WEBHOOK_SECRET": "s3"}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        data = tmp / "crm"
        simulate(SimulationConfig(n_leads=args.leads, seed=5), data)
        # hostile values in the data: a formula as a source, console markup as another
        import pandas as pd

        leads = pd.read_parquet(data / "leads.parquet")
        leads["source"] = leads["source"].astype(object)
        leads.loc[leads.index[::3], "source"] = PAYLOAD
        leads.loc[leads.index[1::3], "source"] = "[/x]"
        leads.to_parquet(data / "leads.parquet", index=False)
        ds = load_dataset(data)
        df, spec, _ = build_training_set(ds)
        config = TrainConfig(bootstrap=0, lightgbm=LightGBMParams(max_rounds=100))
        fitted = fit_models(df, spec, config)
        scorer = fitted.scorer.save(tmp / "scorer")
        when = fitted.test["as_of"].max().isoformat()

        def run(*extra: str, name: str) -> subprocess.CompletedProcess:
            done = subprocess.run(
                [sys.executable, "-m", "leadscore", *extra], cwd=tmp, env=env,
                capture_output=True, text=True, timeout=600,
            )  # fmt: skip
            shown = done.stdout + done.stderr
            cases[name] = {
                "exit": done.returncode,
                "traceback": "Traceback" in shown,
                "secrets_shown": sum(s in shown for s in SECRETS),
                "lines_on_stderr": len([x for x in done.stderr.splitlines() if x.strip()]),
            }
            return done

        score = ["score", "--data", str(data), "--model", str(scorer), "--as-of", when]
        run(*score, "--out", str(tmp / "a.csv"), "--history",
            "postgresql+psycopg://ls:hunter2@127.0.0.1:9/h", name="history_refuses_password")  # fmt: skip
        box = Receiver(script=[400]).__enter__()
        url = box.url.replace("http://", "http://hook-user:pw-9931@") + "?token=tok-5521"
        run(*score, "--out", str(tmp / "b.csv"), "--no-history", "--webhook", url,
            "--outbox", str(tmp / "o1.jsonl"), name="webhook_with_credentials")  # fmt: skip
        box.__exit__()
        run(*score, "--out", str(tmp / "c.csv"), "--no-history", "--webhook",
            "http://u:pw-7@[::1?token=t-8", name="malformed_webhook_url")  # fmt: skip
        run(*score, "--out", str(tmp / "d.csv"), "--no-history", "--as-of", "2300-01-01",
            name="as_of_2300")  # fmt: skip
        broken = tmp / "broken.duckdb"
        ScoreHistory(tmp / "ok.duckdb").write_run(pd.read_csv(tmp / "b.csv").assign(
            as_of=pd.Timestamp(when)))  # fmt: skip
        broken.write_bytes((tmp / "ok.duckdb").read_bytes()[:5000])
        run("history", "L1", "--history", str(broken), name="truncated_history")
        run("history", "[red]L2[/red]", "--history", str(tmp / "ok.duckdb"), name="markup_lead_id")
        run("validate", str(data), name="markup_and_formula_in_data")
        run("compare", "--data", str(data), "--model", str(scorer), "--out",
            str(tmp / "r.html"), "--no-learned", name="compare_with_formulas_in_data")  # fmt: skip
        csv_text = (tmp / "r.csv").read_text()
        cases["csv_injection"] = {
            "raw_formula_cells": csv_text.count("," + PAYLOAD[:10]),
            "neutralised_cells": csv_text.count("'" + PAYLOAD[:10]),
        }
        # an empty first run, then runs at once on one DuckDB history
        history = tmp / "h.duckdb"
        run(*score[:-1], "2000-01-01", "--out", str(tmp / "e.csv"), "--history", str(history),
            name="empty_first_run")  # fmt: skip
        procs = [
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "leadscore",
                    *score,
                    "--out",
                    str(tmp / f"f{i}.csv"),
                    "--history",
                    str(history),
                ],
                cwd=tmp,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
            )  # fmt: skip
            for i in range(2)
        ]
        codes = [p.wait(timeout=600) for p in procs]
        stored = ScoreHistory(history).read()
        cases["runs_at_once"] = {
            "exits": codes,
            "rows": int(len(stored)),
            "duplicate_rows": int(stored.duplicated(["as_of", "lead_id"]).sum()),
        }
        # kill -9 while a batch is in flight, then a later run
        stuck = Receiver(script=[200, "hang"]).__enter__()
        out = tmp / "k.parquet"
        killed = subprocess.Popen(
            [sys.executable, "-m", "leadscore", *score, "--out", str(out), "--history",
             str(tmp / "k.duckdb"), "--outbox", str(tmp / "k.jsonl"), "--handoff-grades", "ABCD",
             "--webhook", stuck.url], cwd=tmp, env=env, start_new_session=True,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 300
        while len(stuck.received) < 2 and killed.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        was_killed = killed.poll() is None
        if was_killed:
            os.killpg(killed.pid, signal.SIGKILL)
        killed.wait()
        events = [
            json.loads(x)["event_id"] for x in (tmp / "k.events.jsonl").read_text().splitlines()
        ]
        good = Receiver().__enter__()
        subprocess.run(
            [sys.executable, "-m", "leadscore", *score, "--out", str(out), "--history",
             str(tmp / "k.duckdb"), "--outbox", str(tmp / "k.jsonl"), "--handoff-grades", "ABCD",
             "--webhook", good.url], cwd=tmp, env=env, capture_output=True, timeout=600,
        )  # fmt: skip
        taken = stuck.delivered_ids() + good.delivered_ids()
        cases["kill_9_during_delivery"] = {
            "killed_with_a_batch_in_flight": was_killed,
            "events": len(events),
            "delivered": len(set(taken)),
            "lost": len(set(events) - set(taken)),
            "taken_twice": len(taken) - len(set(taken)),
        }
        stuck.__exit__()
        good.__exit__()
        # monitor.json: strict JSON
        run("monitor", "--data", str(data), "--model", str(scorer), "--out",
            str(tmp / "m.html"), "--no-mlflow", name="monitor")  # fmt: skip
        text = (tmp / "m.json").read_text() if (tmp / "m.json").exists() else ""
        cases["monitor"]["strict_json"] = (
            bool(text) and "Infinity" not in text and "NaN" not in text
        )
    dst = subprocess.run(
        [sys.executable, "-m", "benchmarks.dst_import", "--repeat", "2"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    ratio = json.loads(dst.stdout)["ratio_dst_to_utc"] if dst.returncode == 0 else None
    totals = {
        "tracebacks": sum(c.get("traceback", False) for c in cases.values()),
        "secrets_shown": sum(c.get("secrets_shown", 0) for c in cases.values()),
        "events_lost": cases["kill_9_during_delivery"]["lost"],
        "duplicate_history_rows": cases["runs_at_once"]["duplicate_rows"],
        "raw_formula_cells": cases["csv_injection"]["raw_formula_cells"],
        "dst_import_ratio": ratio,
    }
    print(json.dumps({"benchmark": "hostile", "totals": totals, "cases": cases}, indent=2))


if __name__ == "__main__":
    main()
