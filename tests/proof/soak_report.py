"""The soak's section of report.md (tests/proof/soak.py): the rate achieved, the inputs, the
violations, each payment's latency, RSS per instance with its slope, the largest consumer lag
and outbox age, and the plots beside the report."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from tests.proof.plots import PlotsUnavailable, soak_plots
from tests.proof.report import percentile, plot_links, violations

if TYPE_CHECKING:
    from tests.proof.soak import Soaked

# Flat: RSS growing (or shrinking) by less than this per minute over the soak.
FLAT_MIB_PER_MINUTE = 1.0


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.0f} ms"


def _largest(values: Sequence[float | None]) -> float | None:
    return max((v for v in values if v is not None), default=None)


def render(soaked: Soaked, plots: Sequence[Path] | str) -> str:
    plan, s = soaked.plan, soaked
    out = ["", "## Soak", ""]
    out += [
        f"- stream: the same seeded mixed stream, asked for {plan.rate:g} inputs/s for "
        f"{plan.duration:g} s over {plan.customers} customers (scaled with the rate), no fault; "
        f"{plan.instances} instances, Kafka and settings as above, a fresh database and fresh "
        "topics; logs in `soak/`",
        f"- sent: {s.sent} inputs in {s.send_seconds:.1f} s, **{s.achieved_rate:.0f}/s achieved**",
        f"- outputs: {s.outputs} records on sessions.events, {s.letters} on the DLQ",
        f"- machine: 1-minute load average "
        f"{' then '.join(f'{v:.1f}' for v in s.load) or 'not taken'} (start, after the drain)",
        "- inputs per kind: " + ", ".join(f"{k} {n}" for k, n in sorted(s.by_kind.items())),
        "- the instances logged (warnings, errors and rebalances, by event; each instance "
        "rebalances as the group forms): "
        + (", ".join(f"`{k}` {n}" for k, n in s.logged.items()) or "nothing"),
        "",
        f"Violations: **{len(s.verdict.violations)}**",
        "",
        *violations(s.verdict),
    ]
    values = sorted(v for _, v in s.latencies)
    out += [
        "### Latency (each payment's input CreateTime to its outcome's CreateTime)",
        "",
        "| payments | p50 | p99 | max |",
        "|---|---|---|---|",
        f"| {len(values)} | {_ms(percentile(values, 50))} | {_ms(percentile(values, 99))} | "
        f"{_ms(values[-1] if values else None)} |",
        "",
    ]
    every = (
        (s.samples[-1].at - s.samples[0].at).total_seconds() / (len(s.samples) - 1)
        if len(s.samples) > 1
        else 0.0
    )
    out += [
        f"### RSS (each instance's processes summed, a sample every {every:.0f} s; slope by least "
        f"squares from {s.warmup:g} s into the stream to its end)",
        "",
        "| instance | start | end | peak | slope | flat (< 1 MiB/min) |",
        "|---|---|---|---|---|---|",
    ]
    for name in s.instances():
        during = [v for t, v in s.rss(name) if s.started <= t <= s.stopped] or [
            v for _, v in s.rss(name)
        ]
        slope = s.rss_slope(name)
        flat = "-" if slope is None else ("yes" if abs(slope) < FLAT_MIB_PER_MINUTE else "NO")
        out.append(
            f"| {name} | {during[0]:.1f} MiB | {during[-1]:.1f} MiB | {max(during):.1f} MiB | "
            f"{'-' if slope is None else f'{slope:+.2f} MiB/min'} | {flat} |"
        )
    lag = _largest([x.lag for x in s.samples])
    age = _largest([x.outbox_age for x in s.samples])
    rows = _largest([x.outbox_rows for x in s.samples])
    out += [
        "",
        "### Backlog (the service's metrics port: `fulfillment_consumer_lag` summed, "
        "`fulfillment_outbox_oldest_age_seconds`, `fulfillment_outbox_backlog`)",
        "",
        f"- consumer lag, max: {'-' if lag is None else f'{lag:.0f} messages'}",
        f"- outbox oldest row, max: {'-' if age is None else f'{age:.1f} s'}",
        f"- outbox rows, max: {'-' if rows is None else f'{rows:.0f}'}",
        "",
        *plot_links(plots),
    ]
    return "\n".join(out) + "\n"


def add(run_dir: Path, soaked: Soaked) -> None:
    """The soak's plots beside report.md, and its section at the end of report.md."""
    plots: list[Path] | str
    try:
        plots = soak_plots(run_dir, soaked)
    except PlotsUnavailable as error:
        plots = str(error)
    with (run_dir / "report.md").open("a") as report:
        report.write(render(soaked, plots))
