"""The proof's soak (`--soak-seconds`, `--soak-rate`): after the fault phase, the same topology
(as many instances, the same cluster, defaults) on a fresh database and fresh topics, fed the
same seeded mixed stream at a high rate (1,000/s by default) for minutes without a fault, its
whole history checked by the same checker. Every few seconds it samples each instance's RSS and
what the service's metrics port says of consumer lag and the outbox age; each payment's latency
is its input record's CreateTime to its outcome record's CreateTime.

Its figures go into a section of report.md with plots (tests/proof/plots.py); a violation fails
the proof as one in the fault phase does."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter, deque
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

import schemas
from service.bootstrap.factory import Clients
from service.config.settings import Settings
from tests.harness import Producer
from tests.proof import report, soak_report
from tests.proof.checker import Verdict, check
from tests.proof.instances import Instance, now
from tests.proof.run import Plan, Run, phase_database, prove, run_phase, settings_of
from tests.proof.samples import Sample, Sampler, slope_per_minute
from tests.servers import Servers
from tests.settings_env import environment_of

# The share of the stream whose RSS is not counted in the slope: its first half. Measured at
# 1,000/s (bench/README.md, RSS over a soak at 1,000/s), a process settles once its arenas have
# held a full batch in flight (at once when the stream starts behind, after minutes otherwise),
# and the relay leader's partition cache fills for minutes toward its 65,536 keys (about
# 12 MiB): bounded, yet a one-minute warm-up counted it as a slope. A leak grows through the
# second half as well.
WARMUP_SHARE = 0.5
SAMPLE_EVERY = 5.0  # seconds, for a soak of a minute or more
MAX_IN_FLIGHT = 5000  # produced but not yet acknowledged: the sender waits beyond that
PROBE = "probe"  # the kind of the runner's probe payments (Run.probe)
# What the report counts of the instances' logs besides their warnings and errors: rebalances;
# and what it leaves out: a dead letter per malformed input (the DLQ records are counted).
COUNTED = b'"event":"partitions_revoked"'
EXPECTED = frozenset({"dead_lettered"})


def soak_plan(plan: Plan) -> Plan:
    """The soak's own plan: its rate and length, customers scaled with the rate (as many of them
    with a session going as in the fault phase), its logs in `soak/` of the run directory."""
    customers = max(plan.customers, round(plan.customers * plan.soak_rate / plan.rate))
    return replace(
        plan,
        duration=plan.soak_seconds,
        rate=plan.soak_rate,
        customers=customers,
        run_dir=plan.run_dir / "soak",
    )


@dataclass
class Soaked:
    """What the soak measured."""

    plan: Plan  # the soak's own (soak_plan)
    started: datetime  # the first input sent
    stopped: datetime  # the last one acknowledged
    by_kind: dict[str, int]
    latencies: list[tuple[datetime, float]]  # per payment: input CreateTime, seconds to outcome
    samples: list[Sample]
    verdict: Verdict
    outputs: int
    letters: int
    load: list[float] = field(default_factory=list)
    # The instances' warnings and errors, and their rebalances, by event: a disturbed soak
    # (an outage, refused offset commits) says so.
    logged: dict[str, int] = field(default_factory=dict)

    @property
    def warmup(self) -> float:
        """Seconds of the stream left out of the RSS slope: its first half."""
        return self.plan.duration * WARMUP_SHARE

    @property
    def sent(self) -> int:
        return sum(self.by_kind.values())

    @property
    def send_seconds(self) -> float:
        return (self.stopped - self.started).total_seconds()

    @property
    def achieved_rate(self) -> float:
        return self.sent / self.send_seconds if self.send_seconds > 0 else 0.0

    def rss(self, instance: str) -> list[tuple[datetime, float]]:
        """An instance's RSS in MiB, every sample of the soak phase."""
        return [(s.at, s.rss_kib[instance] / 1024) for s in self.samples if instance in s.rss_kib]

    def instances(self) -> list[str]:
        return sorted({name for s in self.samples for name in s.rss_kib})

    def rss_slope(self, instance: str) -> float | None:
        """MiB per minute, least squares over the stream after the warm-up."""
        since = self.started + timedelta(seconds=self.warmup)
        points = [(t, v) for t, v in self.rss(instance) if since <= t <= self.stopped]
        return slope_per_minute(points)


class SoakRun(Run):
    """The fault phase's runner (tests/proof/run.py) with its sending pipelined, for a rate a
    send-and-wait per message cannot reach, and its sampling every few seconds."""

    def __init__(self, plan: Plan, settings: Settings, log: Any) -> None:
        super().__init__(plan, settings, log)
        self.sampler: Sampler | None = None
        self.started = self.stopped = now()

    async def drive(
        self, producer: Producer, until: datetime, faulting: asyncio.Task[None]
    ) -> None:
        """The stream on an absolute schedule, each record stamped with its CreateTime (kept as
        its send time), up to MAX_IN_FLIGHT unacknowledged."""
        kafka = Clients(self.settings).producer()
        await kafka.start()
        try:
            self.started = start = now()
            pending: deque[asyncio.Future[Any]] = deque()
            for i, out in enumerate(self.workload.stream(start)):
                if now() >= until:
                    break
                due = start + timedelta(seconds=i / self.plan.rate)
                if (wait := (due - now()).total_seconds()) > 0:
                    await asyncio.sleep(wait)
                elif i % 100 == 0:
                    await asyncio.sleep(0)  # behind: the readers of the outputs still run
                stamp = int(now().timestamp() * 1000)
                pending.append(
                    await kafka.send(
                        out.topic, out.value, key=out.key, headers=out.headers, timestamp_ms=stamp
                    )
                )
                self.sent.append(out.sent(datetime.fromtimestamp(stamp / 1000, UTC)))
                while pending and (len(pending) > MAX_IN_FLIGHT or pending[0].done()):
                    await pending.popleft()  # raises what the send raised
            await asyncio.gather(*pending)
            self.stopped = now()
        finally:
            await kafka.stop()
        self.log(f"soak: {len(self.sent)} inputs in {(self.stopped - start).total_seconds():.1f} s")

    async def sample(self, instances: list[Instance]) -> None:
        every = min(SAMPLE_EVERY, max(1.0, self.plan.duration / 20))
        self.sampler = Sampler(instances, every)
        await self.sampler.run()


def logged(paths: Iterable[Path]) -> dict[str, int]:
    """Warnings, errors and rebalances in the instances' JSON logs, by event."""
    found: Counter[str] = Counter()
    for path in paths:
        with path.open("rb") as lines:
            for line in lines:
                if b'"level":"warning"' in line or b'"level":"error"' in line or COUNTED in line:
                    with contextlib.suppress(ValueError):
                        found[str(orjson.loads(line).get("event"))] += 1
    return {event: n for event, n in sorted(found.items()) if event not in EXPECTED}


async def soak(plan: Plan, servers: Servers) -> Soaked:
    """The soak phase of `plan` (plan.soak_seconds > 0)."""
    own = soak_plan(plan)
    own.run_dir.mkdir(parents=True, exist_ok=True)
    async with contextlib.AsyncExitStack() as held:  # the fault phase's topology
        dsn = await phase_database(own, servers, held)
        settings = settings_of(servers, dsn, own, frozenset())
        with (own.run_dir / "runner.log").open("w") as log_file:
            run = SoakRun(own, settings, log_file)
            run.log(f"soak: {own.duration:g} s at {own.rate:g}/s, {own.customers} customers")
            try:
                history, _, _ = await run_phase(run, own, settings, environment_of(settings), [])
            finally:
                if plan.cluster is not None:
                    await plan.cluster.ensure_whole()
    assert run.sampler is not None
    # The stream's inputs: the probes (a payment per partition, before and after) are not.
    payments = [
        (sent.sent_at, seconds)
        for sent, seconds in report.latency_points(history)
        if sent.type == schemas.PAYMENT_COMPLETED and sent.kind != PROBE
    ]
    return Soaked(
        plan=own,
        started=run.started,
        stopped=run.stopped,
        by_kind=dict(Counter(s.kind for s in history.sent if s.kind != PROBE)),
        latencies=payments,
        samples=run.sampler.samples,
        verdict=check(history),
        outputs=len(history.published),
        letters=len(history.letters),
        load=run.load,
        logged=logged(sorted(own.run_dir.glob("instance-*.log"))),
    )


async def prove_and_soak(plan: Plan, servers: Servers) -> int:
    """The fault phase (tests/proof/run.py), then the soak if plan.soak_seconds > 0, its section
    and plots added to report.md; 0 when neither found a violation."""
    code = await prove(plan, servers)
    if plan.soak_seconds <= 0:
        return code
    soaked = await soak(plan, servers)
    soak_report.add(plan.run_dir, soaked)
    return 1 if code or soaked.verdict.violations else 0
