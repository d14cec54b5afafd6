"""`fulfillment rebuild`: re-decide the input topics into an empty database, through the same
handlers and store as the service, and prove it: every re-made output against the published one.

`--order published` (the default) follows the changelog (`service.core.replay_order`): the
result is the live state, and any difference is a real one. `--order arrival` ignores the
changelog and meets the inputs as they arrived, for "what would this code decide differently?"
before a deploy; its differences come explained (sweeper timing, cross-topic order).

Nothing is published, unless to `--shadow-topic`; the re-made outputs are discarded from the
database's outbox, so the service started on it later publishes nothing again.

The events parked in the database being replaced (FULFILLMENT_DATABASE_URL) were never decided
nor published: they are parked again here, not decided, with their reasons, and reported, so the
rebuilt database holds them as the live one does. When that database cannot be read the rebuild
says so, decides them, and their outputs show as differences (published nowhere).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from service.adapters import postgres
from service.adapters.kafka.relay import Relay
from service.adapters.postgres.target import discard_outbox
from service.bootstrap.factory import Clients
from service.bootstrap.service import create_topics
from service.core.batch import BatchResult
from service.core.changelog import Published, published
from service.core.differences import Difference, differences
from service.core.parking import EventKey
from service.core.ports import OutboxRow, Store
from service.core.replay_order import Plan, in_arrival_order, in_published_order
from service.core.replay_runs import BATCH, CloseRun, DecideRun, Run, runs
from service.core.sessions import Policy
from service.entrypoints import output
from service.entrypoints.history import (
    BadTarget,
    LiveParked,
    failure_line,
    open_empty_target,
    parked_line,
    read_changelog,
    read_inputs,
    read_live_parked,
    replaced,
)
from service.entrypoints.output import Progress
from service.handlers.consume import handle_batch
from service.handlers.outbox import outbox_row
from service.handlers.sweep import sweep_customers
from service.settings import Settings

Order = Literal["published", "arrival"]


@dataclass(frozen=True, slots=True)
class Outcome:
    events: int
    remade: list[Published]
    found: list[Difference]
    seconds: float
    forced: int
    unreachable: int  # published outputs whose cause is no longer on the input topics
    live_parked: LiveParked  # what the database being replaced holds parked
    parked: list[dict[str, Any]]  # the events parked again here, in their order
    # Parked live but not on the input topics any more (retention): not in the new database.
    parked_missing: list[dict[str, Any]]


async def rebuild(
    settings: Settings,
    *,
    database_url: str,
    shadow_topic: str | None = None,
    order: Order = "published",
    as_json: bool = False,
) -> int:
    try:
        clients, pool = await open_empty_target(settings, database_url)
    except BadTarget as error:
        _error(str(error))
        return error.exit_code
    try:
        outcome = await _rebuild(clients, pool, order, await read_live_parked(settings))
        if shadow_topic:
            await _publish(clients, pool, shadow_topic)
        else:
            await discard_outbox(pool)
    except Exception as error:
        line = failure_line(error, settings)
        if line is None:
            raise
        _error(line)
        return 1
    finally:
        await pool.close()
    report(outcome, as_json=as_json, order=order)
    return 0 if not outcome.found else 1


async def _rebuild(
    clients: Clients, pool: postgres.Pool, order: Order, live_parked: LiveParked
) -> Outcome:
    changelog = await read_changelog(clients)
    inputs = await read_inputs(clients, {p.causation for p in changelog if not p.timer})
    plan: Plan
    if order == "published":
        plan = in_published_order(inputs.partitions, changelog)
    else:
        plan = in_arrival_order(inputs.partitions)
    total = sum(len(p) for p in inputs.partitions)
    progress = Progress("rebuild", total)
    remade: list[Published] = []
    parked = LiveParked([])
    policy = clients.settings.policy
    poison = {p.key: p.reason for p in live_parked.events}
    async with postgres.store_of(pool) as store:
        for run in runs(plan):
            result = await _apply(store, run, policy, poison)
            remade += [_as_published(outbox_row(e)) for e in result.emitted]
            parked.events.extend(result.parked)
            decided = len(run.events) if isinstance(run, DecideRun) else 0
            progress.advance(decided, lag=max(0, len(changelog) - len(remade)))
        if order == "arrival":
            # Without the changelog, the closings are the sweeper's, as it would act by now.
            remade += [_as_published(r) for r in await _sweep_all(store, clients.settings)]
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


async def _sweep_all(store: Store, settings: Settings) -> list[OutboxRow]:
    now = datetime.now(UTC)
    rows: list[OutboxRow] = []
    while due := await store.due_customers(now=now, max_live=settings.max_live, limit=BATCH):
        result = await sweep_customers(store, due, now=now, policy=settings.policy)
        rows += [outbox_row(e) for e in result.emitted]
    return rows


def _as_published(row: OutboxRow) -> Published:
    return published(row.key, row.value, timestamp=0, partition=-1, offset=-1)


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


def report(outcome: Outcome, *, as_json: bool, order: Order) -> None:
    if as_json:
        output.emit_json(_json(outcome, order), one_line=True)
        return
    rate = outcome.events / outcome.seconds if outcome.seconds else 0.0
    print(
        f"{len(outcome.remade)} decisions re-made, {len(outcome.found)} differ "
        f"({outcome.events} events in {outcome.seconds:.1f} s, {rate:,.0f}/s, order {order})"
    )
    if outcome.unreachable:
        print(
            f"{outcome.unreachable} published outputs have no cause left on the input topics "
            "(retention): they show as differences; `fulfillment restore` needs no inputs"
        )
    if outcome.parked:
        print(
            f"{len(outcome.parked)} events parked, not decided, as in the database being "
            "replaced: `fulfillment parked release` decides them"
        )
        for row in outcome.parked:
            print(parked_line(row))
    if outcome.parked_missing:
        print(
            f"{len(outcome.parked_missing)} events parked in the database being replaced are "
            "no longer on the input topics: not in the new database"
        )
        for row in outcome.parked_missing:
            print(parked_line(row))
    if outcome.live_parked.unknown:
        print(
            f"parked events unknown: {outcome.live_parked.unknown}; any parked there were "
            "decided here and show as differences"
        )
    for d in outcome.found:
        print(f"differs: {d.id} ({d.explanation})")
        print(f"  expected: {_text(d.expected)}")
        print(f"  got:      {_text(d.got)}")


def _text(p: Published | None) -> str:
    return "(nothing)" if p is None else f"key={p.key} {p.value.decode(errors='replace')}"


def _json(outcome: Outcome, order: Order) -> dict[str, Any]:
    return {
        "order": order,
        "remade": len(outcome.remade),
        "differ": len(outcome.found),
        "events": outcome.events,
        "seconds": round(outcome.seconds, 3),
        "forced": outcome.forced,
        "unreachable": outcome.unreachable,
        "parked": outcome.parked,
        "parked_missing": outcome.parked_missing,
        "parked_unknown": outcome.live_parked.unknown,
        "differences": [
            {
                "id": d.id,
                "explanation": str(d.explanation),
                "expected": None if d.expected is None else _wire(d.expected),
                "got": None if d.got is None else _wire(d.got),
            }
            for d in outcome.found
        ],
    }


def _wire(p: Published) -> dict[str, str]:
    return {"key": p.key, "value": p.value.decode(errors="replace")}


def _error(message: str) -> None:
    output.error(message, command="rebuild")
