"""`fulfillment simulate`: feed the running service a realistic mixed stream (see
`service.simulation.stream`) and print every outcome as it arrives, with a running tally.

Each event is sent when its slot comes, so its `time` is the wall clock's: the sweeper, which
goes by the wall clock, then expires waiting sessions when a real clock would. A share of the
payments is backdated (see `simulated_stream`), so that cancellations show from the first
seconds: by the purge, right before the customer's next payment is accepted, and by the
sweeper. The tally and each cancellation's line say which was arranged.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import KafkaConnectionError
from pydantic import ValidationError

import schemas
from service.adapters.kafka.admin import topic_partitions
from service.bootstrap.factory import Clients
from service.bootstrap.service import create_topics
from service.config.settings import Settings
from service.entrypoints import output
from service.simulation.stream import BACKDATED, CANCELLED_BY, Message, Simulation

HINT_AFTER: Final = 10.0  # seconds of sending without any outcome before suspecting the service
DRAIN_QUIET: Final = 3.0  # after sending, stop once no outcome came for this long...
DRAIN_MAX: Final = 15.0  # ...or after this long in any case
TALLY_EVERY: Final = 1.0
HINT: Final = "no outcomes yet: is `make run` running in another terminal?"
OUTPUTS: Final = schemas.OUTPUT_TYPES
BY: Final = {
    "purge": "stale: cancelled by the purge, before the customer's new payment",
    "sweeper": "paid late: cancelled by the sweeper",
}


@dataclass
class Tally:
    produced: int = 0
    failed: int = 0
    dlq: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    last_arrival: float = 0.0
    error: BaseException | None = None
    hinted: bool = False
    # Session id -> who is expected to cancel it ("purge", "sweeper"), for backdated payments.
    arranged: dict[str, str] = field(default_factory=dict)
    cancelled_by: Counter[str] = field(default_factory=Counter)

    @property
    def arrived(self) -> int:
        return self.outcomes.total() + self.dlq

    def delivered(self, future: asyncio.Future[Any]) -> None:
        if future.cancelled() or future.exception() is not None:
            self.failed += 1
            self.error = self.error or (None if future.cancelled() else future.exception())
        else:
            self.produced += 1

    def line(self) -> str:
        counts = "  ".join(
            f"{t.removeprefix('session.')} {self.outcomes[t]}{self._how(t)}" for t in OUTPUTS
        )
        failed = f"  send failures {self.failed}" if self.failed else ""
        return f"tally: produced {self.produced}{failed} | {counts} | dlq {self.dlq}"

    def _how(self, event_type: str) -> str:
        if event_type != schemas.SESSION_CANCELLED or not self.cancelled_by:
            return ""
        by = self.cancelled_by
        return f" (by purge {by['purge']}, by sweeper {by['sweeper']})"

    def arrange(self, message: Message) -> None:
        """Remembers whose cancellation a backdated payment's session is to show."""
        if message.kind in BACKDATED:
            payment_id = orjson.loads(message.value)["data"]["payment_id"]
            session = schemas.session_id_for_payment(payment_id)
            self.arranged[str(session)] = CANCELLED_BY[message.kind]

    def cancelled(self, data: schemas.SessionCancelled) -> str:
        """Counts a cancellation; the note its line gets."""
        by = self.arranged.get(str(data.session_id))
        if by is None:
            return ""
        self.cancelled_by[by] += 1
        return f"  <- {BY[by]}"


def _short(value: object) -> str:
    return "-" if value is None else str(value)[:8]


def describe(event: schemas.OutputEvent, key: bytes | None) -> str:
    """One line per outcome: time, type, customer, session and the reason or a detail."""
    data = event.data
    customer = getattr(data, "customer_id", None)
    session = getattr(data, "session_id", None) or getattr(data, "active_session_id", None)
    if customer is None and key is not None and key.decode(errors="replace") != str(session):
        customer = key.decode(errors="replace")  # an acceptance's outcome: keyed by customer
    detail = getattr(data, "reason", None)
    if isinstance(data, schemas.SessionCreated):
        detail = f"{data.session_type}, expires {data.expires_at:%H:%M:%S}"
    elif isinstance(data, schemas.SessionAccepted):
        detail = f"mechanic {_short(data.mechanic_id)}"
    return (
        f"{event.time:%H:%M:%S}  {event.type:<27}  customer {_short(customer):<8}  "
        f"session {_short(session):<8}  {detail or ''}"
    ).rstrip()


def describe_dead(headers: list[tuple[str, bytes]]) -> str:
    found = {k: v.decode(errors="replace") for k, v in headers}
    topic = found.get(schemas.DLQ_SOURCE_TOPIC, "?")
    kind, reason = found.get(schemas.DLQ_ERROR_KIND, "?"), found.get(schemas.DLQ_ERROR_REASON, "")
    return f"{'':8}  {'dead-lettered':<27}  from {topic}  {kind}: {reason[:100]}"


async def simulate(
    settings: Settings, *, rate: float, customers: int, duration: float, seed: int | None
) -> int:
    if rate <= 0 or customers < 1 or duration < 0:
        output.error(
            f"need --rate > 0, --customers >= 1 and --duration >= 0 "
            f"(got {rate:g}, {customers}, {duration:g})",
            command="simulate",
        )
        return output.INVALID
    try:
        return await _simulate(settings, rate, customers, duration, seed)
    except KafkaConnectionError as error:
        output.error(f"cannot reach Kafka: {error}", command="simulate")
        return output.FAILED


async def _simulate(
    settings: Settings, rate: float, customers: int, duration: float, seed: int | None
) -> int:
    clients = Clients(settings)
    await create_topics(clients)
    tally = Tally()
    async with contextlib.AsyncExitStack() as stack:
        watcher = clients.consumer(group_id=None)
        await watcher.start()
        stack.push_async_callback(watcher.stop)
        await _from_the_end(clients, watcher)
        producer = clients.producer(linger_ms=0)
        await producer.start()
        stack.push_async_callback(producer.stop)
        stack.push_async_callback(_cancel, asyncio.create_task(_read(watcher, settings, tally)))
        start = datetime.now(UTC)
        sim = Simulation(
            customers,
            seed,
            topics=settings.topics,
            request_ttl=settings.request_ttl,
            max_live=settings.max_live,
            # Fresh ids every run, so a repeated seed does not send only duplicates.
            salt=start.isoformat(),
        )
        print(
            f"simulating {rate:g} events/s from {customers} customers for {duration:g} s "
            f"(seed {sim.seed}); waiting sessions expire after {settings.request_ttl_seconds} s "
            "(FULFILLMENT_REQUEST_TTL_SECONDS, for the service too); some payments are "
            "backdated, so that expiries show at once",
            flush=True,
        )
        stack.push_async_callback(_cancel, asyncio.create_task(_report(tally)))
        try:
            await _produce(producer, sim.messages(start, rate=rate), rate, duration, tally)
            await producer.flush()
            await _drain(tally)
        except asyncio.CancelledError:
            print(f"interrupted; {tally.line()}", flush=True)
            raise
    if tally.produced and not tally.arrived and not tally.hinted:
        print(HINT)
    print(f"final {tally.line()}", flush=True)
    if tally.failed:
        output.error(f"{tally.failed} sends failed: {tally.error}", command="simulate")
        return output.FAILED
    return 0


async def _cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def _from_the_end(clients: Clients, consumer: AIOKafkaConsumer) -> None:
    """Positions `consumer` at the ends of the outcomes and the DLQ before anything is sent,
    so that it shows this run's outcomes and nothing older."""
    topics = clients.settings.topics
    async with clients.started_admin() as admin:
        tps = await topic_partitions(admin, [topics.sessions_events, topics.dlq])
    consumer.assign(tps)
    await consumer.seek_to_end(*tps)
    for tp in tps:
        await consumer.position(tp)


async def _read(consumer: AIOKafkaConsumer, settings: Settings, tally: Tally) -> None:
    loop = asyncio.get_running_loop()
    async for record in consumer:
        tally.last_arrival = loop.time()
        if record.topic == settings.topics.dlq:
            tally.dlq += 1
            print(describe_dead(list(record.headers)), flush=True)
            continue
        try:
            event = schemas.decode_output(record.value or b"")
        except ValidationError:
            tally.outcomes["undecodable"] += 1
            print(f"{'':8}  {'(not an output event)':<27}  offset {record.offset}", flush=True)
            continue
        tally.outcomes[event.type] += 1
        note = (
            tally.cancelled(event.data) if isinstance(event.data, schemas.SessionCancelled) else ""
        )
        print(describe(event, record.key) + note, flush=True)


async def _produce(
    producer: AIOKafkaProducer,
    messages: Iterator[Message],
    rate: float,
    duration: float,
    tally: Tally,
) -> None:
    loop = asyncio.get_running_loop()
    began = loop.time()
    for slot, message in enumerate(messages):
        offset = slot / rate
        if offset >= duration:
            return
        # Sent when its slot comes: the event's `time` is (about) the moment it is sent.
        delay = began + offset - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        tally.arrange(message)
        future = await producer.send(
            message.topic, message.value, key=message.key, headers=list(message.headers)
        )
        future.add_done_callback(tally.delivered)


async def _report(tally: Tally) -> None:
    loop = asyncio.get_running_loop()
    began = loop.time()
    shown = ""
    while True:
        await asyncio.sleep(TALLY_EVERY)
        line = tally.line()
        if line != shown:
            print(line, flush=True)
            shown = line
        if not tally.hinted and tally.produced and not tally.arrived:
            if loop.time() - began >= HINT_AFTER:
                print(HINT, flush=True)
                tally.hinted = True


async def _drain(tally: Tally) -> None:
    loop = asyncio.get_running_loop()
    began = loop.time()
    while loop.time() - began < DRAIN_MAX:
        quiet_since = max(began, tally.last_arrival)
        if loop.time() - quiet_since >= DRAIN_QUIET:
            return
        await asyncio.sleep(0.2)
