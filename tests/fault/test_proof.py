"""A short seeded proof run (`make proof` at a small scale): two instances on the three-broker
cluster and the PostgreSQL primary with its synchronous standby, under every fault kind once
(PostgreSQL restarted and failed over, the instances cut off Kafka among them), the whole history
checked against docs/contract.md with no violation."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cluster import Cluster
from tests.proof.faults import CLUSTER_KINDS, HA_KINDS, KINDS
from tests.proof.run import Plan, prove
from tests.servers import Servers

pytestmark = pytest.mark.fault

SEED = 20261205


# PostgreSQL faults cost the most: after one the relay waits out its former leadership (32 s),
# and a failover re-makes the old primary as the standby (a base backup) before the next fault.
@pytest.mark.timeout(720)
async def test_a_short_seeded_proof_run_under_every_fault_kind_finds_no_violation(
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
    )
    code = await prove(plan, servers)
    report = (plan.run_dir / "report.md").read_text()
    assert code == 0, report
    # Every fault kind was injected and recovered from.
    for kind in KINDS + HA_KINDS + CLUSTER_KINDS:
        assert f"| {kind} |" in report, kind
    assert "failed:" not in report
