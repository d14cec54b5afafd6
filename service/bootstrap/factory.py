"""The one place that turns `Settings` into clients: every aiokafka consumer, producer and admin
client, and the asyncpg pool. Connection and security options therefore live here alone."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient

from service.adapters import postgres
from service.settings import Settings


class Clients:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def _kafka(self) -> dict[str, Any]:
        """What every Kafka client needs to reach and trust the cluster."""
        return {"bootstrap_servers": self.settings.kafka_bootstrap_servers}

    def consumer(self, **overrides: Any) -> AIOKafkaConsumer:
        """A member of the service's group by default; `group_id=None` for a plain reader."""
        options: dict[str, Any] = {
            "group_id": self.settings.group_id,
            "enable_auto_commit": False,
            "auto_offset_reset": "earliest",
            # Room for a batch's share of any partition (2,000 events are under 1 MiB); more only
            # buffers records the loop cannot take yet: 4 MiB cost about 25 MiB of RSS per
            # consumer. A single larger message is still fetched whole (the broker's rule).
            "max_partition_fetch_bytes": 1024 * 1024,
            "fetch_max_wait_ms": 100,
            # Several consumers per process join one after another; a short heartbeat lets the
            # group settle in about a second instead of three.
            "heartbeat_interval_ms": 1000,
        }
        return AIOKafkaConsumer(**(self._kafka() | options | overrides))

    def producer(self, **overrides: Any) -> AIOKafkaProducer:
        options: dict[str, Any] = {
            "enable_idempotence": True,
            "acks": "all",
            "linger_ms": 2,
            # Room for a whole round of the outbox per partition, under the broker's 1 MiB limit.
            "max_batch_size": 900_000,
        }
        return AIOKafkaProducer(**(self._kafka() | options | overrides))

    def admin(self) -> AIOKafkaAdminClient:
        return AIOKafkaAdminClient(**self._kafka())

    @asynccontextmanager
    async def started_admin(self) -> AsyncIterator[AIOKafkaAdminClient]:
        admin = self.admin()
        await admin.start()
        try:
            yield admin
        finally:
            await admin.close()

    async def pool(self, *, size: int) -> postgres.Pool:
        return await postgres.create_pool(self.settings.dsn, size=size)
