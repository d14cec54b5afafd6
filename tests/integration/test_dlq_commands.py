"""`fulfillment dlq list | show | redrive` end to end on the real Kafka and PostgreSQL: a
dead letter is listed with its reason, origin and time, shown byte for byte, and redriven to its
original topic without the error headers; a fixed message is then fulfilled once, however often
it is redriven, and one that still fails is back on the DLQ with its error headers once."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from structlog.testing import capture_logs

import schemas
from service.entrypoints import report
from service.entrypoints.dlq import dlq_command
from tests.fault.tools import Offsets, outcomes_by_payment, wait_drained, wall_now
from tests.harness import Outcomes, Producer, payment, running

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]

TRACE = ("traceparent", b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")


async def run(settings: Any, capsys: pytest.CaptureFixture[str], action: str, **kw: Any) -> Any:
    capsys.readouterr()
    with capture_logs():  # the running service's log lines would go to stdout too
        code = await dlq_command(settings, action, as_json=True, **kw)
        out = capsys.readouterr().out
    return code, json.loads(out)


async def test_dead_letters_are_listed_shown_and_redriven_and_a_fixed_one_is_fulfilled_once(
    make_settings: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = make_settings()
    customer = uuid.uuid4()
    fixed_value = payment(customer, "pi_fixed", time=wall_now())
    async with (
        Outcomes(settings) as outcomes,
        Outcomes(settings, topic=settings.topic_dlq) as dlq,
        Producer(settings) as producer,
        Offsets(settings) as offsets,
        running(settings),
    ):
        await producer.send(
            settings.topic_payments, b"{not json", key=b"k-bad", partition=0, headers=[TRACE]
        )
        # A valid payment that an earlier version dead-lettered (its decoder refused it): the
        # kind of message a fix makes decodable, waiting on the DLQ to be redriven.
        earlier = [
            TRACE,
            (schemas.DLQ_ERROR_REASON, b"refused by an earlier version"),
            (schemas.DLQ_ERROR_KIND, b"invalid"),
            (schemas.DLQ_SOURCE_TOPIC, settings.topic_payments.encode()),
            (schemas.DLQ_SOURCE_PARTITION, b"1"),
            (schemas.DLQ_SOURCE_OFFSET, b"7"),
            (schemas.DLQ_FAILED_AT, b"2026-11-24T09:30:00Z"),
        ]
        await producer.send(settings.topic_dlq, fixed_value, key=b"k-fixed", headers=earlier)
        await dlq.wait_for(lambda o: len(o.records) >= 2)

        code, listed = await run(settings, capsys, "list")
        assert code == report.OK
        by_kind = {d["kind"]: d for d in listed}
        assert set(by_kind) == {"not_json", "invalid"}
        bad_origin = by_kind["not_json"]["origin"]
        assert bad_origin == f"{settings.topic_payments}:0:0"
        assert by_kind["not_json"]["source_topic"] == settings.topic_payments
        assert by_kind["not_json"]["failed_at"].endswith("Z")
        code, only = await run(settings, capsys, "list", reason="not_json")
        assert [d["origin"] for d in only] == [bad_origin]

        code, shown = await run(settings, capsys, "show", origins=[bad_origin])
        assert code == report.OK
        assert shown["value"] == "{not json" and shown["key"] == "k-bad"
        assert shown["headers"] == {"traceparent": TRACE[1].decode()}
        code, _ = (
            await dlq_command(settings, "show", origins=[f"{settings.topic_payments}:2:9"]),
            None,
        )
        assert code == report.NOT_FOUND

        fixed_origin = f"{settings.topic_payments}:1:7"
        ends_before = await offsets.count(settings.topic_payments)
        code, dry = await run(settings, capsys, "redrive", origins=[fixed_origin], dry_run=True)
        assert code == report.OK and dry["redriven"][0]["sent_to"] is None
        assert await offsets.count(settings.topic_payments) == ends_before

        for _ in range(2):  # twice: the second is a duplicate and decides nothing
            code, sent = await run(settings, capsys, "redrive", origins=[fixed_origin])
            assert code == report.OK
            assert sent["redriven"][0]["sent_to"].startswith(settings.topic_payments + ":")
        await outcomes.wait_for(lambda o: "pi_fixed" in outcomes_by_payment(o.events))

        code, sent = await run(settings, capsys, "redrive", reason="not_json")
        (again,) = sent["redriven"]
        await dlq.wait_for(lambda o: len(o.records) >= 3)
        await wait_drained(settings)

    assert outcomes_by_payment(outcomes.events) == {"pi_fixed": [schemas.SESSION_CREATED]}
    back = dlq.records[2]
    assert back.value == b"{not json" and back.key == b"k-bad"
    names = [k for k, _ in back.headers]
    assert sorted(names) == sorted(["traceparent", *schemas.DLQ_HEADERS])  # once each
    origin = dict(back.headers)[schemas.DLQ_SOURCE_OFFSET].decode()
    assert again["sent_to"] == f"{settings.topic_payments}:0:{origin}"
