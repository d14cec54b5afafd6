"""`fulfillment restore` on the real stack: the state rebuilt from `sessions.events` alone, and
the service run on it decides new payments exactly as the live database does."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import pytest

import schemas
from service.adapters import postgres
from service.config.settings import Settings
from service.core.batch import BatchResult
from service.entrypoints.restore import restore
from service.handlers.consume import handle_batch
from service.handlers.outbox import outbox_row
from service.reprocess.history import replaced
from tests.fault.tools import wall_now
from tests.harness import Outcomes, Producer, payment, running
from tests.integration.reprocess_history import live_history, rows, short_timers

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

SESSIONS = "SELECT * FROM sessions ORDER BY id"
PAYMENTS = "SELECT * FROM payments ORDER BY payment_id"
CLAIMS = "SELECT source, event_id FROM processed_events"


async def no_sweep(*_: Any, **__: Any) -> BatchResult:
    return BatchResult((), (), (), (), ())


async def test_a_restore_from_the_changelog_alone_gives_the_live_state(
    make_settings: Any,
    pool: postgres.Pool,
    fresh_dsn: str,
    empty_dsn: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    settings = short_timers(make_settings)
    history = await live_history(settings, pool)
    capsys.readouterr()

    code = await restore(settings, database_url=empty_dsn, as_json=True)

    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert code == 0
    assert summary["outputs"] == history.outputs
    assert await rows(empty_dsn, SESSIONS) == await rows(fresh_dsn, SESSIONS)
    assert await rows(empty_dsn, PAYMENTS) == await rows(fresh_dsn, PAYMENTS)
    restored, live = set(await rows(empty_dsn, CLAIMS)), set(await rows(fresh_dsn, CLAIMS))
    caused = {(e.causationsource, e.causationid) for e in history.events}
    # Every input that caused an output; not the ones no output names (duplicates, ignored).
    assert restored == live & caused
    assert await rows(empty_dsn, "SELECT * FROM outbox") == []


async def test_a_restore_from_a_binary_mode_changelog_gives_the_live_state(
    make_settings: Any,
    pool: postgres.Pool,
    fresh_dsn: str,
    empty_dsn: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    settings = short_timers(make_settings, output_content_mode="binary")
    history = await live_history(settings, pool, binary_inputs=True)
    capsys.readouterr()

    code = await restore(settings, database_url=empty_dsn, as_json=True)

    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert (code, summary["outputs"]) == (0, history.outputs)
    assert await rows(empty_dsn, SESSIONS) == await rows(fresh_dsn, SESSIONS)
    assert await rows(empty_dsn, PAYMENTS) == await rows(fresh_dsn, PAYMENTS)


async def test_the_service_on_a_restored_database_decides_new_payments_as_the_live_one(
    make_settings: Any,
    pool: postgres.Pool,
    empty_dsn: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    settings = short_timers(make_settings)
    history = await live_history(settings, pool)
    assert await restore(settings, database_url=empty_dsn) == 0
    # Each customer pays three times: stamped while their last session may still be active,
    # a second inside the first one's TTL, a third after it; and one payment is a redelivery
    # of a decided one.
    new: list[bytes] = []
    for i, customer in enumerate(history.customers):
        new.append(payment(customer, f"pi-new-{i}", time=history.started + timedelta(seconds=1)))
        new.append(payment(customer, f"pi-newer-{i}", time=history.started + timedelta(seconds=2)))
        new.append(payment(customer, f"pi-newest-{i}", time=wall_now() + timedelta(seconds=i)))
    new.append(payment(history.customers[0], "pi-exp", time=history.started))
    restored = replaced(settings, database_url=empty_dsn)
    ids = {json.loads(v)["id"] for v in new}

    # The sweeper acts on the wall clock, after the live database stopped: held back here, so
    # that on both sides only the events decide.
    async with Outcomes(restored) as outcomes, Producer(restored) as producer:
        async with running(restored, sweep=no_sweep):
            for value in new:
                key = json.loads(value)["data"]["customer_id"].encode()
                await producer.send(restored.topic_payments, value, key=key)
            await outcomes.wait_for(lambda o: len(caused_by(o.records, ids)) >= len(new) - 1)
    live = await decide_on(settings, pool, new)

    got = caused_by(outcomes.records, ids)
    assert len(got) == 3 * len(history.customers)
    for customer in history.customers:
        assert per_customer(got, customer) == per_customer(live, customer)
    assert {e.type for e in map(schemas.decode_output, got.values())} == {
        schemas.SESSION_CREATED,
        schemas.SESSION_REJECTED,
    }


def caused_by(records: Sequence[Any], ids: set[str]) -> dict[str, bytes]:
    found = {}
    for r in records:
        if json.loads(r.value)["causationid"] in ids:
            found[json.loads(r.value)["id"]] = r.value
    return found


def per_customer(outputs: dict[str, bytes], customer: uuid.UUID) -> list[bytes]:
    return sorted(v for v in outputs.values() if str(customer).encode() in v)


async def decide_on(
    settings: Settings, pool: postgres.Pool, values: list[bytes]
) -> dict[str, bytes]:
    """What the live database decides for the same payments, through the service's handler."""
    decoder = schemas.Decoder(settings.topics.input_types())
    events = [decoder.decode(v, settings.topic_payments) for v in values]
    async with postgres.store_of(pool) as store:
        result = await handle_batch(store, events, policy=settings.policy)
    # Closings the purge made on the way are the timers', not these payments' decisions.
    decided = {json.loads(v)["id"] for v in values}
    return {e.id: outbox_row(e).value for e in result.emitted if e.causation_id in decided}
