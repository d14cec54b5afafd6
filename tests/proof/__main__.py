"""`python -m tests.proof` (what `make proof` runs): the service under a seeded workload and
seeded faults, then a soak at a high rate without faults, each whole history checked against
docs/contract.md; report.md and plots in the run directory. Exit 0 with no violation, 1 with
any, 2 for a bad argument."""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
from datetime import UTC, datetime
from pathlib import Path

from tests import cluster
from tests.proof.faults import CLUSTER_KINDS, HA_KINDS, KINDS
from tests.proof.run import Plan
from tests.proof.soak import prove_and_soak
from tests.servers import NoServers, provide


def parse(argv: list[str]) -> Plan:
    parser = argparse.ArgumentParser(prog="python -m tests.proof", description=__doc__)
    parser.add_argument(
        "--seed", type=int, help="fixes the workload and the faults (drawn if absent)"
    )
    parser.add_argument("--duration", type=float, default=300.0, help="seconds of workload")
    parser.add_argument("--rate", type=float, default=20.0, help="input messages per second")
    parser.add_argument("--instances", type=int, default=2, help="service instances")
    parser.add_argument("--repeats", type=int, default=3, help="times each fault kind is injected")
    parser.add_argument("--customers", type=int, default=1000, help="distinct customers")
    parser.add_argument(
        "--cluster",
        action="store_true",
        help="on the three-broker cluster (TEST_KAFKA_CLUSTER_BOOTSTRAP_SERVERS), killing brokers",
    )
    parser.add_argument(
        "--soak-seconds",
        type=float,
        default=600.0,
        help="seconds of the soak after the fault phase (0: no soak)",
    )
    parser.add_argument(
        "--soak-rate", type=float, default=1000.0, help="input messages per second in the soak"
    )
    parser.add_argument(
        "--faults",
        type=_kinds,
        help=f"only these fault kinds, comma-separated (of {','.join(EVERY_KIND)}); all if absent",
    )
    parser.add_argument(
        "--relay-page",
        type=int,
        help="the instances' FULFILLMENT_RELAY_BATCH_SIZE (the default's if absent): a small one "
        "makes the relay read its rounds in several pages, which the default's rarely does",
    )
    parser.add_argument("--out", type=Path, default=Path(".local/proof"), help="runs go under it")
    args = parser.parse_args(argv)
    if args.duration <= 0 or args.rate <= 0 or args.instances < 1 or args.repeats < 1:
        parser.error("--duration and --rate must be positive, --instances and --repeats >= 1")
    if args.relay_page is not None and args.relay_page < 1:
        parser.error("--relay-page must be 1 or more")
    if args.soak_seconds < 0 or args.soak_rate <= 0:
        parser.error("--soak-seconds must be 0 or more, --soak-rate positive")
    seed = args.seed if args.seed is not None else random.randrange(2**31)
    run_dir = args.out / f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-seed{seed}"
    return Plan(
        seed=seed,
        duration=args.duration,
        rate=args.rate,
        run_dir=run_dir,
        instances=args.instances,
        repeats=args.repeats,
        customers=args.customers,
        kinds=args.faults,
        overrides={} if args.relay_page is None else {"relay_batch_size": args.relay_page},
        cluster=cluster.provide() if args.cluster else None,
        soak_seconds=args.soak_seconds,
        soak_rate=args.soak_rate,
    )


EVERY_KIND = KINDS + HA_KINDS + CLUSTER_KINDS


def _kinds(value: str) -> frozenset[str]:
    """`--faults`: known kinds only, so a typo cannot make a run without its faults."""
    kinds = frozenset(kind.strip() for kind in value.split(",") if kind.strip())
    unknown = sorted(kinds - set(EVERY_KIND))
    if not kinds or unknown:
        named = ",".join(unknown) if unknown else repr(value)
        raise argparse.ArgumentTypeError(f"unknown fault kind(s): {named}")
    return kinds


def main(argv: list[str]) -> int:
    try:
        plan = parse(argv)
    except NoServers as error:
        print(f"proof: {error}", file=sys.stderr)
        return 2
    print(f"proof: seed {plan.seed}, run directory {plan.run_dir}", flush=True)
    try:
        with provide() as servers:
            code = asyncio.run(prove_and_soak(plan, servers))
    except NoServers as error:
        print(f"proof: {error}", file=sys.stderr)
        return 2
    report = plan.run_dir / "report.md"
    print(f"proof: {'PASSED, 0 violations' if code == 0 else 'FAILED'}; report: {report}")
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
