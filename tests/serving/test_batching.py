"""The micro-batcher (leadscore.serving.batching) on its own: what it merges, what it keeps apart, and
how one request's mistake stays that request's."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from leadscore.crm.errors import PayloadError
from leadscore.serving.batching import MicroBatcher


class Recorder:
    """A compute that echoes (lead, as_of, options), remembers each call, and can be held
    (to let requests queue behind a running call) or fail on a lead marked bad."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []
        self.release = threading.Event()
        self.release.set()
        self.started = threading.Event()

    def __call__(self, leads, as_ofs, options):
        self.started.set()
        self.release.wait(5)
        for i, lead in enumerate(leads):
            if lead.get("bad"):
                raise PayloadError("created_at", "after as_of", i)
        self.calls.append([lead["lead_id"] for lead in leads])
        return [
            {"lead_id": lead["lead_id"], "as_of": when, "options": options}
            for lead, when in zip(leads, as_ofs, strict=True)
        ]


def leads(prefix: str, n: int = 1, bad: int | None = None) -> list[dict]:
    return [{"lead_id": f"{prefix}{i}", "bad": i == bad} for i in range(n)]


async def held_then_burst(batcher: MicroBatcher, compute: Recorder, burst: list[tuple]):
    """One request starts a held call; the burst queues behind it; then the call is released."""
    compute.release.clear()
    compute.started.clear()
    first = asyncio.ensure_future(batcher.score(leads("first"), "t0", "o"))
    while not compute.started.is_set():
        await asyncio.sleep(0.001)
    rest = [asyncio.ensure_future(batcher.score(*args)) for args in burst]
    await asyncio.sleep(0.01)
    compute.release.set()
    return await asyncio.gather(first, *rest, return_exceptions=True)


def test_requests_waiting_behind_a_call_are_merged_into_one():
    compute = Recorder()
    batcher = MicroBatcher(compute, max_leads=64)
    burst = [(leads(f"r{k}-", 2), f"t{k}", "o") for k in range(5)]
    results = asyncio.run(held_then_burst(batcher, compute, burst))
    # the lone first request ran at once; the five that arrived meanwhile ran together
    assert compute.calls[0] == ["first0"]
    assert len(compute.calls) == 2 and len(compute.calls[1]) == 10
    assert batcher.stats.largest == 5 and batcher.stats.requests == 6
    # every request got its own leads, with its own as_of, in order
    for k, got in enumerate(results[1:]):
        assert [r["lead_id"] for r in got] == [f"r{k}-0", f"r{k}-1"]
        assert {r["as_of"] for r in got} == {f"t{k}"}


def test_a_lone_request_is_not_held_back():
    compute = Recorder()
    batcher = MicroBatcher(compute)

    async def one():
        t0 = time.perf_counter()
        out = await batcher.score(leads("a"), "t", "o")
        return out, time.perf_counter() - t0

    out, seconds = asyncio.run(one())
    assert out[0]["lead_id"] == "a0" and compute.calls == [["a0"]]
    assert seconds < 1  # no timer: far below any wait (a loose bound, not a benchmark)


def test_batches_stay_within_max_leads_and_options_are_not_mixed():
    compute = Recorder()
    batcher = MicroBatcher(compute, max_leads=4)
    burst = [
        (leads("a", 3), "t", "o"),
        (leads("b", 1), "t", "other"),  # other options: never in a batch with "o"
        (leads("c", 1), "t", "o"),  # fits next to a (3 + 1 <= 4)
        (leads("d", 2), "t", "o"),  # does not fit: next batch
        (leads("big", 9), "t", "o"),  # larger than max_leads: runs alone, never split
    ]
    results = asyncio.run(held_then_burst(batcher, compute, burst))
    assert compute.calls[1:] == [
        ["a0", "a1", "a2", "c0"],
        ["b0"],
        ["d0", "d1"],
        [f"big{i}" for i in range(9)],
    ]
    assert results[2][0]["options"] == "other"
    assert all(len(c) <= 4 for c in compute.calls[:-1])


def test_a_bad_lead_fails_only_its_request_with_its_own_position():
    compute = Recorder()
    batcher = MicroBatcher(compute)
    burst = [
        (leads("ok", 2), "t", "o"),
        (leads("bad", 3, bad=2), "t", "o"),
        (leads("fine", 1), "t", "o"),
    ]
    results = asyncio.run(held_then_burst(batcher, compute, burst))
    error = results[2]
    assert isinstance(error, PayloadError)
    assert error.path == "leads[2].created_at"  # its own index, not the batch's (4)
    assert [r["lead_id"] for r in results[1]] == ["ok0", "ok1"]
    assert [r["lead_id"] for r in results[3]] == ["fine0"]
    assert compute.calls[-1] == ["ok0", "ok1", "fine0"]  # scored again without the bad one


def test_a_bug_reaches_every_request_of_its_batch_and_the_batcher_goes_on():
    calls = []

    def broken(leads_, as_ofs, options):
        calls.append(len(leads_))
        if len(calls) == 1:
            raise RuntimeError("bug")
        return [{"lead_id": lead["lead_id"]} for lead in leads_]

    batcher = MicroBatcher(broken)

    async def run():
        with pytest.raises(RuntimeError, match="bug"):
            await batcher.score(leads("x"), "t", "o")
        return await batcher.score(leads("y"), "t", "o")

    assert asyncio.run(run()) == [{"lead_id": "y0"}]


def test_on_batch_and_bad_settings():
    seen = []
    batcher = MicroBatcher(Recorder(), on_batch=lambda r, n: seen.append((r, n)))
    asyncio.run(batcher.score(leads("z", 3), "t", "o"))
    assert seen == [(1, 3)]
    with pytest.raises(ValueError):
        MicroBatcher(Recorder(), max_leads=0)


def test_a_wait_lets_a_lone_request_gather_company():
    compute = Recorder()
    batcher = MicroBatcher(compute, max_wait_s=0.05)

    async def two():
        a = asyncio.ensure_future(batcher.score(leads("a"), "t", "o"))
        await asyncio.sleep(0.005)
        b = asyncio.ensure_future(batcher.score(leads("b"), "t", "o"))
        return await asyncio.gather(a, b)

    asyncio.run(two())
    assert compute.calls == [["a0", "b0"]]
