"""What a rebuild and a restore read: the changelog (`sessions.events`) and the input topics,
whole, up to the ends they had when the command started, through the one client factory; the
parked events of the database being replaced; and the empty database they write into."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

import asyncpg
from aiokafka import TopicPartition
from pydantic import ValidationError

import schemas
from service.adapters import postgres
from service.adapters.kafka.admin import committed_offsets, missing_topics, topic_partitions
from service.adapters.kafka.topic_reader import read_until
from service.adapters.postgres import Pool
from service.adapters.postgres.migrate import DatabaseBehind, check_migrations
from service.adapters.postgres.target import prepare_empty
from service.bootstrap.factory import Clients
from service.bootstrap.reach import Unreachable
from service.config.settings import Settings
from service.core.parking import ParkedEvent
from service.reprocess.changelog import Published, published
from service.reprocess.replay_order import InputRecord


def replaced(settings: Settings, **changes: Any) -> Settings:
    """`settings` with `changes`, validated again (what derives from them, the topic set and
    the policy, derives anew; `model_copy` would keep the cached ones)."""
    return Settings.model_validate(settings.model_dump() | changes)


class BadTarget(Exception):
    """The database of `--database-url` cannot be used; the message names why, not the URL
    (it may hold a password). `exit_code`: 2 for a bad argument, 1 for a refusing database."""

    def __init__(self, message: str, *, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


async def open_empty_target(settings: Settings, database_url: str) -> tuple[Clients, Pool]:
    """Clients whose pool is the database of `--database-url`, and that pool (size 2),
    migrated and holding nothing decided yet: what a rebuild or a restore writes into.
    Raises BadTarget."""
    try:
        clients = Clients(replaced(settings, database_url=database_url))
    except ValidationError:
        raise BadTarget(
            "--database-url: not a PostgreSQL URL (postgresql://user@host/db)", exit_code=2
        ) from None
    try:
        pool = await clients.pool(size=2)
    except (OSError, ConnectionError, asyncpg.PostgresError) as error:
        raise BadTarget(f"cannot use the database of --database-url: {error}") from None
    try:
        used = await prepare_empty(pool)
    except (asyncpg.PostgresError, OSError) as error:
        await pool.close()
        raise BadTarget(f"the database of --database-url failed: {error}") from None
    except BaseException:
        await pool.close()
        raise
    if used:
        await pool.close()
        raise BadTarget(f"--database-url: the database is not empty ({', '.join(used)} hold rows)")
    return clients, pool


class MissingTopic(Exception):
    """A topic the command reads does not exist."""


@dataclass(frozen=True, slots=True)
class Inputs:
    partitions: list[list[InputRecord]]
    committed: dict[TopicPartition, int | None]
    undecodable: int  # refused live too: they went to the dead-letter topic
    beyond: int  # after the group's committed offsets, and not decided yet: left to the service


async def _partitions(clients: Clients, topics: list[str]) -> list[TopicPartition]:
    async with clients.started_admin() as admin:
        missing = await missing_topics(admin, topics)
        if missing:
            raise MissingTopic(", ".join(missing))
        return await topic_partitions(admin, topics)


async def read_changelog(clients: Clients) -> list[Published]:
    """Raises MissingTopic, UnreadableOutput (naming the record), aiokafka's KafkaError."""
    topic = clients.settings.topics.sessions_events
    tps = await _partitions(clients, [topic])
    consumer = clients.consumer(group_id=None)
    await consumer.start()
    found: list[Published] = []
    try:
        ends = await consumer.end_offsets(tps)
        async for batch in read_until(consumer, ends):
            found += [
                published(
                    r.key,
                    r.value,
                    timestamp=r.timestamp,
                    partition=r.partition,
                    offset=r.offset,
                    headers=r.headers,  # binary mode: the attributes are ce_* headers
                )
                for r in batch
            ]
    finally:
        await consumer.stop()
    return sorted(found, key=lambda p: (p.partition, p.offset))


async def read_inputs(clients: Clients, causes: Collection[tuple[str, str]]) -> Inputs:
    """The input topics up to the group's committed offsets, and past them as far as the last
    input with a published output (decided live, its offset not yet committed): exactly what
    the live service decided, so that the service, started on the rebuilt database, continues
    from the committed offsets with nothing decided twice."""
    return (await read_input_records(clients)).bounded(causes)


@dataclass(frozen=True, slots=True)
class InputRecords:
    """The input topics read whole, not yet bounded by what was decided (`bounded`): so they
    can be read while the changelog, which says how far, is read too."""

    read: dict[TopicPartition, list[InputRecord]]
    committed: dict[TopicPartition, int | None]
    undecodable: int

    def bounded(self, causes: Collection[tuple[str, str]]) -> Inputs:
        """`causes`: the inputs with a published output (a set, for the lookups)."""
        partitions, beyond = [], 0
        for tp, records in self.read.items():
            bound = self.committed[tp] or 0
            for record in records:
                if record.identity in causes:
                    bound = max(bound, record.offset + 1)
            kept = [r for r in records if r.offset < bound]
            beyond += len(records) - len(kept)
            partitions.append(sorted(kept, key=lambda r: r.offset))
        return Inputs(partitions, self.committed, self.undecodable, beyond)


async def read_input_records(clients: Clients) -> InputRecords:
    """Raises MissingTopic, aiokafka's KafkaError."""
    settings = clients.settings
    types = settings.topics.input_types()
    tps = await _partitions(clients, list(types))
    async with clients.started_admin() as admin:
        offsets = await committed_offsets(admin, settings.group_id, tps)
    committed: dict[TopicPartition, int | None] = {}
    for tp in tps:
        offset = getattr(offsets.get(tp), "offset", -1)
        committed[tp] = None if offset is None or offset < 0 else offset
    decoder = schemas.Decoder(types)
    read: dict[TopicPartition, list[InputRecord]] = {tp: [] for tp in tps}
    undecodable = 0
    consumer = clients.consumer(group_id=None)
    await consumer.start()
    try:
        ends = await consumer.end_offsets(tps)
        async for batch in read_until(consumer, ends):
            # One partition's records: its list and name looked up once.
            first = batch[0]
            into, name = read[TopicPartition(first.topic, first.partition)], first.topic
            where = f"{name}:{first.partition}"
            decode = decoder.decode
            for r in batch:
                try:
                    # Either content mode, as the consumer decodes it: with the headers.
                    event = decode(r.value, name, r.headers)
                except schemas.DecodeError:
                    undecodable += 1
                    continue
                into.append(
                    InputRecord(event, r.timestamp, where, r.offset, r.value or b"", r.headers)
                )
    finally:
        await consumer.stop()
    return InputRecords(read, committed, undecodable)


PARKED_LIMIT = 1_000_000


@dataclass(frozen=True, slots=True)
class LiveParked:
    """The parked events of the database being replaced: neither the changelog (nothing was
    published for them) nor the inputs (their offsets are committed, they are not decided)
    say which they are. `unknown`: why they could not be read; then `events` is empty."""

    events: list[ParkedEvent]
    unknown: str | None = None

    def as_rows(self) -> list[dict[str, Any]]:
        return [
            {
                "customer_id": None if p.customer_id is None else str(p.customer_id),
                "type": p.type,
                "source": p.source,
                "event_id": p.event_id,
                "reason": p.reason,
            }
            for p in self.events
        ]


async def read_live_parked(settings: Settings) -> LiveParked:
    """The parked events of the service's own database (FULFILLMENT_DATABASE_URL), in order;
    never raises for a database that cannot be reached or read: says why instead."""
    try:
        # As the operator commands connect: refused, like `run`, on a database that is behind.
        pool = await Clients(settings).pool(size=1)
        try:
            await check_migrations(pool)
            async with postgres.store_of(pool) as store:
                return LiveParked(await store.parked_events(limit=PARKED_LIMIT))
        finally:
            await pool.close()
    except (Unreachable, OSError, asyncpg.PostgresError, DatabaseBehind) as error:
        why = " ".join(f"{type(error).__name__}: {error}".split())
        return LiveParked([], f"the database of FULFILLMENT_DATABASE_URL cannot be read ({why})")
