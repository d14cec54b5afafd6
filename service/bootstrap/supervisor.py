"""`fulfillment run`: one instance per process, stop signals, and the supervisor that runs
`FULFILLMENT_PROCESSES` instances from one command."""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import multiprocessing.connection
import os
import signal
import sys
import threading
from collections.abc import Callable
from multiprocessing.synchronize import Event

import structlog

from service.bootstrap.cpus import usable_cpus
from service.bootstrap.service import Service
from service.logs import configure_logging
from service.settings import MAX_PROCESSES, Settings

log = structlog.get_logger("service.app")


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


def instance_settings(settings: Settings, index: int) -> Settings:
    """Instance `index` (0 is this process) serves HTTP on FULFILLMENT_HTTP_PORT + index: one
    port per instance, each with its own /metrics, which Prometheus scrapes and sums (port 0
    lets every instance pick its own)."""
    if index == 0 or settings.http_port == 0:
        return settings
    return settings.model_copy(update={"http_port": settings.http_port + index})


def _serve_child(ready: Event, index: int) -> None:
    settings = instance_settings(Settings(), index)
    configure_logging(settings.log_level, settings.log_format, secrets=settings.secrets)
    try:
        asyncio.run(serve(settings, on_ready=ready.set))
    except Exception as error:
        # The same one line as the parent prints for a failure a person can fix.
        from service.entrypoints.errors import one_line

        line = one_line(error, settings)
        if line is None:
            raise
        print(f"fulfillment: {line}", file=sys.stderr)
        sys.exit(1)


def instances(settings: Settings) -> int:
    """`FULFILLMENT_PROCESSES`, with `auto` the CPUs this process may use (affinity, quota)."""
    if settings.processes == "auto":
        return min(usable_cpus(), MAX_PROCESSES)
    return settings.processes


def serve_processes(settings: Settings) -> int:
    """`instances(settings)`: this process and the rest as children, each a full
    instance (consumers, relay candidate, sweeper), exactly as separate deployments would be.
    Python runs one core per process; a stop signal to this process is passed on to them."""
    # Forked, not spawned: nothing runs yet in this process (no event loop, no thread), a child
    # starts from the modules already imported instead of importing them again, and no
    # resource-tracker process is started beside the instances (spawn's costs 12 MiB).
    context = multiprocessing.get_context("fork")
    # Children inherit ignored signals, so none can kill a child half-started; each child is
    # sent SIGTERM exactly once, after it says it can stop cleanly (a second one could arrive
    # after the interpreter has restored the default action while exiting).
    for sig in STOP_SIGNALS:
        signal.signal(sig, signal.SIG_IGN)
    count = instances(settings)
    log.info("instances", processes=count, configured=settings.processes)
    ready = [context.Event() for _ in range(1, count)]
    children = [
        context.Process(target=_serve_child, args=(r, i), name=f"fulfillment-{i}")
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
