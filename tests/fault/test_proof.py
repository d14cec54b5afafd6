"""A short seeded proof run (`make proof` at a small scale): two instances on the three-broker
cluster and the PostgreSQL primary with its synchronous standby, under every fault kind once
(PostgreSQL restarted, failed over, read-only and switched over, the instances cut off Kafka among
them), then a short soak,
each whole history checked against docs/contract.md with no violation, and the report's plots
written beside it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.cluster import Cluster
from tests.proof.faults import CLUSTER_KINDS, HA_KINDS, KINDS
from tests.proof.run import Plan
from tests.proof.soak import prove_and_soak
from tests.servers import Servers

pytestmark = pytest.mark.fault

SEED = 20261205
PLOTS = (
    "faults-latency.png",
    "faults-rss.png",
    "soak-rss.png",
    "soak-backlog.png",
    "soak-latency.png",
)


# PostgreSQL faults cost the most: after one the relay waits out its former leadership (32 s),
# and a failover or switchover re-makes the old primary as the standby (a base backup) before the
# next fault. Every kind once took 9 min 45 s on a loaded two-core machine.
@pytest.mark.timeout(1200)
async def test_a_short_seeded_proof_run_under_every_fault_kind_and_a_soak_finds_no_violation(
    servers: Servers, cluster: Cluster, tmp_path: Path
) -> None:
    plan = Plan(
        seed=SEED,
        duration=30.0,
        rate=20.0,
        run_dir=tmp_path / "proof",
        repeats=1,
        cluster=cluster,
        poison_expires_in=30.0,
        soak_seconds=20.0,
        soak_rate=100.0,
    )
    code = await prove_and_soak(plan, servers)
    report = (plan.run_dir / "report.md").read_text()
    assert code == 0, report
    # Every fault kind was injected and recovered from.
    for kind in KINDS + HA_KINDS + CLUSTER_KINDS:
        assert f"| {kind} |" in report, kind
    assert "failed:" not in report
    # The soak ran and was measured, and every plot the report shows is beside it.
    assert "## Soak" in report and "achieved**" in report and "MiB/min" in report
    shown = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", report)
    assert set(shown) == set(PLOTS), shown
    for name in shown:
        assert (plan.run_dir / name).stat().st_size > 0, name
