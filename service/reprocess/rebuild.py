"""A rebuild: the input topics re-decided into an empty database, through the same handlers and
store as the service, every re-made output set against the published one.

`order="published"` follows the changelog (`replay_order`): the result is the live state, and
any difference is a real one. `order="arrival"` ignores the changelog and meets the inputs as
they arrived, for "what would this code decide differently?" before a deploy.

Nothing is published, unless to a shadow topic; the re-made outputs are kept for the comparison
and reach the database's outbox only to be published to that topic, so the service started on
it later publishes nothing again. The events parked in the database being replaced are parked
again here, not decided, with their reasons.
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, Protocol, TypeVar

from service.adapters import postgres
from service.adapters.kafka.relay import Relay
from service.adapters.postgres import Connection, PostgresStore
from service.adapters.postgres.pool import connection
from service.adapters.postgres.target import discard_outbox
from service.bootstrap.factory import Clients
from service.bootstrap.service import create_topics, tune_garbage_collector
from service.config.settings import Settings
from service.core.batch import BatchResult
from service.core.parking import EventKey
from service.core.ports import OutboxRow, Store
from service.core.sessions import Policy
from service.handlers.consume import handle_batch
from service.handlers.sweep import sweep_customers
from service.reprocess.differences import Difference, Remade, differences
from service.reprocess.history import LiveParked, read_changelog, read_input_records, replaced
from service.reprocess.replay_order import Plan, in_arrival_order, in_published_order
from service.reprocess.replay_runs import BATCH, CloseRun, DecideRun, Run, runs

Order = Literal["published", "arrival"]
A = TypeVar("A")
B = TypeVar("B")


class Progress(Protocol):
    """How far a rebuild or a restore is, for whoever shows it."""

    done: int
    total: int

    @property
    def seconds(self) -> float: ...

    def advance(self, count: int, *, lag: int | None = None) -> None: ...

    def finish(self) -> None: ...


@dataclass(frozen=True, slots=True)
class Outcome:
    events: int
    remade: list[Remade]
    found: list[Difference]
    seconds: float
    forced: int
    unreachable: int  # published outputs whose cause is no longer on the input topics
    live_parked: LiveParked  # what the database being replaced holds parked
    parked: list[dict[str, Any]]  # the events parked again here, in their order
    # Parked live but not on the input topics any more (retention): not in the new database.
    parked_missing: list[dict[str, Any]]


async def rebuild(
    clients: Clients,
    pool: postgres.Pool,
    *,
    order: Order,
    live_parked: LiveParked,
    shadow_topic: str | None,
    progress: Callable[[int], Progress],
) -> Outcome:
    """Into the empty database of `pool` (`clients` aimed at it). `progress(total)` makes the
    progress report once the inputs are read. Raises what reading the topics raises
    (`history.MissingTopic`, `changelog.UnreadableOutput`, aiokafka's KafkaError) and
    asyncpg's errors."""
    outcome = await _rebuild(clients, pool, order, live_parked, progress, bool(shadow_topic))
    if shadow_topic:
        await _publish(clients, pool, shadow_topic)
    else:
        await discard_outbox(pool)
    return outcome


async def _rebuild(
    clients: Clients,
    pool: postgres.Pool,
    order: Order,
    live_parked: LiveParked,
    progress_of: Callable[[int], Progress],
    publishing: bool,
) -> Outcome:
    # The live service's collector settings; and the history, read whole and kept to the end,
    # is frozen out of the collections, which would otherwise traverse it again and again (a
    # third of a 200,000-output rebuild's time before).
    tune_garbage_collector()
    # Both at once: one's fetches are in flight while the other's records are decoded.
    changelog, records = await together(read_changelog(clients), read_input_records(clients))
    gc.freeze()
    inputs = records.bounded({p.causation for p in changelog if not p.timer})
    gc.freeze()
    plan: Plan
    if order == "published":
        plan = in_published_order(inputs.partitions, changelog)
    else:
        plan = in_arrival_order(inputs.partitions)
    gc.freeze()
    total = sum(len(p) for p in inputs.partitions)
    progress = progress_of(total)
    remade: list[Remade] = []
    parked = LiveParked([])
    policy = clients.settings.policy
    poison = {p.key: p.reason for p in live_parked.events}
    async with connection(pool) as conn:
        store = _Remaking(conn, publishing=publishing)
        for run in runs(plan):
            result = await _apply(store, run, policy, poison)
            remade += store.made
            store.made.clear()
            parked.events.extend(result.parked)
            decided = len(run.events) if isinstance(run, DecideRun) else 0
            progress.advance(decided, lag=max(0, len(changelog) - len(remade)))
        if order == "arrival":
            # Without the changelog, the closings are the sweeper's, as it would act by now.
            await _sweep_all(store, clients.settings)
            remade += store.made
    progress.finish()
    parked_here = {p.key for p in parked.events}
    return Outcome(
        events=progress.done,
        remade=remade,
        found=differences(changelog, remade),
        seconds=progress.seconds,
        forced=plan.forced,
        unreachable=len(plan.unreachable),
        live_parked=live_parked,
        parked=parked.as_rows(),
        parked_missing=LiveParked(
            [p for p in live_parked.events if p.key not in parked_here]
        ).as_rows(),
    )


async def together(first: Awaitable[A], second: Awaitable[B]) -> tuple[A, B]:
    """Both, concurrently; when one fails the other is cancelled, and its error is raised (the
    first's when both failed, as reading them one after the other would)."""
    tasks = (asyncio.ensure_future(first), asyncio.ensure_future(second))
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    for task in tasks:
        if not task.cancelled() and (error := task.exception()) is not None:
            raise error
    return tasks[0].result(), tasks[1].result()


class _Remaking(PostgresStore):
    """The service's store, except that the outbox rows the handlers write are kept here, as
    the re-made outputs, and go to the database's outbox only when they are to be published
    (a shadow topic); with nobody to wake, there is nothing to announce."""

    def __init__(self, conn: Connection, *, publishing: bool) -> None:
        super().__init__(conn)
        self.publishing = publishing
        self.made: list[Remade] = []

    async def write_result(self, result: BatchResult, outbox: Sequence[OutboxRow]) -> None:
        await super().write_result(result, outbox if self.publishing else [])
        # One row per output, in order (`outbox_rows`): the cause from the decision itself,
        # not parsed back out of the bytes.
        self.made += [
            Remade((e.causation_source, e.causation_id), row.key, row.value)
            for e, row in zip(result.emitted, outbox, strict=True)
        ]

    async def announce_outbox(self) -> None:
        pass


async def _apply(
    store: Store, run: Run, policy: Policy, poison: dict[EventKey, str]
) -> BatchResult:
    match run:
        case DecideRun(events=events):
            # Parked live: parked here too, not decided (and their customers' later events
            # behind them, as live).
            return await handle_batch(store, events, policy=policy, poison=poison)
        case CloseRun(customers=customers, now=now):
            return await sweep_customers(store, customers, now=now, policy=policy)


async def _sweep_all(store: Store, settings: Settings) -> None:
    now = datetime.now(UTC)
    while due := await store.due_customers(now=now, max_live=settings.max_live, limit=BATCH):
        await sweep_customers(store, due, now=now, policy=settings.policy)


async def _publish(clients: Clients, pool: postgres.Pool, topic: str) -> None:
    """The re-made outputs, in the order they were made, to the shadow topic: the relay's own
    code, aimed elsewhere."""
    shadow = replaced(clients.settings, topic_sessions=topic)
    await create_topics(Clients(shadow))
    producer = clients.producer()
    await producer.start()
    try:
        relay = Relay(shadow, pool, producer)
        relay.stop()  # publish what is there, then return
        await relay.run()
    finally:
        await producer.stop()
