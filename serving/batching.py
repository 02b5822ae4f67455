"""Adaptive batching: concurrent `/score` requests merged into one vectorised scoring call.

BentoML's batchable APIs take one batchable argument per request, so they cannot carry our
per-request options (`as_of`, `reasons`, strict time checks); this is our own micro-batcher,
run on the worker's event loop.

How it merges ("natural" batching, no timer by default): one consumer scores the requests
waiting in a queue. While it scores a batch (in a thread: NumPy, LightGBM and TreeSHAP
release the GIL), new requests queue up; when it finishes, it takes everything waiting, up
to `max_leads` leads, as the next batch. An idle service therefore scores a lone request at
once, and a busy one merges as many requests as arrived during the previous call.

Latency bound: a request waits for at most the batch being scored when it arrived (at most
`max_leads` leads, or one larger request that runs alone) plus `max_wait_s` (0 by default:
no request is ever held back to wait for company), then for its own batch.

Small calls run on the event loop itself (`inline_leads`, default 8 leads): scoring a lead
takes about 0.5 ms, less than handing it to a thread and back costs the loop (a wake-up
through the loop's self-pipe, a condition variable, the GIL passed twice: about 10 % of a
one-lead request's time in the worker, py-spy). Larger calls go to a thread, so the loop
keeps reading requests meanwhile.

Merged requests must agree on the call's options (strict time checks, reasons): requests
with other options wait for the next batch. A request's mistake (a PayloadError naming a
lead) fails that request only: the others of its batch are scored again without it.

`EventBatcher` does the same for `POST /events`: a worker's concurrent requests applied in
one store run (`leadscore.stream.processor.EventProcessor.process_many`), each lead
rescored once, with a bound on the events waiting (429 beyond).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import anyio.to_thread

from leadscore.crm.errors import PayloadError

# compute(leads, as_ofs, options) -> one result per lead, in order; a PayloadError's `lead`
# is a position in `leads`.
Compute = Callable[[list[Mapping[str, Any]], list[Any], Hashable], list[dict[str, Any]]]


@dataclass
class _Job:
    leads: Sequence[Mapping[str, Any]]
    as_of: Any
    options: Hashable
    future: asyncio.Future = field(repr=False)


@dataclass
class BatchStats:
    """Counts since start (tests and logs): calls to compute, requests and leads scored."""

    calls: int = 0
    requests: int = 0
    leads: int = 0
    largest: int = 0  # most requests merged into one call


class MicroBatcher:
    def __init__(
        self,
        compute: Compute,
        *,
        max_leads: int = 64,
        max_wait_s: float = 0.0,
        on_batch: Callable[[int, int], None] | None = None,
        inline_leads: int = 8,
    ) -> None:
        """`on_batch(requests, leads)` is told of every batch scored (metrics); calls of at
        most `inline_leads` leads run on the event loop (0: every call in a thread)."""
        if max_leads < 1 or max_wait_s < 0 or inline_leads < 0:
            raise ValueError("max_leads must be >= 1, max_wait_s and inline_leads >= 0")
        self.inline_leads = inline_leads
        self.compute = compute
        self.on_batch = on_batch
        self.max_leads = max_leads
        self.max_wait_s = max_wait_s
        self.stats = BatchStats()
        self._queue: list[_Job] = []
        self._wake: asyncio.Event | None = None
        self._consumer: asyncio.Task | None = None

    async def score(
        self, leads: Sequence[Mapping[str, Any]], as_of: Any, options: Hashable
    ) -> list[dict[str, Any]]:
        """Score one request's leads at `as_of` with `options`, merged with whatever other
        requests are waiting. Raises the request's own PayloadError (positions are its own)."""
        loop = asyncio.get_running_loop()
        if self._consumer is None or self._consumer.done():
            self._wake = asyncio.Event()
            self._consumer = loop.create_task(self._consume())
        job = _Job(leads, as_of, options, loop.create_future())
        self._queue.append(job)
        self._wake.set()
        return await job.future

    def _take(self) -> list[_Job]:
        """The next batch: the oldest waiting request, and after it every waiting request
        with the same options while the batch stays within max_leads."""
        first = self._queue[0]
        batch, rest, size = [first], [], len(first.leads)
        for job in self._queue[1:]:
            if job.options == first.options and size + len(job.leads) <= self.max_leads:
                batch.append(job)
                size += len(job.leads)
            else:
                rest.append(job)
        self._queue = rest
        return batch

    async def _consume(self) -> None:
        assert self._wake is not None
        while True:
            if not self._queue:
                self._wake.clear()
                await self._wake.wait()
            if self.max_wait_s and sum(len(j.leads) for j in self._queue) < self.max_leads:
                await asyncio.sleep(self.max_wait_s)
            batch = self._take()
            try:
                await self._run(batch)
            except Exception as exc:  # a bug in scoring: every request of the batch gets it
                for job in batch:
                    if not job.future.done():
                        job.future.set_exception(exc)

    async def _run(self, batch: list[_Job]) -> None:
        while batch:
            leads: list[Mapping[str, Any]] = []
            as_ofs: list[Any] = []
            for job in batch:
                leads.extend(job.leads)
                as_ofs.extend([job.as_of] * len(job.leads))
            try:
                if len(leads) <= self.inline_leads:
                    results = self.compute(leads, as_ofs, batch[0].options)
                else:
                    results = await anyio.to_thread.run_sync(
                        self.compute, leads, as_ofs, batch[0].options
                    )
            except PayloadError as exc:
                if exc.lead is None or len(batch) == 1:
                    _fail(batch[0], exc, 0)
                    return
                batch = self._blame(batch, exc)
                continue
            self.stats.calls += 1
            self.stats.requests += len(batch)
            self.stats.leads += len(leads)
            self.stats.largest = max(self.stats.largest, len(batch))
            if self.on_batch is not None:
                self.on_batch(len(batch), len(leads))
            start = 0
            for job in batch:
                end = start + len(job.leads)
                if not job.future.done():  # a caller that went away leaves a cancelled future
                    job.future.set_result(results[start:end])
                start = end
            return

    @staticmethod
    def _blame(batch: list[_Job], exc: PayloadError) -> list[_Job]:
        """Fail the request that holds the bad lead; the rest of the batch is scored again."""
        start = 0
        for k, job in enumerate(batch):
            if exc.lead < start + len(job.leads):
                _fail(job, exc, start)
                return batch[:k] + batch[k + 1 :]
            start += len(job.leads)
        raise exc  # a position outside the batch: a bug, not a request's mistake


def _fail(job: _Job, exc: PayloadError, offset: int) -> None:
    """The request's own error, its lead position counted within the request."""
    lead = None if exc.lead is None else exc.lead - offset
    if not job.future.done():
        job.future.set_exception(PayloadError(exc.field, exc.problem, lead))


# --- POST /events ------------------------------------------------------------------------

# run(requests' events, as_of_us) -> per request its result or its own PayloadError
# (`leadscore.stream.processor.EventProcessor.process_many`, called in a thread)
RunEvents = Callable[[list[Sequence[Mapping[str, Any]]], Any], list[Any]]


class Backlogged(Exception):
    """More events wait in this worker than its bound: the caller is told to come back."""

    def __init__(self, waiting: int, bound: int, retry_after_s: int) -> None:
        self.waiting, self.bound, self.retry_after_s = waiting, bound, retry_after_s
        super().__init__(
            f"{waiting} events are waiting in this worker (at most {bound}, "
            f"LEADSCORE_EVENTS_BACKLOG): retry after {retry_after_s} s"
        )


@dataclass
class _EventJob:
    events: Sequence[Mapping[str, Any]]
    as_of: Any
    queued_s: float
    future: asyncio.Future = field(repr=False)


@dataclass
class _Lane:
    """Requests of one size class, and the consumer that runs them."""

    queue: list[_EventJob] = field(default_factory=list)
    wake: asyncio.Event | None = None
    consumer: asyncio.Task | None = None


class EventBatcher:
    """Concurrent `POST /events` requests of a worker merged into one store run and one
    scoring call ("natural" batching, as `MicroBatcher`: while a run goes on in a thread,
    requests queue; the next run takes every waiting request with the same as_of, up to
    `max_events` events). A request is answered when its run has committed: what it
    acknowledges is durable. Requests of more than `bulk_events` events (a sync, a
    backfill) have a lane of their own, so the CRM's one-event calls (a hot lead's) never
    wait behind a run of a thousand events. Beyond `max_backlog` waiting events a request
    is refused at once (`Backlogged`: the service answers 429 with Retry-After) instead of
    queueing for longer than the CRM waits."""

    def __init__(
        self,
        run: RunEvents,
        *,
        max_events: int = 500,
        max_backlog: int = 5_000,
        bulk_events: int = 50,
        on_batch: Callable[[int, int, float], None] | None = None,
    ) -> None:
        """`on_batch(requests, events, oldest_wait_s)` is told of every run (metrics)."""
        if max_events < 1 or max_backlog < 1 or bulk_events < 1:
            raise ValueError("max_events, max_backlog and bulk_events must be >= 1")
        self.run, self.on_batch = run, on_batch
        self.max_events, self.max_backlog = max_events, max_backlog
        self.bulk_events = bulk_events
        self.stats = BatchStats()
        self._lanes = (_Lane(), _Lane())  # small requests, bulk requests
        self._waiting = 0  # events in the queues
        self._per_event_s = 0.005  # the last run's time per event (Retry-After's estimate)

    @property
    def waiting(self) -> int:
        return self._waiting

    async def submit(self, events: Sequence[Mapping[str, Any]], as_of: Any) -> Any:
        """One request's result once its run committed; its own PayloadError, the run's
        error (StoreUnavailable: every request of the run), or Backlogged at once."""
        if self._waiting + len(events) > self.max_backlog and self._waiting:
            wait_s = self._waiting * self._per_event_s
            raise Backlogged(self._waiting, self.max_backlog, max(1, math.ceil(wait_s)))
        loop = asyncio.get_running_loop()
        lane = self._lanes[len(events) > self.bulk_events]
        if lane.consumer is None or lane.consumer.done():
            lane.wake = asyncio.Event()
            lane.consumer = loop.create_task(self._consume(lane))
        job = _EventJob(events, as_of, time.monotonic(), loop.create_future())
        lane.queue.append(job)
        self._waiting += len(events)
        lane.wake.set()
        return await job.future

    def _take(self, lane: _Lane) -> list[_EventJob]:
        first = lane.queue[0]
        batch, rest, size = [first], [], len(first.events)
        for job in lane.queue[1:]:
            if job.as_of == first.as_of and size + len(job.events) <= self.max_events:
                batch.append(job)
                size += len(job.events)
            else:
                rest.append(job)
        lane.queue = rest
        self._waiting -= size
        return batch

    async def _consume(self, lane: _Lane) -> None:
        assert lane.wake is not None
        while True:
            if not lane.queue:
                lane.wake.clear()
                await lane.wake.wait()
            batch = self._take(lane)
            size = sum(len(j.events) for j in batch)
            oldest_s = time.monotonic() - batch[0].queued_s
            started = time.perf_counter()
            try:
                results = await anyio.to_thread.run_sync(
                    self.run, [j.events for j in batch], batch[0].as_of
                )
            except Exception as exc:  # the store down, or a bug: every request of the run
                for job in batch:
                    if not job.future.done():
                        job.future.set_exception(exc)
                continue
            self._per_event_s = (time.perf_counter() - started) / max(size, 1)
            self.stats.calls += 1
            self.stats.requests += len(batch)
            self.stats.leads += size
            self.stats.largest = max(self.stats.largest, len(batch))
            if self.on_batch is not None:
                self.on_batch(len(batch), size, oldest_s)
            for job, result in zip(batch, results, strict=True):
                if job.future.done():  # a caller that went away
                    continue
                if isinstance(result, BaseException):
                    job.future.set_exception(result)
                else:
                    job.future.set_result(result)
