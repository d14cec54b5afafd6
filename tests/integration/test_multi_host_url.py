"""A database URL with several hosts, as HA set-ups give it: the service connects to the host
that answers and is a primary (target_session_attrs=read-write), skipping a dead one."""

from __future__ import annotations

import socket
import uuid
from typing import Any
from urllib.parse import urlsplit

import pytest

import schemas
from service.bootstrap.factory import Clients
from tests.fault.tools import outcomes_by_payment, wall_now
from tests.harness import Outcomes, Producer, running


def dead_port() -> int:
    """A port nothing listens on: bound, then let go."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def with_a_dead_host_first(dsn: str) -> str:
    parts = urlsplit(dsn)
    userinfo, _, host = parts.netloc.rpartition("@")
    netloc = f"{userinfo}@127.0.0.1:{dead_port()},{host}"
    query = "&".join(filter(None, [parts.query, "target_session_attrs=read-write"]))
    return parts._replace(netloc=netloc, query=query).geturl()


@pytest.mark.timeout(60)
async def test_the_service_runs_on_the_live_primary_of_a_url_whose_first_host_is_dead(
    make_settings: Any, fresh_dsn: str
) -> None:
    settings = make_settings(database_url=with_a_dead_host_first(fresh_dsn))
    assert "," in settings.database_address
    pool = await Clients(settings).pool(size=2)
    try:
        port = await pool.fetchval("SELECT inet_server_port()")
        read_only = await pool.fetchval("SELECT current_setting('transaction_read_only')")
    finally:
        await pool.close()
    assert port == urlsplit(fresh_dsn).port
    assert read_only == "off"

    customer = uuid.uuid4()
    async with Outcomes(settings) as outcomes, Producer(settings) as producer, running(settings):
        await producer.pay(customer, "pi_multi_host", time=wall_now())
        await outcomes.wait_for(lambda o: len(o.records) >= 1, within=30)
    assert outcomes_by_payment(outcomes.events) == {"pi_multi_host": [schemas.SESSION_CREATED]}
