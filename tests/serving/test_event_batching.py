"""The /events batcher (leadscore.serving.batching.EventBatcher) on its own: requests that
wait behind a run are merged into the next (same as_of, up to max_events), each gets its own
result or its own mistake, a failing run fails its requests only, bulk requests do not hold
up small ones, and past the backlog bound a request is refused at once with a Retry-After."""

from __future__ import annotations

import asyncio
import threading

import pytest

from leadscore.crm.errors import PayloadError, StoreUnavailable
from leadscore.serving.batching import Backlogged, EventBatcher


class Runs:
    """A run that echoes each request's event ids, remembers its calls, can be held (so
    requests queue behind it) and refuses a request holding an event marked bad."""

    def __init__(self) -> None:
        self.calls: list[list[list[str]]] = []
        self.release = threading.Event()
        self.started = threading.Event()
        self.fail: BaseException | None = None

    def __call__(self, requests, as_of):
        self.started.set()
        self.release.wait(10)
        if self.fail is not None:
            raise self.fail
        self.calls.append([[e["event_id"] for e in r] for r in requests])
        return [
            PayloadError("events[0].type", "bad")
            if any(e.get("bad") for e in r)
            else {"ids": [e["event_id"] for e in r], "as_of": as_of}
            for r in requests
        ]


def _events(prefix, n=1, bad=False):
    return [{"event_id": f"{prefix}{i}", "bad": bad} for i in range(n)]


async def _queued(batcher, n):
    while batcher.waiting < n:  # the requests are in the queue (no sleep standing for it)
        await asyncio.sleep(0)


def test_waiting_requests_are_merged_and_each_gets_its_own():
    runs = Runs()
    batcher = EventBatcher(runs, max_events=5, max_backlog=100)

    async def main():
        first = asyncio.ensure_future(batcher.submit(_events("a"), None))
        await asyncio.to_thread(runs.started.wait, 10)  # the first run holds the worker
        later = [
            asyncio.ensure_future(batcher.submit(_events("b", 2), None)),
            asyncio.ensure_future(batcher.submit(_events("c", 1, bad=True), None)),
            asyncio.ensure_future(batcher.submit(_events("d", 1), 123)),  # another as_of
            asyncio.ensure_future(batcher.submit(_events("e", 2), None)),
            asyncio.ensure_future(batcher.submit(_events("f", 1), None)),  # past max_events
        ]
        await _queued(batcher, 7)
        runs.release.set()
        return await asyncio.gather(first, *later, return_exceptions=True)

    a, b, c, d, e, f = asyncio.run(main())
    assert a == {"ids": ["a0"], "as_of": None} and b == {"ids": ["b0", "b1"], "as_of": None}
    assert isinstance(c, PayloadError) and str(c) == "events[0].type: bad"
    assert d == {"ids": ["d0"], "as_of": 123} and e["ids"] == ["e0", "e1"] and f["ids"] == ["f0"]
    assert runs.calls == [[["a0"]], [["b0", "b1"], ["c0"], ["e0", "e1"]], [["d0"]], [["f0"]]]
    assert batcher.stats.largest == 3 and batcher.waiting == 0


def test_a_failing_run_fails_its_requests_and_the_next_run_goes_on():
    runs = Runs()
    batcher = EventBatcher(runs, max_events=10, max_backlog=100)

    async def main():
        runs.fail = StoreUnavailable("the online store is unavailable")
        runs.release.set()
        with pytest.raises(StoreUnavailable):
            await batcher.submit(_events("x"), None)
        runs.fail = None
        return await batcher.submit(_events("y"), None)

    assert asyncio.run(main())["ids"] == ["y0"]


def test_past_the_backlog_bound_a_request_is_refused_at_once():
    runs = Runs()
    batcher = EventBatcher(runs, max_events=2, max_backlog=3)

    async def main():
        first = asyncio.ensure_future(batcher.submit(_events("a"), None))
        await asyncio.to_thread(runs.started.wait, 10)
        waiting = asyncio.ensure_future(batcher.submit(_events("b", 3), None))
        await _queued(batcher, 3)
        with pytest.raises(Backlogged) as refused:
            await batcher.submit(_events("c"), None)
        runs.release.set()
        await asyncio.gather(first, waiting)
        return refused.value, await batcher.submit(_events("d"), None)

    refused, after = asyncio.run(main())
    assert refused.retry_after_s >= 1 and "3 events are waiting" in str(refused)
    assert after["ids"] == ["d0"]  # the backlog drained: taken again


def test_a_small_request_does_not_wait_behind_a_bulk_run():
    class Held(Runs):
        def __call__(self, requests, as_of):
            if len(requests[0]) > 3:  # the bulk run waits to be released
                self.started.set()
                self.release.wait(10)
            self.calls.append([[e["event_id"] for e in r] for r in requests])
            return [{"ids": [e["event_id"] for e in r]} for r in requests]

    runs = Held()
    batcher = EventBatcher(runs, max_events=100, max_backlog=100, bulk_events=3)

    async def main():
        bulk = asyncio.ensure_future(batcher.submit(_events("bulk", 10), None))
        await asyncio.to_thread(runs.started.wait, 10)
        small = await batcher.submit(_events("hot"), None)  # answered while bulk is held
        assert not bulk.done()
        runs.release.set()
        return small, await bulk

    small, bulk = asyncio.run(main())
    assert small == {"ids": ["hot0"]} and len(bulk["ids"]) == 10
    assert runs.calls[0] == [["hot0"]]  # the small one ran first


def test_bounds_out_of_range_are_refused():
    with pytest.raises(ValueError):
        EventBatcher(Runs(), max_events=0)
