"""Kafka administration: topics, their partitions, and the consumer group's members and offsets.

Every function takes a started `AIOKafkaAdminClient` (built by the one client factory) and
raises aiokafka's `KafkaError` subclasses when the broker refuses or cannot be reached.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import structlog
from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import TopicAlreadyExistsError, for_code
from aiokafka.structs import OffsetAndMetadata

log = structlog.get_logger("service.topics")


class TopicNotCreated(Exception):
    """The broker refused to create a topic: a setting or the cluster to fix, not an outage."""


async def ensure_topics(
    admin: AIOKafkaAdminClient,
    names: Sequence[str],
    *,
    partitions: int,
    replication_factor: int | None,
    configs: Mapping[str, Mapping[str, str]] | None = None,
) -> list[str]:
    """Create the topics of `names` that are missing, each with its `configs` entry (topic
    configs such as `max.message.bytes`); existing topics are left as they are. Returns the
    names it created. `replication_factor` None: the broker's `default.replication.factor`.
    Raises TopicNotCreated for a topic the broker refused to create."""
    existing = set(await admin.list_topics())
    missing = [name for name in names if name not in existing]
    if missing:
        response = await admin.create_topics(
            [
                NewTopic(
                    name,
                    num_partitions=partitions,
                    topic_configs=dict((configs or {}).get(name, {})),
                    **_replication(replication_factor),
                )
                for name in missing
            ]
        )
        for topic, error_code, *message in response.topic_errors:
            # Created meanwhile by another instance: as good as created here.
            if error_code and error_code != TopicAlreadyExistsError.errno:
                # e.g. a replication factor (the broker's default included) above its brokers
                text = message[0] if message else ""
                raise TopicNotCreated(
                    f"Kafka refused to create topic {topic!r}: {for_code(error_code).__name__}: "
                    f"{text} (FULFILLMENT_TOPIC_PARTITIONS, FULFILLMENT_TOPIC_REPLICATION_FACTOR;"
                    " or create it yourself and set FULFILLMENT_CREATE_TOPICS=false)"
                )
        log.info("topics_created", topics=missing)
    return missing


def _replication(factor: int | None) -> dict[str, Any]:
    """NewTopic's arguments for `factor`; None asks for the broker's default: -1 (KIP-464),
    which Kafka 4.1 honours on aiokafka's CreateTopics v3 too. aiokafka's NewTopic takes -1 only
    beside a replica assignment, so an empty one goes with it (the request carries none)."""
    if factor is None:
        return {"replication_factor": -1, "replica_assignments": {}}
    return {"replication_factor": factor}


async def missing_topics(admin: AIOKafkaAdminClient, names: Sequence[str]) -> list[str]:
    existing = set(await admin.list_topics())
    return [name for name in names if name not in existing]


async def topic_partitions(
    admin: AIOKafkaAdminClient, topics: Sequence[str]
) -> list[TopicPartition]:
    """The partitions of existing `topics`. Describing a missing topic would create it on a
    broker with auto.create.topics.enable, so the caller checks they exist first."""
    described = await admin.describe_topics(list(topics))
    return sorted(
        TopicPartition(t["topic"], p["partition"]) for t in described for p in t["partitions"]
    )


async def live_members(admin: AIOKafkaAdminClient, group_id: str) -> list[str]:
    """`member_id (client_id@host)` of each member of the group."""
    found = []
    for response in await admin.describe_consumer_groups([group_id]):
        for error_code, _group, _state, _protocol_type, _protocol, members, *_ in response.groups:
            if error_code:
                raise for_code(error_code)(f"describing consumer group {group_id!r}")
            found += [f"{m[0]} ({m[1]}@{m[2].lstrip('/')})" for m in members]
    return found


async def committed_offsets(
    admin: AIOKafkaAdminClient, group_id: str, partitions: Sequence[TopicPartition]
) -> Mapping[TopicPartition, OffsetAndMetadata]:
    """The group's committed offsets (offset -1 where it has none)."""
    result: Mapping[TopicPartition, OffsetAndMetadata] = await admin.list_consumer_group_offsets(
        group_id, partitions=list(partitions)
    )
    return result


async def topic_configs(admin: AIOKafkaAdminClient, topic: str) -> dict[str, str]:
    """The topic's configuration, name -> value (defaults included)."""
    (response,) = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
    ((error_code, error_message, _type, _name, entries),) = response.resources
    if error_code:
        raise for_code(error_code)(f"describing topic {topic!r}: {error_message}")
    return {entry[0]: entry[1] for entry in entries}
