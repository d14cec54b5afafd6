"""One proof run: a fresh database and topics, service instances as subprocesses, the seeded
workload and fault schedule, a drain, then the history collected, checked and reported."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from service.config.settings import Settings
from tests.cluster import Cluster
from tests.conftest import create_database, drop_database
from tests.fault import ha_pair
from tests.fault.tools import Offsets, wait_drained, wait_until
from tests.harness import Outcomes, Producer
from tests.proof import collect, faults, report
from tests.proof.checker import check
from tests.proof.history import History, Sent
from tests.proof.instances import Instance, kafka_proxies, now, start_instances
from tests.proof.workload import Outgoing, Workload
from tests.servers import Servers
from tests.settings_env import environment_of


@dataclass(frozen=True)
class Plan:
    seed: int
    duration: float  # seconds of workload
    rate: float  # input messages per second
    run_dir: Path
    instances: int = 2
    repeats: int = 3  # of each fault kind
    customers: int = 1000
    # Settings beyond the defaults.
    overrides: dict[str, Any] = field(default_factory=dict)
    # After how long a poison customer's session expires: longer than parking, releasing and
    # parking them again take on the machine.
    poison_expires_in: float = 60.0
    # The three-broker cluster: topics with three replicas there, and broker kills.
    cluster: Cluster | None = None
    # PostgreSQL primary with a synchronous hot standby (`stack.sh up ha`, held exclusively and
    # dropped at the end), restarted and failed over; else a database on the shared server.
    ha: bool = True
    # The soak after the fault phase (tests/proof/soak.py): seconds (0: none) and inputs/s.
    soak_seconds: float = 0.0
    soak_rate: float = 1000.0
    # The fault kinds injected (faults.KINDS and the topology's); None for every one.
    kinds: frozenset[str] | None = None


class Run:
    def __init__(self, plan: Plan, settings: Settings, log: Any) -> None:
        self.plan, self.settings, self._log = plan, settings, log
        self.workload = Workload(plan.seed, settings.topics, plan.customers, plan.rate)
        self.sent: list[Sent] = []
        self.rng = random.Random(f"{plan.seed}|probes")
        self.decided: set[str] = set()  # payment ids with an outcome read back
        self.load: list[float] = []  # the machine's 1-minute load average, start and end

    def log(self, line: str) -> None:
        self._log.write(f"{now():%H:%M:%S.%f} {line}\n")
        self._log.flush()

    async def send(self, producer: Producer, out: Outgoing, partition: int | None = None) -> None:
        at = now()
        await producer.send(
            out.topic, out.value, key=out.key, headers=out.headers, partition=partition
        )
        self.sent.append(out.sent(at))

    async def drive(
        self, producer: Producer, until: datetime, faulting: asyncio.Task[None]
    ) -> None:
        """The workload, until `until` and the last fault's recovery, whichever comes later:
        every fault meets a steady stream."""
        start = now()
        for i, out in enumerate(self.workload.stream(start)):
            if now() >= until and faulting.done():
                return
            due = start + timedelta(seconds=i / self.plan.rate)
            if (wait := (due - now()).total_seconds()) > 0:
                await asyncio.sleep(wait)
            await self.send(producer, out)

    async def watch(self, outcomes: Outcomes) -> None:
        """Feeds what `sessions.events` shows to the workload (the mechanic app's view)."""
        seen = 0
        while True:
            records = outcomes.records
            for record in records[seen:]:
                self.workload.saw(record.value, now())
                event = orjson.loads(record.value)
                if event.get("type") in ("session.created", "session.rejected"):
                    self.decided.add(str(event["data"]["payment_id"]))
            seen = len(records)
            await asyncio.sleep(0.1)

    async def probe(self, producer: Producer) -> None:
        """A payment of a new customer on every input partition; until each has its outcome."""
        customer = uuid.UUID(int=self.rng.getrandbits(128), version=4)
        payments = self.workload.payments(customer, self.settings.topic_partitions, now(), "probe")
        for partition, out in enumerate(payments):
            await self.send(producer, out, partition=partition)
        wanted = {out.event["data"]["payment_id"] for out in payments if out.event}

        async def decided() -> bool:
            return wanted <= self.decided

        await wait_until(decided, within=600)

    async def poison(self, producer: Producer, customer: uuid.UUID, time: datetime) -> None:
        for out in self.workload.payments(customer, 1, time):
            await self.send(producer, out)

    async def sample(self, instances: list[Instance]) -> None:
        while True:
            for instance in instances:
                instance.sample()
            await asyncio.sleep(1.0)


def settings_of(servers: Servers, dsn: str, plan: Plan, poison: frozenset[uuid.UUID]) -> Settings:
    """The service's defaults, but for where it runs: its own topics, group and database."""
    suffix = f"proof-{plan.seed}-{uuid.uuid4().hex[:6]}"
    values: dict[str, Any] = {
        "kafka_bootstrap_servers": plan.cluster.bootstrap
        if plan.cluster
        else servers.kafka_bootstrap,
        "topic_replication_factor": 3 if plan.cluster else 1,
        "database_url": dsn,
        "group_id": suffix,
        "topic_payments": f"payments.completed.{suffix}",
        "topic_acceptances": f"mechanics.accepted.{suffix}",
        "topic_ended": f"sessions.ended.{suffix}",
        "topic_sessions": f"sessions.events.{suffix}",
        "topic_dlq": f"fulfillment.dlq.{suffix}",
        "log_format": "json",
        "http_host": "127.0.0.1",
        "http_port": 0,
        "failpoint_customers": poison,
        # The HA deployment's settings (README, PostgreSQL failover): every host in the URL,
        # with target_session_attrs=read-write, and a decision counts once the standby has it.
        "database_synchronous_standby": plan.ha,
    }
    return Settings(**(values | plan.overrides))


async def prove(plan: Plan, servers: Servers) -> int:
    """Runs the proof; 0 when the checker found no violation, 1 otherwise."""
    plan.run_dir.mkdir(parents=True, exist_ok=True)
    planned = faults.schedule(
        plan.seed,
        plan.duration,
        plan.instances,
        plan.repeats,
        cluster=plan.cluster is not None,
        ha=plan.ha,
        only=plan.kinds,
    )
    poison = frozenset(p.customer for p in planned if p.customer is not None)
    async with contextlib.AsyncExitStack() as held:
        dsn = await phase_database(plan, servers, held)
        settings = settings_of(servers, dsn, plan, poison)
        operator = environment_of(settings.model_copy(update={"failpoint_customers": frozenset()}))
        with (plan.run_dir / "runner.log").open("w") as log_file:
            run = Run(plan, settings, log_file)
            try:
                history, happened, instances = await run_phase(
                    run, plan, settings, operator, planned
                )
            finally:
                if plan.cluster is not None:
                    await plan.cluster.ensure_whole()
    verdict = check(history)
    report.write(plan, settings, history, verdict, happened, instances, run.load)
    return 1 if verdict.violations else 0


async def phase_database(plan: Plan, servers: Servers, held: contextlib.AsyncExitStack) -> str:
    """A fresh migrated database for one phase, dropped when `held` closes: on the HA pair
    (held exclusively, taken down whatever failed over) or on the shared server."""
    if plan.ha:
        await held.enter_async_context(ha_pair.exclusive())
        held.push_async_callback(ha_pair.stack, "down", "ha")
        return await ha_pair.fresh_pair_database()
    dsn = await create_database(servers)
    held.push_async_callback(drop_database, servers, dsn)
    return dsn


async def run_phase(
    run: Run,
    plan: Plan,
    settings: Settings,
    operator: dict[str, str],
    planned: list[faults.Planned],
) -> tuple[History, list[faults.Happened], list[Instance]]:
    async with (
        Outcomes(settings) as outcomes,
        Outcomes(settings, topic=settings.topic_dlq) as letters,
        Producer(settings) as producer,
        contextlib.AsyncExitStack() as network,
    ):
        kafka, bootstrap = (
            await kafka_proxies(plan.cluster.bootstrap, network) if plan.cluster else ([], None)
        )
        instances, proxies = await start_instances(
            settings, plan.instances, plan.run_dir, kafka=bootstrap
        )
        async with proxies, contextlib.AsyncExitStack() as background:
            for instance in instances:  # whatever happens, no instance outlives the run
                background.push_async_callback(instance.stop)
            for job in (run.watch(outcomes), run.sample(instances)):
                task = asyncio.create_task(job)
                background.callback(task.cancel)
            injector = faults.Injector(
                instances,
                operator,
                probe=lambda: run.probe(producer),
                poison=lambda customer, time: run.poison(producer, customer, time),
                log=run.log,
                request_ttl=settings.request_ttl,
                sweep_interval=settings.sweep_interval_seconds,
                cluster=plan.cluster,
                output_topic=settings.topic_sessions,
                dsn=settings.dsn,
                expires_in=plan.poison_expires_in,
                kafka=kafka,
            )
            # The instances have joined the group and decide: the workload starts on a running
            # service, as it would in production.
            await run.probe(producer)
            start = now()
            run.load.append(os.getloadavg()[0])
            run.log(f"seed {plan.seed}; {len(planned)} faults planned")
            faulting = asyncio.create_task(faults.run_schedule(injector, planned, start))
            await run.drive(producer, start + timedelta(seconds=plan.duration), faulting)
            run.log(f"workload done: {len(run.sent)} messages")
            await faulting
            await run.probe(producer)
            await wait_drained(settings, within=600)
            # Long enough for the sweeper to close what expired last.
            await asyncio.sleep(2 * settings.sweep_interval_seconds + 2)
            await wait_drained(settings, within=600)
            ended = now()
            run.load.append(os.getloadavg()[0])
            run.log("drained")
            for instance in instances:
                await instance.stop()
        async with Offsets(settings) as offsets:
            total = await offsets.count(settings.topic_sessions)
            dead = await offsets.count(settings.topic_dlq)
        await outcomes.wait_for(lambda o: len(o.records) >= total, within=120)
        await letters.wait_for(lambda o: len(o.records) >= dead, within=120)
        history = History(
            sent=run.sent,
            published=collect.published_all(outcomes.records),
            letters=[collect.letter(r) for r in letters.records],
            database=await collect.database(settings.dsn),
            parkings=injector.parkings,
            ended=ended,
            sweep_interval=timedelta(seconds=settings.sweep_interval_seconds),
            faults=[(h.started, h.recovered or ended) for h in injector.happened],
            redrives=injector.redrives,
            crashes=injector.crashes,
            refused_commits=collect.refused_commits(plan.run_dir),
            unrecovered=[
                f"{h.planned.kind} at {h.started:%H:%M:%S}"
                for h in injector.happened
                if h.unrecovered
            ],
        )
    return history, injector.happened, instances
