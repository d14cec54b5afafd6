"""The soak's figures: the lag and outbox read from the service's metrics page, the metrics port
found among an instance's sockets, the RSS slope after the warm-up, and the report's section."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Gauge, generate_latest

from service.observe import metrics
from tests.proof import soak_report
from tests.proof.checker import check
from tests.proof.report import latencies
from tests.proof.run import Plan
from tests.proof.samples import Sample, listening_ports, read_metrics, slope_per_minute
from tests.proof.soak import Soaked, logged, soak_plan
from tests.unit.proof.story import T0, Story, customer

READ = (
    "fulfillment_consumer_lag",
    "fulfillment_outbox_oldest_age_seconds",
    "fulfillment_outbox_backlog",
)


def test_the_sampler_reads_gauges_the_service_exposes() -> None:
    exposed = {family.name for family in metrics.REGISTRY.collect()}
    assert set(READ) <= exposed


def test_lag_is_summed_over_partitions_and_the_outbox_read_as_it_is() -> None:
    registry = CollectorRegistry()
    lag = Gauge(READ[0], "lag", ["topic", "partition"], registry=registry)
    lag.labels("payments", "0").set(7)
    lag.labels("payments", "1").set(5)
    Gauge(READ[1], "age", registry=registry).set(1.5)
    Gauge(READ[2], "rows", registry=registry).set(40)
    found = read_metrics(generate_latest(registry).decode())
    assert (found.lag, found.outbox_age, found.outbox_rows) == (12, 1.5, 40)
    assert read_metrics("").outbox_age is None


TCP = """\
  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 111 1
   1: 0100007F:A1B2 0100007F:2384 01 00000000:00000000 00:00000000 00000000  1000        0 222 1
   2: 0100007F:1F91 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 333 1
"""


def test_the_metrics_port_is_the_listening_socket_among_the_process_own() -> None:
    # 111 listens on 8080 and is the process's; 222 is its connection; 333 another's listener.
    assert listening_ports(TCP, {111, 222}) == [8080]
    assert listening_ports(TCP, {222}) == []


@given(
    st.floats(min_value=0, max_value=1000),
    st.floats(min_value=-50, max_value=50),
    st.integers(min_value=3, max_value=40),
)
def test_the_slope_of_points_on_a_line_is_its_slope(
    start: float, per_minute: float, n: int
) -> None:
    points = [(T0 + timedelta(seconds=10 * i), start + per_minute * i / 6) for i in range(n)]
    slope = slope_per_minute(points)
    assert slope is not None and abs(slope - per_minute) < 1e-6 * max(1, abs(per_minute))
    assert slope_per_minute(points[:2]) is None
    assert slope_per_minute([(T0, 1.0)] * 3) is None


def test_a_redelivery_s_outcome_is_not_counted_as_its_latency() -> None:
    story = Story()
    story.pay(customer(1), "p1")
    history = story.history()
    story.tick(30)
    again = replace(history.sent[0], kind="redelivery", sent_at=story.clock)
    split = latencies(replace(history, sent=[*history.sent, again]), [])
    assert len(split["outside faults"]) == 1 and split["outside faults"][0] > 0


def soaked(leak_mib_per_minute: float, warming_minutes: float = 1.0) -> Soaked:
    """A 10-minute soak at 1,000/s: RSS climbs 100 MiB over its first `warming_minutes`, then by
    `leak`."""
    plan = soak_plan(
        Plan(seed=7, duration=60, rate=20, run_dir=Path("/nonexistent"), soak_seconds=600)
    )
    samples = []
    for i in range(0, 121):
        at = T0 + timedelta(seconds=5 * i)
        minutes = 5 * i / 60
        warming = min(minutes / warming_minutes, 1)
        mib = 40 + 100 * warming + leak_mib_per_minute * max(0, minutes - warming_minutes)
        samples.append(Sample(at, {"instance-1": int(mib * 1024)}, 3.0 * (i % 4), 0.5, 10.0))
    history = Story().history()
    return Soaked(
        plan=plan,
        started=T0,
        stopped=T0 + timedelta(seconds=600),
        by_kind={"payment": 500_000, "acceptance": 99_000},
        latencies=[(T0 + timedelta(seconds=i), 0.01 * (1 + i % 100)) for i in range(10_000)],
        samples=samples,
        verdict=check(history),
        outputs=700_000,
        letters=9_000,
    )


def test_the_slope_leaves_out_the_warm_up_minute() -> None:
    flat, leaking = soaked(0.0).rss_slope("instance-1"), soaked(3.0).rss_slope("instance-1")
    assert flat is not None and abs(flat) < 0.1
    assert leaking is not None and abs(leaking - 3.0) < 0.1


@pytest.mark.parametrize("warming_minutes", [3.0, 4.5])
def test_a_warm_up_of_minutes_that_then_levels_off_is_flat_and_a_leak_still_shows(
    warming_minutes: float,
) -> None:
    """As measured at 1,000/s: the processes grow for three to five minutes, then stay flat."""
    flat = soaked(0.0, warming_minutes).rss_slope("instance-1")
    leaking = soaked(1.5, warming_minutes).rss_slope("instance-1")
    assert flat is not None and abs(flat) < 0.1
    assert leaking is not None and abs(leaking - 1.5) < 0.1


def test_the_soak_section_has_the_rate_latency_rss_backlog_and_the_plots() -> None:
    plots = [Path("/run/soak-rss.png"), Path("/run/soak-latency.png")]
    text = soak_report.render(soaked(0.0), plots)
    assert "599000 inputs in 600.0 s, **998/s achieved**" in text
    assert "50000 customers" in text  # 1,000 at 20/s, scaled to 1,000/s
    assert "| 10000 | 505 ms | 990 ms | 1000 ms |" in text
    assert "| instance-1 | 40.0 MiB | 140.0 MiB | 140.0 MiB | +0.00 MiB/min | yes |" in text
    assert "consumer lag, max: 9 messages" in text and "outbox oldest row, max: 0.5 s" in text
    assert "![soak-rss](soak-rss.png)" in text and "![soak-latency](soak-latency.png)" in text
    leaking = soak_report.render(soaked(3.0), "matplotlib is not installed")
    assert "+3.00 MiB/min | NO |" in leaking
    assert "Plots: none (matplotlib is not installed)." in leaking


def test_the_instances_warnings_errors_and_rebalances_are_counted_by_event(
    tmp_path: Path,
) -> None:
    log = tmp_path / "instance-1.1.log"
    log.write_text(
        "\n".join(
            [
                '{"event":"decided","level":"info"}',
                '{"partitions":[],"event":"partitions_revoked","level":"info"}',
                '{"event":"offset_commit_refused","level":"warning"}',
                '{"event":"offset_commit_refused","level":"warning"}',
                '{"event":"dead_lettered","level":"warning"}',
                '{"event":"instance_died","level":"error"}',
                "Traceback (most recent call last):",
            ]
        )
    )
    assert logged([log]) == {
        "instance_died": 1,
        "offset_commit_refused": 2,
        "partitions_revoked": 1,
    }
