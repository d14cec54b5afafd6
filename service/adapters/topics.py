"""Creates the service's topics when they are missing; existing topics are left as they are."""

from __future__ import annotations

import structlog
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from service.settings import Settings

log = structlog.get_logger("service.topics")


def topic_names(settings: Settings) -> list[str]:
    return [*settings.input_topics, settings.topic_sessions, settings.topic_dlq]


async def ensure_topics(settings: Settings) -> list[str]:
    """Returns the names it created. Raises aiokafka's KafkaError when the broker refuses."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [name for name in topic_names(settings) if name not in existing]
        if missing:
            await admin.create_topics(
                [
                    NewTopic(
                        name,
                        num_partitions=settings.topic_partitions,
                        replication_factor=settings.topic_replication_factor,
                    )
                    for name in missing
                ]
            )
            log.info("topics_created", topics=missing)
        return missing
    finally:
        await admin.close()
