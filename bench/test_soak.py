"""The bench's own check of bench/soak.py, kept beside it (tests/ do not import bench): RSS is
flat over a soak when every instance's least-squares slope over the second half is under
1 MiB/min, and a soak shorter or slower than issue 24's, or with outcomes missing, cannot meet
the target however flat it was."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from hypothesis import given
from hypothesis import strategies as st

from bench.latency import Latency
from bench.procstats import instance_rss_bytes, tree_rss_bytes
from bench.soak import MIB, RssSample, Soak, slope_mib_per_minute, verdict

BEGAN = 1_000_000.0  # epoch seconds of the first send


def _latency(
    *, rate: float = 1000.0, seconds: float = 600.0, received: int | None = None
) -> Latency:
    sent = int(rate * seconds)
    got = sent if received is None else received
    return Latency(
        target_rate=rate,
        sent=sent,
        send_seconds=seconds - 1 / rate,
        to_consumer_ms=[10.0] * got,
        to_relay_ms=[5.0] * got,
        relay_to_consumer_ms=[5.0] * got,
        windows=[],
        window=2.0,
        began=BEGAN,
    )


def _soak(*rss: dict[int, float], seconds: int = 600, latency: Latency | None = None) -> Soak:
    """One sample a second for `seconds`; each of `rss` maps an instance's pid to how fast its
    RSS grows from 100 MiB, in MiB per minute."""
    samples = [
        RssSample(
            BEGAN + second,
            {pid: int((100 + rate * second / 60) * MIB) for r in rss for pid, rate in r.items()},
        )
        for second in range(seconds)
    ]
    return Soak(latency or _latency(seconds=seconds), samples)


def test_a_steady_climb_has_its_slope_in_mib_per_minute() -> None:
    points = [(float(second), int((50 + 2.0 * second / 60) * MIB)) for second in range(120)]

    slope = slope_mib_per_minute(points)

    assert slope is not None
    assert abs(slope - 2.0) < 1e-6


def test_a_single_moment_has_no_slope() -> None:
    assert slope_mib_per_minute([]) is None
    assert slope_mib_per_minute([(5.0, MIB), (5.0, 2 * MIB)]) is None


@given(
    st.floats(min_value=-50, max_value=50),
    st.integers(min_value=10, max_value=500),
    st.integers(min_value=3, max_value=300),
)
def test_the_slope_of_a_straight_line_is_its_rate(rate: float, level: int, count: int) -> None:
    points = [(float(s), int((level + rate * s / 60) * MIB)) for s in range(count)]

    slope = slope_mib_per_minute(points)

    assert slope is not None
    assert abs(slope - rate) < 0.01 + abs(rate) * 1e-6 * count


def test_a_climb_in_the_first_half_only_is_warm_up_and_flat() -> None:
    samples = [RssSample(BEGAN + s, {7: int((100 + min(s, 299) * 0.2) * MIB)}) for s in range(600)]
    soak = Soak(_latency(), samples)

    (trend,) = soak.trends()

    assert trend.first == 100 * MIB and trend.peak == trend.last
    assert trend.slope is not None and abs(trend.slope) < 0.01
    assert verdict(soak) == ("+0.00 MiB/min", True)


def test_growth_through_the_second_half_is_not_flat() -> None:
    soak = _soak({7: 1.5})

    value, ok = verdict(soak)

    assert value == "+1.50 MiB/min"
    assert ok is False


def test_every_instance_must_be_flat_each_judged_on_its_own() -> None:
    soak = _soak({30: 0.2}, {12: 1.2})

    trends = soak.trends()

    assert [(t.instance, t.pid, t.flat) for t in trends] == [(1, 12, False), (2, 30, True)]
    assert verdict(soak) == ("+1.20 MiB/min", False)


def test_just_under_one_mib_per_minute_is_flat() -> None:
    assert verdict(_soak({7: 0.99}, {8: -3.0})) == ("+0.99 MiB/min", True)


def test_a_soak_shorter_than_ten_minutes_is_not_met_however_flat() -> None:
    soak = _soak({7: 0.0}, seconds=300)

    assert soak.shortfalls() == ["300 s, not 600"]
    assert verdict(soak) == ("+0.00 MiB/min", False)


def test_a_soak_under_98_percent_of_the_rate_is_not_met() -> None:
    slow = _latency(rate=970.0)

    assert _soak({7: 0.0}, latency=slow).shortfalls() == ["at 970/s"]
    assert _soak({7: 0.0}, latency=_latency(rate=980.0)).shortfalls() == []


def test_a_soak_with_outcomes_missing_is_not_met() -> None:
    soak = _soak({7: 0.0}, latency=_latency(received=599_999))

    assert soak.shortfalls() == ["599,999 of 600,000 outcomes"]
    assert verdict(soak)[1] is False


def test_no_soak_is_not_run_and_a_soak_without_samples_is_not_met() -> None:
    assert verdict(None) == ("not run", None)
    assert verdict(Soak(_latency(), [])) == ("no slope", False)


def test_the_instances_add_up_to_the_whole_tree_each_child_with_its_own() -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", "import time; b = bytearray(64 << 20); time.sleep(30)"],
        stdin=subprocess.PIPE,
    )
    try:
        for _ in range(200):  # the child touching its 64 MiB
            sizes = instance_rss_bytes(os.getpid()) or {}
            if sizes.get(child.pid, 0) >= 64 << 20:
                break
            time.sleep(0.05)
        total = tree_rss_bytes(os.getpid())
    finally:
        child.kill()
        child.wait()

    assert set(sizes) >= {os.getpid(), child.pid}
    assert total is not None and abs(total - sum(sizes.values())) < 16 << 20
