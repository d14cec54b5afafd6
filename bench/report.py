"""The figures of one run and the summary block printed at its end, with the issue's targets."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from bench.disturbance import Disturbance
from bench.drain import Drain
from bench.latency import Latency, percentile
from bench.mixed import MixedDrain
from bench.reference import Ceiling, PerEvent
from bench.soak import Soak
from bench.stack import TableStats
from bench.stages import Stage, format_budget
from bench.targets import issue14_latency_target, latency_targets, throughput_targets

MIB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class LogStats:
    bytes: int
    lines: int
    warnings: int
    errors: int


def log_stats(path: Path) -> LogStats | None:
    try:
        text = path.read_bytes()
    except OSError:
        return None
    return LogStats(
        bytes=len(text),
        lines=text.count(b"\n"),
        warnings=text.count(b'"level":"warning"'),
        errors=text.count(b'"level":"error"') + text.count(b'"level":"critical"'),
    )


@dataclass(slots=True)
class Figures:
    n: int
    log_level: str
    load_before: tuple[float, float, float]
    load_after: tuple[float, float, float] = (0.0, 0.0, 0.0)
    # bench/calibration.py: us to decode one payment, before and after the run.
    speed_before: float = 0.0
    speed_after: float = 0.0
    per_event: PerEvent | None = None
    ceiling: Ceiling | str | None = None
    preload_seconds: float = 0.0
    drain: Drain | None = None
    mixed: MixedDrain | None = None
    latencies: list[Latency] = field(default_factory=list)  # one steady load per rate
    budgets: list[list[Stage]] = field(default_factory=list)  # ... and its stages
    sync_seconds: float = 0.0  # flushing the drain's dirty pages before the latency phase
    soak: Soak | None = None
    peak_rss: int = 0  # the drain, the steady loads and the soak
    stop: tuple[int | None, float] | None = None
    log: LogStats | None = None
    disturbance: dict[str, Disturbance] = field(default_factory=dict)
    settings: dict[str, str] = field(default_factory=dict)  # the service's, changed by --set
    tables: list[TableStats] = field(default_factory=list)


def _load(values: tuple[float, float, float]) -> str:
    return " ".join(f"{v:.2f}" for v in values)


def _ms(ordered: list[float]) -> str:
    return "  ".join(f"p{p} {percentile(ordered, p):,.1f}" for p in (50, 90, 99)) + (
        f"  max {ordered[-1]:,.1f} ms" if ordered else "  (no data)"
    )


def summary(f: Figures, cores: int) -> str:
    a = f.per_event.rate if f.per_event else None
    b = f.ceiling.rate if isinstance(f.ceiling, Ceiling) else None
    d = f.drain
    out = ["", "=" * 30 + " bench.throughput summary " + "=" * 30]
    out.append(
        f"machine      {cores} cores; load average (1/5/15 min) before {_load(f.load_before)}, "
        f"after {_load(f.load_after)}"
    )
    out.append(
        f"             CPU speed: one payment decoded in {f.speed_before:.2f} us before, "
        f"{f.speed_after:.2f} us after (bench/calibration.py; the box's speed drifts)"
    )
    drained = f"{f.n:,} payments over {max(1, f.n // 4):,} customers" if f.drain else "no drain"
    out.append(f"N            {drained}, 6 partitions; service log level {f.log_level}, to a file")
    if f.settings:
        changed = ", ".join(f"{k}={v}" for k, v in f.settings.items())
        out.append(f"             service settings changed for this run: {changed}")
    if f.log:
        out.append(
            f"             log: {f.log.bytes / MIB:,.1f} MiB, {f.log.lines:,} lines, "
            f"{f.log.warnings} warnings, {f.log.errors} errors"
        )
    if f.per_event:
        out.append(
            f"(a) per-event {a:>10,.0f} events/s  ({f.per_event.events:,} payments in "
            f"{f.per_event.seconds:.1f} s: a transaction, awaited produces, an offset commit each)"
        )
        steps = ", ".join(f"{k} {v:.2f}" for k, v in f.per_event.steps_ms.items())
        out.append(f"             ms per event: {steps}")
    if isinstance(f.ceiling, Ceiling):
        out.append(
            f"(b) pgbench   {b:>10,.0f} events/s  ({f.ceiling.tps:,.1f} tps x 100; "
            f"{f.ceiling.command})"
        )
    elif f.ceiling:
        out.append(f"(b) pgbench   n/a ({f.ceiling})")
    if d:
        out.append(
            f"drain        {d.rate:>10,.0f} events/s  from the service's start "
            f"({d.seconds:.1f} s, first outcome after {d.startup:.1f} s)"
        )
        out.append(f"             {d.steady_rate:>10,.0f} events/s  from first outcome to last")
        ratios = []
        if a:
            ratios.append(f"{d.rate / a:.1f}x (a) ({d.steady_rate / a:.1f}x steady)")
        if b:
            ratios.append(f"{d.rate / b:.0%} of (b) ({d.steady_rate / b:.0%} steady)")
        if ratios:
            out.append("             " + "; ".join(ratios))
        types = ", ".join(f"{t} {c:,}" for t, c in sorted(d.types.items()))
        out.append(f"             outcomes read: {types}")
        cpu = d.cpu
        out.append(
            f"             cores used, first outcome to last: service {cpu['service']:.2f}, "
            f"postgres {cpu['postgres']:.2f}, kafka {cpu['kafka']:.2f}, bench {cpu['bench']:.2f}, "
            f"other {cpu['other']:.2f}; machine busy {cpu['machine_busy_fraction']:.0%}"
        )
        per_process = ", ".join(f"{k} {v:.2f}" for k, v in d.cores_by_process.items())
        out.append(
            f"             service CPU {cpu['service'] / d.steady_rate * 1e6:.1f} us per event; "
            f"cores by process: {per_process}"
        )
        out.append(
            f"             outcomes per {d.bucket} s since start: "
            + " ".join(f"{c / 1000:.1f}k" for c in d.per_bucket)
        )
        out.append(f"             (preload took {f.preload_seconds:.1f} s, not counted)")
        out.append(
            f"peak RSS     {d.peak_rss / MIB:,.0f} MiB during the drain, "
            f"{f.peak_rss / MIB:,.0f} MiB from the drain to the soak's end (VmRSS every 0.2 s)"
        )
    m = f.mixed
    if m:
        out.append(
            f"mixed        {m.rate:>10,.0f} events/s  from the service's start "
            f"({m.n:,} messages in {m.drained_at - m.started_at:.1f} s, every input offset "
            "committed)"
        )
        out.append(f"             {m.steady_rate:>10,.0f} events/s  from first outcome to drained")
        kinds = ", ".join(f"{k} {c:,}" for k, c in sorted(m.kinds.items(), key=lambda i: -i[1]))
        out.append(f"             sent: {kinds}")
        types = ", ".join(f"{t} {c:,}" for t, c in sorted(m.types.items()))
        out.append(f"             outcomes read: {types}")
        cpu = m.cpu
        out.append(
            f"             cores used, first outcome to drained: service {cpu['service']:.2f}, "
            f"postgres {cpu['postgres']:.2f}, kafka {cpu['kafka']:.2f}, bench {cpu['bench']:.2f}, "
            f"other {cpu['other']:.2f}; machine busy {cpu['machine_busy_fraction']:.0%}"
        )
        out.append(f"             peak RSS {m.peak_rss / MIB:,.0f} MiB")
    for lat, stages in zip(f.latencies, f.budgets, strict=True):
        out.append(
            f"latency      target {lat.target_rate:,.0f}/s, achieved {lat.achieved_rate:,.0f}/s "
            f"for {lat.send_seconds:.1f} s; outcomes {lat.received:,} of {lat.sent:,}"
        )
        if f.drain:
            out.append(
                "             after flushing the drain's dirty pages to disk "
                f"(sync: {f.sync_seconds:.1f} s)"
            )
        out.append(f"             produce -> outcome at a consumer:  {_ms(lat.to_consumer_ms)}")
        out.append(f"             produce -> relay's send (CreateTime): {_ms(lat.to_relay_ms)}")
        out.append(
            f"             p99/max per {lat.window:.0f} s of sending (ms): "
            + " ".join(f"{p:.0f}/{m:.0f}" for p, m in lat.windows)
        )
        out.extend(format_budget(lat.target_rate, stages))
    out.extend(_soak(f.soak))
    if f.stop:
        code, seconds = f.stop
        out.append(f"stop         SIGTERM -> exit code {code} after {seconds:.2f} s")
    if f.tables:
        out.append("tables       the service's database after the run (pg_stat_user_tables)")
        out.extend(f"  {table}" for table in f.tables)
    if f.disturbance:
        out.append("while measuring (others on the box: tests, builds)")
        for phase, seen in f.disturbance.items():
            verdict = "quiet" if seen.quiet else "DISTURBED"
            out.append(f"  {phase:<8} {seen}  -> {verdict}")
    out.append("targets (issue 24)")
    out.extend(throughput_targets(f.drain, f.mixed, a, b, f.peak_rss, f.soak))
    out.append("targets (issue 24), produce -> outcome at a subscriber")
    out.extend(latency_targets(f.latencies))
    out.append("target (issue 14), produce -> outcome at a subscriber")
    out.append(issue14_latency_target(f.latencies))
    out.append("=" * 86)
    return "\n".join(out)


def _soak(soak: Soak | None) -> list[str]:
    if soak is None:
        return ["soak         not run (--soak-seconds 0, or --latency-only)"]
    lat = soak.latency
    out = [
        f"soak         target {lat.target_rate:,.0f}/s, achieved {lat.achieved_rate:,.0f}/s "
        f"for {lat.send_seconds:.1f} s; outcomes {lat.received:,} of {lat.sent:,}",
        f"             produce -> outcome at a consumer:  {_ms(lat.to_consumer_ms)}",
        f"             RSS by instance, every 1 s ({len(soak.samples):,} samples); slope by least "
        f"squares from {soak.warmup:.0f} s on (the first half is warm-up)",
    ]
    for t in soak.trends():
        slope = "no slope" if t.slope is None else f"{t.slope:+.2f} MiB/min"
        out.append(
            f"             instance {t.instance} (pid {t.pid}): first {t.first / MIB:.1f}, "
            f"at {soak.warmup:.0f} s {t.at_half / MIB:.1f}, last {t.last / MIB:.1f}, "
            f"peak {t.peak / MIB:.1f} MiB; {slope}"
        )
    return out
