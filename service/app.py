"""Wiring: connects the adapters and runs them until told to stop. Nothing connects at import."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import multiprocessing
import multiprocessing.connection
import os
import signal
import threading
from collections.abc import Callable
from multiprocessing.synchronize import Event

import structlog
from aiokafka import AIOKafkaProducer

from service.adapters import database, migrate
from service.adapters.consumer import ConsumerLoop, new_consumer
from service.adapters.relay import Relay, new_producer
from service.adapters.sweeper import Sweeper
from service.adapters.topics import ensure_topics
from service.logs import configure_logging
from service.settings import Settings

log = structlog.get_logger("service.app")


class DatabaseBehind(Exception):
    """The database lacks migrations this code needs: run `fulfillment migrate`."""


async def check_migrations(pool: database.Pool) -> None:
    async with pool.acquire() as conn:
        missing = await migrate.pending(conn)
    if missing:
        names = ", ".join(f"{m.version:04d}_{m.name}" for m in missing)
        raise DatabaseBehind(
            f"database is behind, pending migrations: {names}; run `fulfillment migrate`"
        )


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


class Service:
    """The consumer loop, the outbox relay and the sweeper, sharing one pool and one producer."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._stopping = asyncio.Event()

    def stop(self) -> None:
        self._stopping.set()

    async def run(self) -> None:
        settings = self.settings
        tune_garbage_collector()
        # One connection per consumer, one held by the relay, one for the sweeper, one spare.
        pool = await database.create_pool(settings.dsn, size=settings.consumers + 3)
        try:
            await check_migrations(pool)
            if settings.create_topics:
                await ensure_topics(settings)
            producer = new_producer(settings)
            await producer.start()
            try:
                await self._run_loops(pool, producer)
            finally:
                await producer.stop()
        finally:
            await pool.close()

    async def _run_loops(self, pool: database.Pool, producer: AIOKafkaProducer) -> None:
        settings = self.settings
        relay = Relay(settings, pool, producer)
        sweeper = Sweeper(settings, pool, on_committed=relay.wake)
        consumers = [new_consumer(settings) for _ in range(settings.consumers)]
        loops = [
            ConsumerLoop(settings, consumer, producer, pool, on_committed=relay.wake)
            for consumer in consumers
        ]
        for loop, consumer in zip(loops, consumers, strict=True):
            loop.subscribe()
            await consumer.start()
        relay_task = asyncio.create_task(relay.run(), name="relay")
        sweeper_task = asyncio.create_task(
            sweeper.run() if settings.sweeper_enabled else self._stopping.wait(), name="sweeper"
        )
        loop_tasks = [asyncio.create_task(loop.run(), name="consumer") for loop in loops]
        log.info("started", group_id=settings.group_id, consumers=len(loops))
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
            await asyncio.gather(relay_task, return_exceptions=True)
            stop_task.cancel()
            for consumer in consumers:
                await consumer.stop()
            log.info("stopped", published=relay.published)


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
SHUTDOWN_GRACE = 60.0  # seconds a child may take to start, then to stop, before SIGKILL


async def serve(
    settings: Settings,
    on_signal: Callable[[], None] = lambda: None,
    on_ready: Callable[[], None] = lambda: None,
) -> None:
    """Run until SIGINT or SIGTERM, then shut down cleanly."""
    service = Service(settings)
    running = asyncio.get_running_loop()

    def stop() -> None:
        on_signal()
        service.stop()

    def handle(_signum: int, _frame: object) -> None:
        # A plain handler rather than loop.add_signal_handler: it stays in place after the loop
        # closes, so a late signal during the last moments of shutdown cannot kill the process.
        with contextlib.suppress(RuntimeError):  # the loop is already closed: nothing to stop
            running.call_soon_threadsafe(stop)

    for sig in STOP_SIGNALS:
        signal.signal(sig, handle)
    on_ready()
    await service.run()


def _serve_child(ready: Event) -> None:
    settings = Settings()
    configure_logging(settings.log_level, settings.log_format)
    asyncio.run(serve(settings, on_ready=ready.set))


def serve_processes(settings: Settings) -> int:
    """`settings.processes` instances: this process and the rest as children, each a full
    instance (consumers, relay candidate, sweeper), exactly as separate deployments would be.
    Python runs one core per process; a stop signal to this process is passed on to them."""
    context = multiprocessing.get_context("spawn")
    # Children inherit ignored signals, so none can kill a child half-started; each child is
    # sent SIGTERM exactly once, after it says it can stop cleanly (a second one could arrive
    # after the interpreter has restored the default action while exiting).
    for sig in STOP_SIGNALS:
        signal.signal(sig, signal.SIG_IGN)
    ready = [context.Event() for _ in range(1, settings.processes)]
    children = [
        context.Process(target=_serve_child, args=(r,), name=f"fulfillment-{i}")
        for i, r in enumerate(ready, start=1)
    ]
    for child in children:
        child.start()
    signalled: set[int] = set()

    def forward(wait: float = 0.0) -> None:
        for child, is_ready in zip(children, ready, strict=True):
            pid = child.pid
            assert pid is not None  # started above
            if pid in signalled or not is_ready.wait(wait) or not child.is_alive():
                continue
            signalled.add(pid)
            os.kill(pid, signal.SIGTERM)

    stopping = threading.Event()

    def stop_all() -> None:
        stopping.set()
        forward()

    def supervise() -> None:
        # An instance that dies on its own takes the others down with a failing exit code,
        # so whatever runs `fulfillment run` sees it and restarts the lot.
        multiprocessing.connection.wait([c.sentinel for c in children])
        if not stopping.is_set():
            log.error("instance_died", exit_codes=[c.exitcode for c in children])
            os.kill(os.getpid(), signal.SIGTERM)

    if children:
        threading.Thread(target=supervise, name="supervise", daemon=True).start()
    try:
        asyncio.run(serve(settings, on_signal=stop_all))
    finally:
        stopping.set()
        forward(wait=SHUTDOWN_GRACE)
        for child in children:
            child.join(SHUTDOWN_GRACE)
            if child.is_alive():
                child.kill()
                child.join()
    failed = [c.exitcode for c in children if c.exitcode]
    return failed[0] if failed else 0
