"""The proof's fault schedule: fixed by the seed, every kind the requested number of times, in
order within the run, broker faults only on the cluster, PostgreSQL's only on the HA pair."""

from __future__ import annotations

from collections import Counter

from tests.proof.faults import CLUSTER_KINDS, HA_KINDS, KINDS, schedule


def test_the_same_seed_makes_the_same_schedule_and_another_seed_another() -> None:
    assert schedule(4, 300, 2, 3) == schedule(4, 300, 2, 3)
    assert schedule(4, 300, 2, 3) != schedule(5, 300, 2, 3)


def test_every_kind_comes_as_often_as_asked_in_time_order_within_the_run() -> None:
    planned = schedule(11, 300, 2, 3)
    assert Counter(p.kind for p in planned) == dict.fromkeys(KINDS, 3)
    times = [p.at for p in planned]
    assert times == sorted(times) and 0 < times[0] and times[-1] < 300
    assert {p.instance for p in planned} <= {0, 1}
    assert all(p.customer is not None for p in planned if p.kind == "poison")
    assert len({p.customer for p in planned if p.kind == "poison"}) == 3


def test_broker_kills_only_on_the_cluster_and_on_one_of_its_three_brokers() -> None:
    assert not any(p.kind in CLUSTER_KINDS for p in schedule(2, 300, 2, 2))
    on_cluster = schedule(2, 300, 2, 4, cluster=True)
    brokers = [p.instance for p in on_cluster if p.kind == "broker_kill"]
    assert len(brokers) == 4 and set(brokers) <= {0, 1, 2}


def test_restarts_and_failovers_only_on_the_ha_pair_and_kafka_cuts_only_on_the_cluster() -> None:
    alone = schedule(3, 300, 2, 2)
    assert not any(p.kind in HA_KINDS + CLUSTER_KINDS for p in alone)
    everything = schedule(3, 300, 2, 2, cluster=True, ha=True)
    assert Counter(p.kind for p in everything) == dict.fromkeys(KINDS + HA_KINDS + CLUSTER_KINDS, 2)
    assert "kafka_cut" in CLUSTER_KINDS
    assert {"pg_restart", "failover", "read_only", "switchover"} == set(HA_KINDS)


def test_only_the_kinds_asked_for_are_scheduled_and_as_often_as_ever() -> None:
    planned = schedule(3, 90, 2, 2, cluster=True, ha=True, only=frozenset({"failover", "sigkill"}))
    assert Counter(p.kind for p in planned) == {"failover": 2, "sigkill": 2}
    assert [p.at for p in planned] == sorted(p.at for p in planned)


def test_kinds_the_topology_cannot_inject_are_not_scheduled_even_when_asked_for() -> None:
    assert schedule(3, 90, 2, 2, only=frozenset({"broker_kill", "pg_restart"})) == []


def test_a_read_only_primary_and_a_switchover_only_on_the_ha_pair() -> None:
    asked = frozenset({"read_only", "switchover"})
    planned = schedule(3, 90, 2, 2, ha=True, only=asked)
    assert Counter(p.kind for p in planned) == {"read_only": 2, "switchover": 2}
    assert schedule(3, 90, 2, 2, only=asked) == []
