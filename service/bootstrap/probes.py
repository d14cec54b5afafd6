"""The instance's health as others see it: the watch loop (dependency checks, lag, outbox) and
the HTTP endpoint (/healthz, /readyz, /metrics), built from what the wiring already has."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer

from service.adapters import metrics
from service.adapters.health import Health
from service.adapters.http import HttpServer
from service.adapters.kafka.consumer import ConsumerLoop
from service.adapters.kafka.producer_owner import ProducerOwner
from service.adapters.postgres.pool import Pool
from service.adapters.watch import Watch
from service.settings import Settings

# Readiness must turn within two sweep intervals of an outage; never check less often than this.
MAX_CHECK_INTERVAL = 5.0


class Probes:
    def __init__(
        self,
        settings: Settings,
        health: Health,
        *,
        pool: Pool,
        producers: ProducerOwner,
        consumers: Sequence[AIOKafkaConsumer],
        loops: Sequence[ConsumerLoop],
    ) -> None:
        self._health = health
        self._loops = loops
        self._producers = producers
        self.tasks: list[asyncio.Task[Any]] = []  # the loops /healthz watches, once started
        self.watch = Watch(
            interval=min(settings.sweep_interval_seconds, MAX_CHECK_INTERVAL),
            pool=pool,
            kafka=producers,  # the current producer's client, replaced with it
            consumers=consumers,
            health=health,
        )
        self.http = HttpServer(
            settings.http_host,
            settings.http_port,
            alive=self.alive,
            problems=self.problems,
            registry=metrics.REGISTRY,
        )

    def open(self) -> None:
        """From now on `fulfillment_ready` is what `/readyz` says, read at each scrape."""
        metrics.ready.set_function(lambda: 0.0 if self.problems() else 1.0)

    def close(self) -> None:
        metrics.ready.set_function(lambda: 0.0)

    def alive(self) -> bool:
        """False once a loop has ended, or while the shared producer could not be replaced."""
        return self._producers.alive and not any(task.done() for task in self.tasks)

    def problems(self) -> dict[str, str]:
        problems = self._health.problems()
        for loop in self._loops:
            if not loop.joined:
                problems[loop.name] = "no partition assignment from the group yet"
        return problems
