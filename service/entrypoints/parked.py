"""`fulfillment parked list | show CUSTOMER | release (CUSTOMER | --all) [--dry-run]`.

Release decides a customer's parked events again, in their order, in one transaction per customer
(and per chunk of `CHUNK` events), exactly as the consumer would have: each at its own time (the
sweeper left the customer alone while parked, so an acceptance made in time is accepted however
late the release comes); an event that still fails stays parked, in its place, with every later
event of that customer; those before it are decided. A customer released whole then has what is
overdue by now closed at once, through the sweeper's own path (a payment released after its TTL:
its session is created as of the payment's time and cancelled as expired at its `expires_at`, the
very events a replay would make). Events parked without a customer (their session was unknown) are
released together with `--all`, after the customers; one whose session now belongs to a customer
still parked waits for that customer. A release reads each parked event once and searches out every
event that still fails, so it always ends with its summary (exit 4 when events stay parked).
`--dry-run` decides in a transaction that is rolled back and says what would come of it. The
outputs reach Kafka through the outbox, published by the running service.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from operator import attrgetter
from typing import Any
from uuid import UUID

import orjson

import schemas
from service.adapters.failures import TRANSIENT, is_outage
from service.config.settings import Settings
from service.core.batch import BatchResult, Decision
from service.core.parking import BEHIND_PARKED, EventKey, ParkedEvent
from service.core.ports import DecideBatch, Store
from service.entrypoints import output
from service.entrypoints.database import operator_store
from service.handlers.poison import SearchPaused, find_poison, reason_of
from service.handlers.release import release_parked
from service.handlers.sweep import sweep_customers

CHUNK = 1000
LIST_LIMIT = 1_000_000
_SEQ = attrgetter("seq")


@dataclass
class Released:
    customer_id: UUID | None
    decided: list[dict[str, Any]] = field(default_factory=list)
    still_parked: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "customer_id": self.customer_id,
            "decided": self.decided,
            "still_parked": self.still_parked,
        }


async def parked_command(
    settings: Settings,
    action: str,
    *,
    customer: UUID | None = None,
    everything: bool = False,
    dry_run: bool = False,
    as_json: bool = False,
) -> int:
    async with operator_store(settings) as store:
        if action == "list":
            return await _list(store, as_json)
        if action == "show":
            assert customer is not None
            return await _show(store, customer, as_json)
        return await _release(settings, store, customer, everything, dry_run, as_json)


def _event_row(p: ParkedEvent) -> dict[str, Any]:
    return {
        "seq": p.seq,
        "parked_at": p.parked_at,
        "customer_id": p.customer_id,
        "type": p.type,
        "source": p.source,
        "event_id": p.event_id,
        "reason": p.reason,
    }


async def _list(store: Store, as_json: bool) -> int:
    customers: dict[UUID | None, dict[str, Any]] = {}
    for p in await store.parked_events(limit=LIST_LIMIT):
        entry = customers.setdefault(
            p.customer_id,
            {"customer_id": p.customer_id, "events": 0, "since": p.parked_at, "reason": p.reason},
        )
        entry["events"] += 1
    rows = list(customers.values())
    if as_json:
        output.emit_json(rows)
    elif rows:
        output.table(rows, ["customer_id", "events", "since", "reason"])
    else:
        print("no parked events")
    return output.OK


async def _show(store: Store, customer: UUID, as_json: bool) -> int:
    events = await store.parked_events([customer], limit=LIST_LIMIT)
    rows = [_event_row(p) | {"event": orjson.loads(p.body)} for p in events]
    if as_json:
        output.emit_json({"customer_id": customer, "parked": rows})
    elif rows:
        output.table(rows, ["seq", "parked_at", "type", "source", "event_id", "reason"])
    else:
        print(f"customer {customer} has no parked events")
    return output.OK if rows else output.NOT_FOUND


async def _release(
    settings: Settings,
    store: Store,
    customer: UUID | None,
    everything: bool,
    dry_run: bool,
    as_json: bool,
) -> int:
    if everything:
        groups: dict[UUID | None, None] = dict.fromkeys(
            p.customer_id for p in await store.parked_events(limit=LIST_LIMIT)
        )
        # Those without a customer last: one whose session's owner was parked can then be
        # decided after that owner's release.
        if None in groups:
            groups[None] = groups.pop(None)
    else:
        groups = {customer: None}
    progress = output.Progress("customers released", len(groups))
    results = []
    now = datetime.now(UTC)  # says only which deadlines are due, as the sweeper's clock does
    for group in groups:
        results.append(await _release_one(settings, store, group, dry_run, now))
        progress.advance()
    progress.finish()
    found = any(r.decided or r.still_parked for r in results)
    if as_json:
        output.emit_json({"dry_run": dry_run, "released": [r.as_dict() for r in results]})
    else:
        verb = "would decide" if dry_run else "decided"
        for r in results if found else []:
            who = r.customer_id or "events without a customer"
            print(f"{who}: {verb} {len(r.decided)}, still parked {len(r.still_parked)}")
            for row in r.still_parked[:1]:
                print(f"  first still parked: {row['event_id']} ({row['reason']})")
        if not found:
            print("no parked events")
    if not found:
        return output.NOT_FOUND
    return output.PARTLY if any(r.still_parked for r in results) else output.OK


async def _release_one(
    settings: Settings, store: Store, customer: UUID | None, dry_run: bool, now: datetime
) -> Released:
    released = Released(customer)
    policy, failpoint = settings.policy, settings.failpoint_customers
    # Each chunk starts after the last one read (`after`, a seq): every parked event is read
    # once per release, so a release ends whatever stays parked.
    after, read = 0, 0
    while True:
        if customer is None:
            # Those without a customer block nobody: all of them, in order.
            everyone = await store.parked_events(limit=LIST_LIMIT)
            rows = [p for p in everyone if p.customer_id is None]
        else:
            rows = await store.parked_events([customer], limit=read + CHUNK)
        chunk = [p for p in rows if p.seq > after][:CHUNK]
        if not chunk:
            if customer is not None and not dry_run and released.decided:
                # No longer parked: what fell due while they were is closed now, not at the
                # next sweep (the same events, by the sweeper's own path).
                closed = await sweep_customers(store, [customer], now=now, policy=policy)
                released.decided += [_decided(d) for d in closed.decisions]
            return released
        after, read = chunk[-1].seq, read + len(chunk)
        decoded, held = _decoded(chunk, customer)
        if customer is None:
            held |= await _behind_parked_owner(store, decoded)
        todo = [p for p in chunk if p.key not in held]

        async def decide(
            events: Sequence[schemas.InputEvent],
            *,
            traces: Mapping[str, str] | None = None,  # parked events keep no trace context
            poison: Mapping[EventKey, str] | None = None,
            trial: bool = False,
            todo: list[ParkedEvent] = todo,
        ) -> BatchResult:
            # The poison search tries prefixes of the chunk: release the same prefix.
            return await release_parked(
                store,
                todo[: len(events)],
                policy=policy,
                poison=poison,
                trial=trial or dry_run,
                failpoint=failpoint,
            )

        events = [decoded[p.key] for p in todo]
        try:
            poison = await _poison_of(decide, events)
            result = await decide(events, poison=poison) if todo else None
        except TRANSIENT:
            raise
        except Exception as failure:
            # Not even the poison parked lets the chunk pass: all of it stays where it is.
            poison, result = dict.fromkeys((p.key for p in todo), reason_of(failure)), None
        staying = _staying(todo, poison, customer)
        if result is not None:
            released.decided += [_decided(d) for d in result.decisions]
        released.still_parked += [
            _event_row(p) | {"reason": poison.get(p.key) or held.get(p.key) or p.reason}
            for p in sorted([*staying, *(p for p in chunk if p.key in held)], key=_SEQ)
        ]
        if (staying or held) and customer is not None:
            return released  # the rest waits behind the one that still fails


async def _poison_of(
    decide: DecideBatch, events: Sequence[schemas.InputEvent]
) -> dict[EventKey, str]:
    """Every poison event of `events`. The consumer backs off when a search pauses; a release
    searches on: each pause found more of them, so the search ends."""
    poison: dict[EventKey, str] = {}
    while True:
        try:
            return await find_poison(decide, events, poison, is_outage=is_outage)
        except SearchPaused as paused:
            if len(paused.poison) <= len(poison):
                raise paused.failure from None
            poison = paused.poison


def _decoded(
    chunk: Sequence[ParkedEvent], customer: UUID | None
) -> tuple[dict[EventKey, schemas.InputEvent], dict[EventKey, str]]:
    """The events of `chunk` decoded, and those that stay parked untried, each with its reason:
    one that no longer decodes, and a customer's events after it (their order holds)."""
    decoded: dict[EventKey, schemas.InputEvent] = {}
    stays: dict[EventKey, str] = {}
    for p in chunk:
        if stays and customer is not None:
            stays[p.key] = p.reason
            continue
        try:
            decoded[p.key] = p.event()
        except (ValueError, KeyError) as error:
            stays[p.key] = f"no longer decodes: {reason_of(error)}"
    return decoded, stays


async def _behind_parked_owner(
    store: Store, events: Mapping[EventKey, schemas.InputEvent]
) -> dict[EventKey, str]:
    """Those of `events` (parked without a customer) whose session now belongs to a customer
    who is parked: they wait for that customer's release, as the consumer would have them wait."""
    named = {
        key: e.data.session_id
        for key, e in events.items()
        if not isinstance(e, schemas.PaymentCompletedEvent)
    }
    owners = await store.customers_of_sessions(list(dict.fromkeys(named.values())))
    parked = await store.parked_customers(list(set(owners.values())))
    return {
        key: f"{BEHIND_PARKED} ({owners[session]})"
        for key, session in named.items()
        if owners.get(session) in parked
    }


def _staying(
    chunk: Sequence[ParkedEvent], poison: Mapping[EventKey, str], customer: UUID | None
) -> list[ParkedEvent]:
    if customer is None:
        return [p for p in chunk if p.key in poison]
    first = next((i for i, p in enumerate(chunk) if p.key in poison), len(chunk))
    return list(chunk[first:])


def _decided(d: Decision) -> dict[str, Any]:
    return {"event_id": d.event_id, "type": d.event_type, "outcome": d.outcome.label}
