"""Several processes from one `fulfillment run`: each instance has an HTTP port of its own, and
the one serving the service's port answers for the others with what they say."""

from __future__ import annotations

import socket
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from service.bootstrap.supervisor import instance_settings
from service.config.settings import Settings
from service.observe.http import HttpServer
from service.observe.instances import NOT_LISTENING, Instances, loopback


def test_each_instance_of_several_processes_serves_http_on_its_own_port() -> None:
    settings = Settings(http_port=8080, processes=3)
    picked = Settings(http_port=0, processes=3)

    assert [instance_settings(settings, i).http_port for i in range(3)] == [8080, 8081, 8082]
    assert [instance_settings(picked, i).http_port for i in range(3)] == [0, 0, 0]
    assert instance_settings(settings, 2).topics == settings.topics


def test_an_instance_listening_on_every_address_is_asked_on_the_loopback() -> None:
    assert [loopback(h) for h in ("0.0.0.0", "", "::", "10.0.0.7", "fe80::1")] == [
        "127.0.0.1",
        "127.0.0.1",
        "[::1]",
        "10.0.0.7",
        "[fe80::1]",
    ]


class _Instance:
    """An instance's HTTP endpoint answering what `state` says."""

    def __init__(self) -> None:
        self.state: dict[str, Any] = {"alive": True, "problems": {}}

        async def alive() -> bool:
            return bool(self.state["alive"])

        async def problems() -> dict[str, str]:
            return dict(self.state["problems"])

        self.server = HttpServer(
            "127.0.0.1", 0, alive=alive, problems=problems, registry=CollectorRegistry()
        )


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@pytest.mark.timeout(30)
async def test_the_others_problems_are_named_by_instance_and_silence_is_a_problem() -> None:
    first, second = _Instance(), _Instance()
    ports = [await first.server.start(), await second.server.start()]
    try:
        closed = _closed_port()
        others = Instances("0.0.0.0", [lambda: ports[0], lambda: ports[1]])
        assert await others.problems() == {}
        assert await others.alive()

        second.state["problems"] = {"postgresql": "ConnectionRefusedError: refused"}
        second.state["alive"] = False
        assert await others.problems() == {
            "instance 2 postgresql": "ConnectionRefusedError: refused"
        }
        assert not await others.alive()

        starting = Instances("127.0.0.1", [lambda: ports[0], lambda: 0, lambda: closed])
        problems = await starting.problems()
        assert problems["instance 2"] == NOT_LISTENING
        assert problems["instance 3"].startswith("no answer to /readyz")
        assert set(problems) == {"instance 2", "instance 3"}
        assert not await starting.alive()
    finally:
        await first.server.stop()
        await second.server.stop()
