"""Asking a running service's HTTP endpoint: its bound port, the probes, its metrics parsed."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from service.bootstrap.service import Service

T = TypeVar("T")
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def address_of(service: Service, within: float = 30.0) -> str:
    """http://host:port of a service started with FULFILLMENT_HTTP_PORT=0, once it listens."""
    await asyncio.wait_for(service.listening.wait(), within)
    return f"http://{service.settings.http_host}:{service.http_port}"


async def get(address: str, path: str) -> tuple[int, Any]:
    """(status, parsed JSON body or text) of GET `path`."""
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session,
        session.get(address + path) as response,
    ):
        if response.content_type == "application/json":
            return response.status, await response.json()
        return response.status, await response.text()


async def scrape(address: str) -> Samples:
    """Every sample of /metrics, by name and labels."""
    status, text = await get(address, "/metrics")
    assert status == 200, text
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


async def until(probe: Callable[[], Awaitable[T]], done: Callable[[T], bool], within: float) -> T:
    """Calls `probe` every 100 ms until `done(result)`; TimeoutError after `within` seconds."""
    async with asyncio.timeout(within):
        # Another process's answer: there is no event to wait on, only asking again.
        while not done(result := await probe()):  # noqa: ASYNC110
            await asyncio.sleep(0.1)
    return result


async def answer(address: str, path: str) -> tuple[int, Any]:
    """`get`, with a refused connection (a service not listening yet) as status 0."""
    try:
        return await get(address, path)
    except OSError:
        return 0, None


def two_free_ports() -> int:
    """A port p such that p and p + 1 (a second instance's own) are free now."""
    while True:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port: int = probe.getsockname()[1]
        if port < 65535:
            with socket.socket() as probe, contextlib.suppress(OSError):
                probe.bind(("127.0.0.1", port + 1))
                return port
