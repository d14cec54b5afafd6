"""report.md of a proof run, written beside its logs: seed, topology, faults and recoveries,
inputs, violations per guarantee (with the histories that broke them), latency and RSS."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from statistics import quantiles
from typing import TYPE_CHECKING

from service.config.settings import Settings
from tests.proof.checker import Verdict
from tests.proof.faults import Happened
from tests.proof.history import History, Sent, distinct
from tests.proof.instances import Instance, now
from tests.proof.plots import PlotsUnavailable, fault_plots

if TYPE_CHECKING:
    from tests.proof.run import Plan

SHOWN_PER_GUARANTEE = 10


def percentile(values: Sequence[float], q: int) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return values[0]
    return quantiles(values, n=100, method="inclusive")[q - 1]


def latency_points(history: History) -> list[tuple[Sent, float]]:
    """Each input with an outcome, and the seconds from its send to its first outcome's
    publication: an input's CreateTime is taken as it is sent, an outcome's publication is its
    record's CreateTime. Only the first send of an event counts (a redelivery's outcome came
    before it); poison payments, held by design, are left out."""
    first: dict[tuple[str, str], datetime] = {}
    for record in sorted(history.published, key=lambda r: r.published_at):
        if record.cause is not None:
            first.setdefault(record.cause, record.published_at)
    points, seen = [], set()
    for sent in history.sent:
        if sent.identity is None or sent.identity in seen or sent.kind == "poison_payment":
            continue
        seen.add(sent.identity)
        published = first.get(sent.identity)
        if published is not None:
            points.append((sent, (published - sent.sent_at).total_seconds()))
    return points


def latencies(history: History, windows: list[tuple[datetime, datetime]]) -> dict[str, list[float]]:
    """Seconds from an input's send to its first outcome's publication, split by whether the
    input was sent inside a fault window."""
    split: dict[str, list[float]] = {"outside faults": [], "during faults": []}
    for sent, seconds in latency_points(history):
        during = any(a <= sent.sent_at <= b for a, b in windows)
        split["during faults" if during else "outside faults"].append(seconds)
    return split


WARMUP_SECONDS = 15


def slope_kib_per_minute(samples: Sequence[tuple[datetime, int]]) -> float | None:
    """The least-squares slope of RSS over time, after the first WARMUP_SECONDS of a process
    (imports, pools and caches filling are not a leak)."""
    samples = [s for s in samples if (s[0] - samples[0][0]).total_seconds() >= WARMUP_SECONDS]
    if len(samples) < 3:
        return None
    t0 = samples[0][0]
    xs = [(t - t0).total_seconds() / 60 for t, _ in samples]
    ys = [float(v) for _, v in samples]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    var = sum((x - mx) ** 2 for x in xs)
    if var == 0:
        return None
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / var


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value * 1000:.0f} ms"


def _database(plan: Plan) -> str:
    if not plan.ha:
        return "a fresh database on the shared PostgreSQL"
    return (
        "PostgreSQL primary with a synchronous hot standby (`stack.sh up ha`, 5434 and 5435), "
        "both hosts in the URL with `target_session_attrs=read-write`, "
        "`FULFILLMENT_DATABASE_SYNCHRONOUS_STANDBY=true`; restarted (`pg_restart`) and failed "
        "over both ways (`failover`: primary stopped, standby promoted, the old primary made "
        "its standby again), made read-only with its sessions open, on and off (`read_only`), "
        "and switched over (`switchover`: the primary left running read-only, its standby "
        "promoted, the old one rebuilt as the new one's standby); the final database read from "
        "whichever is primary"
        + (
            "; on the cluster the instances reach Kafka through one TCP proxy per broker "
            "(its PROXIED listener), cut for all of them at once (`kafka_cut`)"
            if plan.cluster
            else ""
        )
    )


def violations(verdict: Verdict) -> list[str]:
    """The count per guarantee, then what broke each (up to SHOWN_PER_GUARANTEE of each)."""
    out = ["| guarantee | violations |", "|---|---|"]
    for guarantee, n in verdict.per_guarantee().items():
        out.append(f"| {guarantee} | {n} |")
    out += [
        "",
        f"Late cancellations inside a fault window (excused): {verdict.late_cancellations_excused}",
        "",
    ]
    shown: Counter[str] = Counter()
    for violation in verdict.violations:
        shown[violation.guarantee] += 1
        if shown[violation.guarantee] <= SHOWN_PER_GUARANTEE:
            out += [f"### {violation.guarantee}", "", "```", violation.detail, "```", ""]
    return out


def plot_links(plots: Sequence[Path] | str) -> list[str]:
    """The plots as images linked by their names (beside report.md), or why there are none."""
    if isinstance(plots, str):
        return [f"Plots: none ({plots}).", ""]
    return [f"![{path.stem}]({path.name})" for path in plots] + [""]


def render(
    plan: Plan,
    settings: Settings,
    history: History,
    verdict: Verdict,
    happened: list[Happened],
    instances: list[Instance],
    load: Sequence[float] = (),
    plots: Sequence[Path] | str = (),
) -> str:
    out = ["# Proof run", ""]
    out += [
        f"- seed: `{plan.seed}` (again: `make proof SEED={plan.seed}` or "
        f"`python -m tests.proof --seed {plan.seed} --duration {plan.duration:g} "
        f"--rate {plan.rate:g} --repeats {plan.repeats} --soak-seconds {plan.soak_seconds:g} "
        f"--soak-rate {plan.soak_rate:g}`)",
        f"- workload: {plan.duration:g} s at {plan.rate:g} messages/s, {plan.customers} customers",
        f"- topology: {plan.instances} `fulfillment run` instances (subprocesses), each reaching "
        "PostgreSQL through its own TCP proxy; Kafka "
        f"`{settings.kafka_bootstrap_servers}`"
        f"{' (the three-broker cluster)' if plan.cluster else ' (one broker)'}, "
        f"{settings.topic_partitions} partitions per topic, replication factor "
        f"{settings.topic_replication_factor}; a fresh database and fresh topics",
        f"- database: {_database(plan)}",
        f"- settings: the defaults, except {plan.overrides or 'none'} (sweep interval "
        f"{settings.sweep_interval_seconds:g} s, poison retries {settings.poison_retries})",
        f"- machine: {os.cpu_count()} CPUs, 1-minute load average "
        f"{' then '.join(f'{v:.1f}' for v in load) or 'not taken'} (at the start, after the drain)",
        "",
        "## Faults",
        "",
        "| # | kind | instance | at (s) | started (UTC) | held (s) | recovery (s) | note |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for n, h in enumerate(happened, 1):
        p, rec = h.planned, h.recovery_seconds
        out.append(
            f"| {n} | {p.kind} | {p.instance + 1} | {p.at:g} | {h.started:%H:%M:%S} | "
            f"{p.hold:g} | {'-' if rec is None else f'{rec:.1f}'} | {h.note} |"
        )
    out += [
        "",
        "Recovery: from the fault's end (restart, SIGCONT, proxy restored, last redrive, "
        "release, primary started again, writable again or standby promoted) until a probe "
        "payment on every input partition has its outcome published; '-' when none had it "
        "within the bound (a violation: the service recovers from every fault).",
    ]
    by_kind = Counter(h.planned.kind for h in happened)
    out += ["", "By kind: " + ", ".join(f"{k} {n}" for k, n in sorted(by_kind.items())), ""]
    out += ["## Inputs", "", "| kind | sent |", "|---|---|"]
    for kind, n in sorted(Counter(s.kind for s in history.sent).items()):
        out.append(f"| {kind} | {n} |")
    out += [f"| **total** | {len(history.sent)} |", ""]
    out += ["Outputs on sessions.events (records, copies included):", ""]
    for type_, n in sorted(Counter(r.type for r in history.published).items()):
        out.append(f"- {type_}: {n}")
    copies = len(history.published) - len(distinct(history.published))
    out += [
        f"- copies (an id published again: allowed by the contract, ignored by the checks, "
        f"counted here as the cost of a fault): {copies}",
        f"- DLQ records: {len(history.letters)}",
        "",
    ]
    out += ["## Violations per guarantee", "", *violations(verdict)]
    windows = [(h.started, h.recovered or h.started) for h in happened]
    out += ["## Latency (input sent to first outcome published)", ""]
    out += ["| | inputs | p50 | p99 | max |", "|---|---|---|---|---|"]
    for name, values in latencies(history, windows).items():
        out.append(
            f"| {name} | {len(values)} | {_ms(percentile(values, 50))} | "
            f"{_ms(percentile(values, 99))} | {_ms(max(values, default=None))} |"
        )
    out += ["", "## RSS (each instance's processes summed, every second; slope after 15 s)", ""]
    out += [
        "| instance.start | samples | first | last | max | slope |",
        "|---|---|---|---|---|---|",
    ]
    for instance in instances:
        for start, rss in sorted(instance.rss.items()):
            slope = slope_kib_per_minute(rss)
            out.append(
                f"| {instance.name}.{start} | {len(rss)} | {rss[0][1]} KiB | "
                f"{rss[-1][1]} KiB | {max(v for _, v in rss)} KiB | "
                f"{'-' if slope is None else f'{slope:+.0f} KiB/min'} |"
            )
    out += ["", *plot_links(plots)]
    out += [f"Logs: `runner.log`, `instance-N.M.log` (start M of instance N) in {plan.run_dir}."]
    return "\n".join(out) + "\n"


def write(
    plan: Plan,
    settings: Settings,
    history: History,
    verdict: Verdict,
    happened: list[Happened],
    instances: list[Instance],
    load: Sequence[float] = (),
) -> None:
    """report.md and the fault phase's plots, in the run directory."""
    windows = [(h.started, h.recovered or h.started, h.planned.kind) for h in happened]
    points = [(sent.sent_at, seconds) for sent, seconds in latency_points(history)]
    since = min((s.sent_at for s in history.sent), default=now())
    plots: list[Path] | str
    try:
        plots = fault_plots(plan.run_dir, since, points, windows, instances)
    except PlotsUnavailable as error:
        plots = str(error)
    text = render(plan, settings, history, verdict, happened, instances, load, plots)
    (plan.run_dir / "report.md").write_text(text)
