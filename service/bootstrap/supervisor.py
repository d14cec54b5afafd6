"""`fulfillment run`: one instance per process, stop signals, and the supervisor that runs
`FULFILLMENT_PROCESSES` instances from one command.

The service has one scrape target whatever the count: instance 0 (this process) serves
FULFILLMENT_HTTP_PORT with every instance's metrics summed (service/observe/shared_metrics.py)
and answers /healthz and /readyz for all of them, asking each over its own port (port + i),
which also serves that instance alone, for debugging."""

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
from functools import partial
from multiprocessing.sharedctypes import Synchronized
from multiprocessing.synchronize import Event
from pathlib import Path

import structlog
from prometheus_client import CollectorRegistry

from service.bootstrap.cpus import usable_cpus
from service.bootstrap.service import Service
from service.config.settings import MAX_PROCESSES, Settings
from service.observe import metrics
from service.observe.instances import Instances
from service.observe.logs import configure_logging
from service.observe.shared_metrics import instance_gone, shared_registry

log = structlog.get_logger("service.app")


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
SHUTDOWN_GRACE = 60.0  # seconds a child may take to start, then to stop, before SIGKILL


async def serve(
    settings: Settings,
    on_signal: Callable[[], None] = lambda: None,
    on_ready: Callable[[], None] = lambda: None,
    *,
    registry: CollectorRegistry = metrics.REGISTRY,
    others: Instances | None = None,
    on_listening: Callable[[int], None] = lambda _: None,
) -> None:
    """Run until SIGINT or SIGTERM, then shut down cleanly. `registry`, `others` and
    `on_listening` as Service takes them."""
    service = Service(settings, registry=registry, others=others, on_listening=on_listening)
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
    """Instance `index` (0 is this process) serves HTTP on FULFILLMENT_HTTP_PORT + index: the
    port instance 0 asks it on, and its own metrics alone, for debugging (port 0 lets every
    instance pick its own)."""
    if index == 0 or settings.http_port == 0:
        return settings
    return settings.model_copy(update={"http_port": settings.http_port + index})


def _serve_child(ready: Event, index: int, port: Synchronized[int]) -> None:
    settings = instance_settings(Settings(), index)
    configure_logging(settings.log_level, settings.log_format, secrets=settings.secrets)

    def listening(bound: int) -> None:
        port.value = bound

    try:
        asyncio.run(serve(settings, on_ready=ready.set, on_listening=listening))
    except Exception as error:
        # The same one line as the parent prints for a failure a person can fix.
        from service.bootstrap.fixable import one_line, print_error

        line = one_line(error, settings)
        if line is None:
            raise
        print_error(line)
        sys.exit(1)


def _port_of(shared: Synchronized[int]) -> int:
    return int(shared.value)


def instances(settings: Settings) -> int:
    """`FULFILLMENT_PROCESSES`, with `auto` the CPUs this process may use (affinity, quota)."""
    if settings.processes == "auto":
        return min(usable_cpus(), MAX_PROCESSES)
    return settings.processes


def serve_processes(settings: Settings, metrics_dir: Path) -> int:
    """`instances(settings)`: this process and the rest as children, each a full
    instance (consumers, relay candidate, sweeper), exactly as separate deployments would be.
    Python runs one core per process; a stop signal to this process is passed on to them.
    `metrics_dir`: where every instance keeps its metrics (service/bootstrap/metrics_dir.py)."""
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
    log.info(
        "instances", processes=count, configured=settings.processes, metrics_dir=str(metrics_dir)
    )
    ready = [context.Event() for _ in range(1, count)]
    ports: list[Synchronized[int]] = [context.Value("i", 0) for _ in range(1, count)]
    children = [
        context.Process(target=_serve_child, args=(r, i, p), name=f"fulfillment-{i}")
        for i, (r, p) in enumerate(zip(ready, ports, strict=True), start=1)
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
        ended = multiprocessing.connection.wait([c.sentinel for c in children])
        for child in children:
            if child.sentinel in ended and child.pid is not None:
                instance_gone(child.pid, metrics_dir)  # its gauges leave the sums at once
        if not stopping.is_set():
            log.error("instance_died", exit_codes=[c.exitcode for c in children])
            os.kill(os.getpid(), signal.SIGTERM)

    if children:
        threading.Thread(target=supervise, name="supervise", daemon=True).start()
    pids = [os.getpid(), *(child.pid for child in children if child.pid is not None)]
    registry = shared_registry(metrics_dir, lambda: pids)
    others = Instances(settings.http_host, [partial(_port_of, p) for p in ports])
    try:
        asyncio.run(
            serve(
                settings,
                on_signal=stop_all,
                registry=registry,
                others=others if children else None,
            )
        )
    finally:
        stopping.set()
        forward(wait=SHUTDOWN_GRACE)
        for child in children:
            child.join(SHUTDOWN_GRACE)
            if child.is_alive():
                child.kill()
                child.join()
            if child.pid is not None:
                instance_gone(child.pid, metrics_dir)
    failed = [c.exitcode for c in children if c.exitcode]
    return failed[0] if failed else 0
