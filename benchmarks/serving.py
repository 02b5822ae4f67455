"""Scoring endpoint throughput and latency: ours (BentoML) against `mlflow models serve`.

Both serve the same registered model, on this machine, driven by the same async client
(aiohttp): one lead per request at concurrency 1, 8 and 32; then a 1,000-lead batch on
ours through `leadscore.client.Client`. In process: TreeSHAP for 1,000 leads, ours against
LightGBM's (one thread, all cores) and the `shap` package's when installed. Prints one JSON object with req/s, p50 and p99 latency, errors, and the ratios.
Also drives a BentoML service that parses the same requests and scores nothing
(`benchmarks/floor/`): the framework's own ceiling on this machine.

Usage: python -m benchmarks.serving [--requests 3000] [--workers 2]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np  # noqa: E402


async def drive(
    url: str, bodies: list[bytes], concurrency: int, headers: dict, limit_s: float
) -> dict:
    import aiohttp

    latencies: list[float] = []
    errors = 0
    queue = list(range(len(bodies)))
    start = time.perf_counter()

    async def worker(session):
        nonlocal errors
        while queue and time.perf_counter() - start < limit_s:
            i = queue.pop()
            t0 = time.perf_counter()
            try:
                async with session.post(url, data=bodies[i], headers=headers) as resp:
                    await resp.read()
                    if resp.status != 200:
                        errors += 1
            except aiohttp.ClientError:
                errors += 1
            latencies.append(time.perf_counter() - t0)

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
    wall = time.perf_counter() - start
    lat = np.array(latencies) * 1000
    return {
        "concurrency": concurrency,
        "requests": len(latencies),
        "errors": errors,
        "req_per_s": round(len(latencies) / wall, 1),
        "p50_ms": round(float(np.percentile(lat, 50)), 2),
        "p99_ms": round(float(np.percentile(lat, 99)), 2),
    }


def measure_validation(bodies: dict[str, bytes]) -> dict:
    """Milliseconds to parse each body into the typed request (`leadscore.serving.schemas`, pydantic
    TypedDicts, as BentoML does for /score) and into untyped dicts (the path before the
    schemas), in this process, best of several runs; the ratio typed / untyped."""
    import timeit
    from typing import Any, NotRequired

    from pydantic import TypeAdapter
    from typing_extensions import TypedDict

    from leadscore.serving.schemas import Lead

    class Typed(TypedDict):
        leads: list[Lead]
        as_of: NotRequired[str | None]
        reasons: NotRequired[bool]

    class Untyped(TypedDict):
        leads: list[dict[str, Any]]
        as_of: NotRequired[str | None]
        reasons: NotRequired[bool]

    out = {}
    for name, body in bodies.items():
        number = 2000 if len(body) < 100_000 else 5
        row = {}
        for kind, adapter in (("typed", TypeAdapter(Typed)), ("untyped", TypeAdapter(Untyped))):
            best = min(
                timeit.repeat(lambda a=adapter, b=body: a.validate_json(b), number=number, repeat=5)
            )
            row[f"{kind}_ms"] = round(best / number * 1000, 4)
        row["typed_over_untyped"] = round(row["typed_ms"] / row["untyped_ms"], 3)
        out[name] = row
    return out


def measure_treeshap(scorer, leads: list[dict], as_of: str) -> dict:
    """Milliseconds for the exact TreeSHAP contributions of 1,000 leads, in this process,
    best of 5: ours (leadscore.scoring.treeshap), LightGBM's pred_contrib on one thread and on all
    cores, and the `shap` package's TreeExplainer when it is installed (not a dependency);
    the largest difference from LightGBM's values."""
    import timeit

    x = scorer.encode_batch(scorer._featurizer.batch(leads, [as_of] * len(leads)))
    reference = scorer.booster.predict(x, pred_contrib=True, num_threads=1)

    def best(fn) -> float:
        return round(min(timeit.repeat(fn, number=1, repeat=5)) * 1000, 1)

    explainer = scorer.explainer
    out = {
        "ours_ms": best(lambda: explainer(x)),
        "lightgbm_1_thread_ms": best(
            lambda: scorer.booster.predict(x, pred_contrib=True, num_threads=1)
        ),
        "lightgbm_all_cores_ms": best(
            lambda: scorer.booster.predict(x, pred_contrib=True, num_threads=0)
        ),
        "ours_max_abs_difference": float(np.abs(explainer(x) - reference).max()),
    }
    try:
        import shap

        tree = shap.TreeExplainer(scorer.booster)
        out["shap_package_ms"] = best(lambda: tree.shap_values(x, check_additivity=False))
    except Exception as exc:  # not installed, or it cannot read this booster
        out["shap_package"] = f"not measured: {type(exc).__name__}: {str(exc)[:120]}"
    out["ours_speed_up_over_lightgbm_all_cores"] = round(
        out["lightgbm_all_cores_ms"] / out["ours_ms"], 1
    )
    return out


def measure_interval(scorer, leads: list[dict], as_of: str) -> dict:
    """What the Venn-Abers interval costs a one-lead scoring call, in this process: the best
    of 9 interleaved runs of `LeadScorer.score_leads` for one lead (with reasons), in
    microseconds, with the interval and without it (the same scorer, its interval removed),
    and the interval's lookup alone for one raw score."""
    import copy
    import timeit

    without = copy.copy(scorer)
    without.interval = None
    lead = leads[:1]

    def best_us(fn, number: int) -> float:
        return min(timeit.repeat(fn, number=number, repeat=1)) / number * 1e6

    with_us, without_us = [], []
    scorer.score_leads(lead, as_of), without.score_leads(lead, as_of)  # warm both
    for _ in range(9):  # interleaved, so that a noisy moment hits both alike
        with_us.append(best_us(lambda: scorer.score_leads(lead, as_of), 200))
        without_us.append(best_us(lambda: without.score_leads(lead, as_of), 200))
    raw = np.array([0.0])
    out = {
        "with_interval_us": round(min(with_us), 1),
        "without_interval_us": round(min(without_us), 1),
        "lookup_alone_us": round(best_us(lambda: scorer.interval(raw), 5000), 1)
        if scorer.interval is not None
        else None,
    }
    out["cost_us"] = round(out["with_interval_us"] - out["without_interval_us"], 1)
    return out


def wait_ready(url: str, proc: subprocess.Popen, timeout: float = 180) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{url}: server exited")
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.5)
    raise RuntimeError(f"{url}: not ready")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--workers", type=int, default=None, help="default: cores + 1")
    parser.add_argument(
        "--leads", type=int, default=8000, help="simulated leads to train the model on"
    )
    args = parser.parse_args()
    from leadscore.serving.process import default_workers

    args.workers = args.workers or default_workers()

    from benchmarks.registered import registered_model
    from leadscore.crm.payloads import lead_payloads
    from leadscore.serving.process import Server, free_port

    model = registered_model(args.leads)
    tmp, uri, ds, result = model.folder, model.uri, model.dataset, model.result

    # Request bodies: real test leads with what was known at their as_of.
    rows = result.test.drop_duplicates("lead_id").sample(
        min(1000, result.test["lead_id"].nunique()), random_state=0
    )
    payloads = {p["lead_id"]: p for p in lead_payloads(ds, rows["lead_id"], iso=True)}
    leads, as_ofs = [], []
    for row in rows.itertuples():
        when = row.as_of.isoformat()
        p = payloads[row.lead_id]
        leads.append(
            {
                **p,
                "activities": [a for a in p["activities"] if a["occurred_at"] <= when],
                "deals": [d for d in p["deals"] if d["created_at"] <= when],
            }
        )
        as_ofs.append(when)
    n_acts = [len(lead["activities"]) for lead in leads]
    ours_bodies = [
        json.dumps({"leads": [lead], "as_of": w}).encode()
        for lead, w in zip(leads, as_ofs, strict=True)
    ]
    mlflow_bodies = [
        json.dumps(
            {"dataframe_split": {"columns": ["lead", "as_of"], "data": [[json.dumps(lead), w]]}}
        ).encode()
        for lead, w in zip(leads, as_ofs, strict=True)
    ]

    def cycle(bodies):
        return [bodies[i % len(bodies)] for i in range(args.requests)]

    batch = json.dumps({"leads": leads[:1000], "as_of": max(as_ofs), "reasons": True}).encode()
    validation = measure_validation({"one_lead": ours_bodies[0], "1000_leads": batch})

    out_treeshap = measure_treeshap(result.scorer, leads[:1000], max(as_ofs))
    out_interval = measure_interval(result.scorer, leads, max(as_ofs))
    key = "bench-key"
    out = {
        "benchmark": "serving",
        "machine_cores": os.cpu_count(),
        "workers": args.workers,
        "schema_validation": validation,
        "treeshap_1000_leads": out_treeshap,
        "interval_one_lead": out_interval,
        "activities_per_lead": {
            "mean": round(float(np.mean(n_acts)), 1),
            "max": int(np.max(n_acts)),
        },
    }
    ours_headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    server_env = {"MLFLOW_TRACKING_URI": uri, "LEADSCORE_API_KEYS": key}
    with Server(env=server_env, cwd=tmp, workers=args.workers):
        pass  # warm the import caches once
    # BentoML's access log (a line per request) off under load, as in production behind a proxy.
    with Server(env=server_env, cwd=tmp, workers=args.workers, access_log=False) as server:
        url = f"{server.base}/score"
        asyncio.run(drive(url, cycle(ours_bodies)[:200], 8, ours_headers, 30))  # warm-up
        out["ours"] = [
            asyncio.run(drive(url, cycle(ours_bodies), c, ours_headers, 60)) for c in (1, 8, 32)
        ]
        from leadscore.client import Client

        # Through the client a CRM integration would use (leadscore.client). One as_of for
        # all: each lead holds what was known by its own (earlier) as_of.
        with Client(server.base, key, timeout=60) as client:
            for label, with_reasons in (
                ("batch_1000_leads_ms", True),
                ("batch_1000_leads_no_reasons_ms", False),
            ):
                timings = []
                for _ in range(7):
                    t0 = time.perf_counter()
                    scored = client.score(leads[:1000], as_of=max(as_ofs), reasons=with_reasons)
                    timings.append((time.perf_counter() - t0) * 1000)
                    assert len(scored) == 1000
                out[label] = {
                    "median": round(float(np.median(timings)), 1),
                    "min": round(float(np.min(timings)), 1),
                }
        no_reasons = [
            json.dumps({"leads": [lead], "as_of": w, "reasons": False}).encode()
            for lead, w in zip(leads, as_ofs, strict=True)
        ]
        out["ours_without_reasons"] = [
            asyncio.run(drive(url, cycle(no_reasons), c, ours_headers, 60)) for c in (8,)
        ]

    # The framework's own ceiling: the same load on a BentoML service that parses the
    # same requests and scores nothing (benchmarks/floor/noop_service.py).
    floor_dir = Path(__file__).resolve().parent / "floor"
    with Server(
        env={}, cwd=floor_dir, workers=args.workers, access_log=False, service="noop_service:NoOp"
    ) as server:
        url = f"{server.base}/score"
        asyncio.run(drive(url, cycle(ours_bodies)[:200], 8, ours_headers, 30))
        out["bentoml_noop"] = [
            asyncio.run(drive(url, cycle(ours_bodies), c, ours_headers, 60)) for c in (1, 8, 32)
        ]
    out["ours_share_of_bentoml_noop"] = {
        str(o["concurrency"]): round(o["req_per_s"] / f["req_per_s"], 2)
        for o, f in zip(out["ours"], out["bentoml_noop"], strict=True)
    }

    port = free_port()
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": uri,
        "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}",
    }
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mlflow",
            "models",
            "serve",
            "-m",
            "models:/lead-scoring@champion",
            "--env-manager",
            "local",
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
            "--workers",
            str(args.workers),
        ],
        cwd=tmp,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_ready(f"http://127.0.0.1:{port}/ping", proc)
        url = f"http://127.0.0.1:{port}/invocations"
        headers = {"Content-Type": "application/json"}
        asyncio.run(drive(url, cycle(mlflow_bodies)[:50], 8, headers, 30))
        out["mlflow_models_serve"] = [
            asyncio.run(drive(url, cycle(mlflow_bodies), c, headers, 60)) for c in (1, 8, 32)
        ]
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    out["throughput_ratio"] = {
        str(o["concurrency"]): round(o["req_per_s"] / m["req_per_s"], 1)
        for o, m in zip(out["ours"], out["mlflow_models_serve"], strict=True)
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
