"""Topics the service creates take the broker's default replication factor (KIP-464) unless
FULFILLMENT_TOPIC_REPLICATION_FACTOR says otherwise: on one broker and on a managed cluster
alike, without a setting."""

from __future__ import annotations

from typing import Any

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from service.adapters.kafka.admin import TopicNotCreated
from service.bootstrap.factory import Clients
from service.bootstrap.fixable import one_line
from service.bootstrap.service import create_topics


async def broker_default_replication(admin: AIOKafkaAdminClient) -> int:
    metadata = await admin.describe_cluster()
    broker = str(metadata["brokers"][0]["node_id"])
    (response,) = await admin.describe_configs(
        [ConfigResource(ConfigResourceType.BROKER, broker, {"default.replication.factor": None})]
    )
    ((_code, _message, _type, _name, entries),) = response.resources
    return int(next(e[1] for e in entries if e[0] == "default.replication.factor"))


async def replicas_of(admin: AIOKafkaAdminClient, topics: list[str]) -> set[int]:
    described = await admin.describe_topics(topics)
    return {len(p["replicas"]) for t in described for p in t["partitions"]}


@pytest.mark.timeout(60)
async def test_created_topics_take_the_broker_s_default_replication_factor(
    make_settings: Any,
) -> None:
    settings = make_settings()
    assert settings.topic_replication_factor is None
    clients = Clients(settings)
    created = await create_topics(clients)
    assert sorted(created) == sorted(settings.topics.all())
    async with clients.started_admin() as admin:
        assert await replicas_of(admin, created) == {await broker_default_replication(admin)}


@pytest.mark.timeout(60)
async def test_a_replication_factor_set_is_the_one_topics_are_created_with(
    make_settings: Any,
) -> None:
    settings = make_settings(topic_replication_factor=1)
    clients = Clients(settings)
    created = await create_topics(clients)
    async with clients.started_admin() as admin:
        assert await replicas_of(admin, created) == {1}


@pytest.mark.timeout(60)
async def test_a_topic_the_broker_refuses_to_create_is_an_error_not_a_silent_success(
    make_settings: Any,
) -> None:
    settings = make_settings(topic_replication_factor=3)  # one broker: not reachable
    with pytest.raises(TopicNotCreated) as caught:
        await create_topics(Clients(settings))
    message = one_line(caught.value, settings)
    assert message is not None
    assert message.startswith("Kafka refused to create topic ")
    assert "InvalidReplicationFactorError" in message
    assert "FULFILLMENT_TOPIC_REPLICATION_FACTOR" in message
