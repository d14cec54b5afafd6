"""What the integration and fault tests look at besides `sessions.events`: the consumer group's
committed offsets, the topics' end offsets, the database's tables, and the wall clock."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime
from typing import Any

import asyncpg
from aiokafka import TopicPartition

import schemas
from service.bootstrap.factory import Clients
from service.config.settings import Settings


class Crash(BaseException):
    """The process dying at that line: not an `Exception`, so no retry loop catches it."""


def wall_now() -> datetime:
    """Business times near the wall clock: the sweeper decides what is due by the wall clock,
    so a fixed date would be swept (or never swept) depending on the day the suite runs."""
    return datetime.now(UTC).replace(microsecond=0)


async def wait_until(
    check: Callable[[], Awaitable[bool]], *, within: float = 20.0, every: float = 0.1
) -> None:
    """Until `check()` is true; raises TimeoutError after `within` seconds."""
    async with asyncio.timeout(within):
        while True:
            if await check():
                return
            await asyncio.sleep(every)


class Offsets:
    """The group's committed offsets and the topics' end offsets, read from the broker."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        clients = Clients(settings)
        self._admin = clients.admin()
        self._consumer = clients.consumer(group_id=None)

    async def __aenter__(self) -> Offsets:
        await self._admin.start()
        await self._consumer.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self._consumer.stop()
        await self._admin.close()

    def partitions(self, topics: Iterable[str]) -> list[TopicPartition]:
        count = self.settings.topic_partitions
        return [TopicPartition(t, p) for t in topics for p in range(count)]

    async def committed(self) -> dict[TopicPartition, int]:
        found = await self._admin.list_consumer_group_offsets(self.settings.group_id)
        return {tp: meta.offset for tp, meta in found.items() if meta.offset >= 0}

    async def ends(self, topics: Iterable[str]) -> dict[TopicPartition, int]:
        ends: dict[TopicPartition, int] = await self._consumer.end_offsets(self.partitions(topics))
        return ends

    async def lag(self) -> int:
        """Input messages not yet committed by the group."""
        ends = await self.ends(self.settings.topics.input_types())
        committed = await self.committed()
        return sum(end - committed.get(tp, 0) for tp, end in ends.items())

    async def count(self, topic: str) -> int:
        """Messages ever written to `topic`."""
        return sum((await self.ends([topic])).values())


async def fetchval(dsn: str, query: str, *args: Any) -> Any:
    """One value on a connection of its own (pools do not survive the outage tests)."""
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetchval(query, *args)
    finally:
        await conn.close()


async def wait_drained(settings: Settings, *, within: float = 30.0) -> None:
    """Until every input message is committed and every outbox row published."""
    async with Offsets(settings) as offsets:

        async def drained() -> bool:
            if await offsets.lag():
                return False
            return bool(await fetchval(settings.dsn, "SELECT count(*) = 0 FROM outbox"))

        await wait_until(drained, within=within, every=0.2)


def outcomes_by_payment(events: Iterable[schemas.OutputEvent]) -> dict[str, list[str]]:
    """payment_id -> the types of the created/rejected events published for it."""
    found: dict[str, list[str]] = {}
    for event in events:
        if isinstance(event.data, schemas.SessionCreated | schemas.SessionRejected):
            found.setdefault(event.data.payment_id, []).append(event.type)
    return found
