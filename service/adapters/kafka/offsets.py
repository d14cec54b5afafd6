"""Committing a consumer batch's offsets, once its decisions are committed in the database."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from typing import Protocol

import structlog
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import CommitFailedError
from aiokafka.structs import OffsetAndMetadata

from service.adapters.kafka import batch_metrics

log = structlog.get_logger("service.consumer")

COMMIT_TIMEOUT = 15.0


class Positioned(Protocol):
    """The field of aiokafka's ConsumerRecord an offset commit reads."""

    offset: int


def next_offsets(
    consumer: AIOKafkaConsumer, fetched: Mapping[TopicPartition, Sequence[Positioned]]
) -> dict[TopicPartition, OffsetAndMetadata]:
    """The offset after each partition's last record, for the partitions still assigned."""
    owned = consumer.assignment()
    return {
        tp: OffsetAndMetadata(records[-1].offset + 1, "")
        for tp, records in fetched.items()
        if records and tp in owned
    }


async def commit(
    consumer: AIOKafkaConsumer, offsets: Mapping[TopicPartition, OffsetAndMetadata]
) -> None:
    """Commits `offsets`; a timeout or a refusal is logged, not raised: an offset left
    uncommitted only means a redelivery, which the database's dedupe absorbs."""
    if not offsets:
        return
    try:
        # aiokafka retries a commit for as long as the coordinator is unreachable; bounded
        # here so that shutdown cannot hang on it.
        requested = time.perf_counter()
        await asyncio.wait_for(consumer.commit(dict(offsets)), COMMIT_TIMEOUT)
        batch_metrics.record_offset_commit(time.perf_counter() - requested)
    except TimeoutError:
        log.warning("offset_commit_timed_out", partitions=len(offsets))
    except CommitFailedError as error:
        # The group moved on without us (e.g. we missed heartbeats). What we decided is
        # committed in the database; the new owner finds those events already claimed.
        log.warning("offset_commit_refused", error=str(error), partitions=len(offsets))
