"""The BentoML scoring service for the CRM.

`POST /score`: a batch of lead payloads (1 to 1,000) and an optional `as_of`; per lead the
calibrated probability, score, grade, worded reasons and the model's name and version.
`GET /metadata`: the loaded model. `/livez`, `/readyz`, `/metrics`: BentoML's own.
`POST /events`: what happens in the CRM as it happens (leads, activities, deals); each lead
touched is rescored from its state in the online store and handed off when it crosses the
line (`stream`). `GET /leads/{lead_id}`: a lead's score from its stored state.

Hot path: JSON -> the micro-batcher (concurrent requests merged, `leadscore.serving.batching`) ->
the online featurizer of `features` (NumPy, no pandas) -> LightGBM (one thread for small
batches) -> calibrator. Every request mistake is a 4xx naming the field; only a bug in
our code can give a 500.

Run: `leadscore serve` (or `bentoml serve leadscore.serving.service:LeadScoring`), with
`LEADSCORE_API_KEYS` set and a champion in the MLflow registry.
"""

from __future__ import annotations

import gc
import logging
import os
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import anyio
import anyio.to_thread
import bentoml
from bentoml.validators import ContentType
from pydantic import Field
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

from leadscore.crm.errors import LeadscoreError, PayloadError
from leadscore.features.online import payload_time
from leadscore.serving.auth import ApiKeyMiddleware
from leadscore.serving.batching import Backlogged, EventBatcher, MicroBatcher
from leadscore.serving.config import ServeConfig
from leadscore.serving.http import (
    BodyLimitMiddleware,
    ErrorShapeMiddleware,
    JsonRefusalsMiddleware,
    quiet_client_errors,
)
from leadscore.serving.model import load_model, load_packed, packed_model_tag
from leadscore.serving.openapi import OpenApiMiddleware
from leadscore.serving.schemas import EXAMPLE_TIME, Event, Lead, optional_time

log = logging.getLogger("leadscore.serving")
# The media type said once: without it BentoML works it out from the output's JSON schema on
# every response (11 % of a one-lead request's time in the worker, py-spy).
JsonBody = Annotated[dict[str, Any], ContentType("application/json")]

# Inside a built bento: the scorer packed into it (a BentoML model tag). BentoML reads model
# declarations when the class is defined, so this is read then.
PACKED_MODEL = packed_model_tag(os.environ, Path(__file__))
_LOADED: dict[str, Any] = {}  # filled when the service starts; read by GET /metadata
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
STREAM_THREADS = 4
# Prometheus (GET /metrics): how many requests each scoring call merged.
MERGED = bentoml.metrics.Histogram(
    name="leadscore_batch_requests",
    documentation="requests merged into one scoring call by the micro-batcher",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128),
)
# Events held for a lead that never came, dropped after LEADSCORE_HELD_DAYS (every worker
# adds what its upkeep dropped: the sum is the server's).
HELD_DROPPED = bentoml.metrics.Counter(
    name="leadscore_held_events_dropped",
    documentation="events held for a lead not known yet, dropped after their time",
)
# The event stream's merged runs (leadscore.serving.batching.EventBatcher), per worker.
EVENT_BATCH = bentoml.metrics.Histogram(
    name="leadscore_events_batch_events",
    documentation="events applied in one store run (a worker's concurrent requests merged)",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024),
)
EVENT_BATCH_REQUESTS = bentoml.metrics.Histogram(
    name="leadscore_events_batch_requests",
    documentation="requests merged into one store run",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128),
)
EVENT_WAIT = bentoml.metrics.Histogram(
    name="leadscore_events_backlog_age_seconds",
    documentation="how long the oldest request of a run waited in the backlog",
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
EVENT_BACKLOG = bentoml.metrics.Gauge(
    name="leadscore_events_backlog",
    documentation="events waiting for a store run (every worker's, summed)",
    multiprocess_mode="livesum",
)
EVENT_CONFLICTS = bentoml.metrics.Counter(
    name="leadscore_events_conflicts",
    documentation="store runs done again because another run changed their leads meanwhile",
)
EVENT_BUSY = bentoml.metrics.Counter(
    name="leadscore_events_backlogged",
    documentation="requests refused with 429 because the backlog was at its bound",
)
UPKEEP_MAX_S = 60.0  # how often a worker forgets old ids and drops expired held events


async def _lead(request) -> JSONResponse:
    """GET /leads/{lead_id}[?as_of=ISO]: the lead's score from its stored state."""
    service = _LOADED.get("service")
    if service is None:
        return JSONResponse({"error": "the model is not loaded yet", "field": "model"}, 503)
    lead_id = request.path_params["lead_id"]
    as_of = request.query_params.get("as_of")
    return await service.lead_state(lead_id, as_of)


async def _metadata(request) -> JSONResponse:
    if "meta" not in _LOADED:
        return JSONResponse(
            {"error": "the model is not loaded yet", "field": "model"}, status_code=503
        )
    return JSONResponse(_LOADED["meta"])


# Loopback unless told otherwise (`--host 0.0.0.0`): `bentoml serve` of a built bento would
# otherwise listen on every interface.
@bentoml.service(name="leadscore", traffic={"timeout": 60}, http={"host": "127.0.0.1"})
class LeadScoring:
    if PACKED_MODEL:
        packed = bentoml.models.BentoModel(PACKED_MODEL)

    def __init__(self) -> None:
        quiet_client_errors()
        self.config = ServeConfig.from_env()
        if not self.config.api_keys:
            raise LeadscoreError(
                "LEADSCORE_API_KEYS is empty: set at least one API key (comma-separated) before serving"
            )
        if PACKED_MODEL:
            self.scorer, self.meta = load_packed(self.packed)
        else:
            self.scorer, self.meta = load_model(self.config)
        self.scorer.explainer  # noqa: B018 -- built now (half a second), not in a first request
        self.model = {"name": self.meta["name"], "version": self.meta["version"]}
        _LOADED["meta"] = self.meta
        self.batcher = MicroBatcher(
            self._compute,
            max_leads=self.config.batch_max_leads,
            max_wait_s=self.config.batch_wait_ms / 1000,
            inline_leads=self.config.batch_inline_leads,
            on_batch=lambda requests, leads: MERGED.observe(requests),
        )
        self.processor = None  # the event stream's, built on first use (self._stream)
        self.experiments = None  # its hand-off experiments' line, when it follows a history
        self.event_batcher = EventBatcher(
            self._run_events,
            max_events=self.config.events_merge,
            max_backlog=self.config.events_backlog,
            bulk_events=self.config.events_bulk,
            on_batch=self._observe_events,
        )
        self._conflicts_seen = 0
        self.delivery = None
        self._stream_lock = threading.Lock()
        # The event stream's work runs in at most this many threads per worker: more would
        # only contend for Python's lock, and each holds a store connection (PostgreSQL's
        # default of 100 connections ran out with anyio's 40 threads in each of 3 workers).
        self._stream_threads = anyio.CapacityLimiter(STREAM_THREADS)
        _LOADED["service"] = self
        # Everything loaded so far (MLflow, pandas, the model: millions of objects) lives as
        # long as the worker: out of the collector's sight, a full collection takes a few ms
        # instead of the ~250 ms stalls it caused every few seconds under load.
        gc.collect()
        gc.freeze()
        log.info("leadscore serving %s", self.config)

    # Async, with the scoring in a thread: BentoML runs a sync API one call at a time per
    # worker, so concurrent requests would only queue; here they queue in the micro-batcher,
    # which merges them into one vectorised call (leadscore.serving.batching).
    @bentoml.api(route="/score")
    async def score(
        self,
        leads: Annotated[
            list[Lead],
            Field(description="1 to LEADSCORE_MAX_LEADS (1,000) leads, distinct lead_id"),
        ],
        ctx: bentoml.Context,
        as_of: optional_time(
            "score every lead as of this ISO-8601 time (default: now); an event after it is a 422",
            [EXAMPLE_TIME],
        ) = None,
        reasons: Annotated[
            bool, Field(description="false skips the worded reasons (faster, e.g. nightly syncs)")
        ] = True,
    ) -> (
        JsonBody
    ):  # documented as leadscore.serving.schemas.ScoreResponse (leadscore.serving.openapi)
        """Score leads: calibrated conversion probability, score 0-100, grade A-D, the top reasons up and down, and marketing's points (rule score, grade, MQL) side by side. One lead or a batch, same code."""
        when, refused = self._request_time(ctx, leads, as_of)
        if refused is not None:
            return refused
        try:
            scored = await self.batcher.score(leads, when, (as_of is not None, 3 if reasons else 0))
        except PayloadError as exc:
            return self._refuse(ctx, 422, exc.path, exc.problem)
        for item in scored:
            item["model"] = self.model
            if self.scorer.rules is None:  # a model trained without rules
                item.update(rule_score=None, rule_grade=None, mql=None)
        return {"as_of": when.isoformat(), "scores": scored}

    @bentoml.api(route="/accounts/score")
    async def score_account(
        self,
        account_id: Annotated[
            str, Field(min_length=1, max_length=256, description="the account (company)")
        ],
        leads: Annotated[
            list[Lead],
            Field(
                description="the account's contacts (its buying group): 1 to LEADSCORE_MAX_LEADS leads"
            ),
        ],
        ctx: bentoml.Context,
        as_of: optional_time(
            "score the account as of this ISO-8601 time (default: now); an event after it is a 422",
            [EXAMPLE_TIME],
        ) = None,
        reasons: Annotated[bool, Field(description="false skips the worded reasons")] = True,
    ) -> (
        JsonBody
    ):  # documented as leadscore.serving.schemas.AccountScoreResponse (leadscore.serving.openapi)
        """Score an account from its contacts' payloads: the probability that it produces a won deal within the horizon, learned at account level, with its interval, grade and worded reasons ("3 contacts active in the last 7 days")."""
        if self.scorer.accounts is None:
            return self._refuse(
                ctx,
                404,
                "model",
                "the loaded model has no account model (trained without account_id)",
            )
        when, refused = self._request_time(ctx, leads, as_of)
        if refused is not None:
            return refused
        try:
            scored = await anyio.to_thread.run_sync(
                lambda: self.scorer.score_account(
                    account_id, leads, when, reasons=3 if reasons else 0, strict=as_of is not None
                )
            )
        except PayloadError as exc:
            return self._refuse(ctx, 422, exc.path, exc.problem)
        except LeadscoreError as exc:
            return self._refuse(ctx, 422, "leads", str(exc))
        scored["model"] = self.model
        return {"as_of": when.isoformat(), "account": scored}

    @bentoml.api(route="/events")
    async def events(
        self,
        events: Annotated[
            list[Event],
            Field(
                description="1 to LEADSCORE_MAX_EVENTS (1,000) events, in the order they happened"
            ),
        ],
        ctx: bentoml.Context,
        as_of: optional_time(
            "rescore the leads as of this time (a replay, a backfill); default: now", [EXAMPLE_TIME]
        ) = None,
    ) -> (
        JsonBody
    ):  # documented as leadscore.serving.schemas.EventsResponse (leadscore.serving.openapi)
        """Events from the CRM as they happen: leads created or updated, activities, deals. Idempotent by event_id. Each lead touched is rescored from its stored state and, when it crosses the hand-off line, handed off to the webhook at once."""
        from leadscore.crm.errors import StoreUnavailable

        if not events:
            return self._refuse(ctx, 422, "events", "at least one event is needed")
        if len(events) > self.config.max_events:
            return self._refuse(
                ctx, 413, "events", f"{len(events)} events; at most {self.config.max_events}"
            )
        when_us = None
        if as_of is not None:
            try:
                when_us = payload_time(as_of, "as_of")
            except PayloadError as exc:
                return self._refuse(ctx, 422, exc.path, exc.problem)
        try:
            if self.config.events_merge > 1:
                applied = await self.event_batcher.submit(events, when_us)
            else:  # each request alone
                stream = await anyio.to_thread.run_sync(self._stream, limiter=self._stream_threads)
                now_us = int(datetime.now(UTC).timestamp() * 1_000_000)
                applied = await anyio.to_thread.run_sync(
                    stream.process, events, when_us, now_us, limiter=self._stream_threads
                )
        except Backlogged as exc:
            EVENT_BUSY.inc()
            ctx.response.headers["Retry-After"] = str(exc.retry_after_s)
            return self._refuse(ctx, 429, "events", str(exc))
        except PayloadError as exc:  # 413 for an event past a bound by itself (LimitError)
            return self._refuse(ctx, getattr(exc, "status", 422), exc.path, exc.problem)
        except StoreUnavailable as exc:
            ctx.response.headers["Retry-After"] = str(exc.retry_after_s)
            return self._refuse(ctx, 503, "store", str(exc))
        except LeadscoreError as exc:  # the store cannot hold this model's state
            return self._refuse(ctx, 503, "store", str(exc))
        if applied.handoffs and self.delivery is not None:
            self.delivery.wake()
        return {
            "accepted": applied.accepted,
            "duplicates": applied.duplicates,
            "held": applied.held,
            "scores": applied.scores,
        }

    def _run_events(self, requests, as_of_us):
        """One merged run of a worker's waiting /events requests (in a thread)."""
        stream = self._stream()
        now_us = int(datetime.now(UTC).timestamp() * 1_000_000)
        return stream.process_many(requests, as_of_us, now_us)

    def _observe_events(self, requests: int, events: int, oldest_s: float) -> None:
        EVENT_BATCH.observe(events)
        EVENT_BATCH_REQUESTS.observe(requests)
        EVENT_WAIT.observe(oldest_s)
        EVENT_BACKLOG.set(self.event_batcher.waiting)
        conflicts = self.processor.store.conflicts if self.processor is not None else 0
        if conflicts > self._conflicts_seen:
            EVENT_CONFLICTS.inc(conflicts - self._conflicts_seen)
            self._conflicts_seen = conflicts

    def _stream(self):
        """The event processor, built on first use (a store that is down at start does
        not keep /score from serving; /events answers 503 until it is up)."""
        with self._stream_lock:
            if self.processor is None:
                from leadscore.crm.secrets import masked_url
                from leadscore.handoff.events import HandoffLine
                from leadscore.scoring.model_ref import ModelRef
                from leadscore.stream.processor import EventProcessor
                from leadscore.stream.stores import default_state_url, open_store

                url = self.config.state_url or default_state_url()
                store = open_store(url)
                line = HandoffLine(mql=self.config.handoff_mql, grades=self.config.handoff_grades)
                if self.config.history_url:  # the experiments `leadscore experiment` started
                    from leadscore.experiment.policy import ExperimentLine
                    from leadscore.experiment.records import ExperimentStore

                    line = ExperimentLine(line, ExperimentStore(self.config.history_url).list)
                    self.experiments = line
                model = ModelRef(str(self.meta["name"]), str(self.meta["version"]))
                self.processor = EventProcessor(
                    store, self.scorer, model, line, bounds=self.config.bounds()
                )
                self._start_upkeep(self.processor)
                if self.config.webhook_url:
                    from leadscore.handoff.delivery import SECRET_ENV, StreamDelivery, WebhookSender

                    sender = WebhookSender(
                        self.config.webhook_url,
                        os.environ.get(SECRET_ENV, ""),
                        max_attempts=1,
                        attempt_deadline_s=10.0,
                    )
                    self.delivery = StreamDelivery(store, sender).start()
                log.info("event stream on %s", masked_url(url))
            if self.experiments is not None:  # read here, never inside a store's transaction
                self.experiments.refresh()
            return self.processor

    def _start_upkeep(self, processor) -> None:
        """A thread that, every quarter of the hold time (at most every UPKEEP_MAX_S),
        forgets old event ids and drops the events held too long for a lead that never came
        (so a held event goes at most a quarter of its time late), counted in /metrics."""
        every_s = min(UPKEEP_MAX_S, processor.bounds.held_days * 86_400 / 4)

        def loop() -> None:
            from leadscore.crm.errors import StoreUnavailable

            while True:
                try:
                    dropped = processor.upkeep(int(datetime.now(UTC).timestamp() * 1_000_000))
                    if dropped:
                        HELD_DROPPED.inc(dropped)
                        log.warning("dropped %d events held too long for leads never sent", dropped)
                except StoreUnavailable as exc:
                    log.warning("the stream's upkeep waits for the store: %s", exc)
                except Exception:  # a bug: logged, and the next turn tries again
                    log.exception("the stream's upkeep failed")
                time.sleep(every_s)

        threading.Thread(target=loop, name="leadscore-upkeep", daemon=True).start()

    async def lead_state(self, lead_id: str, as_of: str | None) -> JSONResponse:
        from leadscore.crm.errors import StoreUnavailable

        try:
            when_us = (
                payload_time(as_of, "as_of")
                if as_of is not None
                else int(datetime.now(UTC).timestamp() * 1_000_000)
            )
            stream = await anyio.to_thread.run_sync(self._stream, limiter=self._stream_threads)
            found = await anyio.to_thread.run_sync(
                stream.lead, lead_id, when_us, limiter=self._stream_threads
            )
            if found is None:
                held, dropped = await anyio.to_thread.run_sync(
                    lambda: (stream.store.held_count(lead_id), stream.store.dropped_count(lead_id)),
                    limiter=self._stream_threads,
                )
                parts = [f"{held} events held for it until its lead event"] if held else []
                if dropped:
                    parts.append(
                        f"{dropped} held events dropped after {stream.bounds.held_days:g} days"
                    )
                more = f" ({'; '.join(parts)})" if parts else ""
                return JSONResponse(
                    {
                        "error": f"no lead {lead_id[:256]!r} in the online store{more}",
                        "field": "lead_id",
                    },
                    404,
                )
        except PayloadError as exc:
            return JSONResponse({"error": exc.problem, "field": exc.path}, 422)
        except StoreUnavailable as exc:
            return JSONResponse(
                {"error": str(exc), "field": "store"},
                503,
                headers={"Retry-After": str(exc.retry_after_s)},
            )
        except LeadscoreError as exc:
            return JSONResponse({"error": str(exc), "field": "store"}, 503)
        return JSONResponse(found)

    def _compute(
        self, leads: list[dict[str, Any]], as_ofs: list[datetime], options: tuple[bool, int]
    ) -> list[dict[str, Any]]:
        """One merged batch of requests (run by the batcher in a thread)."""
        strict, reasons = options
        return self.scorer.score_leads(leads, as_ofs, strict=strict, reasons=reasons)

    @staticmethod
    def _refuse(ctx: bentoml.Context, status: int, field: str, message: str) -> dict[str, str]:
        """A client's mistake: its status, `{error, field}`, and one INFO line (no trace)."""
        ctx.response.status_code = status
        log.info("refused with %d: %s: %s", status, field, message[:200])
        return {"error": message, "field": field}

    def _request_time(
        self, ctx: bentoml.Context, leads: list[dict[str, Any]], as_of: str | None
    ) -> tuple[datetime | None, dict[str, str] | None]:
        """A scoring request's time after its size checks: (as_of or now, None), or (None,
        the refusal). Without as_of the clock decides, and events slightly ahead of it
        (clock skew) are left out; with an explicit as_of, an event after it is the
        request's mistake."""
        problem = self._check_sizes(leads)
        if problem is not None:
            status, field, message = problem
            return None, self._refuse(ctx, status, field, message)
        if as_of is None:
            return datetime.now(UTC), None
        try:  # the same ISO-8601 rule as every time in the payload (no epoch numbers)
            return _EPOCH + timedelta(microseconds=payload_time(as_of, "as_of")), None
        except PayloadError as exc:
            return None, self._refuse(ctx, 422, exc.path, exc.problem)

    def _check_sizes(self, leads: list[dict[str, Any]]) -> tuple[int, str, str] | None:
        if not leads:
            return 422, "leads", "at least one lead is needed"
        if len(leads) > self.config.max_leads:
            return (
                413,
                "leads",
                f"{len(leads)} leads in one request; at most {self.config.max_leads}",
            )
        seen: dict[str, int] = {}
        for i, lead in enumerate(leads):
            lead_id = lead.get("lead_id")
            if not isinstance(lead_id, str) or not lead_id.strip():
                return 422, f"leads[{i}].lead_id", "missing or empty lead_id"
            if lead_id in seen:
                return (
                    422,
                    f"leads[{i}].lead_id",
                    f"duplicate lead_id {lead_id!r} (also leads[{seen[lead_id]}]): one entry per "
                    "lead in a batch",
                )
            seen[lead_id] = i
            # Shapes and string lengths are the schema's (leadscore.serving.schemas), times and order
            # the featurizer's; here what neither knows: duplicates and the configured sizes.
            activities = lead.get("activities")
            if isinstance(activities, list) and len(activities) > self.config.max_activities:
                return (
                    413,
                    f"leads[{i}].activities",
                    f"{len(activities)} activities; at most {self.config.max_activities}",
                )
        return None


# Mounted apps come after BentoML's own routes: at "/" this only answers what they do not.
LeadScoring.mount_asgi_app(
    Starlette(
        routes=[
            Route("/metadata", _metadata, methods=["GET"]),
            Route("/leads/{lead_id:path}", _lead, methods=["GET"]),
        ],
    ),
    path="/",
)
# The first added is the outermost: keys (no body is read for a caller without one), then
# the body bound, then the error shape around BentoML's own handling.
LeadScoring.add_asgi_middleware(ApiKeyMiddleware)
LeadScoring.add_asgi_middleware(BodyLimitMiddleware)
LeadScoring.add_asgi_middleware(ErrorShapeMiddleware)
LeadScoring.add_asgi_middleware(OpenApiMiddleware)
LeadScoring.add_asgi_middleware(JsonRefusalsMiddleware)
