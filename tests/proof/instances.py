"""Service instances as an operator runs them: `fulfillment run` subprocesses, each reaching
PostgreSQL through TCP proxies of its own, one per database host (so the runner can cut one
instance off), and on the cluster reaching Kafka through the proxies of the cluster's PROXIED
listener (deploy/local/cluster.sh) that all instances share, logging to the run directory. The
runner kills, stops and restarts them.

`fulfillment run` forks its worker processes (`FULFILLMENT_PROCESSES`, one per CPU by default),
so an instance is a process group of its own: SIGKILL, SIGSTOP and SIGCONT go to the whole
group, as a machine or container failing would, and its RSS is the group's."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import SecretStr

from service.config.settings import Settings
from tests.commands import FULFILLMENT
from tests.fault.tools import wait_until
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


def group_members(pgid: int) -> list[int]:
    """The processes of a process group, from /proc."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # pid (comm) state ppid pgrp ...: comm may hold spaces, so split after its ')'.
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[2]) == pgid:
            members.append(int(entry.name))
    return members


def group_rss_kib(pgid: int) -> int | None:
    sizes = [size for pid in group_members(pgid) if (size := rss_kib(pid)) is not None]
    return sum(sizes) if sizes else None


def hosts_of(dsn: str) -> list[tuple[str, int]]:
    """The hosts of a (possibly multi-host) PostgreSQL URL, in its order."""
    hosts = urlsplit(dsn).netloc.rsplit("@", 1)[-1].split(",")
    found = []
    for host in hosts:
        name, _, port = host.rpartition(":") if ":" in host else (host, "", "5432")
        found.append((name or "127.0.0.1", int(port)))
    return found


def through(dsn: str, ports: list[int]) -> str:
    """`dsn` with its hosts and ports replaced by the proxies', in the same order."""
    parts = urlsplit(dsn)
    credentials = parts.netloc.rsplit("@", 1)[0] + "@" if "@" in parts.netloc else ""
    hosts = ",".join(f"127.0.0.1:{port}" for port in ports)
    return parts._replace(netloc=f"{credentials}{hosts}").geturl()


@dataclass
class Instance:
    name: str
    settings: Settings
    log_dir: Path
    proxies: list[TcpProxy]  # to PostgreSQL, one per host
    process: asyncio.subprocess.Process | None = None
    starts: int = 0
    rss: dict[int, list[tuple[datetime, int]]] = field(default_factory=dict)  # per start

    async def start(self) -> None:
        self.starts += 1
        env = environment_of(self.settings)
        log = self.log_dir / f"{self.name}.{self.starts}.log"
        with log.open("wb") as out:
            self.process = await asyncio.create_subprocess_exec(
                str(FULFILLMENT),
                "run",
                env=env,
                stdout=out,
                stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,  # its own process group: it and its workers
            )

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.returncode is None

    def signal(self, signum: signal.Signals) -> None:
        """`signum` to the whole instance: the supervisor and its workers."""
        assert self.process is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signum)

    async def kill(self) -> None:
        self.signal(signal.SIGKILL)
        assert self.process is not None
        await self.process.wait()
        pgid = self.process.pid

        async def gone() -> bool:  # the workers too, reaped by init
            return not group_members(pgid)

        await wait_until(gone, within=10)

    async def stop(self, within: float = 45.0) -> int | None:
        """SIGTERM (a SIGCONT first, in case it is stopped), then SIGKILL after `within` s."""
        if not self.alive:
            return self.process.returncode if self.process else None
        assert self.process is not None
        self.signal(signal.SIGCONT)
        with contextlib.suppress(ProcessLookupError):
            self.process.send_signal(signal.SIGTERM)  # the supervisor stops its workers
        try:
            code = await asyncio.wait_for(self.process.wait(), within)
        except TimeoutError:
            await self.kill()
            return None
        if group_members(self.process.pid):  # a worker left behind: none may outlive a run
            await self.kill()
        return code

    def sample(self) -> None:
        if self.alive:
            assert self.process is not None
            found = group_rss_kib(self.process.pid)
            if found is not None:
                self.rss.setdefault(self.starts, []).append((now(), found))


async def start_instances(
    settings: Settings, count: int, log_dir: Path, kafka: str | None = None
) -> tuple[list[Instance], contextlib.AsyncExitStack]:
    """`count` instances, each behind its own PostgreSQL proxies, bootstrapping to `kafka` when
    given (else to the settings' servers); the stack closes the proxies."""
    stack = contextlib.AsyncExitStack()
    instances = []
    for n in range(count):
        proxies = [
            await stack.enter_async_context(TcpProxy(host, port, follow=True))
            for host, port in hosts_of(settings.dsn)
        ]
        proxied = SecretStr(through(settings.dsn, [proxy.port for proxy in proxies]))
        update: dict[str, object] = {"database_url": proxied}
        if kafka is not None:
            update["kafka_bootstrap_servers"] = kafka
        own = settings.model_copy(update=update)
        instance = Instance(f"instance-{n + 1}", own, log_dir, proxies)
        await instance.start()
        instances.append(instance)
    return instances, stack


# The cluster's PROXIED listener of node N listens on its client port + 200 and advertises the
# client port + 10200, where the proof's proxy to it listens (deploy/local/cluster.sh).
PROXIED_LISTENER = 200
PROXY_PORT = 10200


async def kafka_proxies(
    bootstrap: str, stack: contextlib.AsyncExitStack
) -> tuple[list[TcpProxy], str]:
    """One proxy per broker of the cluster at `bootstrap`, from the port its PROXIED listener
    advertises to that listener, and the bootstrap list through them; `stack` closes them.
    Cutting them cuts every instance off Kafka, and nobody else."""
    proxies = []
    for address in bootstrap.split(","):
        host, _, port = address.rpartition(":")
        proxy = TcpProxy(host, int(port) + PROXIED_LISTENER, port=int(port) + PROXY_PORT)
        proxies.append(await stack.enter_async_context(proxy))
    return proxies, ",".join(f"127.0.0.1:{proxy.port}" for proxy in proxies)
