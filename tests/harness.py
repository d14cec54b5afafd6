"""Driving the real service in-process: produce input events, run the service, read outcomes."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from typing import Any

import orjson
from cloudevents.core.bindings import kafka
from cloudevents.core.formats.json import JSONFormat

import schemas
from service.bootstrap.factory import Clients
from service.bootstrap.service import Service, create_topics
from service.config.settings import Settings


def cloudevent(
    type_: str,
    data: dict[str, Any],
    *,
    time: datetime,
    event_id: str | None = None,
    source: str = "tests",
) -> bytes:
    return orjson.dumps(
        {
            "specversion": "1.0",
            "id": event_id or str(uuid.uuid4()),
            "source": source,
            "type": type_,
            "time": time.isoformat(),
            "datacontenttype": "application/json",
            "data": data,
        }
    )


def payment(
    customer_id: uuid.UUID,
    payment_id: str,
    *,
    time: datetime,
    event_id: str | None = None,
    session_type: str = "video",
) -> bytes:
    return cloudevent(
        schemas.PAYMENT_COMPLETED,
        {
            "payment_id": payment_id,
            "customer_id": str(customer_id),
            "amount_cents": 2999,
            "currency": "USD",
            "session_type": session_type,
        },
        time=time,
        event_id=event_id,
    )


def acceptance(
    session_id: uuid.UUID, mechanic_id: uuid.UUID, *, time: datetime, event_id: str | None = None
) -> bytes:
    return cloudevent(
        schemas.MECHANIC_ACCEPTED,
        {"session_id": str(session_id), "mechanic_id": str(mechanic_id)},
        time=time,
        event_id=event_id,
    )


def ended(session_id: uuid.UUID, *, time: datetime, event_id: str | None = None) -> bytes:
    return cloudevent(
        schemas.SESSION_ENDED, {"session_id": str(session_id)}, time=time, event_id=event_id
    )


def as_binary(value: bytes) -> tuple[list[tuple[str, bytes]], bytes]:
    """A structured event as the CloudEvents SDK sends it in binary mode: (headers, data)."""
    structured = kafka.KafkaMessage(
        headers={"content-type": schemas.CLOUDEVENTS_CONTENT_TYPE.encode()}, key=None, value=value
    )
    message = kafka.to_binary(kafka.from_structured(structured, _FORMAT), _FORMAT)
    return list(message.headers.items()), message.value


_FORMAT = JSONFormat()


class Producer:
    """`binary`: every structured event sent is sent in binary content mode instead."""

    def __init__(self, settings: Settings, *, binary: bool = False) -> None:
        self.settings = settings
        self._producer = Clients(settings).producer(linger_ms=0)
        self._binary = binary

    async def __aenter__(self) -> Producer:
        await create_topics(Clients(self.settings))
        await self._producer.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self._producer.stop()

    async def send(
        self,
        topic: str,
        value: bytes,
        *,
        key: bytes | None = None,
        partition: int | None = None,
        headers: list[tuple[str, bytes]] | None = None,
        timestamp_ms: int | None = None,
    ) -> None:
        if self._binary and headers is None:
            headers, value = as_binary(value)
        await self._producer.send_and_wait(
            topic,
            value=value,
            key=key,
            partition=partition,
            headers=headers,
            timestamp_ms=timestamp_ms,
        )

    async def pay(
        self,
        customer_id: uuid.UUID,
        payment_id: str,
        *,
        time: datetime,
        event_id: str | None = None,
        partition: int | None = None,
    ) -> None:
        await self.send(
            self.settings.topic_payments,
            payment(customer_id, payment_id, time=time, event_id=event_id),
            key=str(customer_id).encode(),
            partition=partition,
        )

    async def accept(
        self,
        session_id: uuid.UUID,
        mechanic_id: uuid.UUID,
        *,
        time: datetime,
        event_id: str | None = None,
    ) -> None:
        await self.send(
            self.settings.topic_acceptances,
            acceptance(session_id, mechanic_id, time=time, event_id=event_id),
            key=str(session_id).encode(),
        )

    async def end(
        self, session_id: uuid.UUID, *, time: datetime, event_id: str | None = None
    ) -> None:
        await self.send(
            self.settings.topic_ended,
            ended(session_id, time=time, event_id=event_id),
            key=str(session_id).encode(),
        )


class Outcomes:
    """Reads `sessions.events` from the beginning, keeping every record in arrival order."""

    def __init__(self, settings: Settings, topic: str | None = None) -> None:
        self.settings = settings
        self.records: list[Any] = []
        self._consumer = Clients(settings).consumer(group_id=None)
        self._topic = topic or settings.topic_sessions
        self._task: asyncio.Task[None] | None = None
        self._arrived = asyncio.Condition()

    async def __aenter__(self) -> Outcomes:
        await create_topics(Clients(self.settings))
        self._consumer.subscribe([self._topic])
        await self._consumer.start()
        self._task = asyncio.create_task(self._read())
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        await self._consumer.stop()

    async def _read(self) -> None:
        async for record in self._consumer:
            async with self._arrived:
                self.records.append(record)
                self._arrived.notify_all()

    @property
    def events(self) -> list[schemas.OutputEvent]:
        """The records as events, in either content mode."""
        return [schemas.decode_output(structured(r)) for r in self.records]

    def of_type(self, type_: str) -> list[schemas.OutputEvent]:
        return [e for e in self.events if e.type == type_]

    async def wait_for(self, predicate: Callable[[Outcomes], bool], within: float = 20.0) -> None:
        """Until `predicate` holds; raises TimeoutError after `within` seconds."""
        async with asyncio.timeout(within), self._arrived:
            await self._arrived.wait_for(lambda: predicate(self))

    async def wait_count(self, count: int, within: float = 20.0) -> list[schemas.OutputEvent]:
        await self.wait_for(lambda o: len(o.records) >= count, within)
        return self.events


def structured(record: Any) -> bytes:
    """A record of `sessions.events` as structured bytes, whichever mode it was sent in."""
    if schemas.is_binary_mode(record.headers):
        return schemas.structured_from_binary(record.headers, record.value)
    value: bytes = record.value
    return value


@contextlib.asynccontextmanager
async def running(settings: Settings, **handlers: Any) -> AsyncIterator[Service]:
    """The whole service (consumer, relay, sweeper) in this event loop, stopped on exit;
    `handlers` (`handle=`, `sweep=`) replace the real ones."""
    service = Service(settings, **handlers)
    task = asyncio.create_task(service.run())
    try:
        yield service
    finally:
        service.stop()
        await asyncio.wait_for(task, timeout=30)
