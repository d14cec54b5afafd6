"""FULFILLMENT_DATABASE_SYNCHRONOUS_STANDBY: the service refuses to start on a primary with no
synchronous standby named, in one line, and commits with synchronous_commit=on."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import asyncpg
import pytest

from service.adapters.postgres.durability import NoSynchronousStandby
from service.bootstrap.factory import Clients
from service.bootstrap.fixable import one_line
from service.bootstrap.service import Service


@pytest.mark.timeout(60)
async def test_the_service_refuses_to_start_without_a_synchronous_standby(
    make_settings: Any,
) -> None:
    # The shared local server replicates to nobody synchronously.
    settings = make_settings(database_synchronous_standby=True)
    with pytest.raises(NoSynchronousStandby) as caught:
        await Service(settings).run()
    message = one_line(caught.value, settings)
    assert message is not None
    assert message.startswith("FULFILLMENT_DATABASE_SYNCHRONOUS_STANDBY is on, but PostgreSQL at")
    assert "synchronous_standby_names is empty" in message
    assert "\n" not in message


@pytest.mark.timeout(60)
async def test_with_the_setting_commits_wait_for_the_standby_even_where_the_database_says_local(
    make_settings: Any, fresh_dsn: str
) -> None:
    name = urlsplit(fresh_dsn).path.lstrip("/")
    admin = await asyncpg.connect(fresh_dsn)
    try:
        await admin.execute(f'ALTER DATABASE "{name}" SET synchronous_commit = local')
    finally:
        await admin.close()
    on = await Clients(make_settings(database_synchronous_standby=True)).pool(size=1)
    off = await Clients(make_settings()).pool(size=1)
    try:
        assert await on.fetchval("SHOW synchronous_commit") == "on"
        assert await off.fetchval("SHOW synchronous_commit") == "local"
    finally:
        await on.close()
        await off.close()
