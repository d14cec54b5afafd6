"""Fixtures of the recovery tests (rebuild, restore): the empty database they write into."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.conftest import create_database, drop_database
from tests.servers import Servers


@pytest.fixture
async def empty_dsn(servers: Servers) -> AsyncIterator[str]:
    """A second new, migrated database, beside the test's own: the target a rebuild or a
    restore writes into. (test_migrations.py has one of its own, left unmigrated.)"""
    dsn = await create_database(servers)
    yield dsn
    await drop_database(servers, dsn)
