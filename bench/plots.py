"""The run's plots, as PNG next to its text report: outcomes per second over each drain, the
latency distribution under steady load, the cores each process used while draining, and each
instance's RSS over the soak.

matplotlib comes with the `bench` extra (`make bench` installs it), not with the service.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.latency import percentile
from bench.report import Figures
from bench.soak import MIB

BUCKET = 0.5  # seconds per point of the outcomes-per-second curves


class PlotsUnavailable(Exception):
    """matplotlib is missing; the message says how to install it."""


def write_plots(figures: Figures, directory: Path) -> list[Path]:
    """Writes what the figures allow; returns the files. Raises PlotsUnavailable."""
    try:
        import matplotlib

        matplotlib.use("Agg")  # files only: no display on a server
        import matplotlib.pyplot as plt
    except ImportError:
        raise PlotsUnavailable(
            "matplotlib is not installed: uv sync --extra dev --extra bench (make bench does)"
        ) from None
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, draw in (
        ("outcomes.png", _outcomes),
        ("latency.png", _latency),
        ("cores.png", _cores),
        ("soak_rss.png", _soak_rss),
    ):
        figure, axes = plt.subplots(figsize=(9, 4.5), layout="constrained")
        if draw(figures, axes):
            path = directory / name
            figure.savefig(path, dpi=110)
            written.append(path)
        plt.close(figure)
    return written


def _rate_curve(stamps: list[float], since: float) -> tuple[list[float], list[float]]:
    if not stamps:
        return [], []
    counts = [0] * (int((stamps[-1] - since) // BUCKET) + 1)
    for stamp in stamps:
        counts[max(0, int((stamp - since) // BUCKET))] += 1
    return [i * BUCKET for i in range(len(counts))], [c / BUCKET for c in counts]


def _outcomes(f: Figures, axes: Any) -> bool:
    drawn = False
    if f.drain:
        x, y = _rate_curve(f.drain.stamps, f.drain.started_at)
        axes.plot(x, y, label=f"payments drain, {f.drain.n:,} payments (outcomes)")
        drawn = True
    if f.mixed:
        x, y = _rate_curve(f.mixed.outcome_stamps, f.mixed.started_at)
        axes.plot(x, y, label=f"mixed drain, {f.mixed.n:,} messages (every output event)")
        drawn = True
    axes.set_xlabel("seconds since the service's start")
    axes.set_ylabel(f"outcomes per second ({BUCKET} s buckets)")
    axes.set_title("Outcomes published on sessions.events over the run")
    axes.grid(alpha=0.3)
    axes.legend()
    return drawn


def _latency(f: Figures, axes: Any) -> bool:
    lat = f.latencies[-1] if f.latencies else None  # the highest rate, as the targets list them
    if not lat or not lat.to_consumer_ms:
        return False
    values = lat.to_consumer_ms
    top = percentile(values, 99.9) * 1.2
    axes.hist([v for v in values if v <= top], bins=120, color="tab:blue", alpha=0.8)
    for p, style in ((50, ":"), (90, "--"), (99, "-")):
        at = percentile(values, p)
        axes.axvline(at, color="black", linestyle=style, label=f"p{p} {at:.1f} ms")
    axes.set_yscale("log")
    axes.set_xlabel("produce -> outcome at a consumer (ms)")
    axes.set_ylabel("payments")
    axes.set_title(
        f"Latency at {lat.target_rate:,.0f} payments/s for {lat.send_seconds:.0f} s "
        f"(max {values[-1]:.0f} ms, not shown past p99.9 x 1.2)"
    )
    axes.legend()
    return True


def _cores(f: Figures, axes: Any) -> bool:
    runs = [
        (name, cores)
        for name, cores in (
            ("payments drain", f.drain.cores_by_process if f.drain else None),
            ("mixed drain", f.mixed.cores_by_process if f.mixed else None),
        )
        if cores
    ]
    if not runs:
        return False
    labels = list(dict.fromkeys(label for _, cores in runs for label in cores))
    width = 0.8 / len(runs)
    for index, (name, cores) in enumerate(runs):
        positions = [i + index * width for i in range(len(labels))]
        axes.bar(positions, [cores.get(label, 0.0) for label in labels], width, label=name)
    axes.set_xticks([i + width * (len(runs) - 1) / 2 for i in range(len(labels))], labels)
    axes.tick_params(axis="x", labelrotation=20)
    axes.set_ylabel("cores (average, first outcome to last)")
    axes.set_title("Cores used by each process while draining")
    axes.grid(axis="y", alpha=0.3)
    axes.legend()
    return True


def _soak_rss(f: Figures, axes: Any) -> bool:
    soak = f.soak
    if not soak or not soak.samples:
        return False
    began = soak.latency.began
    for t in soak.trends():
        points = [
            (s.at - began, s.by_instance[t.pid]) for s in soak.samples if t.pid in s.by_instance
        ]
        slope = "no slope" if t.slope is None else f"{t.slope:+.2f} MiB/min"
        axes.plot(
            [x for x, _ in points],
            [size / MIB for _, size in points],
            label=f"instance {t.instance}, second half {slope}",
        )
    axes.axvline(soak.warmup, color="black", linestyle=":", label="end of the warm-up")
    axes.axvline(soak.latency.send_seconds, color="black", linestyle="--", label="last send")
    axes.set_xlabel("seconds since the soak's first send")
    axes.set_ylabel("RSS (MiB, the instance's processes)")
    axes.set_title(f"RSS by instance over the soak at {soak.latency.target_rate:,.0f} payments/s")
    axes.grid(alpha=0.3)
    axes.legend()
    return True
