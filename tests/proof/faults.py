"""The proof's faults: a seeded schedule (pure), and the injector that applies each one to the
running instances and measures how long the service took to recover from it."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Final

from tests.cluster import Cluster
from tests.commands import fulfillment
from tests.fault import ha_pair
from tests.fault.tools import fetchval, wait_until
from tests.observability.tcp_proxy import TcpProxy
from tests.proof import diagnose
from tests.proof.history import Parking
from tests.proof.instances import Instance, now

KINDS: Final = ("sigkill", "sigstop", "db_cut", "poison", "redrive")
# On the PostgreSQL primary with its synchronous standby (`stack.sh up ha`) only.
# `read_only`: the primary refusing writes, on and off, its sessions open; `switchover`: the
# primary demoted without being stopped (read-only, answering) and its standby promoted.
HA_KINDS: Final = ("pg_restart", "failover", "read_only", "switchover")
# On the three-broker cluster only.
CLUSTER_KINDS: Final = ("broker_kill", "leader_stall", "kafka_cut")
# A stalled leader is fenced after the brokers' session timeout (9 s): hold it longer.
LEADER_STALL_MIN: Final = 12.0
BROKERS: Final = 3
# `dlq redrive --all` runs per redrive fault: a defect doubling letters shows after a few.
REDRIVES: Final = 3
# Seconds after a fault's end within which a probe payment on every partition must have its
# outcome (recoveries on a loaded machine take up to a minute): past it the service did not
# recover from that fault, a violation; the fault goes on (a switchover's old primary rebuilt).
RECOVERY_BOUND: Final = 180.0


@dataclass(frozen=True)
class Planned:
    at: float  # seconds from the start of the workload
    kind: str
    instance: int
    hold: float  # seconds the fault lasts before its recovery is started
    customer: uuid.UUID | None = None  # the poison customer of a poison fault


def schedule(
    seed: int,
    duration: float,
    instances: int,
    repeats: int,
    *,
    cluster: bool = False,
    ha: bool = False,
    only: frozenset[str] | None = None,
) -> list[Planned]:
    """Every kind `repeats` times, in a seeded order, spread over the first 80% of the run.
    A broker fault's `instance` is the broker's index (node `instance + 1`). `only`, when
    given, keeps those of the kinds the topology allows (a run aimed at one kind of fault)."""
    rng = random.Random(f"{seed}|faults")
    every = KINDS + (HA_KINDS if ha else ()) + (CLUSTER_KINDS if cluster else ())
    kinds = [kind for kind in every if only is None or kind in only for _ in range(repeats)]
    if not kinds:
        return []
    rng.shuffle(kinds)
    slot = 0.75 * duration / len(kinds)
    planned = []
    for i, kind in enumerate(kinds):
        at = 0.05 * duration + i * slot + rng.uniform(0, 0.2 * slot)
        hold = round(rng.uniform(0.2, 0.5) * slot, 1)
        customer = uuid.UUID(int=rng.getrandbits(128), version=4) if kind == "poison" else None
        target = rng.randrange(BROKERS if kind in CLUSTER_KINDS else instances)
        planned.append(Planned(round(at, 1), kind, target, hold, customer))
    return planned


@dataclass
class Happened:
    planned: Planned
    started: datetime
    lifted: datetime | None = None  # restarted, continued, restored, released, commands done
    recovered: datetime | None = None  # every partition decided a probe payment again
    note: str = ""
    unrecovered: bool = False  # no probe came back within RECOVERY_BOUND of `lifted`

    @property
    def recovery_seconds(self) -> float | None:
        if self.recovered is None or self.lifted is None:
            return None
        return (self.recovered - self.lifted).total_seconds()


# Sends a probe payment on every partition and waits for the outcomes; returns when done.
Probe = Callable[[], Awaitable[None]]
# Sends a payment of a poison customer with that business time; returns when it was sent.
Poison = Callable[[uuid.UUID, datetime], Awaitable[None]]


@dataclass
class Injector:
    instances: list[Instance]
    operator_env: dict[str, str]  # a `fulfillment` command's environment: no failpoint
    probe: Probe
    poison: Poison
    log: Callable[[str], None]
    request_ttl: timedelta
    sweep_interval: float
    happened: list[Happened] = field(default_factory=list)
    _expiry: datetime = field(default_factory=now)
    parkings: list[Parking] = field(default_factory=list)
    redrives: int = 0
    crashes: int = 0
    cluster: Cluster | None = None
    output_topic: str = "sessions.events"
    dsn: str = ""
    # After how long the session of a poison fault's first payment expires: longer than
    # parking it, releasing it and parking it again take (the report says when it was not).
    expires_in: float = 60.0
    # The proxies every instance reaches the cluster through (`kafka_cut`).
    kafka: list[TcpProxy] = field(default_factory=list)

    async def apply(self, planned: Planned) -> None:
        event = Happened(planned, now())
        self.happened.append(event)
        self.log(f"fault {planned.kind} on instance {planned.instance + 1} for {planned.hold}s")
        try:
            await getattr(self, "_" + planned.kind)(planned, event)
        except Exception as error:  # reported, and the run goes on: the checker judges
            event.note = f"failed: {error!r}"
            self.log(f"fault {planned.kind} failed: {error!r}")

    async def _recovered(self, event: Happened) -> None:
        event.lifted = now()
        try:
            await asyncio.wait_for(self.probe(), RECOVERY_BOUND)
        except TimeoutError:
            event.unrecovered = True
            self.log(f"fault {event.planned.kind}: not recovered within {RECOVERY_BOUND:g} s")
            for line in await diagnose.stalled(self.instances, self.dsn):
                self.log(f"  {line}")
            return
        event.recovered = now()

    async def _sigkill(self, planned: Planned, event: Happened) -> None:
        instance = self.instances[planned.instance]
        self.crashes += 1
        await instance.kill()
        await asyncio.sleep(planned.hold)
        await instance.start()
        await self._recovered(event)

    async def _broker_kill(self, planned: Planned, event: Happened) -> None:
        """SIGKILL of a broker of the cluster (its partitions' leaders move), then its restart."""
        assert self.cluster is not None
        await self.cluster.kill_broker(planned.instance + 1)
        await asyncio.sleep(planned.hold)
        await self.cluster.start_broker(planned.instance + 1)
        await self._recovered(event)

    async def _leader_stall(self, planned: Planned, event: Happened) -> None:
        """SIGSTOP of the broker leading `sessions.events` partition 0 (an output partition's
        leader unavailable: the relay's sends to it stall until it is fenced), then SIGCONT."""
        assert self.cluster is not None
        leader = await self.cluster.leader_of(self.output_topic, 0)
        pid = int(broker_pid_file(self.cluster, leader).read_text().strip())
        event.note = f"broker {leader} (pid {pid}) led {self.output_topic}[0]"
        os.kill(pid, signal.SIGSTOP)
        try:
            await asyncio.sleep(max(planned.hold, LEADER_STALL_MIN))
        finally:
            os.kill(pid, signal.SIGCONT)
        await self._recovered(event)

    async def _sigstop(self, planned: Planned, event: Happened) -> None:
        instance = self.instances[planned.instance]
        instance.signal(signal.SIGSTOP)
        await asyncio.sleep(planned.hold)
        instance.signal(signal.SIGCONT)
        await self._recovered(event)

    async def _db_cut(self, planned: Planned, event: Happened) -> None:
        proxies = self.instances[planned.instance].proxies
        for proxy in proxies:
            await proxy.cut()
        await asyncio.sleep(planned.hold)
        for proxy in proxies:
            await proxy.restore()
        await self._recovered(event)

    async def _kafka_cut(self, planned: Planned, event: Happened) -> None:
        """Every instance cut off every broker (their connections reset, new ones refused):
        the proxies of the PROXIED listener are shared, so the cut is not one instance's."""
        event.note = "all instances cut off the three brokers"
        for proxy in self.kafka:
            await proxy.cut()
        await asyncio.sleep(planned.hold)
        for proxy in self.kafka:
            await proxy.restore()
        await self._recovered(event)

    async def _pg_restart(self, planned: Planned, event: Happened) -> None:
        """The primary stopped (fast shutdown), down `hold` s, started again."""
        await ha_pair.stack("restart-primary", "ha", f"{planned.hold:g}")
        await self._recovered(event)

    async def _failover(self, planned: Planned, event: Happened) -> None:
        """The primary stopped (fast shutdown), `hold` s without one, its standby promoted;
        once the service decides again, the old primary made the new one's synchronous standby
        (a fresh base backup), so that the next failover goes the other way."""
        await ha_pair.stack("failover", "ha", f"{planned.hold:g}")
        port = await fetchval(self.dsn, "SELECT inet_server_port()")
        await self._recovered(event)
        began = now()
        await ha_pair.stack("rejoin", "ha")
        rejoin = (now() - began).total_seconds()
        event.note = f"promoted port {port}; the old primary its standby again {rejoin:.0f} s on"

    async def _read_only(self, planned: Planned, event: Happened) -> None:
        """The pair's primary refusing writes, on and off, for `hold` s, its sessions left open
        (`stack.sh read-only ha on|off`: default_transaction_read_only by ALTER SYSTEM and a
        reload), as a primary demoted without being stopped, and one whose demotion flaps:
        the service's open connections see 25006 on their next write, no host takes new
        read-write connections (the primary read-only, the standby in recovery:
        TargetServerAttributeNotMatched), and a retry may meet a writable primary again. Read-
        only spells of 1-3 s, writable gaps of 0.2-1 s (seeded), writable at the end."""
        rng = random.Random(f"{planned.at}|{planned.instance}|read_only")
        loop = asyncio.get_running_loop()
        until, spells = loop.time() + planned.hold, 0
        try:
            while True:
                await ha_pair.stack("read-only", "ha", "on")
                spells += 1
                await asyncio.sleep(max(0.0, min(rng.uniform(1.0, 3.0), until - loop.time())))
                await ha_pair.stack("read-only", "ha", "off")
                if loop.time() >= until:
                    break
                await asyncio.sleep(rng.uniform(0.2, 1.0))
        finally:
            await ha_pair.stack("read-only", "ha", "off")
        event.note = f"the primary read-only {spells} times, its sessions kept"
        await self._recovered(event)

    async def _switchover(self, planned: Planned, event: Happened) -> None:
        """The primary demoted without being stopped (read-only, its sessions open), `hold` s
        without a primary, then its standby promoted (`stack.sh switchover ha`): the service's
        connections to the old one must go, new ones find the new primary. Once it decides
        again (or RECOVERY_BOUND passed), the old primary is rebuilt as the new one's
        synchronous standby, as after a failover."""
        await ha_pair.stack("switchover", "ha", f"{planned.hold:g}")
        port = await fetchval(self.dsn, "SELECT inet_server_port()")
        try:
            await self._recovered(event)
        finally:
            began = now()
            await ha_pair.stack("rejoin", "ha")
        rejoin = (now() - began).total_seconds()
        event.note = f"promoted port {port}; the old primary its standby again {rejoin:.0f} s on"

    async def _poison(self, planned: Planned, event: Happened) -> None:
        """A poison customer parked twice: first with a payment dated so that, once released,
        its session expires `expires_in` s after the fault began; then with a payment sent while
        that session waits, so the customer is parked while it expires. Nothing may be
        published for them until the second release (guarantee 7), not even by the sweeper."""
        assert planned.customer is not None
        customer = planned.customer
        expires = self._expiry = event.started + timedelta(seconds=self.expires_in)
        await self._park_and_release(customer, expires - self.request_ttl)
        second = now()
        await self.poison(customer, second)
        await self._parked(str(customer), within=180.0)
        waited = (expires - now()).total_seconds() + 2 * self.sweep_interval
        await asyncio.sleep(max(waited, 0) + planned.hold)
        await self._release(customer, second, event)
        await self._recovered(event)

    async def _park_and_release(self, customer: uuid.UUID, time: datetime) -> None:
        since = now()
        await self.poison(customer, time)
        await self._parked(str(customer), within=180.0)
        await self._release(customer, since, None)

    async def _release(self, customer: uuid.UUID, since: datetime, event: Happened | None) -> None:
        released = now()
        self.parkings.append(Parking(str(customer), since, released))
        done = await fulfillment("parked", "release", str(customer), env=self.operator_env)
        self.log(f"released {customer}: exit {done.returncode}")
        if event is not None:
            expired = "expiring while parked" if since < self._expiry else "expired before"
            event.note = f"customer {customer} parked twice, its session {expired}"

    async def _parked(self, customer: str, within: float) -> None:
        """Until the customer has an event parked (read from the database: an operator's
        `parked list` takes seconds to start on a loaded machine)."""

        async def parked() -> bool:
            query = "SELECT count(*) > 0 FROM parked_events WHERE customer_id = $1"
            return bool(await fetchval(self.dsn, query, uuid.UUID(customer)))

        await wait_until(parked, within=within, every=0.5)

    async def _redrive(self, planned: Planned, event: Happened) -> None:
        """`dlq redrive --all` REDRIVES times in a row, as an operator retrying would."""
        codes = []
        for _ in range(REDRIVES):
            done = await fulfillment("dlq", "redrive", "--all", env=self.operator_env, within=120)
            codes.append(done.returncode)
            self.redrives += 1
            await asyncio.sleep(planned.hold / REDRIVES)
        event.note = f"redrive --all x{REDRIVES}, exits {codes}"
        await self._recovered(event)


def broker_pid_file(cluster: Cluster, node: int) -> Path:
    """Where the cluster's stack.sh keeps node N's pid: <repo>/.local/kafka-cluster/broker-N."""
    return cluster.stack.parents[2] / ".local" / "kafka-cluster" / f"broker-{node}" / "kafka.pid"


async def run_schedule(injector: Injector, planned: list[Planned], start: datetime) -> None:
    """Each fault at its time (or as soon as the previous one has recovered)."""
    for fault in planned:
        delay = fault.at - (now() - start).total_seconds()
        if delay > 0:
            await asyncio.sleep(delay)
        await injector.apply(fault)
