"""The proof's plots, as PNG beside report.md, drawn as the bench draws its own (bench/plots.py:
matplotlib, files only): for the fault phase, latency and RSS over time with the fault windows
shaded; for the soak, RSS per instance, consumer lag and outbox age, and latency over time.

matplotlib comes with the `bench` extra, which `make proof` and `make test` install."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tests.proof.instances import Instance

if TYPE_CHECKING:
    from tests.proof.soak import Soaked

# Seconds of sending per point of the soak's latency curves: 10, or less for a short soak.
LATENCY_BUCKET = 10.0


class PlotsUnavailable(Exception):
    """matplotlib is missing; the message says how to install it."""


# A plot: draws on the axes it is given; False when there was nothing to draw.
Draw = Callable[[Any], bool]
Window = tuple[datetime, datetime, str]  # a fault: from, to, its kind


def _draw(directory: Path, plots: Sequence[tuple[str, Draw]]) -> list[Path]:
    try:
        import matplotlib

        matplotlib.use("Agg")  # files only: no display on a server
        import matplotlib.pyplot as plt
    except ImportError:
        raise PlotsUnavailable(
            "matplotlib is not installed: uv sync --extra dev --extra otel --extra bench "
            "(make proof does)"
        ) from None
    written = []
    for name, draw in plots:
        figure, axes = plt.subplots(figsize=(9, 4.5), layout="constrained")
        if draw(axes):
            path = directory / name
            figure.savefig(path, dpi=110)
            written.append(path)
        plt.close(figure)
    return written


def _seconds(since: datetime, at: datetime) -> float:
    return (at - since).total_seconds()


def _shade(axes: Any, since: datetime, windows: Sequence[Window]) -> None:
    for n, (start, end, kind) in enumerate(windows):
        axes.axvspan(
            _seconds(since, start),
            max(_seconds(since, end), _seconds(since, start) + 0.5),
            color="tab:red",
            alpha=0.12,
            label="fault (start to recovery)" if n == 0 else None,
        )
        axes.annotate(
            kind,
            (_seconds(since, start), 1.0),
            xycoords=("data", "axes fraction"),
            rotation=90,
            va="top",
            fontsize=7,
        )


def fault_plots(
    directory: Path,
    since: datetime,
    latencies: Sequence[tuple[datetime, float]],
    windows: Sequence[Window],
    instances: Sequence[Instance],
) -> list[Path]:
    """faults-latency.png and faults-rss.png; raises PlotsUnavailable."""

    def latency(axes: Any) -> bool:
        if not latencies:
            return False
        axes.scatter(
            [_seconds(since, t) for t, _ in latencies],
            [max(v, 1e-3) for _, v in latencies],
            s=4,
            alpha=0.5,
            label="an input's first outcome",
        )
        _shade(axes, since, windows)
        axes.set_yscale("log")
        axes.set_xlabel("seconds since the workload's start")
        axes.set_ylabel("input sent -> first outcome published (s)")
        axes.set_title("Latency through the fault phase")
        axes.legend(loc="upper left")
        return True

    def rss(axes: Any) -> bool:
        drawn = False
        for instance in instances:
            for start, samples in sorted(instance.rss.items()):
                x = [_seconds(since, t) for t, _ in samples]
                axes.plot(x, [v / 1024 for _, v in samples], label=f"{instance.name}.{start}")
                drawn = True
        _shade(axes, since, windows)
        axes.set_xlabel("seconds since the workload's start")
        axes.set_ylabel("RSS of the instance's processes (MiB)")
        axes.set_title("RSS through the fault phase (each start of each instance)")
        axes.grid(alpha=0.3)
        axes.legend(loc="lower right", fontsize=7)
        return drawn

    return _draw(directory, [("faults-latency.png", latency), ("faults-rss.png", rss)])


def soak_plots(directory: Path, soaked: Soaked) -> list[Path]:
    """soak-rss.png, soak-backlog.png and soak-latency.png; raises PlotsUnavailable."""
    since = soaked.started

    def rss(axes: Any) -> bool:
        for name in soaked.instances():
            points = soaked.rss(name)
            axes.plot([_seconds(since, t) for t, _ in points], [v for _, v in points], label=name)
        axes.axvline(
            soaked.warmup, color="black", linestyle=":", label="end of warm-up (slope after it)"
        )
        axes.axvline(soaked.send_seconds, color="black", linestyle="--", label="stream ends")
        axes.set_xlabel("seconds since the soak's stream started")
        axes.set_ylabel("RSS of the instance's processes (MiB)")
        axes.set_title(f"RSS over the soak ({soaked.plan.rate:g} inputs/s)")
        axes.grid(alpha=0.3)
        axes.legend(loc="lower right")
        return bool(soaked.instances())

    def backlog(axes: Any) -> bool:
        lag = [(s.at, s.lag) for s in soaked.samples if s.lag is not None]
        age = [(s.at, s.outbox_age) for s in soaked.samples if s.outbox_age is not None]
        axes.plot([_seconds(since, t) for t, _ in lag], [v for _, v in lag], color="tab:blue")
        axes.set_ylabel("consumer lag (messages)", color="tab:blue")
        right = axes.twinx()
        right.plot([_seconds(since, t) for t, _ in age], [v for _, v in age], color="tab:orange")
        right.set_ylabel("oldest outbox row (s)", color="tab:orange")
        axes.set_xlabel("seconds since the soak's stream started")
        axes.set_title("Consumer lag and outbox age, as the service's metrics port says")
        axes.grid(alpha=0.3)
        return bool(lag or age)

    def latency(axes: Any) -> bool:
        width = min(LATENCY_BUCKET, max(1.0, soaked.plan.duration / 60))
        buckets: dict[int, list[float]] = {}
        for t, v in soaked.latencies:
            buckets.setdefault(int(_seconds(since, t) // width), []).append(v * 1000)
        if not buckets:
            return False
        x = [(b + 0.5) * width for b in sorted(buckets)]
        ordered = [sorted(buckets[b]) for b in sorted(buckets)]
        for label, share in (("p50", 0.5), ("p99", 0.99), ("max", 1.0)):
            y = [v[min(len(v) - 1, int(len(v) * share))] for v in ordered]
            axes.plot(x, y, marker=".", label=label)
        axes.set_yscale("log")
        axes.set_xlabel("seconds since the soak's stream started")
        axes.set_ylabel(f"payment -> outcome CreateTime (ms, per {width:g} s)")
        axes.set_title("Latency over the soak")
        axes.grid(alpha=0.3)
        axes.legend()
        return True

    return _draw(
        directory,
        [("soak-rss.png", rss), ("soak-backlog.png", backlog), ("soak-latency.png", latency)],
    )
