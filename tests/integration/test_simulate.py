"""`fulfillment simulate` on the real stack: it sends its stream and shows what came out."""

from __future__ import annotations

import re
from typing import Any

import pytest

from service.entrypoints.simulate import HINT, simulate
from tests.harness import running

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


async def test_a_simulation_prints_the_outcomes_of_what_it_sent(
    make_settings: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = make_settings()
    async with running(settings):
        code = await simulate(settings, rate=50, customers=5, duration=3, seed=1)
    out = capsys.readouterr().out
    assert code == 0
    assert "session.created" in out
    assert "session.rejected" in out
    final = next(line for line in out.splitlines() if line.startswith("final tally"))
    assert final.startswith("final tally: produced 150 |")
    assert HINT not in out


async def test_a_simulation_without_the_service_says_it_may_not_be_running(
    make_settings: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = make_settings()
    code = await simulate(settings, rate=20, customers=5, duration=1, seed=1)
    out = capsys.readouterr().out
    assert code == 0
    assert HINT in out
    assert "final tally: produced 20 |" in out


async def test_a_simulation_refuses_a_rate_of_zero(
    make_settings: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    code = await simulate(make_settings(), rate=0, customers=5, duration=1, seed=1)
    assert code == 2
    assert "--rate" in capsys.readouterr().err


async def test_a_short_simulation_shows_cancellations_by_the_purge_and_by_the_sweeper(
    make_settings: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    # The default TTL: without backdated payments nothing would expire in a run this short.
    settings = make_settings(request_ttl_seconds=900)
    async with running(settings):
        code = await simulate(settings, rate=20, customers=10, duration=8, seed=3)
    out = capsys.readouterr().out
    assert code == 0
    final = next(line for line in out.splitlines() if line.startswith("final tally"))
    cancelled = re.search(r"cancelled (\d+) \(by purge (\d+), by sweeper (\d+)\)", final)
    assert cancelled, final
    total, by_purge, by_sweeper = map(int, cancelled.groups())
    assert by_purge >= 1 and by_sweeper >= 1, final
    assert total >= by_purge + by_sweeper
    assert "cancelled by the purge, before the customer's new payment" in out
    assert "paid late: cancelled by the sweeper" in out
