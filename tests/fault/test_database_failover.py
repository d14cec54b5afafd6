"""The issue's failover, on the local pair (`stack.sh up ha`, never the shared server): payments
at 500/s with the acceptances and ends they call for flow while the old primary is left running
read-only, the standby is promoted, and the old primary is stopped. The service, configured as an
HA deployment (both hosts, target_session_attrs=read-write, a synchronous standby required),
recovers without a restart, and from outside: /readyz names the failover while it lasts, every
payment has exactly one outcome, nobody is parked, no customer ever has two active sessions,
each customer's outcomes come in the order of their payments, and every published output is
known to the new primary."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import defaultdict

import asyncpg
import pytest

import schemas
from tests.conftest import settings_for
from tests.fault.failover_stream import Stream, percentile, streaming
from tests.fault.ha_pair import exclusive, fresh_pair_database, stack
from tests.fault.tools import Offsets, wait_until
from tests.harness import running
from tests.observability.service_http import address_of, get
from tests.servers import Servers

pytestmark = pytest.mark.fault

RATE = 500
SECONDS = 24
# The old primary read-only for 3 s before the promotion: long enough for the watch loop (1 s)
# to see it more than once on a loaded machine.
DEMOTE_AT, PROMOTE_AT, STOP_AT = 6.0, 9.0, 12.0


async def rows(dsn: str, query: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetch(query)
    finally:
        await conn.close()


def two_active_sessions(stream: Stream) -> list[uuid.UUID]:
    """Customers who, in the published stream, ever had two sessions active at once."""
    active: dict[uuid.UUID, set[uuid.UUID]] = defaultdict(set)
    found = []
    for event_id in stream.order:
        data = stream.outputs[event_id].data
        if isinstance(data, schemas.SessionCreated):
            active[data.customer_id].add(data.session_id)
            if len(active[data.customer_id]) > 1:
                found.append(data.customer_id)
        elif isinstance(data, schemas.SessionCompleted | schemas.SessionCancelled):
            active[data.customer_id].discard(data.session_id)
    return found


async def unknown_to(dsn: str, stream: Stream) -> list[str]:
    """Published outputs the database does not know: its payments and sessions say otherwise."""
    payments = {r["payment_id"]: r["outcome"] for r in await rows(dsn, "SELECT * FROM payments")}
    sessions = {r["id"]: r for r in await rows(dsn, "SELECT * FROM sessions")}
    unknown = []
    for event_id in stream.order:
        data = stream.outputs[event_id].data
        match data:
            case schemas.SessionCreated():
                known = payments.get(data.payment_id) == "created" and data.session_id in sessions
            case schemas.SessionRejected():
                known = payments.get(data.payment_id) == "rejected"
            case schemas.SessionAccepted():
                row = sessions.get(data.session_id)
                known = row is not None and row["mechanic_id"] == data.mechanic_id
            case schemas.SessionCompleted():
                row = sessions.get(data.session_id)
                known = row is not None and row["status"] == "completed"
            case schemas.SessionCancelled():
                row = sessions.get(data.session_id)
                known = row is not None and row["status"] == "cancelled"
            case _:
                known = True
        if not known:
            unknown.append(f"{stream.outputs[event_id].type} {event_id}")
    return unknown


@pytest.mark.timeout(300)
async def test_a_failover_under_load_loses_no_decision_and_publishes_none_the_new_primary_lacks(
    servers: Servers,
) -> None:
    async with exclusive():
        await failover_under_load(servers)


async def failover_under_load(servers: Servers) -> None:
    dsn = await fresh_pair_database()
    suffix = uuid.uuid4().hex[:10]
    settings = settings_for(
        servers,
        dsn,
        suffix,
        database_synchronous_standby=True,
        retry_backoff_max_seconds=0.5,
        poison_retries=1,  # an outage taken for a bug would park at once
        sweeper_enabled=False,  # no expiry: every session ends by its end event
        sweep_interval_seconds=1.0,  # also the watch loop's interval, and its checks' bound
    )
    try:
        async with (
            running(settings) as service,
            streaming(settings, rate=RATE, seconds=SECONDS, customers=400) as (stream, sending),
        ):
            start = time.monotonic()
            address = await address_of(service)
            readiness: list[str] = []

            async def watch_readiness() -> None:
                while True:
                    _, body = await get(address, "/readyz")
                    readiness.append(str(body.get("problems", {}).get("postgresql", "")))
                    await asyncio.sleep(0.1)

            await asyncio.sleep(DEMOTE_AT - (time.monotonic() - start))
            await stack("demote", "ha")
            demoted = time.monotonic()
            watching = asyncio.create_task(watch_readiness())
            await asyncio.sleep(PROMOTE_AT - (time.monotonic() - start))
            await stack("promote", "ha")
            promoted = time.monotonic()
            await asyncio.sleep(STOP_AT - (time.monotonic() - start))
            await stack("stop-primary", "ha")
            await sending

            async def all_decided() -> bool:
                return len(stream.outcome_of()) >= len(stream.sent_at)

            await wait_until(all_decided, within=120, every=0.5)
            async with Offsets(settings) as offsets:

                async def drained() -> bool:
                    return not await offsets.lag()

                await wait_until(drained, within=60, every=0.5)
            await asyncio.sleep(2.0)  # the last acceptances' and ends' outputs
            watching.cancel()
            ready_after = await get(address, "/readyz")
        parked = await rows(dsn, "SELECT customer_id FROM parked_events")
        two_active = await rows(
            dsn,
            "SELECT customer_id FROM sessions WHERE status IN ('waiting', 'live') "
            "GROUP BY customer_id HAVING count(*) > 1",
        )
        unknown = await unknown_to(dsn, stream)
        on_new_primary = (await rows(dsn, "SELECT inet_server_port() AS port"))[0]["port"]
    finally:
        await stack("down", "ha")

    outcomes = stream.outcome_of()
    # A payment sent after the demotion can only have been decided on the new primary.
    after = [
        stream.arrived_at[ids[0]] - promoted
        for payment_id, ids in outcomes.items()
        if stream.sent_at[payment_id] >= demoted
    ]
    steady = stream.latencies_ms(until=start + DEMOTE_AT)
    print(
        f"\nfailover: {len(stream.sent_at)} payments, {stream.accepted_sent} acceptances, "
        f"{stream.ended_sent} ends; {stream.duplicates} repeated outputs (same ids); first "
        f"outcome decided on the new primary {min(after):.2f} s after the promotion; before the "
        f"demotion p50 {percentile(steady, 0.5):.0f} ms, p99 {percentile(steady, 0.99):.0f} ms"
    )
    assert on_new_primary == 5435
    assert any(problem.startswith("failover: ") for problem in readiness), set(readiness)
    assert ready_after == (200, {"ready": True})
    assert {p: len(ids) for p, ids in outcomes.items() if len(ids) != 1} == {}
    assert set(outcomes) == set(stream.sent_at)
    assert parked == []
    assert two_active == []
    assert two_active_sessions(stream) == []
    position = {event_id: i for i, event_id in enumerate(stream.order)}
    for customer, sent in stream.by_customer.items():
        assert sorted(sent, key=lambda p: position[outcomes[p][0]]) == sent, customer
    assert unknown == []
