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
"""

from __future__ import annotations

import asyncio
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
