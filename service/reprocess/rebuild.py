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

import gc
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, Protocol, TypeVar

from service.adapters import postgres
from service.adapters.kafka.relay import Relay
from service.adapters.postgres.pool import connection
from service.adapters.postgres.target import discard_outbox
from service.bootstrap.factory import Clients
from service.bootstrap.service import create_topics, tune_garbage_collector
from service.config.settings import Settings
from service.core.parking import EventKey, ParkedEvent
from service.core.ports import Store
from service.core.sessions import Policy
from service.handlers.sweep import sweep_customers
from service.reprocess.differences import Difference, Remade, differences
from service.reprocess.history import LiveParked, read_changelog, read_input_records, replaced
from service.reprocess.rebuild_parts import (
    WORKER_STEP_COST,
    Remaking,
    all_of,
    apply_runs,
    started_workers,
)
from service.reprocess.replay_order import Plan, in_arrival_order, in_published_order
from service.reprocess.replay_runs import BATCH, Run, parts

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
    workers: int = 1,
) -> Outcome:
    """Into the empty database of `pool` (`clients` aimed at it). `progress(total)` makes the
    progress report once the inputs are read. `workers`: processes applying the runs, this one
    and `workers - 1` started for it (`rebuild_parts`); the outcome is the same for any number.
    Raises what reading the topics raises (`history.MissingTopic`,
    `changelog.UnreadableOutput`, aiokafka's KafkaError), asyncpg's errors, and
    `rebuild_parts.WorkerFailed`."""
    outcome = await _rebuild(
        clients, pool, order, live_parked, progress, bool(shadow_topic), workers
    )
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
    workers: int,
) -> Outcome:
    # The live service's collector settings; and the history, read whole and kept to the end,
    # is frozen out of the collections, which would otherwise traverse it again and again (a
    # third of a 200,000-output rebuild's time before).
    tune_garbage_collector()
    # The other parts' processes start now: their start-up overlaps the reads.
    async with started_workers(workers - 1) as helpers:
        for helper in helpers:
            helper.prepare(clients.settings, publishing)
        # Both at once: one's fetches are in flight while the other's records are decoded.
        changelog, records = await together(read_changelog(clients), read_input_records(clients))
        with _collector_paused():  # frozen with the plan when it ends
            inputs = records.bounded({p.causation for p in changelog if not p.timer})
            plan: Plan
            if order == "published":
                plan = in_published_order(inputs.partitions, changelog)
            else:
                plan = in_arrival_order(inputs.partitions)
            total = sum(len(p) for p in inputs.partitions)
            progress = progress_of(total)
            poison = {p.key: p.reason for p in live_parked.events}
            # Whatever is parked live stays with the first part: the parked rows' order (their
            # seq) is then the one part's.
            costs = [1.0] + [WORKER_STEP_COST] * (workers - 1)
            split = parts(plan, workers, pinned=poison, costs=costs)
        made = 0

        def advance(decided: int, remade: int) -> None:
            nonlocal made
            made += remade
            progress.advance(decided, lag=max(0, len(changelog) - made))

        policy = clients.settings.policy
        async with connection(pool) as conn:
            store = Remaking(conn, publishing=publishing)
            applied = await all_of(
                _own(store, split[0], policy, poison, advance),
                *(w.apply(runs, advance) for w, runs in zip(helpers, split[1:], strict=True)),
            )
            if order == "arrival":
                # Without the changelog, the closings are the sweeper's, as it would act by now.
                store.made.clear()
                await _sweep_all(store, clients.settings)
                applied.append((store.made, []))
    progress.finish()
    remade = [r for made_here, _ in applied for r in made_here]
    parked = LiveParked([p for _, parked_here in applied for p in parked_here])
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


@contextmanager
def _collector_paused() -> Iterator[None]:
    """No cyclic collection while the plan and its parts are built, frozen out of it after:
    they are kept to the end, so a pass finds nothing, and the passes over the growing plan
    took a tenth of the planning's time."""
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        gc.enable()


async def _own(
    store: Remaking,
    runs: Sequence[Run],
    policy: Policy,
    poison: dict[EventKey, str],
    advance: Callable[[int, int], None],
) -> tuple[list[Remade], list[ParkedEvent]]:
    parked = await apply_runs(store, runs, policy, poison, advance)
    return list(store.made), parked


async def together(first: Awaitable[A], second: Awaitable[B]) -> tuple[A, B]:
    """Both, concurrently; when one fails the other is cancelled, and its error is raised (the
    first's when both failed, as reading them one after the other would)."""
    both: list[Any] = await all_of(first, second)
    return both[0], both[1]


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
