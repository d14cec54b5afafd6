"""The HTTP endpoint, served by aiohttp on the service's own event loop:

- `/healthz`: 200 while the loops run (`alive()`), else 503.
- `/readyz`: 200 when `problems()` is empty, else 503 with `{"ready": false, "problems": {...}}`
  naming what is not ready.
- `/metrics`: the Prometheus text format of `registry`, after asking `problems()` (which keeps
  `fulfillment_ready` current).

The answers are the wiring's (service/bootstrap/probes.py): what the loops and the watch loop
last reported, and, on the port of several instances, what the others say.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest


class HttpServer:
    def __init__(
        self,
        host: str,
        port: int,
        *,
        alive: Callable[[], Awaitable[bool]],
        problems: Callable[[], Awaitable[Mapping[str, str]]],
        registry: CollectorRegistry,
    ) -> None:
        self._host = host
        self._port = port
        self._alive = alive
        self._problems = problems
        self._registry = registry
        app = web.Application()
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        app.router.add_get("/metrics", self._metrics)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        self.port: int | None = None

    async def start(self) -> int:
        """Listen; returns the bound port (the one picked when asked for port 0).

        Raises OSError when the address cannot be bound (in use, not local)."""
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, self._port)
        try:
            await site.start()
        except OSError as error:
            await self._runner.cleanup()
            raise OSError(
                error.errno, f"cannot serve HTTP on {self._host}:{self._port}: {error.strerror}"
            ) from None
        self.port = site.port
        return self.port

    async def stop(self) -> None:
        await self._runner.cleanup()

    async def _healthz(self, _: web.Request) -> web.Response:
        if await self._alive():
            return web.json_response({"alive": True})
        return web.json_response({"alive": False}, status=503)

    async def _readyz(self, _: web.Request) -> web.Response:
        problems = dict(await self._problems())
        if not problems:
            return web.json_response({"ready": True})
        return web.json_response({"ready": False, "problems": problems}, status=503)

    async def _metrics(self, _: web.Request) -> web.Response:
        await self._problems()
        body = generate_latest(self._registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})
