"""The `decided` lines: written in one go per batch, with what the processor chain would write."""

from __future__ import annotations

import io
import sys
from collections.abc import Iterator
from uuid import UUID

import orjson
import pytest
import structlog

from service.core.batch import Decision
from service.core.outcomes import Kind, Reason, Verdict
from service.observe import logs

DECISIONS = (
    Decision(
        event_id='evt "1"\n',
        event_type="payment.completed",
        outcome=Verdict(Kind.CREATED),
        customer_id=UUID(int=1),
        session_id=UUID(int=2),
        payment_id="pi_é",
        purged=(UUID(int=3),),
    ),
    Decision(
        event_id="evt_2",
        event_type="mechanic.accepted",
        outcome=Verdict(Kind.ACCEPTANCE_REJECTED, Reason.UNKNOWN_SESSION),
        customer_id=None,
        session_id=UUID(int=4),
    ),
)


@pytest.fixture
def stderr(monkeypatch: pytest.MonkeyPatch) -> Iterator[io.BytesIO]:
    buffer = io.BytesIO()
    # Kept alive here: a TextIOWrapper closes its buffer when it is collected.
    wrapper = io.TextIOWrapper(buffer)
    monkeypatch.setattr(sys, "stderr", wrapper)
    # A fresh proxy: the module's own caches the configuration of whoever logged first.
    monkeypatch.setattr(logs, "_decisions", structlog.get_logger("service.decisions"))
    logs.configure_logging("INFO", "json")
    yield buffer
    structlog.reset_defaults()
    monkeypatch.setattr(logs, "_decision_lines", None)


def _lines(buffer: io.BytesIO) -> list[dict[str, object]]:
    lines = [orjson.loads(line) for line in buffer.getvalue().splitlines()]
    buffer.seek(0)
    buffer.truncate()
    return lines


def test_decided_lines_carry_the_fields_the_processor_chain_writes(
    stderr: io.BytesIO, monkeypatch: pytest.MonkeyPatch
) -> None:
    structlog.contextvars.bind_contextvars(instance="a")
    try:
        logs.log_decisions(DECISIONS)
        fast = _lines(stderr)
        monkeypatch.setattr(logs, "_decision_lines", None)  # the processor chain instead
        logs.log_decisions(DECISIONS)
        chain = _lines(stderr)
    finally:
        structlog.contextvars.clear_contextvars()

    assert len(fast) == len(chain) == 2
    for written, expected in zip(fast, chain, strict=True):
        assert str(written.pop("timestamp")).endswith("Z")
        expected.pop("timestamp")
        assert written == expected
    assert fast[0]["event_id"] == 'evt "1"\n' and fast[0]["purged"] == [str(UUID(int=3))]
    assert fast[1]["outcome"] == "acceptance_rejected:unknown_session"


def test_a_context_variable_named_like_a_line_field_gives_way_as_in_the_processor_chain(
    stderr: io.BytesIO, monkeypatch: pytest.MonkeyPatch
) -> None:
    structlog.contextvars.bind_contextvars(event_id="bound", outcome="bound")
    try:
        logs.log_decisions(DECISIONS)
        fast = _lines(stderr)
        monkeypatch.setattr(logs, "_decision_lines", None)
        logs.log_decisions(DECISIONS)
        chain = _lines(stderr)
    finally:
        structlog.contextvars.clear_contextvars()

    for line in (*fast, *chain):
        line.pop("timestamp")
    assert fast == chain
    assert [line["event_id"] for line in fast] == ['evt "1"\n', "evt_2"]


def test_no_decided_lines_above_info(stderr: io.BytesIO) -> None:
    logs.configure_logging("WARNING", "json")

    logs.log_decisions(DECISIONS)

    assert stderr.getvalue() == b""
