"""Throughput and latency of the whole service, as a process, against the local Kafka and
PostgreSQL; prints figures and asserts nothing. See bench/README.md for what each figure means.

    make bench                                   # N = 200,000
    .venv/bin/python -m bench.throughput --n 20000

It writes its summary (report.txt) and plots (PNG) into --out.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
import tempfile
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import calibration
from bench.drain import Aborted
from bench.kafka_io import OutcomeReader, produce_all
from bench.latency_phase import latency_phase
from bench.mixed import mixed_drain, mixed_messages
from bench.phases import preload_and_drain, quiet_heap_and_disk, start_idle
from bench.plots import PlotsUnavailable, write_plots
from bench.reference import Stalled
from bench.reference_runs import reference_a, reference_b, step, watching
from bench.report import Figures, log_stats, summary
from bench.service_api import Clients, Message, configure_logging, create_topics
from bench.service_proc import ServiceProcess
from bench.soak import SOAK_RATE, SOAK_SECONDS, soak_phase, write_samples
from bench.stack import (
    Databases,
    Servers,
    delete_topics,
    overrides,
    servers_from_env,
    settings_of,
    table_stats,
)
from bench.stages import free_ports
from bench.targets import LATENCY_RATES, P99_SECONDS
from service.config.settings import MAX_PROCESSES, Settings


def _setting(text: str) -> tuple[str, str]:
    name, equals, value = text.partition("=")
    if not equals or name not in Settings.model_fields:
        raise argparse.ArgumentTypeError(f"{text!r} is not FIELD=VALUE for a Settings field")
    return name, value


def _rates(text: str) -> list[float]:
    try:
        rates = [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        rates = []
    if not rates or any(rate <= 0 for rate in rates):
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of rates")
    return rates


def _rate(text: str) -> float:
    try:
        rate = float(text)
    except ValueError:
        rate = 0.0
    if rate <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a rate (payments per second, > 0)")
    return rate


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.throughput", description=__doc__)
    default_n = int(os.environ.get("BENCH_N", "200000"))
    parser.add_argument("--n", type=int, default=default_n, help="payments to drain (BENCH_N)")
    parser.add_argument("--ref-n", type=int, default=5000, help="payments for reference (a)")
    parser.add_argument("--pgbench-seconds", type=int, default=15)
    parser.add_argument(
        "--mixed-n",
        type=int,
        default=None,
        help="messages of the simulate generator's mix to drain (default: --n); 0 skips it",
    )
    parser.add_argument(
        "--latency-rates",
        type=_rates,
        default=LATENCY_RATES,
        help="payments per second of each steady load, in turn (default: 200,1000,5000)",
    )
    parser.add_argument(
        "--latency-only",
        action="store_true",
        help="only the latency phase, on a service started on empty topics (no references, "
        "drain or mixed stream)",
    )
    parser.add_argument(
        "--latency-seconds",
        type=float,
        default=P99_SECONDS,
        help="long enough to include the kernel writing this phase's own pages back (after 30 s)",
    )
    parser.add_argument(
        "--soak-rate",
        type=_rate,
        default=SOAK_RATE,
        help="payments per second of the soak, after the latency phase (default: 1000)",
    )
    parser.add_argument(
        "--soak-seconds",
        type=float,
        default=SOAK_SECONDS,
        help="how long the soak lasts, its RSS sampled every second (default: 600; 0 skips it)",
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--stall", type=float, default=60.0, help="abort after this long idle")
    parser.add_argument(
        "--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"]
    )
    parser.add_argument(
        "--skip-references", action="store_true", help="only the service (quicker, no ratios)"
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        type=_setting,
        metavar="FIELD=VALUE",
        help="a service setting for this run, e.g. --set consumers=2 (FULFILLMENT_CONSUMERS)",
    )
    parser.add_argument("--keep-log", action="store_true", help="keep the service's log file")
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="where report.txt and the plots go (default: .local/bench/<UTC time>)",
    )
    args = parser.parse_args(argv)
    if args.mixed_n is None:
        args.mixed_n = args.n
    if args.out is None:
        args.out = Path(".local/bench") / datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return args


async def run(args: argparse.Namespace) -> int:
    load_before = os.getloadavg()
    servers = servers_from_env()
    suffix = uuid.uuid4().hex[:10]
    databases = Databases(servers)
    workdir = Path(tempfile.mkdtemp(prefix=f"bench-{suffix}-"))
    used: list[Settings] = []
    service: ServiceProcess | None = None
    figures = Figures(
        n=args.n,
        log_level=args.log_level,
        load_before=load_before,
        speed_before=calibration.decode_microseconds(),
    )
    figures.settings = dict(args.set)
    keep_log = args.keep_log
    try:
        if not args.skip_references and not args.latency_only:
            figures.per_event = await reference_a(
                args, servers, databases, suffix, used, figures.disturbance
            )
            figures.ceiling = await reference_b(
                args, servers, databases, suffix, figures.disturbance
            )

        values = overrides(servers, await databases.create(f"bench_{suffix}"), suffix)
        values["log_level"] = args.log_level
        values["http_port"] = free_ports(MAX_PROCESSES)  # /metrics, for the latency budget
        values.update(figures.settings)
        port = int(values["http_port"])
        settings = settings_of(values)
        used.append(settings)
        await create_topics(Clients(settings))
        service = ServiceProcess(values, workdir / "service.log")
        if args.latency_only:
            watch = await start_idle(service, port, args.stall)
        else:
            watch = await preload_and_drain(args, servers, settings, service, figures, suffix)
            figures.sync_seconds = await quiet_heap_and_disk()
        runs = await latency_phase(
            servers.kafka,
            settings,
            port,
            rates=args.latency_rates,
            seconds=args.latency_seconds,
            seed=args.seed + 1,
            watching=lambda phase: watching(servers, suffix, figures.disturbance, phase),
            step=step,
            warm_up=args.latency_only,
        )
        figures.latencies = [lat for lat, _ in runs]
        figures.budgets = [stages for _, stages in runs]
        if service.exit_code is not None:
            raise Aborted(f"the service exited with code {service.exit_code} under steady load")
        if args.soak_seconds > 0 and not args.latency_only:
            figures.soak = await soak_phase(
                servers.kafka,
                settings,
                service.pid,
                rate=args.soak_rate,
                seconds=args.soak_seconds,
                seed=args.seed + 1 + len(args.latency_rates),
                watching=lambda phase: watching(servers, suffix, figures.disturbance, phase),
                step=step,
            )
        if service.exit_code is not None:
            raise Aborted(f"the service exited with code {service.exit_code} during the soak")
        step("stopping the service with SIGTERM")
        figures.peak_rss = watch.peak
        figures.stop = await service.stop()
        await watch.stop()
        # After the exit: the service's sessions have flushed their statistics by then.
        figures.tables = await table_stats(settings.dsn)
        figures.log = log_stats(service.log_path)
        if args.mixed_n > 0 and not args.latency_only:
            values, settings, messages = await prepare_mixed(
                args, servers, databases, suffix, used, figures
            )
            service = ServiceProcess(values, workdir / "mixed.log")
            step(f"mixed: starting the service (log: {service.log_path})")
            reader = OutcomeReader(servers.kafka, settings.topic_sessions)
            await reader.start(partitions=settings.topic_partitions, from_end=False)
            try:
                async with watching(servers, suffix, figures.disturbance, "mixed"):
                    figures.mixed = await mixed_drain(
                        service, settings, reader, messages, stall=args.stall
                    )
            finally:
                await reader.stop()
            await service.stop()
            step(f"mixed: {figures.mixed.rate:,.0f} events/s")
    except (Aborted, Stalled) as error:
        keep_log = True
        print(f"\nbench aborted: {error}", file=sys.stderr)
        if service:
            print(f"service log tail ({service.log_path}):\n{service.log_tail()}", file=sys.stderr)
        return 1
    finally:
        if service:
            await service.stop(within=30)
        for problem in await databases.drop_all():
            print(f"bench cleanup: {problem}", file=sys.stderr)
        for settings in used:
            try:
                await delete_topics(settings)
            except Exception as error:
                print(f"bench cleanup: could not delete topics: {error!r}", file=sys.stderr)
        if not keep_log:
            shutil.rmtree(workdir, ignore_errors=True)
    figures.load_after = os.getloadavg()
    figures.speed_after = calibration.decode_microseconds()
    text = summary(figures, os.cpu_count() or 0)
    print(text, flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "report.txt").write_text(text.lstrip("\n") + "\n")
    if figures.soak:
        write_samples(figures.soak, args.out / "soak_rss.csv")
    try:
        plots = [str(p) for p in write_plots(figures, args.out)]
        print(f"report and plots: {args.out}/report.txt {' '.join(plots)}")
    except PlotsUnavailable as error:
        print(f"report: {args.out}/report.txt; no plots: {error}")
    if keep_log and service:
        print(f"service log kept: {service.log_path}")
    return 0


async def prepare_mixed(
    args: argparse.Namespace,
    servers: Servers,
    databases: Databases,
    suffix: str,
    used: list[Settings],
    figures: Figures,
) -> tuple[dict[str, Any], Settings, list[Message]]:
    """A fresh database and topics for the mixed stream, preloaded with it."""
    values = overrides(servers, await databases.create(f"bench_{suffix}_m"), f"{suffix}-m")
    values["log_level"] = args.log_level
    values["http_port"] = free_ports(MAX_PROCESSES)
    values.update(figures.settings)
    settings = settings_of(values)
    used.append(settings)
    await create_topics(Clients(settings))
    customers = max(1, args.mixed_n // 4)
    step(f"mixed: preloading {args.mixed_n:,} messages of the simulate generator's mix")
    messages = mixed_messages(args.mixed_n, customers, datetime.now(UTC), args.seed, settings)
    await produce_all(servers.kafka, messages)
    return values, settings, messages


def main(argv: list[str] | None = None) -> int:
    # The service's own logging set-up, quiet: the bench prints its figures, not the adapters'
    # info lines (topics created); warnings from aiokafka and asyncpg still show.
    configure_logging("WARNING")
    return asyncio.run(run(parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
