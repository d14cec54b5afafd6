"""`rebuild` and `restore` on the real stack when the live database holds parked events: never
published, never decided, they are named, and kept parked in the new database; when the live
database cannot be read, a restore says so and exits 4 unless `--accept-parked`."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from structlog.testing import capture_logs

from service.config.settings import Settings
from service.entrypoints import output
from service.entrypoints.rebuild import rebuild
from service.entrypoints.restore import restore
from service.reprocess.history import replaced
from tests.conftest import create_database, drop_database
from tests.fault.tools import outcomes_by_payment, wait_drained, wall_now
from tests.harness import Outcomes, Producer, running
from tests.integration.reprocess_history import rows
from tests.servers import Servers

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

PARKED = "SELECT event_id, customer_id, reason FROM parked_events ORDER BY seq"


async def parked_live(make_settings: Any) -> tuple[Settings, uuid.UUID]:
    """A live run in which one customer's two payments are parked behind a failure, while
    another customer's payment is decided and published."""
    customer = uuid.uuid4()
    broken = make_settings(
        failpoint_customers=frozenset({customer}), poison_retries=1, retry_backoff_max_seconds=0.2
    )
    now = wall_now()
    async with Outcomes(broken) as outcomes, Producer(broken) as producer, running(broken):
        await producer.pay(customer, "pi-parked-1", time=now, event_id="parked-1", partition=0)
        await producer.pay(customer, "pi-parked-2", time=now, event_id="parked-2", partition=0)
        await producer.pay(uuid.uuid4(), "pi-fine", time=now, event_id="fine", partition=0)
        await outcomes.wait_for(lambda o: "pi-fine" in outcomes_by_payment(o.events), within=30)
        await wait_drained(broken)
    assert [r[0] for r in await rows(broken.dsn, PARKED)] == ["parked-1", "parked-2"]
    return make_settings(), customer


def last_json(out: str) -> Any:
    return json.loads(out.strip().splitlines()[-1])


@pytest.mark.parametrize("workers", [1, 2])
async def test_a_rebuild_parks_again_what_the_live_database_holds_parked_and_names_it(
    make_settings: Any, empty_dsn: str, capsys: pytest.CaptureFixture[str], workers: int
) -> None:
    settings, customer = await parked_live(make_settings)
    capsys.readouterr()

    with capture_logs():
        code = await rebuild(settings, database_url=empty_dsn, as_json=True, workers=workers)

    result = last_json(capsys.readouterr().out)
    # Not decided here either: nothing re-made that was never published.
    assert (code, result["differ"]) == (0, 0)
    assert (result["parked_unknown"], result["parked_missing"]) == (None, [])
    assert [(p["event_id"], p["customer_id"]) for p in result["parked"]] == [
        ("parked-1", str(customer)),
        ("parked-2", str(customer)),
    ]
    assert await rows(empty_dsn, PARKED) == await rows(settings.dsn, PARKED)
    assert await rows(empty_dsn, f"SELECT * FROM payments WHERE customer_id = '{customer}'") == []


async def test_a_restore_names_the_parked_events_and_brings_them_back_parked(
    make_settings: Any, empty_dsn: str, capsys: pytest.CaptureFixture[str]
) -> None:
    settings, customer = await parked_live(make_settings)
    capsys.readouterr()

    code = await restore(settings, database_url=empty_dsn, as_json=True)

    summary = last_json(capsys.readouterr().out)
    assert [(p["event_id"], p["customer_id"]) for p in summary.get("parked", [])] == [
        ("parked-1", str(customer)),
        ("parked-2", str(customer)),
    ]
    assert (code, summary["parked_unknown"]) == (output.OK, None)
    assert await rows(empty_dsn, PARKED) == await rows(settings.dsn, PARKED)


async def test_a_restore_without_the_old_database_brings_back_what_the_inputs_hold_and_exits_4(
    make_settings: Any, servers: Servers, capsys: pytest.CaptureFixture[str]
) -> None:
    """The parked payments are found on the input topics (consumed, no outcome published) and
    named; whether anything else was parked there (ends, what retention deleted) no one can
    tell: exit 4, unless `--accept-parked`."""
    settings, customer = await parked_live(make_settings)
    # The database being replaced is gone: the topics are all that is left.
    gone = replaced(settings, database_url=settings.dsn.replace("/test_", "/gone_"))
    targets = [await create_database(servers) for _ in range(2)]
    try:
        capsys.readouterr()
        assert await restore(gone, database_url=targets[0]) == output.PARTLY
        captured = capsys.readouterr()
        assert "parked events unknown: the database of FULFILLMENT_DATABASE_URL" in captured.err
        assert "exit 4" in captured.err
        assert "2 parked events, not on sessions.events, brought back from the input topics" in (
            captured.out
        )
        assert f"parked: parked-1 (payment.completed from tests) of {customer}" in captured.out
        assert gone.dsn not in captured.out + captured.err  # the URL, password and all
        assert [r[:2] for r in await rows(targets[0], PARKED)] == [
            ("parked-1", customer),
            ("parked-2", customer),
        ]

        assert (
            await restore(gone, database_url=targets[1], accept_parked=True, as_json=True)
            == output.OK
        )
        captured = capsys.readouterr()
        assert "--accept-parked" in captured.err
        summary = last_json(captured.out)
        assert [p["event_id"] for p in summary["parked"]] == ["parked-1", "parked-2"]
        assert summary["parked_unknown"] and summary["ends_without_output"] == 0
    finally:
        for dsn in targets:
            await drop_database(servers, dsn)
