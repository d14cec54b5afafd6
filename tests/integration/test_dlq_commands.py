"""`fulfillment dlq list | show | redrive` end to end on the real Kafka and PostgreSQL: a
dead letter is listed with its reason, origin and time, shown byte for byte, and redriven to its
original topic without the error headers; a fixed message is then fulfilled once, however often
it is redriven, and one that still fails is back on the DLQ with its error headers once, in the
same lineage: a redrive sends only the latest letter of each original, refuses a placeholder,
and refuses a letter older than the dedupe retention unless forced."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from structlog.testing import capture_logs

import schemas
from service.entrypoints import output
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
            (schemas.DLQ_FAILED_AT, schemas.rfc3339_utc(wall_now()).encode()),
        ]
        await producer.send(settings.topic_dlq, fixed_value, key=b"k-fixed", headers=earlier)
        await dlq.wait_for(lambda o: len(o.records) >= 2)

        code, listed = await run(settings, capsys, "list")
        assert code == output.OK
        by_kind = {d["kind"]: d for d in listed}
        assert set(by_kind) == {"not_json", "invalid"}
        bad_origin = by_kind["not_json"]["origin"]
        assert bad_origin == f"{settings.topic_payments}:0:0"
        assert by_kind["not_json"]["source_topic"] == settings.topic_payments
        assert by_kind["not_json"]["failed_at"].endswith("Z")
        code, only = await run(settings, capsys, "list", reason="not_json")
        assert [d["origin"] for d in only] == [bad_origin]

        code, shown = await run(settings, capsys, "show", origins=[bad_origin])
        assert code == output.OK
        assert shown["value"] == "{not json" and shown["key"] == "k-bad"
        assert shown["headers"] == {"traceparent": TRACE[1].decode()}
        code, _ = (
            await dlq_command(settings, "show", origins=[f"{settings.topic_payments}:2:9"]),
            None,
        )
        assert code == output.NOT_FOUND

        fixed_origin = f"{settings.topic_payments}:1:7"
        ends_before = await offsets.count(settings.topic_payments)
        code, dry = await run(settings, capsys, "redrive", origins=[fixed_origin], dry_run=True)
        assert code == output.OK and dry["redriven"][0]["sent_to"] is None
        assert await offsets.count(settings.topic_payments) == ends_before

        for _ in range(2):  # twice: the second is a duplicate and decides nothing
            code, sent = await run(settings, capsys, "redrive", origins=[fixed_origin])
            assert code == output.OK
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


async def plain(settings: Any, capsys: pytest.CaptureFixture[str], action: str, **kw: Any) -> Any:
    capsys.readouterr()
    with capture_logs():
        code = await dlq_command(settings, action, **kw)
        return code, capsys.readouterr().out


async def test_redriving_all_of_a_letter_that_still_fails_adds_one_letter_per_run_in_its_lineage(
    make_settings: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    # Letters were told apart by their origin only: each --all sent the first letter and every
    # re-failure again, 1, 2, 4, 8 ... copies.
    settings = make_settings()
    first = f"{settings.topic_payments}:0:0"
    async with Producer(settings) as producer, Offsets(settings) as offsets, running(settings):
        await producer.send(settings.topic_payments, b"{still not json", key=b"k", partition=0)
        await wait_drained(settings)
        letters = [await offsets.count(settings.topic_dlq)]
        for _ in range(3):
            with capture_logs():
                code = await dlq_command(settings, "redrive", everything=True)
            assert code == output.OK
            await wait_drained(settings)  # decoded again, dead-lettered again, committed
            letters.append(await offsets.count(settings.topic_dlq))
        code, listed = await run(settings, capsys, "list")
        code_text, text = await plain(settings, capsys, "list")
        # Naming the first letter redrives the latest of its lineage.
        _, named = await run(settings, capsys, "redrive", origins=[first], dry_run=True)

    assert letters == [1, 2, 3, 4]
    assert code == code_text == output.OK
    (row,) = listed
    assert row["original"] == first and row["attempts"] == 4
    assert row["origin"].startswith(f"{settings.topic_payments}:")
    assert row["origin"] != first and not row["placeholder"]
    header, line = text.splitlines()
    assert header.split()[:3] == ["original", "attempts", "latest"]
    assert line.split()[:4] == [first, "4", row["origin"], "not_json"]
    ((redriven),) = named["redriven"]
    assert (redriven["origin"], redriven["original"]) == (row["origin"], first)


def letter(
    settings: Any, value: bytes, *, offset: int, failed_at: datetime, max_bytes: int = 1_048_576
) -> tuple[bytes, bytes | None, list[tuple[str, bytes]]]:
    """A dead letter as the service writes it, for a message at payments:2:`offset`."""
    error = schemas.DecodeError(schemas.DecodeErrorKind.NOT_JSON, "not JSON: expected value")
    sent, key, headers = schemas.dlq_record(
        value,
        f"k-{offset}".encode(),
        [],
        topic=settings.topic_payments,
        partition=2,
        offset=offset,
        error=error,
        failed_at=failed_at,
        max_bytes=max_bytes,
    )
    assert sent is not None
    return sent, key, [(k, v or b"") for k, v in headers]


async def test_a_placeholder_is_listed_but_refused_for_redrive_with_its_reason(
    make_settings: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = make_settings()
    now = datetime.now(UTC)
    big = letter(settings, b"x" * 20_000, offset=5, failed_at=now, max_bytes=16_384)
    small = letter(settings, b"{oops", offset=6, failed_at=now)
    async with Producer(settings) as producer, Offsets(settings) as offsets:
        for value, key, headers in (big, small):
            await producer.send(settings.topic_dlq, value, key=key, headers=headers)
        _, listed = await run(settings, capsys, "list")
        code, result = await run(settings, capsys, "redrive", everything=True)
        sent_count = await offsets.count(settings.topic_payments)
        code_text, text = await plain(
            settings, capsys, "redrive", origins=[f"{settings.topic_payments}:2:5"]
        )

    placeholder = f"{settings.topic_payments}:2:5"
    assert sent_count == 1  # the placeholder's JSON never reached the input topic
    assert code == output.PARTLY
    assert {r["origin"]: r["placeholder"] for r in listed} == {
        placeholder: True,
        f"{settings.topic_payments}:2:6": False,
    }
    assert [r["origin"] for r in result["redriven"]] == [f"{settings.topic_payments}:2:6"]
    (refused,) = result["refused"]
    assert refused["origin"] == placeholder
    assert "placeholder" in refused["refused"] and placeholder in refused["refused"]
    assert code_text == output.PARTLY
    assert "refused: a placeholder" in text


async def test_a_letter_older_than_the_dedupe_retention_is_refused_unless_forced(
    make_settings: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = make_settings(dedupe_retention_seconds=7 * 24 * 3600)
    now = datetime.now(UTC)
    old = letter(settings, b"{old", offset=1, failed_at=now - timedelta(days=8))
    young = letter(settings, b"{young", offset=2, failed_at=now - timedelta(days=6))
    old_origin = f"{settings.topic_payments}:2:1"
    async with Producer(settings) as producer, Offsets(settings) as offsets:
        for value, key, headers in (old, young):
            await producer.send(settings.topic_dlq, value, key=key, headers=headers)
        code, result = await run(settings, capsys, "redrive", everything=True)
        after_all = await offsets.count(settings.topic_payments)
        refused_code, _ = await run(settings, capsys, "redrive", origins=[old_origin])
        after_named = await offsets.count(settings.topic_payments)
        forced_code, forced = await run(
            settings, capsys, "redrive", origins=[old_origin], force=True
        )
        after_forced = await offsets.count(settings.topic_payments)

    assert code == output.PARTLY
    assert [r["origin"] for r in result["redriven"]] == [f"{settings.topic_payments}:2:2"]
    (refused,) = result["refused"]
    assert refused["origin"] == old_origin
    assert "FULFILLMENT_DEDUPE_RETENTION_SECONDS=604800" in refused["refused"]
    assert "decided a second time" in refused["refused"]
    assert (refused_code, after_all, after_named) == (output.PARTLY, 1, 1)
    assert forced_code == output.OK
    assert forced["refused"] == []
    assert forced["redriven"][0]["sent_to"].startswith(f"{settings.topic_payments}:")
    assert after_forced == 2
