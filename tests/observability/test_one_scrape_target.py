"""`fulfillment run` with two instances is one scrape target: the service's port serves the sum of
both instances' metrics, equal to the events decided, and a real Prometheus scraping that one
port sees the same; an event parked behind a poison event is counted as parked; /healthz and
/readyz on that port answer for both instances; the shared metrics directory goes with the run.
"""

from __future__ import annotations

import os
import signal
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.commands import Running, running
from tests.harness import Outcomes, Producer
from tests.observability import prometheus
from tests.observability.service_http import answer, scrape, two_free_ports, until, value
from tests.settings_env import environment_of

pytestmark = pytest.mark.integration

PAYMENTS = 40


def _child_of(run: Running) -> int:
    """The pid of instance 1, the one process `fulfillment run` forked."""
    pid = run.process.pid
    (child,) = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return int(child)


def _created(samples: dict[Any, float]) -> float:
    return value(samples, "fulfillment_events_total", type="payment.completed", outcome="created")


def _parked(samples: dict[Any, float]) -> float:
    return value(samples, "fulfillment_events_total", type="payment.completed", outcome="parked")


@pytest.mark.timeout(240)
async def test_two_instances_are_one_scrape_target_whose_sums_are_the_decided_events(
    make_settings: Any,
) -> None:
    port = two_free_ports()
    poisoned = uuid.uuid4()
    settings = make_settings(
        processes=2,
        consumers=1,
        http_port=port,
        failpoint_customers=frozenset({poisoned}),
        poison_retries=1,
        retry_backoff_max_seconds=0.3,
    )
    service, instance_1 = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{port + 1}"
    customers = [uuid.uuid4() for _ in range(PAYMENTS)]
    async with (
        Outcomes(settings) as outcomes,
        Producer(settings) as producer,
        running("run", env=environment_of(settings)) as run,
    ):
        await until(lambda: answer(service, "/readyz"), lambda r: r[0] == 200, 90)
        for i, customer in enumerate(customers):
            await producer.pay(customer, f"pi_one_{i}", time=datetime.now(UTC))
        await producer.pay(poisoned, "pi_poisoned", time=datetime.now(UTC))
        await outcomes.wait_count(PAYMENTS, within=60)
        summed = await until(
            lambda: scrape(service), lambda s: _created(s) >= PAYMENTS and _parked(s) >= 1, 60
        )
        alone = await scrape(instance_1)

        with prometheus.running(f"127.0.0.1:{port}") as seen:
            job = f'job="{prometheus.JOB}"'
            created = seen.wait_until(
                f'sum(fulfillment_events_total{{{job},outcome="created"}}) >= {PAYMENTS}'
            )
            parked = seen.query(f'sum(fulfillment_events_total{{{job},outcome="parked"}})')
            (target,) = seen.api("targets")["activeTargets"]

        # An instance that stops answering makes the service's port unready and not alive.
        child = _child_of(run)
        os.kill(child, signal.SIGSTOP)
        try:
            unready = await until(lambda: answer(service, "/readyz"), lambda r: r[0] == 503, 20)
            not_alive = await answer(service, "/healthz")
            unready_metric = value(await scrape(service), "fulfillment_ready")
        finally:
            os.kill(child, signal.SIGCONT)
        back = await until(lambda: answer(service, "/readyz"), lambda r: r[0] == 200, 30)
        ready_metric = value(await scrape(service), "fulfillment_ready")

    assert run.finished is not None and run.finished.returncode == 0, run.finished
    assert _created(summed) == PAYMENTS == len(outcomes.events)
    assert _parked(summed) == 1
    assert (
        value(summed, "fulfillment_events_total", type="payment.completed", outcome="duplicate")
        == 0
    )
    assert value(summed, "fulfillment_parked_customers") == 1
    # Both instances decided some of them: the one port's count is a sum, not one instance's.
    assert 0 < _created(alone) < PAYMENTS
    assert float(created[0]["value"][1]) == PAYMENTS
    assert float(parked[0]["value"][1]) == 1
    assert target["health"] == "up" and target["scrapeUrl"].endswith(f":{port}/metrics")
    assert "instance 1" in unready[1]["problems"], unready
    assert not_alive[0] == 503
    assert unready_metric == 0
    assert back == (200, {"ready": True})
    assert ready_metric == 1
    (started,) = [
        orjson.loads(line)
        for line in run.finished.lines
        if line.startswith("{") and orjson.loads(line).get("event") == "instances"
    ]
    assert not os.path.exists(started["metrics_dir"])  # noqa: ASYNC240 (after the run, once)
