"""The online store on Redis (`redis://host:port/db`), for replicas on several machines.

A run WATCHes its leads' keys and its event ids' keys, reads, and writes everything in one
MULTI/EXEC; when another run touched one of those keys in between, EXEC fails and the run is
done again from the start (optimistic locking), so a duplicate sent to two replicas at once
is applied once. Durability is Redis's own: run it with `appendonly yes` and
`appendfsync always` (or `everysec`, accepting a second of loss on a crash of Redis itself).

Keys (prefix `leadscore:`): `lead:<id>` (a state as JSON), `held:<id>` (a list of events, each
with `held_ns`, when it was held), `held:since` (a sorted set: a lead by its oldest held
event), `dropped:<id>` (held events of a lead dropped after their time), `event:<id>`
(an applied event id, expiring after DEDUPE_DAYS), `outbox` (a hash event id -> entry),
`outbox:due` (a sorted set of batch keys by due time), `outbox:batch:<key>` (its event ids),
`delivered:<id>` (expiring after DELIVERED_DAYS), `history` (a hash), `meta` (a hash).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from leadscore.stream.store import DEDUPE_DAYS, DELIVERED_DAYS, unavailable

PREFIX = "leadscore:"
ATTEMPTS = 50  # runs done again after a conflict, at most
SECONDS_PER_DAY = 86_400


class _Txn:
    def __init__(self, store: RedisStore, pipe, lead_ids: list[str], event_ids: list[str]):
        self.store, self.pipe = store, pipe
        self.lead_ids, self.event_ids = lead_ids, event_ids
        self.writes: list[Callable[[Any], None]] = []

    def seen(self) -> set[str]:
        if not self.event_ids:
            return set()
        keys = [self.store.k("event:" + e) for e in self.event_ids]
        flags = self.pipe.mget(keys)
        held = set()
        for lead_id in self.lead_ids:
            for body in self.pipe.lrange(self.store.k("held:" + lead_id), 0, -1):
                held.add(json.loads(body)["event_id"])
        return {e for e, f in zip(self.event_ids, flags, strict=True) if f is not None} | (
            held & set(self.event_ids)
        )

    def states(self) -> dict[str, dict[str, Any] | None]:
        if not self.lead_ids:
            return {}
        values = self.pipe.mget([self.store.k("lead:" + lead) for lead in self.lead_ids])
        return {
            lead: (json.loads(v) if v is not None else None)
            for lead, v in zip(self.lead_ids, values, strict=True)
        }

    def held(self, lead_id: str) -> list[dict[str, Any]]:
        return [json.loads(b) for b in self.pipe.lrange(self.store.k("held:" + lead_id), 0, -1)]

    def dropped(self, lead_id: str) -> int:
        return int(self.pipe.get(self.store.k("dropped:" + lead_id)) or 0)

    def hold(self, lead_id: str, events: list[dict[str, Any]]) -> None:
        key, since = self.store.k("held:" + lead_id), self.store.k("held:since")
        now = time.time_ns()
        bodies = [json.dumps({**e, "held_ns": now}) for e in events]

        def write(p) -> None:
            if bodies:
                p.rpush(key, *bodies)
                p.zadd(since, {lead_id: now}, nx=True)

        self.writes.append(write)

    def release(self, lead_id: str) -> None:
        key = self.store.k("held:" + lead_id)
        dropped, since = self.store.k("dropped:" + lead_id), self.store.k("held:since")

        def write(p) -> None:
            p.delete(key, dropped)
            p.zrem(since, lead_id)

        self.writes.append(write)

    def put(self, lead_id: str, state: dict[str, Any]) -> None:
        key, body = self.store.k("lead:" + lead_id), json.dumps(state, separators=(",", ":"))
        self.writes.append(lambda p: p.set(key, body))

    def remember(self, event_ids, now_us: int) -> None:
        pairs = list(event_ids)
        ttl = DEDUPE_DAYS * SECONDS_PER_DAY

        def write(p) -> None:
            for e, lead in pairs:
                p.set(self.store.k("event:" + e), lead, ex=ttl)

        self.writes.append(write)

    def stage(self, key: str, events: list[dict[str, Any]], now_us: int) -> int:
        new = self.store._new_in_outbox(self.pipe, events)
        self.writes.append(lambda p: self.store._stage_writes(p, key, new, now_us))
        return len(new)

    def record(self, rows: list[dict[str, Any]]) -> None:
        mapping = {f"{r['as_of_us']}|{r['lead_id']}": json.dumps(r) for r in rows}
        self.writes.append(
            lambda p: p.hset(self.store.k("history"), mapping=mapping) if mapping else None
        )


class RedisStore:
    def __init__(self, url: str) -> None:
        import redis

        self.url = url
        self.conflicts = 0  # runs done again because another run changed their keys
        self.errors = (redis.ConnectionError, redis.TimeoutError, redis.ResponseError, OSError)
        self._redis = redis
        self.client = redis.Redis.from_url(
            url, socket_timeout=5, socket_connect_timeout=5, health_check_interval=30
        )

    def k(self, name: str) -> str:
        return PREFIX + name

    def run(self, lead_ids: list[str], event_ids: list[str], work: Callable[[Any], Any]) -> Any:
        watched = [
            self.k(kind + lead) for kind in ("lead:", "held:", "dropped:") for lead in lead_ids
        ]
        watched += [self.k("event:" + e) for e in event_ids]
        # Something is always watched: that puts the pipeline in immediate mode for the
        # run's reads. Not the outbox: every hand-off staged or delivered would make every
        # run in flight start again (a storm of retries at 200 events/s); a crossing is a
        # lead's, so two runs that stage the same one conflict on the lead's key anyway.
        watched = watched or [self.k("stage")]
        with unavailable(self.url, self.errors):
            for _ in range(ATTEMPTS):
                with self.client.pipeline(transaction=True) as pipe:
                    try:
                        pipe.watch(*watched)
                        txn = _Txn(self, pipe, lead_ids, event_ids)
                        result = work(txn)
                        pipe.multi()
                        for write in txn.writes:
                            write(pipe)
                        pipe.execute()
                        return result
                    except self._redis.WatchError:
                        self.conflicts += 1
                        continue
            raise self._redis.ConnectionError(
                f"{ATTEMPTS} runs in a row met concurrent changes of the same leads"
            )

    def read(self, lead_id: str) -> dict[str, Any] | None:
        with unavailable(self.url, self.errors):
            value = self.client.get(self.k("lead:" + lead_id))
        return json.loads(value) if value is not None else None

    def held_count(self, lead_id: str) -> int:
        with unavailable(self.url, self.errors):
            return int(self.client.llen(self.k("held:" + lead_id)))

    def dropped_count(self, lead_id: str) -> int:
        with unavailable(self.url, self.errors):
            return int(self.client.get(self.k("dropped:" + lead_id)) or 0)

    def drop_held(self, before_us: int) -> int:
        """Drop the events held since before `before_us`, counted per lead; how many. Each
        lead in one WATCH transaction: a run that applies them meanwhile makes it look again."""
        cut, since = before_us * 1000, self.k("held:since")
        total = 0
        with unavailable(self.url, self.errors):
            for lead in self.client.zrangebyscore(since, "-inf", f"({cut}"):
                lead_id = lead.decode()
                key, dropped = self.k("held:" + lead_id), self.k("dropped:" + lead_id)
                for _ in range(ATTEMPTS):
                    with self.client.pipeline(transaction=True) as pipe:
                        try:
                            pipe.watch(key)
                            bodies = pipe.lrange(key, 0, -1)
                            kept = [b for b in bodies if json.loads(b)["held_ns"] >= cut]
                            gone = len(bodies) - len(kept)
                            pipe.multi()
                            pipe.delete(key)
                            if kept:
                                pipe.rpush(key, *kept)
                                first = min(json.loads(b)["held_ns"] for b in kept)
                                pipe.zadd(since, {lead_id: first})
                            else:
                                pipe.zrem(since, lead_id)
                            if gone:
                                pipe.incrby(dropped, gone)
                            pipe.execute()
                            total += gone
                            break
                        except self._redis.WatchError:
                            continue
        return total

    # --- the outbox ------------------------------------------------------------------

    def _new_in_outbox(self, client, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if not events:
            return []
        ids = [e["event_id"] for e in events]
        delivered = client.mget([self.k("delivered:" + i) for i in ids])
        kept = client.hmget(self.k("outbox"), ids)
        return [
            e for e, d, o in zip(events, delivered, kept, strict=True) if d is None and o is None
        ]

    def _stage_writes(self, p, key: str, new: list[dict[str, Any]], now_us: int) -> None:
        if not new:
            return
        p.hset(
            self.k("outbox"),
            mapping={e["event_id"]: json.dumps({"batch": key, "event": e}) for e in new},
        )
        p.rpush(self.k("outbox:batch:" + key), *[e["event_id"] for e in new])
        p.zadd(self.k("outbox:due"), {key: now_us}, nx=True)

    def stage_outbox(self, key: str, events: list[dict[str, Any]], now_us: int) -> int:
        def work(txn: _Txn) -> int:
            return txn.stage(key, events, now_us)

        return self.run([], [], work)

    def claim(self, owner: str, now_us: int, lease_us: int, limit: int):
        out = []
        with unavailable(self.url, self.errors):
            for key in self.client.zrangebyscore(self.k("outbox:due"), "-inf", now_us, 0, limit):
                key = key.decode()
                with self.client.pipeline(transaction=True) as pipe:
                    try:
                        pipe.watch(self.k("outbox:due"))
                        due = pipe.zscore(self.k("outbox:due"), key)
                        if due is None or due > now_us:
                            continue  # another worker took it
                        ids = [
                            i.decode() for i in pipe.lrange(self.k("outbox:batch:" + key), 0, -1)
                        ]
                        entries = pipe.hmget(self.k("outbox"), ids) if ids else []
                        pipe.multi()
                        pipe.zadd(self.k("outbox:due"), {key: now_us + lease_us})
                        pipe.execute()
                    except self._redis.WatchError:
                        continue
                events = [json.loads(e)["event"] for e in entries if e is not None]
                out.append((key, events))
        return out

    def delivered(self, key: str, events: list[dict[str, Any]], now_us: int) -> None:
        ttl = DELIVERED_DAYS * SECONDS_PER_DAY
        with unavailable(self.url, self.errors), self.client.pipeline(transaction=True) as p:
            for e in events:
                p.set(self.k("delivered:" + e["event_id"]), 1, ex=ttl)
            if events:
                p.hdel(self.k("outbox"), *[e["event_id"] for e in events])
            p.delete(self.k("outbox:batch:" + key))
            p.zrem(self.k("outbox:due"), key)
            p.execute()

    def retry_at(self, key: str, when_us: int) -> None:
        with unavailable(self.url, self.errors):
            self.client.zadd(self.k("outbox:due"), {key: when_us}, xx=True)

    def outbox_size(self) -> int:
        with unavailable(self.url, self.errors):
            return int(self.client.hlen(self.k("outbox")))

    # --- history, meta, upkeep -------------------------------------------------------

    def history_rows(self, limit: int) -> list[dict[str, Any]]:
        rows = []
        with unavailable(self.url, self.errors):
            for _, value in self.client.hscan_iter(self.k("history"), count=limit):
                rows.append(json.loads(value))
                if len(rows) >= limit:
                    break
        return rows

    def history_done(self, rows: list[dict[str, Any]]) -> None:
        # a row rescored since it was read stays (its value changed)
        script = (
            "for i = 1, #ARGV, 2 do if redis.call('HGET', KEYS[1], ARGV[i]) == ARGV[i + 1] "
            "then redis.call('HDEL', KEYS[1], ARGV[i]) end end"
        )
        args = []
        for r in rows:
            args += [f"{r['as_of_us']}|{r['lead_id']}", json.dumps(r)]
        if args:
            with unavailable(self.url, self.errors):
                self.client.eval(script, 1, self.k("history"), *args)

    def meta(self, key: str) -> Any:
        with unavailable(self.url, self.errors):
            value = self.client.hget(self.k("meta"), key)
        return json.loads(value) if value is not None else None

    def set_meta(self, key: str, value: Any) -> None:
        with unavailable(self.url, self.errors):
            self.client.hset(self.k("meta"), key, json.dumps(value))

    def purge(self, now_us: int) -> None:
        """Nothing to do: applied and delivered ids expire on their own."""

    def ping(self) -> None:
        with unavailable(self.url, self.errors):
            self.client.ping()

    def close(self) -> None:
        self.client.close()
