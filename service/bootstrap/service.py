"""Wiring and lifecycle: builds the adapters from the settings, passes the handlers in as
callables, and runs the consumer loops, the outbox relay and the sweeper until told to stop.
Nothing connects at import."""

from __future__ import annotations

import asyncio
import functools
import gc
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime
from importlib.metadata import version
from uuid import UUID

import structlog
from aiokafka import AIOKafkaConsumer
from prometheus_client import CollectorRegistry

import schemas
from service.adapters import postgres
from service.adapters.failures import is_outage
from service.adapters.kafka.admin import ensure_topics
from service.adapters.kafka.consumer import ConsumerLoop
from service.adapters.kafka.producer_owner import ProducerOwner
from service.adapters.kafka.relay import Relay
from service.adapters.kafka.sizes import DLQ_MAX_MESSAGE_BYTES
from service.adapters.postgres.durability import check_synchronous_standby
from service.adapters.postgres.migrate import check_migrations
from service.adapters.sweeper import Sweeper
from service.bootstrap.allocator import return_large_buffers
from service.bootstrap.factory import Clients
from service.bootstrap.probes import Probes
from service.config.settings import Settings
from service.core.batch import BatchResult
from service.core.parking import EventKey
from service.core.ports import ContainBatch, HandleBatch, Store
from service.handlers.consume import handle_batch
from service.handlers.poison import PoisonGuard, PoisonPolicy
from service.handlers.sweep import sweep_customers
from service.observe import metrics
from service.observe.health import Health
from service.observe.instances import Instances
from service.observe.logs import SERVICE
from service.observe.parked_metrics import record_parked
from service.observe.poison_watch import PoisonWatch
from service.observe.tracing import tracing_from_environment

log = structlog.get_logger("service.app")

SweepHandler = Callable[..., Awaitable[BatchResult]]  # (store, customer_ids, *, now, policy)


def tune_garbage_collector() -> None:
    """Keep the cyclic collector off the latency tail.

    A batch allocates tens of thousands of short-lived objects; with the default threshold
    (700) many are promoted before their batch ends and freed later by reference counting,
    yet each promotion counts toward full collections that traverse the whole heap. A larger
    young generation lets them die young, and freezing what start-up allocated (modules,
    models, validators) keeps it out of every collection. Measured with these settings at
    2,000 events/s (gc.callbacks): a few collections a minute take 20 to 40 ms, none more.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)


async def create_topics(clients: Clients) -> list[str]:
    settings = clients.settings
    async with clients.started_admin() as admin:
        return await ensure_topics(
            admin,
            settings.topics.all(),
            partitions=settings.topic_partitions,
            replication_factor=settings.topic_replication_factor,
            # Dead-lettering must never fail for size (the producer's max_request_size matches).
            configs={settings.topics.dlq: {"max.message.bytes": str(DLQ_MAX_MESSAGE_BYTES)}},
        )


def build_decider(
    settings: Settings,
    pool: postgres.Pool,
    *,
    handle: HandleBatch = handle_batch,
    relay: postgres.LocalRelay | None = None,
) -> ContainBatch:
    """What a consumer loop calls with each batch: the handler on a pooled PostgreSQL store
    (which wakes `relay`, this process's, at each commit that wrote outbox rows), under the
    poison policy (service/handlers/poison.py), which reports to the metrics and logs."""
    policy, failpoint = settings.policy, settings.failpoint_customers

    async def decide(
        events: Sequence[schemas.InputEvent],
        *,
        traces: Mapping[str, str] | None = None,
        poison: Mapping[EventKey, str] | None = None,
        trial: bool = False,
    ) -> BatchResult:
        async with postgres.store_of(pool, relay) as store:
            result = await handle(
                store,
                events,
                policy=policy,
                traces=traces or {},
                poison=poison,
                trial=trial,
                failpoint=failpoint,
            )
            if result.parked and not trial:
                record_parked(await store.parked_totals())
            return result

    containment = PoisonPolicy(settings.poison_retries, is_outage, PoisonWatch())
    return functools.partial(PoisonGuard, decide, containment)


def build_sweeper(
    settings: Settings,
    pool: postgres.Pool,
    *,
    sweep: SweepHandler = sweep_customers,
    on_committed: Callable[[], None] = lambda: None,
    health: Health | None = None,
    clock: Callable[[], datetime] | None = None,
    relay: postgres.LocalRelay | None = None,
) -> Sweeper:
    policy = settings.policy

    async def sweep_due(store: Store, customers: Sequence[UUID], now: datetime) -> BatchResult:
        return await sweep(store, customers, now=now, policy=policy)

    timing = {} if clock is None else {"clock": clock}
    return Sweeper(
        settings,
        lambda: postgres.store_of(pool, relay),
        sweep_due,
        on_committed=on_committed,
        health=health,
        **timing,
    )


class Service:
    """The consumer loops, the outbox relay and the sweeper, sharing one pool and one producer
    (whose owner replaces it for all of them should it fail for good).

    `handle` and `sweep` are the handlers the loops call; tests pass others in. `registry` is
    what /metrics serves and `others` the instances /healthz and /readyz also answer for (the
    port of several instances: service/bootstrap/supervisor.py); `on_listening` is told the
    bound port."""

    def __init__(
        self,
        settings: Settings,
        *,
        handle: HandleBatch = handle_batch,
        sweep: SweepHandler = sweep_customers,
        registry: CollectorRegistry = metrics.REGISTRY,
        others: Instances | None = None,
        on_listening: Callable[[int], None] = lambda _: None,
    ) -> None:
        self.settings = settings
        self._registry = registry
        self._others = others
        self._on_listening = on_listening
        self.clients = Clients(settings)
        self._handle = handle
        self._sweep = sweep
        self._stopping = asyncio.Event()
        self.http_port: int | None = None  # bound once running (FULFILLMENT_HTTP_PORT=0 picks)
        self.listening = asyncio.Event()  # set once /healthz, /readyz and /metrics answer
        self._buffers_returned = False  # glibc's thresholds fixed (bootstrap/allocator.py)

    def stop(self) -> None:
        self._stopping.set()

    async def run(self) -> None:
        settings = self.settings
        tune_garbage_collector()
        self._buffers_returned = return_large_buffers()
        # One connection per consumer, one held by the relay, one for the sweeper, one spare.
        pool = await self.clients.pool(size=settings.consumers + 3)
        try:
            await check_migrations(pool)
            if settings.database_synchronous_standby:
                await check_synchronous_standby(pool, settings.database_address)
            if settings.create_topics:
                await create_topics(self.clients)
            producer = self.clients.producer()
            await producer.start()
            producers = ProducerOwner(producer, self.clients.producer, owns=True)
            try:
                await self._run_loops(pool, producers)
            finally:
                await producers.stop()
        finally:
            await pool.close()

    async def _run_loops(self, pool: postgres.Pool, producers: ProducerOwner) -> None:
        settings = self.settings
        health = Health()
        tracing = tracing_from_environment(SERVICE, version(SERVICE))
        relay = Relay(settings, pool, producers, health=health, tracing=tracing)
        sweeper = build_sweeper(
            settings, pool, sweep=self._sweep, on_committed=relay.wake, health=health, relay=relay
        )
        decide = build_decider(settings, pool, handle=self._handle, relay=relay)
        consumers = [self.clients.consumer() for _ in range(settings.consumers)]
        loops = [
            ConsumerLoop(
                settings,
                consumer,
                producers,
                decide,
                on_committed=relay.wake,
                health=health,
                tracing=tracing,
                name=f"consumer {i}",
            )
            for i, consumer in enumerate(consumers)
        ]
        probes = Probes(
            settings,
            health,
            pool=pool,
            producers=producers,
            consumers=consumers,
            loops=loops,
            registry=self._registry,
            others=self._others,
        )
        self.http_port = await probes.http.start()
        self.listening.set()
        self._on_listening(self.http_port)
        try:
            await self._run_probed(probes, relay, sweeper, loops, consumers)
        finally:
            await probes.http.stop()
            probes.close()
            tracing.shutdown()  # exports what is still buffered

    async def _run_probed(
        self,
        probes: Probes,
        relay: Relay,
        sweeper: Sweeper,
        loops: list[ConsumerLoop],
        consumers: list[AIOKafkaConsumer],
    ) -> None:
        settings = self.settings
        for loop, consumer in zip(loops, consumers, strict=True):
            loop.subscribe()
            await consumer.start()
        relay_task = asyncio.create_task(relay.run(), name="relay")
        sweeper_task = asyncio.create_task(
            sweeper.run() if settings.sweeper_enabled else self._stopping.wait(), name="sweeper"
        )
        loop_tasks = [asyncio.create_task(loop.run(), name="consumer") for loop in loops]
        watch_task = asyncio.create_task(probes.watch.run(), name="watch")
        probes.tasks.extend([*loop_tasks, relay_task, sweeper_task])
        log.info(
            "started",
            group_id=settings.group_id,
            consumers=len(loops),
            http_host=settings.http_host,
            http_port=self.http_port,
            large_buffers_returned=self._buffers_returned,
        )
        stop_task = asyncio.create_task(self._stopping.wait())
        try:
            done, _ = await asyncio.wait(
                {*loop_tasks, relay_task, sweeper_task, stop_task},
                return_when=asyncio.FIRST_COMPLETED,
            )
            for task in done - {stop_task}:
                task.result()  # a loop that ended on its own is a bug: surface it
        finally:
            # Order matters: stop fetching and let the batches in hand commit, then let the
            # relay publish everything committed, then leave the group.
            for loop in loops:
                loop.stop()
            sweeper.stop()
            await asyncio.gather(*loop_tasks, sweeper_task, return_exceptions=True)
            relay.stop()
            probes.watch.stop()
            await asyncio.gather(relay_task, watch_task, return_exceptions=True)
            stop_task.cancel()
            for consumer in consumers:
                await consumer.stop()
            log.info("stopped", published=relay.published)
