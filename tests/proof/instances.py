"""Service instances as an operator runs them: `fulfillment run` subprocesses, each reaching
PostgreSQL through a TCP proxy of its own (so the runner can cut one instance off), logging to
the run directory. The runner kills, stops and restarts them."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import SecretStr

from service.settings import Settings
from tests.commands import FULFILLMENT
from tests.observability.tcp_proxy import TcpProxy
from tests.settings_env import environment_of


def now() -> datetime:
    return datetime.now(UTC)


def rss_kib(pid: int) -> int | None:
    """The resident set of a process, from /proc (None once it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


def through(dsn: str, port: int) -> str:
    """`dsn` with its host and port replaced by the proxy's."""
    parts = urlsplit(dsn)
    credentials = parts.netloc.rsplit("@", 1)[0] + "@" if "@" in parts.netloc else ""
    return parts._replace(netloc=f"{credentials}127.0.0.1:{port}").geturl()


@dataclass
class Instance:
    name: str
    settings: Settings
    log_dir: Path
    proxy: TcpProxy
    process: asyncio.subprocess.Process | None = None
    starts: int = 0
    rss: dict[int, list[tuple[datetime, int]]] = field(default_factory=dict)  # per start

    async def start(self) -> None:
        self.starts += 1
        env = environment_of(self.settings)
        log = self.log_dir / f"{self.name}.{self.starts}.log"
        with log.open("wb") as out:
            self.process = await asyncio.create_subprocess_exec(
                str(FULFILLMENT), "run", env=env, stdout=out, stderr=asyncio.subprocess.STDOUT
            )

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.returncode is None

    def signal(self, signum: signal.Signals) -> None:
        assert self.process is not None
        with contextlib.suppress(ProcessLookupError):
            self.process.send_signal(signum)

    async def kill(self) -> None:
        self.signal(signal.SIGKILL)
        assert self.process is not None
        await self.process.wait()

    async def stop(self, within: float = 45.0) -> int | None:
        """SIGTERM (a SIGCONT first, in case it is stopped), then SIGKILL after `within` s."""
        if not self.alive:
            return self.process.returncode if self.process else None
        assert self.process is not None
        self.signal(signal.SIGCONT)
        self.signal(signal.SIGTERM)
        try:
            return await asyncio.wait_for(self.process.wait(), within)
        except TimeoutError:
            await self.kill()
            return None

    def sample(self) -> None:
        if self.alive:
            assert self.process is not None
            found = rss_kib(self.process.pid)
            if found is not None:
                self.rss.setdefault(self.starts, []).append((now(), found))


async def start_instances(
    settings: Settings, count: int, log_dir: Path
) -> tuple[list[Instance], contextlib.AsyncExitStack]:
    """`count` instances, each behind its own PostgreSQL proxy; the stack closes the proxies."""
    stack = contextlib.AsyncExitStack()
    database = urlsplit(settings.dsn)
    instances = []
    for n in range(count):
        proxy = await stack.enter_async_context(
            TcpProxy(database.hostname or "127.0.0.1", database.port or 5432)
        )
        proxied = SecretStr(through(settings.dsn, proxy.port))
        own = settings.model_copy(update={"database_url": proxied})
        instance = Instance(f"instance-{n + 1}", own, log_dir, proxy)
        await instance.start()
        instances.append(instance)
    return instances, stack
