"""The event stream under a CRM's traffic: a steady rate (speed to lead: event to delivered
hand-off webhook), a burst of single-event requests and a burst of batched requests.

The real server (BentoML, cores + 1 workers) with a model registered on a simulated CRM,
a webhook receiver on this machine (a threaded HTTP server in a process of its own: it
stamps each hand-off as it arrives). Leads are created first (not timed); then events arrive open-loop
at `--rate` events/s for `--seconds`, one event per request as a CRM webhook sends them:
page views of cold leads, and the activities of hot leads (high-fit profiles) that lift each
over the hand-off line after a few. Measured per store (SQLite, and Redis and PostgreSQL
where their servers are installed): the requests' latency from their scheduled send time
(open loop: a slow server shows as queueing, not as fewer requests), and for each hand-off
the time from the send of the event that lifted the lead to the webhook's arrival.

The bursts (`--burst`, 6,000 events by default): `single`, 16 senders each posting one event
per request as fast as the server answers (closed loop), hot leads' events among them;
`batched`, 4 senders posting requests of 250 cold events while one sender posts hot leads'
events one by one until they are done. Both give events/s, the hot leads' request latency (their score comes back
in the answer) p50/p99, the server's CPU per event and its peak RSS (all its processes,
sampled every 0.1 s).

`--paths old,new` runs each store twice, back to back: `old` with each request applied
alone (`LEADSCORE_EVENTS_MERGE=1`, the code path before merging), `new` with a worker's
concurrent requests merged into one store run (the default). `--in-process N` first
measures the stream's own cost without HTTP: N single-event requests applied alone, then
merged 16 at a time.

Prints one JSON object. Usage: python -m benchmarks.events [--rate 200] [--seconds 30]
[--burst 6000] [--stores sqlite,redis,postgresql] [--paths old,new]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from pathlib import Path

import numpy as np  # noqa: E402

KEY = "bench-key"
SECRET = "bench-secret"


RECEIVER = r"""
import json, sys, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
arrivals = {}
class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: the sender reuses its connection
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        now = time.time()
        for event in json.loads(body)["events"]:
            arrivals.setdefault(event["lead_id"], now)
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()
    def do_GET(self):
        data = json.dumps(arrivals).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
    def log_message(self, *args):
        pass
server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
server.daemon_threads = True
print(server.server_address[1], flush=True)
server.serve_forever()
"""


class Receiver:
    """The webhook's receiver in a process of its own (so that it takes nothing from the
    load client's process): it stamps each hand-off's arrival (wall clock, by lead)."""

    def __init__(self) -> None:
        import subprocess

        self.proc = subprocess.Popen(
            [sys.executable, "-c", RECEIVER], stdout=subprocess.PIPE, text=True
        )
        port = int(self.proc.stdout.readline())
        self.url = f"http://127.0.0.1:{port}/hooks"

    @property
    def arrivals(self) -> dict[str, float]:
        import httpx

        return httpx.get(self.url, timeout=30).json()

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait()


def plan(
    rate: float, seconds: float, hot_types: list[str], cold_type: str, seed: int = 0, tag: str = ""
):
    """(creations, stream): the leads created first, and the timed events, each with its
    offset in seconds. A hot lead gets 6 activities a second or more apart. `tag` prefixes
    every lead and event id (phases of one run on one store stay apart)."""
    rng = np.random.default_rng(seed)
    n = int(rate * seconds)
    n_hot = max(1, n // 20)  # 6 events each: 30 % of the stream
    start = "2026-11-30T08:00:00Z"
    creations = [
        {"event_id": f"H{i}-new", "type": "lead", "lead_id": f"H{i}", "occurred_at": start,
         "created_at": start, "source": "partner",
         "profile": {"job_role": "c_level", "company_size": "1000+", "industry": "software",
                     "email_domain_kind": "business"}}
        for i in range(n_hot)
    ] + [
        {"event_id": f"C{i}-new", "type": "lead", "lead_id": f"C{i}", "occurred_at": start,
         "created_at": start, "source": "social", "profile": {"job_role": "student"}}
        for i in range(2_000)
    ]  # fmt: skip
    slots = np.sort(rng.uniform(0, seconds, n))
    kinds = ["cold"] * (n - 6 * n_hot) + ["hot"] * (6 * n_hot)
    rng.shuffle(kinds)
    stream, hot_next = [], 0
    hot_queue: list[tuple[int, int]] = [(i, 0) for i in range(n_hot)]
    for j, (t, kind) in enumerate(zip(slots, kinds, strict=True)):
        if kind == "hot" and hot_queue:
            lead, k = hot_queue.pop(0)
            if k < 5:
                hot_queue.append((lead, k + 1))
            event = {"event_id": f"H{lead}-a{k}", "type": "activity", "lead_id": f"H{lead}",
                     "activity_type": hot_types[k % len(hot_types)]}  # fmt: skip
            hot_next += 1
        else:
            lead = int(rng.integers(0, 2_000))
            event = {"event_id": f"c{j}", "type": "activity", "lead_id": f"C{lead}",
                     "activity_type": cold_type}  # fmt: skip
        stream.append((float(t), event))
    return creations, stream


async def run_stream(base: str, stream, receiver: Receiver) -> dict:
    import aiohttp

    headers = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}
    latencies: list[float] = []
    sent_at: dict[str, float] = {}  # lead -> scheduled send of the event that handed it off
    errors = 0
    connector = aiohttp.TCPConnector(limit=256)
    async with aiohttp.ClientSession(connector=connector) as session:
        t0 = time.perf_counter()
        wall0 = time.time()  # the receiver stamps arrivals with the wall clock

        async def send(offset: float, event: dict) -> None:
            nonlocal errors
            scheduled = t0 + offset
            await asyncio.sleep(max(0.0, scheduled - time.perf_counter()))
            event = {**event, "occurred_at": _utc_now()}
            try:
                async with session.post(
                    f"{base}/events", data=json.dumps({"events": [event]}), headers=headers
                ) as r:
                    body = await r.json()
                    if r.status != 200:
                        errors += 1
                        return
            except aiohttp.ClientError:
                errors += 1
                return
            latencies.append(time.perf_counter() - scheduled)
            for s in body["scores"]:
                if s["handoff"]:
                    sent_at[s["lead_id"]] = wall0 + offset

        await asyncio.gather(*(send(t, e) for t, e in stream))
        wall = time.perf_counter() - t0
    deadline = time.perf_counter() + 30
    arrivals = receiver.arrivals
    while set(sent_at) - set(arrivals) and time.perf_counter() < deadline:
        await asyncio.sleep(0.2)
        arrivals = receiver.arrivals
    handoff = [arrivals[k] - v for k, v in sent_at.items() if k in arrivals]
    lat = np.array(latencies) * 1000
    hand = np.array(handoff) * 1000
    return {
        "events": len(stream),
        "events_per_s": round(len(latencies) / wall, 1),
        "errors": errors,
        "request_p50_ms": round(float(np.percentile(lat, 50)), 1),
        "request_p99_ms": round(float(np.percentile(lat, 99)), 1),
        "handoffs": len(sent_at),
        "handoffs_delivered": len(handoff),
        "event_to_webhook_p50_ms": round(float(np.percentile(hand, 50)), 1) if len(hand) else None,
        "event_to_webhook_p99_ms": round(float(np.percentile(hand, 99)), 1) if len(hand) else None,
        "event_to_webhook_max_ms": round(float(hand.max()), 1) if len(hand) else None,
    }


def _utc_now() -> str:
    from datetime import UTC, datetime

    return datetime.now(UTC).isoformat()


def tree_cpu_s(pid: int) -> float:
    """CPU seconds (user + system) used so far by a process and its children."""
    import contextlib

    import psutil

    proc = psutil.Process(pid)
    total = sum(proc.cpu_times()[:2])
    for child in proc.children(recursive=True):
        with contextlib.suppress(psutil.Error):
            total += sum(child.cpu_times()[:2])
    return total


def tree_rss_mib(pid: int) -> float:
    import contextlib

    import psutil

    proc = psutil.Process(pid)
    total = proc.memory_info().rss
    for child in proc.children(recursive=True):
        with contextlib.suppress(psutil.Error):  # a child that just ended
            total += child.memory_info().rss
    return round(total / 2**20, 1)


def stores(folder: Path, wanted: list[str]):
    """(name, url, stop) for each store that can run here."""
    import contextlib
    import shutil

    for name in wanted:
        if name == "sqlite":
            yield name, f"sqlite:///{folder / 'state.sqlite'}", contextlib.nullcontext()
        elif name == "redis" and shutil.which("redis-server"):
            from tests.redis_server import redis_server

            yield name, None, redis_server()
        elif name == "postgresql":
            from tests.postgres import postgres_cluster

            yield name, None, postgres_cluster("bench")


def run_store(name, url, running, path, model, workers, creations, stream, burst_creations,
              burst, args) -> dict:  # fmt: skip
    """One store, one code path: the steady rate, then the single-event and batched bursts,
    each on leads of its own; a fresh store for each path (PostgreSQL and Redis: a server
    of their own, started here)."""
    import contextlib
    import shutil

    import httpx

    from leadscore.serving.process import Server

    if name == "sqlite":
        folder = Path(url.removeprefix("sqlite:///")).parent / f"state-{path}"
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir()
        url, running = f"sqlite:///{folder / 'state.sqlite'}", contextlib.nullcontext()
    elif running is None:
        running = next(s for n, _, s in stores(model.folder, [name]))
    out: dict = {}
    with running as server:
        url = url or (server.url if hasattr(server, "url") else server)
        receiver = Receiver()
        env = {
            "MLFLOW_TRACKING_URI": model.uri,
            "LEADSCORE_API_KEYS": KEY,
            "LEADSCORE_STATE_URL": url,
            "LEADSCORE_WEBHOOK_URL": receiver.url,
            "LEADSCORE_WEBHOOK_SECRET": SECRET,
        }
        if path == "old":
            env["LEADSCORE_EVENTS_MERGE"] = "1"
        try:
            with Server(env=env, cwd=model.folder, workers=workers, access_log=False) as srv:
                headers = {"Authorization": f"Bearer {KEY}"}

                def create(events):
                    for i in range(0, len(events), 500):
                        r = httpx.post(f"{srv.base}/events", json={"events": events[i : i + 500]},
                                       headers=headers, timeout=120)  # fmt: skip
                        r.raise_for_status()

                if args.seconds > 0:
                    create(creations)
                    out["steady"] = measured(
                        srv, lambda: asyncio.run(run_stream(srv.base, stream, receiver))
                    )
                if args.burst > 0:
                    for phase, senders, per, alone in (("single", 16, 1, False),
                                                       ("batched", 4, 250, True)):  # fmt: skip
                        tag = f"{phase}-"
                        create(_tagged(burst_creations, tag))
                        events = [(t, e) for t, e in zip([0.0] * len(burst),
                                  _tagged([e for _, e in burst], tag), strict=True)]  # fmt: skip
                        out[f"burst_{phase}"] = measured(
                            srv,
                            lambda ev=events, s=senders, p=per, a=alone: asyncio.run(
                                run_burst(srv.base, ev, s, p, a)
                            ),
                        )
        finally:
            receiver.close()
    return out


def in_process(model, creations, stream, n: int) -> dict:
    """The stream's own cost without HTTP: `n` single-event requests applied one by one
    (`process`), then `n` others merged 16 at a time (`process_many`, as a worker merges 16
    waiting requests), on a fresh SQLite store each: CPU ms per event, events/s."""
    import tempfile

    from leadscore.crm.times import to_us
    from leadscore.scoring.model_ref import ModelRef
    from leadscore.stream.processor import EventProcessor
    from leadscore.stream.stores import open_store

    events = [e for _, e in stream]
    out = {"events": n}
    for mode, group in (("alone", 1), ("merged_16", 16)):
        folder = Path(tempfile.mkdtemp(prefix=f"leadscore-inproc-{mode}-"))
        proc = EventProcessor(
            open_store(f"sqlite:///{folder / 'state.sqlite'}"), model.result.scorer,
            ModelRef("lead-scoring", "1"),
        )  # fmt: skip
        now = to_us(_utc_now())
        proc.process(creations, None, now)
        timed = [{**e, "occurred_at": _utc_now()} for e in events[:n]]
        cpu0, t0 = time.process_time(), time.perf_counter()
        for i in range(0, n, group):
            proc.process_many([[e] for e in timed[i : i + group]], None, now)
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - t0
        out[mode] = {
            "cpu_ms_per_event": round(cpu / n * 1000, 2),
            "events_per_s": round(n / wall, 1),
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rate", type=float, default=200.0, help="events per second")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--stores", default="sqlite,redis,postgresql")
    parser.add_argument("--workers", type=int, default=None, help="default: cores + 1")
    parser.add_argument("--leads", type=int, default=8000, help="simulated leads to train on")
    parser.add_argument("--burst", type=int, default=6000, help="events of each burst (0: none)")
    parser.add_argument("--paths", default="old,new", help="old: each request alone; new: merged")
    parser.add_argument(
        "--in-process", type=int, default=2000, help="events applied in process, alone and merged"
    )
    args = parser.parse_args()

    from benchmarks.registered import registered_model
    from leadscore.serving.process import default_workers

    workers = args.workers or default_workers()
    model = registered_model(args.leads)
    rules = model.result.scorer.rules
    activities = rules.config.activities if rules is not None else {}
    hot = sorted(
        (t for t in activities if activities[t].points > 0), key=lambda t: -activities[t].points
    )[:4]
    hot = hot or list(model.result.scorer.spec.activity_types[:4])
    creations, stream = (
        plan(args.rate, args.seconds, hot, "page_view") if args.seconds > 0 else ([], [])
    )
    out: dict = {
        "benchmark": "events",
        "machine_cores": os.cpu_count(),
        "workers": workers,
        "rate_wanted": args.rate,
        "seconds": args.seconds,
        "stores": {},
    }
    burst_creations, burst = plan(args.burst / 30, 30, hot, "page_view", seed=1)
    if args.in_process:
        out["in_process"] = in_process(model, burst_creations, burst, args.in_process)
    for name, url, running in stores(model.folder, args.stores.split(",")):
        for path in args.paths.split(","):
            key = f"{name}/{path}"
            try:
                out["stores"][key] = run_store(
                    name, url, running if path == args.paths.split(",")[0] else None, path,
                    model, workers, creations, stream, burst_creations, burst, args,
                )  # fmt: skip
            except BaseException as exc:  # noqa: BLE001 (a store that cannot run here: said so)
                if type(exc).__name__ != "Skipped" and not isinstance(exc, Exception):
                    raise
                out["stores"][key] = {"skipped": str(exc)[:200]}
    print(json.dumps(out))


def _tagged(events: list[dict], tag: str) -> list[dict]:
    return [{**e, "event_id": tag + e["event_id"], "lead_id": tag + e["lead_id"]} for e in events]


async def run_burst(base: str, stream, senders: int, per_request: int, hot_alone: bool) -> dict:
    """Every event of `stream` as fast as the server takes them: `senders` closed loops
    posting `per_request` events a request (cold events only when `hot_alone`: the hot
    leads' events then go one by one from a sender of their own). The hot leads' request
    latency, the events/s over the whole burst."""
    import aiohttp

    headers = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}
    events = [e for _, e in stream]
    hot = [e for e in events if e["lead_id"].split("-")[-1].startswith("H")] if hot_alone else []
    cold = [e for e in events if e not in hot] if hot_alone else events
    requests = [cold[i : i + per_request] for i in range(0, len(cold), per_request)]
    hot_ms: list[float] = []
    errors = 0
    busy = 0

    async def post(session, part) -> float | None:
        nonlocal errors, busy
        part = [{**e, "occurred_at": _utc_now()} for e in part]
        while True:
            t = time.perf_counter()
            try:
                async with session.post(
                    f"{base}/events", data=json.dumps({"events": part}), headers=headers
                ) as r:
                    await r.read()
                    if r.status in (429, 503):  # the backlog bound: come back as told
                        busy += 1
                        await asyncio.sleep(float(r.headers.get("Retry-After", "1")))
                        continue
                    if r.status != 200:
                        errors += 1
                        return None
            except aiohttp.ClientError:
                errors += 1
                return None
            return (time.perf_counter() - t) * 1000

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=256)) as session:
        t0 = time.perf_counter()
        queue = list(enumerate(requests))
        queue.reverse()

        async def sender() -> None:
            while queue:
                _, part = queue.pop()
                ms = await post(session, part)
                if (
                    ms is not None
                    and not hot_alone
                    and any(e["lead_id"].split("-")[-1].startswith("H") for e in part)
                ):
                    hot_ms.append(ms)

        done = asyncio.Event()
        hot_sent = 0

        async def hot_sender() -> None:
            nonlocal hot_sent
            for e in hot:  # one by one while the batched senders run
                if done.is_set():
                    break
                ms = await post(session, [e])
                if ms is not None:
                    hot_ms.append(ms)
                    hot_sent += 1

        hot_task = asyncio.ensure_future(hot_sender())
        await asyncio.gather(*(sender() for _ in range(senders)))
        wall = time.perf_counter() - t0
        done.set()
        await hot_task
    applied = len(cold) + hot_sent
    lat = np.array(hot_ms)
    return {
        "events": applied,
        "requests": len(requests) + hot_sent,
        "senders": senders + (1 if hot else 0),
        "events_per_request": per_request,
        "events_per_s": round(applied / wall, 1),
        "seconds": round(wall, 2),
        "errors": errors,
        "refused_busy_429_503": busy,
        "hot_score_p50_ms": round(float(np.percentile(lat, 50)), 1) if len(lat) else None,
        "hot_score_p99_ms": round(float(np.percentile(lat, 99)), 1) if len(lat) else None,
    }


class PeakRss:
    """The server's peak RSS (every process of it), sampled every 0.1 s in a thread."""

    def __init__(self, pid: int) -> None:
        import threading

        self.pid, self.peak = pid, 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        import contextlib

        import psutil

        while not self._stop.is_set():
            with contextlib.suppress(psutil.Error):
                self.peak = max(self.peak, tree_rss_mib(self.pid))
            self._stop.wait(0.1)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def measured(srv, work) -> dict:
    """`work()`'s result, with the server's CPU per event over it and its peak RSS."""
    cpu0, own0 = tree_cpu_s(srv.proc.pid), sum(os.times()[:2])
    with PeakRss(srv.proc.pid) as rss:
        result = work()
    cpu1, own1 = tree_cpu_s(srv.proc.pid), sum(os.times()[:2])
    result["server_cpu_ms_per_event"] = round((cpu1 - cpu0) / result["events"] * 1000, 2)
    result["client_cpu_ms_per_event"] = round((own1 - own0) / result["events"] * 1000, 2)
    result["server_peak_rss_mib"] = round(rss.peak, 1)
    return result


if __name__ == "__main__":
    main()
