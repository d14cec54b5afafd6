"""The HTTP endpoint on its own: what each path answers for what the loops report."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest
from prometheus_client import CollectorRegistry, Counter

from service.observe.http import HttpServer


async def _get(port: int, path: str) -> tuple[int, Any]:
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session,
        session.get(f"http://127.0.0.1:{port}{path}") as response,
    ):
        if response.content_type == "application/json":
            return response.status, await response.json()
        return response.status, await response.text()


@pytest.mark.timeout(30)
async def test_the_probes_answer_what_the_loops_report_and_metrics_what_the_registry_holds() -> (
    None
):
    state: dict[str, Any] = {"alive": True, "problems": {}}
    registry = CollectorRegistry()
    Counter("example_total", "An example.", registry=registry).inc(3)
    asked: list[str] = []

    async def alive() -> bool:
        return bool(state["alive"])

    async def problems() -> dict[str, str]:
        asked.append("problems")
        return dict(state["problems"])

    server = HttpServer("127.0.0.1", 0, alive=alive, problems=problems, registry=registry)
    port = await server.start()
    try:
        assert port > 0
        assert await _get(port, "/healthz") == (200, {"alive": True})
        assert await _get(port, "/readyz") == (200, {"ready": True})
        status, text = await _get(port, "/metrics")
        assert status == 200 and "example_total 3.0" in text
        assert asked == ["problems", "problems"]  # a scrape asks first, as /readyz does

        state.update(alive=False, problems={"kafka": "KafkaError: unreachable"})
        assert await _get(port, "/healthz") == (503, {"alive": False})
        assert await _get(port, "/readyz") == (
            503,
            {"ready": False, "problems": {"kafka": "KafkaError: unreachable"}},
        )
        assert (await _get(port, "/nothing"))[0] == 404
    finally:
        await server.stop()


@pytest.mark.timeout(30)
async def test_a_port_already_in_use_is_one_clear_error_naming_the_address() -> None:
    async def alive() -> bool:
        return True

    async def problems() -> dict[str, str]:
        return {}

    first = HttpServer("127.0.0.1", 0, alive=alive, problems=problems, registry=CollectorRegistry())
    port = await first.start()
    second = HttpServer(
        "127.0.0.1", port, alive=alive, problems=problems, registry=CollectorRegistry()
    )
    try:
        with pytest.raises(OSError, match=rf"cannot serve HTTP on 127\.0\.0\.1:{port}"):
            await second.start()
    finally:
        await first.stop()
