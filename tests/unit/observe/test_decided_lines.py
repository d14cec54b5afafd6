"""The `decided` lines as an operator reads them: JSON with the service, its version and, for
an event that came with a traceparent, its trace id. Run in a fresh interpreter, as the
service configures logging once per process."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import version

import orjson

SCRIPT = """
from service.core.batch import Snapshot, decide_batch
from service.observe.logs import configure_logging, log_decisions
from tests.unit.core.builders import POLICY, payment

configure_logging("INFO", "json")
traced, plain = payment("pay-traced"), payment("pay-plain", event_id="plain")
result = decide_batch(Snapshot(), [traced, plain], policy=POLICY)
trace = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
log_decisions(result.decisions, {traced.id: trace})
"""


def test_a_decided_line_carries_service_version_and_the_trace_id_when_there_is_one() -> None:
    ran = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, timeout=60, check=False
    )
    assert ran.returncode == 0, ran.stderr.decode()
    traced, plain = [orjson.loads(line) for line in ran.stderr.splitlines()]

    assert traced["event"] == plain["event"] == "decided"
    assert traced["trace_id"] == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert "trace_id" not in plain
    for line in (traced, plain):
        assert (line["service"], line["version"]) == (
            "session-fulfillment",
            version("session-fulfillment"),
        )
