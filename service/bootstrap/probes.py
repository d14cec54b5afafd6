"""The instance's health as others see it: the watch loop (dependency checks, lag, outbox) and
the HTTP endpoint (/healthz, /readyz, /metrics), built from what the wiring already has.

The instance serving the port of several (`fulfillment run` with FULFILLMENT_PROCESSES > 1)
answers for all of them: it asks the others (`others`) and serves their summed metrics
(`registry`)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer
from prometheus_client import CollectorRegistry

from service.adapters.kafka.consumer import ConsumerLoop
from service.adapters.kafka.producer_owner import ProducerOwner
from service.adapters.postgres.pool import Pool
from service.config.settings import Settings
from service.observe import metrics
from service.observe.health import Health
from service.observe.http import HttpServer
from service.observe.instances import Instances
from service.observe.watch import Watch

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
        registry: CollectorRegistry = metrics.REGISTRY,
        others: Instances | None = None,
    ) -> None:
        self._health = health
        self._loops = loops
        self._others = others
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
            registry=registry,
        )

    def close(self) -> None:
        metrics.ready.set(0.0)

    async def alive(self) -> bool:
        """False once a loop has ended, or while the shared producer could not be replaced,
        or when another instance is not alive."""
        if not self._producers.alive or any(task.done() for task in self.tasks):
            return False
        return self._others is None or await self._others.alive()

    async def problems(self) -> dict[str, str]:
        """What is not ready, its own and the others'; sets `fulfillment_ready` to match, so it
        is what `/readyz` said when last asked (each scrape asks first)."""
        problems = self._health.problems()
        for loop in self._loops:
            if not loop.joined:
                problems[loop.name] = "no partition assignment from the group yet"
        if self._others is not None:
            problems |= await self._others.problems()
        # With several instances the service's value is the least of theirs (metrics.py): the
        # others set theirs when asked above, this one its own and theirs together.
        metrics.ready.set(0.0 if problems else 1.0)
        return problems
