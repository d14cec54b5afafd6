"""The other instances of one `fulfillment run`, asked by the one serving the service's port:
each answers `/healthz` and `/readyz` on a port of its own (FULFILLMENT_HTTP_PORT + i), so that
the service's port can answer for all of them with what they say now."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any

import aiohttp

# Under the probes' own timeout (3 s in deploy/k8s/deployment.yaml): an instance that does not
# answer within it is reported as such rather than failing the whole probe by timing out.
ASK_TIMEOUT = 2.0
NOT_LISTENING = "not listening yet"


def loopback(host: str) -> str:
    """Where to reach an instance that listens on `host` from the same machine."""
    if host in ("", "0.0.0.0"):
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host


class Instances:
    """Instances 1..N, by the port each listens on once started (0 before: see `ports`)."""

    def __init__(self, host: str, ports: Sequence[Callable[[], int]]) -> None:
        self._host = loopback(host)
        self._ports = ports

    async def alive(self) -> bool:
        answers = await self._ask_all("/healthz")
        return all(isinstance(answer, tuple) and answer[0] == 200 for answer in answers)

    async def problems(self) -> dict[str, str]:
        """What is not ready, by `instance i` and the instance's own name for it."""
        problems: dict[str, str] = {}
        for index, answer in enumerate(await self._ask_all("/readyz"), start=1):
            name = f"instance {index}"
            if isinstance(answer, str):
                problems[name] = answer
            elif answer[0] != 200:
                own = answer[1].get("problems") if isinstance(answer[1], dict) else None
                if not isinstance(own, dict) or not own:
                    problems[name] = f"/readyz answered {answer[0]}"
                    continue
                for what, problem in own.items():
                    problems[f"{name} {what}"] = str(problem)
        return problems

    async def _ask_all(self, path: str) -> list[tuple[int, Any] | str]:
        if not self._ports:
            return []
        timeout = aiohttp.ClientTimeout(total=ASK_TIMEOUT)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            return list(
                await asyncio.gather(*(self._ask(session, port(), path) for port in self._ports))
            )

    async def _ask(
        self, session: aiohttp.ClientSession, port: int, path: str
    ) -> tuple[int, Any] | str:
        """(status, JSON body), or what went wrong as a problem."""
        if port == 0:
            return NOT_LISTENING
        try:
            async with session.get(f"http://{self._host}:{port}{path}") as response:
                return response.status, await response.json(content_type=None)
        except TimeoutError:
            return f"no answer to {path} within {ASK_TIMEOUT:g} s"
        except (aiohttp.ClientError, ValueError) as error:
            return f"no answer to {path}: {type(error).__name__}"
