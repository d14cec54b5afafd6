"""The rebuild's order: whatever order the live service met the inputs in, and wherever its
sweeper acted, re-deciding in the order the changelog records re-makes every output byte for
byte. Live runs here are the real handlers on the in-memory store."""

from __future__ import annotations

import itertools
import zlib
from collections import defaultdict
from dataclasses import dataclass, replace
from datetime import datetime
from uuid import UUID

from hypothesis import given, settings
from hypothesis import strategies as st

import schemas
from service.handlers.outbox import outbox_row
from service.handlers.sweep import sweep_customers
from service.reprocess.changelog import Published, published
from service.reprocess.replay_order import (
    Close,
    Decide,
    InputRecord,
    in_arrival_order,
    in_published_order,
)
from service.reprocess.replay_runs import CloseRun, DecideRun, Run, runs
from tests.unit.core.builders import (
    ALICE,
    BOB,
    CAROL,
    OTHER_MECHANIC,
    T0,
    InMemoryHandlers,
    acceptance,
    ended,
    minutes,
    payment,
    session_of,
)

CUSTOMERS = (ALICE, BOB, CAROL)
PAYMENTS = [f"pay-{i}" for i in range(6)]


@dataclass
class Live:
    partitions: dict[str, list[InputRecord]]
    changelog: list[Published]
    handlers: InMemoryHandlers


def _partition(key: str, count: int = 2) -> int:
    return zlib.crc32(key.encode()) % count


def live_run(actions: list[tuple[str, int, int]]) -> Live:
    """Each action decided at its own instant (its index), events from their partitions in the
    order given, the sweeper acting where an action says so, at a wall clock that only grows."""
    live = InMemoryHandlers()
    partitions: dict[str, list[InputRecord]] = defaultdict(list)
    by_partition: dict[int, list[Published]] = defaultdict(list)
    wall = T0
    for instant, (kind, which, at) in enumerate(actions):
        when = T0 + minutes(at)
        pid = PAYMENTS[which % len(PAYMENTS)]
        match kind:
            case "sweep":
                wall = max(wall, when)
                result = live.sweep(wall)
                emitted = result.emitted
            case _:
                event = _event(kind, pid, which, when)
                name = f"{kind}:{_partition(str(getattr(event.data, 'customer_id', '')))}"
                records = partitions[name]
                records.append(InputRecord(event, instant, name, len(records)))
                emitted = live.handle([event]).emitted
        for e in emitted:
            row = outbox_row(e)
            p = _partition(row.key.decode())
            by_partition[p].append(
                published(
                    row.key, row.value, timestamp=instant, partition=p, offset=len(by_partition[p])
                )
            )
    changelog = sorted(
        (out for outs in by_partition.values() for out in outs),
        key=lambda o: (o.partition, o.offset),
    )
    return Live(dict(partitions), changelog, live)


def _event(kind: str, pid: str, which: int, when: datetime) -> schemas.InputEvent:
    customer = CUSTOMERS[which % len(CUSTOMERS)]
    match kind:
        case "pay":
            return payment(pid, customer, at=when)
        case "repay":  # the same payment, another event
            return payment(pid, customer, at=when, event_id=f"again|{pid}|{when.isoformat()}")
        case "accept":
            mechanic = OTHER_MECHANIC if which % 2 else UUID(int=7)
            return acceptance(session_of(pid), mechanic, at=when)
        case _:
            return ended(session_of(pid), at=when)


def rebuilt(
    live: Live, *, arrival: bool = False, size: int | None = None
) -> set[tuple[str, bytes, bytes]]:
    """Re-decided on a fresh store: one step at a time, or grouped as the command groups them
    (`size` events a batch, closings deferred) when `size` is given."""
    fresh = InMemoryHandlers()
    plan = (
        in_arrival_order(list(live.partitions.values()))
        if arrival
        else in_published_order(list(live.partitions.values()), live.changelog)
    )
    made: list[tuple[str, bytes, bytes]] = []
    if size is not None:
        for run in runs(plan, size=size):
            made += apply_run(fresh, run)
        return set(made)
    for step in plan.steps:
        match step:
            case Decide(record=record):
                emitted = fresh.handle([record.event]).emitted
            case Close(customer_id=customer, at=at):
                work = sweep_customers(fresh.store, [customer], now=at, policy=fresh.policy)
                emitted = fresh._run(work).emitted
        made += [(e.id, outbox_row(e).key, outbox_row(e).value) for e in emitted]
    return set(made)


def published_set(live: Live) -> set[tuple[str, bytes, bytes]]:
    return {(o.id, o.key.encode(), o.value) for o in live.changelog}


actions = st.lists(
    st.tuples(
        st.sampled_from(["pay", "pay", "repay", "accept", "accept", "end", "sweep"]),
        st.integers(0, 11),
        st.integers(0, 300),
    ),
    max_size=40,
)


@settings(max_examples=500, deadline=None)
@given(actions)
def test_re_deciding_in_the_changelog_s_order_re_makes_every_output(
    steps: list[tuple[str, int, int]],
) -> None:
    live = live_run(steps)

    assert rebuilt(live) == published_set(live)


@settings(max_examples=500, deadline=None)
@given(actions, st.integers(1, 8))
def test_grouped_into_batches_with_closings_deferred_it_re_makes_the_same(
    steps: list[tuple[str, int, int]], size: int
) -> None:
    live = live_run(steps)

    assert rebuilt(live, size=size) == published_set(live)


def test_a_payment_stamped_before_an_expiry_the_sweeper_acted_on_is_created_again() -> None:
    # Live: pay-0 waits, the sweeper cancels it at its deadline (15 min), then a payment stamped
    # a minute before that deadline arrives and is created. In arrival order it is rejected.
    live = live_run([("pay", 0, 0), ("sweep", 0, 20), ("pay", 3, 14)])
    types = [o.type for o in live.changelog]
    assert types == [schemas.SESSION_CREATED, schemas.SESSION_CANCELLED, schemas.SESSION_CREATED]

    assert rebuilt(live) == published_set(live)
    assert rebuilt(live, arrival=True) != published_set(live)


def test_an_acceptance_decided_before_its_payment_stays_unknown() -> None:
    live = live_run([("accept", 0, 1), ("pay", 0, 0), ("accept", 6, 2)])
    reasons = [o.data.get("reason") for o in live.changelog if o.unknown_session]
    assert reasons == ["unknown_session"]

    assert rebuilt(live) == published_set(live)


def stamped_when_produced(live: Live, lags: list[int]) -> None:
    """The records stamped when produced, `lags[i]` instants before action i decided them (in
    order within a partition), as the live consumer meets the topics in its own order; the
    outputs stamped when published, just after their decision."""
    live.partitions = {
        name: list(
            itertools.accumulate(
                (replace(r, timestamp=10 * (r.timestamp - lags[r.timestamp])) for r in records),
                lambda before, r: replace(r, timestamp=max(before.timestamp, r.timestamp)),
            )
        )
        for name, records in live.partitions.items()
    }
    live.changelog = [replace(o, timestamp=10 * o.timestamp + 5) for o in live.changelog]


def test_an_end_met_before_an_acceptance_produced_earlier_still_finds_its_session_waiting() -> None:
    # Produced: the payment, its acceptance, an end, then a second end stamped before the first.
    # Live met the first end before the acceptance (another topic, fetched in another order):
    # it found the session waiting, and the second end completed it.
    live = live_run([("pay", 0, 0), ("end", 0, 2), ("accept", 0, 1), ("end", 0, 1)])
    kinds = [(o.type, o.data.get("reason")) for o in live.changelog]
    assert kinds == [
        (schemas.SESSION_CREATED, None),
        (schemas.SESSION_ACCEPTED, None),
        (schemas.SESSION_COMPLETED, "ended"),
    ]
    stamped_when_produced(live, [0, 0, 2, 0])  # the acceptance produced before the first end

    assert rebuilt(live) == published_set(live)
    assert rebuilt(live, size=8) == published_set(live)


@settings(max_examples=500, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["pay", "pay", "repay", "accept", "accept", "end", "sweep"]),
            st.integers(0, 11),
            st.integers(0, 10),  # within the TTL: no timer falls due (see below)
            st.integers(0, 6),
        ),
        max_size=40,
    )
)
def test_records_produced_before_the_live_consumer_met_them_are_re_decided_as_it_did(
    steps: list[tuple[str, int, int, int]],
) -> None:
    """Records met in another order than produced, across topics. Kept within the TTL: an end
    stamped past a waiting session's deadline and met before its payment (which it would purge
    after) is not re-decided as live yet."""
    live = live_run([(kind, which, at) for kind, which, at, _ in steps])
    stamped_when_produced(live, [lag for *_, lag in steps])

    assert rebuilt(live) == published_set(live)


def apply_run(fresh: InMemoryHandlers, run: Run) -> list[tuple[str, bytes, bytes]]:
    """What applying `run` to `fresh` emits: (id, key, value) per output, in order."""
    match run:
        case DecideRun(events=events):
            emitted = fresh.handle(events).emitted
        case CloseRun(customers=customers, now=now):
            work = sweep_customers(fresh.store, customers, now=now, policy=fresh.policy)
            emitted = fresh._run(work).emitted
    return [(e.id, outbox_row(e).key, outbox_row(e).value) for e in emitted]
