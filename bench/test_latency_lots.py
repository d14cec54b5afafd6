"""The bench's own check of how bench/latency.py builds a steady load's payments (tests/ do not
import bench): in lots, every payment and event id is new and the business times follow the
schedule; in one lot, the latency phase's payments are the ones it always sent."""

from __future__ import annotations

from datetime import timedelta
from itertools import pairwise

import orjson

from bench.latency import Payments, payment_lots
from bench.service_api import payments_only


async def _all(count: int, size: int, *, rate: float, split: bool) -> list[Payments]:
    return [lot async for lot in payment_lots(count, size, "t", rate=rate, seed=5, split=split)]


async def test_lots_add_up_to_the_load_with_no_id_repeated() -> None:
    lots = await _all(2_500, 1_000, rate=1000.0, split=True)

    payments = [p for lot in lots for p in lot]
    events = {orjson.loads(m.value)["id"] for m, _ in payments}
    assert [len(lot) for lot in lots] == [1_000, 1_000, 500]
    assert len({payment_id for _, payment_id in payments}) == len(events) == 2_500


async def test_each_lot_follows_the_schedule_in_business_time() -> None:
    lots = await _all(3_000, 1_000, rate=500.0, split=True)

    times = [m.time for lot in lots for m, _ in lot]
    steps = {later - earlier for earlier, later in pairwise(times)}
    assert steps == {timedelta(seconds=1 / 500)}


async def test_in_one_lot_the_payments_are_the_latency_phases_own() -> None:
    (lot,) = await _all(800, 800, rate=200.0, split=False)

    spacing = timedelta(seconds=1 / 200)
    expected = payments_only(800, 200, start=lot[0][0].time, seed=5, topic="t", spacing=spacing)
    assert [m.value for m, _ in lot] == [m.value for m in expected]
    assert [m.key for m, _ in lot] == [m.key for m in expected]
