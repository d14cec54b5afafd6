"""Can the service reach its servers? One connection to Kafka, made the way every client will
make it, so a refusal (TLS, SASL, an address nobody listens on) surfaces as its own error
instead of aiokafka's "Unable to bootstrap", which drops the cause."""

from __future__ import annotations

import asyncio
from typing import Any

from aiokafka.conn import collect_hosts, create_conn
from aiokafka.errors import KafkaError

PROBE_SECONDS = 15.0


class Unreachable(Exception):
    """`system` at `address` refused or never answered; `cause` is the error that says why."""

    def __init__(self, system: str, address: str, cause: BaseException) -> None:
        super().__init__(f"{system} at {address}: {cause!r}")
        self.system = system
        self.address = address
        self.cause = cause


async def reach_kafka(options: dict[str, Any], *, seconds: float = PROBE_SECONDS) -> None:
    """Returns once one bootstrap server accepts a connection (TLS and SASL included);
    raises Unreachable with the first server's error when none does."""
    bootstrap = options["bootstrap_servers"]
    connection = {
        name: options[name]
        for name in (
            "security_protocol",
            "ssl_context",
            "sasl_mechanism",
            "sasl_plain_username",
            "sasl_plain_password",
        )
        if name in options
    }
    first: BaseException | None = None
    for host, port, _ in collect_hosts(bootstrap, randomize=False):
        try:
            conn = await asyncio.wait_for(
                create_conn(host, port, request_timeout_ms=int(seconds * 1000), **connection),
                seconds,
            )
        except (OSError, KafkaError, TimeoutError) as error:
            first = first or error
            continue
        conn.close()
        return
    assert first is not None, "collect_hosts returned no address"
    raise Unreachable("Kafka", bootstrap, first)
