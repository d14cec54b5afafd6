"""The figures of one run and the summary block printed at its end, with the issue's targets."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from bench.disturbance import Disturbance
from bench.drain import Drain
from bench.latency import Latency, percentile
from bench.reference import Ceiling, PerEvent
from bench.stack import TableStats

MIB = 1024 * 1024
# The targets.
DRAIN_VS_PER_EVENT = 45.0
DRAIN_VS_CEILING = 0.5
P99_MS = 100.0
RSS_MIB = 250


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
    per_event: PerEvent | None = None
    ceiling: Ceiling | str | None = None
    preload_seconds: float = 0.0
    drain: Drain | None = None
    latency: Latency | None = None
    sync_seconds: float = 0.0  # flushing the drain's dirty pages before the latency phase
    peak_rss: int = 0
    stop: tuple[int | None, float] | None = None
    log: LogStats | None = None
    disturbance: dict[str, Disturbance] = field(default_factory=dict)
    settings: dict[str, str] = field(default_factory=dict)  # the service's, changed by --set
    tables: list[TableStats] = field(default_factory=list)


def _load(values: tuple[float, float, float]) -> str:
    return " ".join(f"{v:.2f}" for v in values)


def _met(ok: bool | None) -> str:
    return "n/a" if ok is None else ("met" if ok else "NOT MET")


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
        f"N            {f.n:,} payments over {max(1, f.n // 4):,} customers, 6 partitions; "
        f"service log level {f.log_level}, to a file"
    )
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
    drain_ok: tuple[bool | None, bool | None] = (None, None)
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
        drain_ok = (
            d.rate / a >= DRAIN_VS_PER_EVENT if a else None,
            d.rate / b >= DRAIN_VS_CEILING if b else None,
        )
        types = ", ".join(f"{t} {c:,}" for t, c in sorted(d.types.items()))
        out.append(f"             outcomes read: {types}")
        cpu = d.cpu
        out.append(
            f"             cores used, first outcome to last: service {cpu['service']:.2f}, "
            f"postgres {cpu['postgres']:.2f}, kafka {cpu['kafka']:.2f}, bench {cpu['bench']:.2f}, "
            f"other {cpu['other']:.2f}; machine busy {cpu['machine_busy_fraction']:.0%}"
        )
        out.append(
            f"             outcomes per {d.bucket} s since start: "
            + " ".join(f"{c / 1000:.1f}k" for c in d.per_bucket)
        )
        out.append(f"             (preload took {f.preload_seconds:.1f} s, not counted)")
        out.append(
            f"peak RSS     {d.peak_rss / MIB:,.0f} MiB during the drain, "
            f"{f.peak_rss / MIB:,.0f} MiB over the whole run (VmRSS every 0.2 s)"
        )
    lat = f.latency
    latency_ok = None
    if lat:
        p99 = percentile(lat.to_consumer_ms, 99)
        complete = lat.received == lat.sent and lat.achieved_rate >= 0.98 * lat.target_rate
        latency_ok = complete and p99 <= P99_MS
        out.append(
            f"latency      target {lat.target_rate:,.0f}/s, achieved {lat.achieved_rate:,.0f}/s "
            f"for {lat.send_seconds:.1f} s; outcomes {lat.received:,} of {lat.sent:,}"
        )
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
    rss_ok = f.peak_rss <= RSS_MIB * MIB if f.peak_rss else None
    out.append("targets (from the issue)")
    if d and a:
        out.append(
            f"  drain >= {DRAIN_VS_PER_EVENT:.0f}x (a)           {d.rate / a:>8.1f}x   "
            f"{_met(drain_ok[0])}"
        )
    if d and b:
        out.append(
            f"  drain >= {DRAIN_VS_CEILING:.0%} of (b)         {d.rate / b:>8.0%}    "
            f"{_met(drain_ok[1])}"
        )
    if lat:
        out.append(
            f"  p99 <= {P99_MS:.0f} ms at {lat.target_rate:,.0f}/s    "
            f"{percentile(lat.to_consumer_ms, 99):>8.1f} ms {_met(latency_ok)}"
        )
    out.append(f"  peak RSS <= {RSS_MIB} MiB         {f.peak_rss / MIB:>8.0f} MiB {_met(rss_ok)}")
    out.append("=" * 86)
    return "\n".join(out)
