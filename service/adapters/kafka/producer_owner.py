"""The instance's one producer and whoever replaces it: the relay and the consumer loops' dead
letters share one idempotent producer (one producer id, one set of connections), so a producer
that failed for good is replaced here, once, for all of them.

aiokafka's producer, once failed for good, may raise (closed, fenced, out of sequence) or may
just never answer again. A user that finds its produce failed reports it with `failed`: an
error that says so replaces the producer at once, `REPLACE_AFTER` failures in a row with
nothing delivered in between (timeouts) do too. The old producer is abandoned: what it still
holds fails at once and its connections close, so none of its batches can land later, after
what the replacement sends. A replacement whose `start()` fails is closed too, and the owner
reports itself not alive (`/healthz` 503) until a later attempt succeeds: with no producer the
instance can publish nothing, and a restart is the remedy an orchestrator has.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from typing import Any

import structlog
from aiokafka import AIOKafkaProducer
from aiokafka.errors import (
    IllegalStateError,
    InvalidProducerEpoch,
    KafkaConnectionError,
    KafkaError,
    OutOfOrderSequenceNumber,
    ProducerClosed,
    ProducerFenced,
    UnknownProducerId,
)
from aiokafka.protocol.metadata import MetadataRequest

log = structlog.get_logger("service.producer")

Headers = list[tuple[str, bytes | None]]
REPLACE_AFTER = 3
# Bounds closing a producer: its stop() waits for every batch it holds.
CLOSE_TIMEOUT = 5.0
# After these the idempotent producer cannot send again: it is replaced.
PRODUCER_BROKEN = (
    ProducerClosed,
    ProducerFenced,
    IllegalStateError,
    OutOfOrderSequenceNumber,
    InvalidProducerEpoch,
    UnknownProducerId,
)


class ProducerOwner:
    def __init__(
        self,
        producer: AIOKafkaProducer,
        new_producer: Callable[[], AIOKafkaProducer] | None = None,
        *,
        owns: bool = False,
    ) -> None:
        """`producer` is started; `new_producer` builds replacements (without it nothing is
        replaced). The owner stops the producers it made, and `producer` too when `owns`."""
        self._producer = producer
        self._new_producer = new_producer
        self._owned = owns
        self._failures = 0
        self._replacing = asyncio.Lock()
        self.unreplaceable: Exception | None = None  # why the last replacement did not start
        self.generation = 0  # counts replacements: a user's batches on an older one are void

    @classmethod
    def of(cls, producer: AIOKafkaProducer | ProducerOwner) -> ProducerOwner:
        return producer if isinstance(producer, ProducerOwner) else cls(producer)

    @property
    def producer(self) -> AIOKafkaProducer:
        return self._producer

    @property
    def alive(self) -> bool:
        return self.unreplaceable is None

    def delivered(self) -> None:
        """Something was acknowledged: the producer works."""
        self._failures = 0

    async def failed(self, producer: AIOKafkaProducer, error: BaseException) -> None:
        """A produce on `producer` (the one the caller used) failed with `error`."""
        if producer is not self._producer:
            return  # another user's report already replaced it
        self._failures += 1
        broken = isinstance(error, PRODUCER_BROKEN)
        if self._new_producer is not None and (
            broken or self._failures >= REPLACE_AFTER or self.unreplaceable is not None
        ):
            await self._replace(producer, error)

    @property
    def replacing(self) -> bool:
        return self._replacing.locked()

    @property
    def replaceable(self) -> bool:
        return self._new_producer is not None

    async def abandon(self, producer: AIOKafkaProducer, reason: BaseException) -> None:
        """Nothing `producer` still holds may be delivered any more: it is replaced now (when
        the owner can build a replacement; otherwise this does nothing)."""
        if producer is self._producer and self._new_producer is not None:
            await self._replace(producer, reason)

    async def send_all(
        self,
        topic: str,
        records: Sequence[tuple[bytes | None, bytes | None, Headers]],
        within: float,
    ) -> None:
        """Each (value, key, headers) to `topic`, all acknowledged `within` seconds; a failure
        is reported (`failed`) and raised."""
        producer = self._producer
        try:
            async with asyncio.timeout(within):
                sent = [
                    await producer.send(topic, value=value, key=key, headers=headers)
                    for value, key, headers in records
                ]
                await asyncio.gather(*sent)
        except (TimeoutError, *PRODUCER_BROKEN) as error:
            await self.failed(producer, error)
            raise
        self.delivered()

    async def check_broker(self) -> Any:
        """The watch's check: a broker known to the current producer's client answers a
        metadata request, for no topic (brokers only). The whole cluster's metadata, which
        aiokafka decodes in Python in one go, held the instance's loop for 0.13 to 0.19 s at
        each check on a broker with 5,000 topics (bench/README.md)."""
        client = self._producer.client
        error: BaseException = KafkaConnectionError("no broker known")
        for broker in client.cluster.brokers():
            try:
                return await client.send(broker.nodeId, MetadataRequest([]))
            except (KafkaError, TimeoutError) as failed:
                error = failed
        raise error

    async def stop(self) -> None:
        if self._owned:
            await close(self._producer)

    async def _replace(self, broken: AIOKafkaProducer, error: BaseException) -> None:
        assert self._new_producer is not None
        async with self._replacing:
            if broken is not self._producer:
                return
            log.warning("producer_replaced", error=repr(error))
            if self._owned or self.unreplaceable is not None:
                await close(broken)
            else:
                abandon(broken)  # a producer given to the owner is stopped by whoever gave it
            replacement = self._new_producer()
            try:
                await replacement.start()
            except Exception as failure:
                await close(replacement)
                self.unreplaceable = failure
                log.error("producer_not_replaced", error=repr(failure))
                return
            self._producer, self._owned = replacement, True
            self.unreplaceable = None
            self._failures = 0
            self.generation += 1


def abandon(producer: AIOKafkaProducer) -> None:
    """Fail every batch `producer` still holds, at once. aiokafka has no public way: its
    idempotent producer retries a batch until it succeeds, and stop() waits for them all."""
    with contextlib.suppress(Exception):
        producer._message_accumulator.fail_all(ProducerClosed())


async def close(producer: AIOKafkaProducer) -> None:
    """Stop `producer` without waiting on its undelivered batches; never raises."""
    abandon(producer)
    with contextlib.suppress(Exception):
        await asyncio.wait_for(producer.stop(), CLOSE_TIMEOUT)
