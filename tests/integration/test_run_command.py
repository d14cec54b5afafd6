"""`fulfillment run` as an operator starts it: a real process (here two instances, one per
core), deciding, then stopping cleanly with exit code 0 on SIGTERM (R9)."""

from __future__ import annotations

import asyncio
import ctypes
import signal
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

import schemas
from service.bootstrap.allocator import GLIBC_VARIABLES
from tests.harness import Outcomes, Producer
from tests.settings_env import environment_of

pytestmark = pytest.mark.integration

FULFILLMENT = Path(sys.prefix) / "bin" / "fulfillment"
HAS_MALLOPT = hasattr(ctypes.CDLL(None), "mallopt")  # glibc


def environment(settings: Any) -> dict[str, str]:
    # Without glibc's own allocator variables, which would turn the service's tuning off.
    return {k: v for k, v in environment_of(settings).items() if k not in GLIBC_VARIABLES}


@pytest.mark.timeout(90)
async def test_two_instances_decide_every_payment_once_and_exit_0_on_sigterm(
    make_settings: Any,
) -> None:
    settings = make_settings(processes=2, consumers=1)
    customers = [uuid.uuid4() for _ in range(40)]
    async with Outcomes(settings) as outcomes, Producer(settings) as producer:
        process = await asyncio.create_subprocess_exec(
            str(FULFILLMENT),
            "run",
            env=environment(settings),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            for i, customer in enumerate(customers):
                await producer.pay(customer, f"pi_run_{i}", time=datetime.now(UTC))
            await outcomes.wait_count(len(customers), within=45)
        finally:
            process.send_signal(signal.SIGTERM)
            _, stderr = await asyncio.wait_for(process.communicate(), timeout=30)
    assert process.returncode == 0, stderr.decode()[-2000:]
    created = outcomes.of_type(schemas.SESSION_CREATED)
    assert sorted(e.data.customer_id for e in created) == sorted(customers)  # type: ignore[union-attr]
    lines = [orjson.loads(line) for line in stderr.splitlines() if line.startswith(b"{")]
    assert sum(1 for line in lines if line.get("event") == "stopped") == 2
    started = [line for line in lines if line.get("event") == "started"]
    # Each instance fixed glibc's thresholds itself (service/bootstrap/allocator.py).
    assert [line["large_buffers_returned"] for line in started] == [HAS_MALLOPT] * 2
    assert sum(1 for line in lines if line.get("event") == "decided") == len(customers)
