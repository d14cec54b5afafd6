"""The suite's TCP proxy, following its target: while the target refuses connections so does the
proxy (a client trying several hosts, as asyncpg does with a multi-host URL, moves on to the next
one as from a stopped server), and once the target listens again the proxy serves again."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from tests.fault.tools import wait_until
from tests.observability.tcp_proxy import TcpProxy


async def _echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(await reader.read(100))
    await writer.drain()
    writer.close()


async def _ping(port: int) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(b"ping")
        await writer.drain()
        return await reader.read(100)
    finally:
        writer.close()


async def test_a_following_proxy_refuses_while_its_target_is_down_and_serves_once_it_is_back() -> (
    None
):
    target = await asyncio.start_server(_echo, "127.0.0.1", 0)
    port = target.sockets[0].getsockname()[1]
    async with TcpProxy("127.0.0.1", port, follow=True) as proxy:
        assert await _ping(proxy.port) == b"ping"
        target.close()
        await target.wait_closed()
        # The first connection after the target stopped is accepted, then reset: the proxy
        # learns that its target refuses, and refuses from then on.
        with contextlib.suppress(OSError):
            assert await _ping(proxy.port) == b""
        with pytest.raises(ConnectionRefusedError):
            await _ping(proxy.port)
        target = await asyncio.start_server(_echo, "127.0.0.1", port, reuse_address=True)

        async def serves() -> bool:
            with contextlib.suppress(OSError):
                return await _ping(proxy.port) == b"ping"
            return False

        await wait_until(serves, within=10)
    target.close()
    await target.wait_closed()


async def test_a_cut_following_proxy_stays_cut_when_its_target_comes_back() -> None:
    target = await asyncio.start_server(_echo, "127.0.0.1", 0)
    port = target.sockets[0].getsockname()[1]
    async with TcpProxy("127.0.0.1", port, follow=True) as proxy:
        await proxy.cut()
        await asyncio.sleep(0.5)
        with pytest.raises(ConnectionRefusedError):
            await _ping(proxy.port)
        await proxy.restore()
        assert await _ping(proxy.port) == b"ping"
    target.close()
    await target.wait_closed()
