"""A live run on the real stack with every boundary case a rebuild must get right, short TTLs so
the sweeper acts within seconds: the history `rebuild` and `restore` are checked against."""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import schemas
from service.adapters import postgres
from service.config.settings import Settings
from service.core.batch import BatchResult
from service.handlers.sweep import sweep_customers
from tests.fault.tools import wait_drained, wall_now
from tests.harness import Outcomes, Producer, acceptance, running

TTL_SECONDS = 3
MAX_LIVE_SECONDS = 4
TICK = timedelta(milliseconds=1)
ORDINARY = 12


def short_timers(make_settings: Any, **overrides: Any) -> Settings:
    settings: Settings = make_settings(
        request_ttl_seconds=TTL_SECONDS,
        max_live_seconds=MAX_LIVE_SECONDS,
        sweep_interval_seconds=0.3,
        **overrides,
    )
    return settings


@dataclass
class History:
    customers: list[uuid.UUID] = field(default_factory=list)
    events: list[schemas.OutputEvent] = field(default_factory=list)
    outputs: int = 0
    started: datetime = datetime.min


def sid(payment_id: str) -> uuid.UUID:
    return schemas.session_id_for_payment(payment_id)


def of(outcomes: Outcomes, type_: str, session_id: uuid.UUID) -> list[schemas.OutputEvent]:
    return [
        e
        for e in outcomes.events
        if e.type == type_ and getattr(e.data, "session_id", None) == session_id
    ]


async def live_history(
    settings: Settings, pool: postgres.Pool, *, binary_inputs: bool = False
) -> History:
    """Runs the service through the boundary cases; returns with the service stopped, every
    input decided and committed, every output published. `binary_inputs`: every input sent in
    binary content mode (outputs go in `settings.output_content_mode`)."""
    history = History()
    mechanic = uuid.uuid4()

    def customer() -> uuid.UUID:
        found = uuid.uuid4()
        history.customers.append(found)
        return found

    expiring, racing_accept, racing_end, late, both = (customer() for _ in range(5))
    ordinary = [customer() for _ in range(ORDINARY)]
    # The sweeper acts on the wall clock: held back until every event sent before the timers'
    # cases is decided, so a consumer slowed by load never meets an acceptance after the
    # sweeper cancelled its session (a case this history does not mean to make).
    timers_act = asyncio.Event()

    async def sweep(*args: Any, **kwargs: Any) -> BatchResult:
        if not timers_act.is_set():
            return BatchResult((), (), (), (), ())
        return await sweep_customers(*args, **kwargs)

    async with Outcomes(settings) as outcomes, Producer(settings, binary=binary_inputs) as producer:
        async with running(settings, sweep=sweep):
            now = history.started = wall_now()
            # Cross-topic order: an acceptance decided before its payment, refused as unknown.
            # Its producer stamped it half a minute later (as one that buffered it would), so by
            # the records' timestamps it arrived after the payment: the topics' speeds differ.
            await producer.send(
                settings.topic_acceptances,
                acceptance(sid("pi-late"), mechanic, time=now),
                key=str(sid("pi-late")).encode(),
                timestamp_ms=int(time.time() * 1000) + 30_000,
            )
            await outcomes.wait_for(lambda o: len(o.records) >= 1)
            await producer.pay(late, "pi-late", time=now)
            # Timers that the sweeper will act on before the racing events come.
            for who, pid in (
                (expiring, "pi-exp"),
                (racing_accept, "pi-acc"),
                (racing_end, "pi-end"),
            ):
                await producer.pay(who, pid, time=now)
            await outcomes.wait_for(lambda o: bool(of(o, schemas.SESSION_CREATED, sid("pi-end"))))
            await producer.accept(sid("pi-end"), mechanic, time=now)
            # A rejection, duplicates of one payment (same event; another event, same id).
            await producer.pay(both, "pi-both-1", time=now, event_id="both-1")
            await producer.pay(both, "pi-both-1", time=now, event_id="both-1")
            await producer.pay(both, "pi-both-1", time=now, event_id="both-1-again")
            await producer.pay(both, "pi-both-2", time=now)
            # Ordinary traffic, payments fast and the rest behind them.
            for i, who in enumerate(ordinary):
                await producer.pay(who, f"pi-o{i}", time=now)
            for i in range(len(ordinary)):
                if i % 3:
                    await producer.accept(sid(f"pi-o{i}"), mechanic, time=now + TICK)
                if i % 3 == 2:
                    await producer.end(sid(f"pi-o{i}"), time=now + 2 * TICK)
                if i % 4 == 0:
                    # An end stamped with the acceptance, if any, and produced after it: where
                    # the consumer meets it first (another topic), it finds the session waiting.
                    await producer.end(sid(f"pi-o{i}"), time=now + TICK)
            await wait_drained(settings, within=60)
            timers_act.set()
            deadline = now + timedelta(seconds=TTL_SECONDS)
            await outcomes.wait_for(
                lambda o: (
                    bool(of(o, schemas.SESSION_CANCELLED, sid("pi-exp")))
                    and bool(of(o, schemas.SESSION_CANCELLED, sid("pi-acc")))
                    and bool(of(o, schemas.SESSION_COMPLETED, sid("pi-end")))
                ),
                within=60,  # a bound, not a speed: under load the sweeper's ticks come late
            )
            # Stamped before the deadlines the sweeper already acted on.
            await producer.pay(expiring, "pi-exp-2", time=deadline - TICK)
            await producer.accept(sid("pi-acc"), mechanic, time=deadline - TICK)
            live_deadline = now + timedelta(seconds=MAX_LIVE_SECONDS)
            await producer.end(sid("pi-end"), time=live_deadline - TICK)
            await outcomes.wait_for(
                lambda o: (
                    bool(of(o, schemas.SESSION_CREATED, sid("pi-exp-2")))
                    and bool(of(o, schemas.SESSION_ACCEPTANCE_REJECTED, sid("pi-acc")))
                )
            )
            await settled(settings, pool, outcomes)
        history.events = outcomes.events
        history.outputs = len({e.id for e in outcomes.events})
    assert_every_boundary_case(outcomes)
    return history


def assert_every_boundary_case(outcomes: Outcomes) -> None:
    """The run is only worth rebuilding if the live service met each case as intended."""

    def reasons(type_: str, payment_id: str) -> list[str]:
        return [str(getattr(e.data, "reason", "")) for e in of(outcomes, type_, sid(payment_id))]

    assert reasons(schemas.SESSION_ACCEPTANCE_REJECTED, "pi-late") == ["unknown_session"]
    assert len(of(outcomes, schemas.SESSION_CREATED, sid("pi-late"))) == 1
    assert len(of(outcomes, schemas.SESSION_CREATED, sid("pi-exp-2"))) == 1
    assert reasons(schemas.SESSION_ACCEPTANCE_REJECTED, "pi-acc") == ["cancelled"]
    assert reasons(schemas.SESSION_COMPLETED, "pi-end") == ["timed_out"]
    rejected = [e for e in outcomes.events if e.type == schemas.SESSION_REJECTED]
    assert [e.data.payment_id for e in rejected] == ["pi-both-2"]
    assert len(of(outcomes, schemas.SESSION_CREATED, sid("pi-both-1"))) == 1


async def settled(settings: Settings, pool: postgres.Pool, outcomes: Outcomes) -> None:
    """Until the outbox is empty and no output came for 1.5 s."""
    seen, quiet = -1, 0.0
    async with asyncio.timeout(60):
        while quiet < 1.5:
            await asyncio.sleep(0.3)
            busy = await pool.fetchval("SELECT count(*) FROM outbox")
            quiet = 0.0 if busy or len(outcomes.records) != seen else quiet + 0.3
            seen = len(outcomes.records)


async def rows(dsn: str, query: str) -> list[Any]:
    """The rows `query` returns on `dsn`, as tuples."""
    pool = await postgres.create_pool(dsn, size=1)
    try:
        return [tuple(r) for r in await pool.fetch(query)]
    finally:
        await pool.close()
