"""The three-broker cluster the partial-failure tests run on is real: three copies of every
partition, two of them needed for an acknowledged write, leaders that move when a broker stops,
and a broker that catches up when it comes back."""

from __future__ import annotations

import uuid

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import NotEnoughReplicasError

from service.adapters.kafka.admin import topic_configs
from tests.cluster import NODES, Cluster

pytestmark = pytest.mark.integration


def new_topic() -> str:
    return f"cluster.{uuid.uuid4().hex}"


async def written_to_partition_0(cluster: Cluster, topic: str) -> None:
    """The topic exists (auto-created, with the cluster's defaults) with all three replicas of
    partition 0 in sync."""
    producer = AIOKafkaProducer(bootstrap_servers=cluster.bootstrap, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(topic, b"first", partition=0)
    finally:
        await producer.stop()
    await cluster.wait_for_isr(topic, 0)


async def test_the_cluster_has_three_brokers_and_a_new_topic_gets_three_replicas_and_min_isr_2(
    cluster: Cluster,
) -> None:
    assert await cluster.serving_brokers() == set(NODES)
    topic = new_topic()
    await written_to_partition_0(cluster, topic)
    admin = AIOKafkaAdminClient(bootstrap_servers=cluster.bootstrap)
    await admin.start()
    try:
        (described,) = await admin.describe_topics([topic])
        configs = await topic_configs(admin, topic)
    finally:
        await admin.close()
    assert {len(p["replicas"]) for p in described["partitions"]} == {3}
    assert configs["min.insync.replicas"] == "2"


@pytest.mark.fault
@pytest.mark.parametrize("how", ["stopped", "killed"])
async def test_with_a_partitions_leader_down_an_acks_all_write_succeeds_on_a_new_leader_and_the_broker_rejoins_the_isr(  # noqa: E501
    cluster: Cluster, how: str
) -> None:
    topic = new_topic()
    await written_to_partition_0(cluster, topic)
    leader = await cluster.leader_of(topic, 0)
    producer = AIOKafkaProducer(bootstrap_servers=cluster.bootstrap, acks="all")
    await producer.start()
    try:
        async with cluster.brokers_down(leader, kill=how == "killed"):
            written = await producer.send_and_wait(topic, b"second", partition=0)
            assert written.offset == 1
            # The metadata any broker serves shows the move (each learns it on its own).
            await cluster.wait_for(
                topic,
                0,
                lambda s: s.leader not in (leader, -1) and leader not in s.isr,
                f"led by another node with {leader} out of the ISR",
                within=30,
            )
        rejoined = await cluster.wait_for_isr(topic, 0)
    finally:
        await producer.stop()
    assert leader in rejoined.isr


@pytest.mark.fault
async def test_with_two_brokers_stopped_an_acks_all_write_is_refused_for_not_enough_replicas(
    cluster: Cluster,
) -> None:
    topic = new_topic()
    await written_to_partition_0(cluster, topic)
    leader = await cluster.leader_of(topic, 0)
    first, second = (node for node in NODES if node != leader)
    # Short: aiokafka retries NOT_ENOUGH_REPLICAS until the batch is this old, then raises it.
    producer = AIOKafkaProducer(
        bootstrap_servers=cluster.bootstrap, acks="all", request_timeout_ms=3000
    )
    await producer.start()
    try:
        async with cluster.brokers_down(first, second):
            alone = await cluster.wait_for_isr(topic, 0, size=1)
            assert alone.isr == (leader,)
            with pytest.raises(NotEnoughReplicasError):
                await producer.send_and_wait(topic, b"refused", partition=0)
    finally:
        await producer.stop()
