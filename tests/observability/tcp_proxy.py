"""A TCP proxy a test can cut and restore: an outage of one service's PostgreSQL (or anything
else) without stopping the server that other tests share.

    async with TcpProxy("127.0.0.1", 5432) as proxy:   # listens on proxy.port
        await proxy.cut()       # drops every connection and refuses new ones
        await proxy.restore()   # listens again on the same port

With `follow=True` the proxy also refuses connections while its target does (it stops listening
when a connection to the target is refused, and listens again once the target accepts): a
client trying several hosts in turn, as asyncpg does with a multi-host URL, then moves on to the
next one as it would from a stopped server, instead of seeing a connection reset.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket


class TcpProxy:
    def __init__(
        self, target_host: str, target_port: int, port: int = 0, *, follow: bool = False
    ) -> None:
        """Listens on `port`, or on a free port when it is 0."""
        self._target = (target_host, target_port)
        self._server: asyncio.Server | None = None
        self._follow = follow
        self._cut = True
        self._following: asyncio.Task[None] | None = None
        self._pipes: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self.port: int = port
        if not port:
            with socket.socket() as probe:  # a free port, kept across cut and restore
                probe.bind(("127.0.0.1", 0))
                self.port = probe.getsockname()[1]

    async def __aenter__(self) -> TcpProxy:
        await self.restore()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.cut()

    @property
    def state(self) -> str:
        """ "cut", "following" (its target refused: not listening until it accepts),
        "listening", or "closed" (none of these: it should be listening and is not)."""
        if self._cut:
            return "cut"
        if self._following is not None:
            return "following"
        return "listening" if self._server is not None else "closed"

    async def restore(self) -> None:
        self._cut = False
        await self._listen()

    async def _listen(self) -> None:
        if self._server is None:
            self._server = await asyncio.start_server(
                self._accept, "127.0.0.1", self.port, reuse_address=True
            )

    async def _close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def cut(self) -> None:
        self._cut = True
        if self._following is not None:
            self._following.cancel()
            self._following = None
        await self._close()
        for writer in list(self._writers):
            writer.transport.abort()  # a reset, as a stopped server's peer sees it
        for pipe in list(self._pipes):
            pipe.cancel()
        await asyncio.gather(*self._pipes, return_exceptions=True)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self._target)
        except OSError:
            writer.transport.abort()
            if self._follow and self._following is None and not self._cut:
                if self._server is not None:  # stops listening now (no wait from a handler)
                    self._server.close()
                    self._server = None
                self._following = asyncio.ensure_future(self._until_target_accepts())
            return
        self._writers |= {writer, up_writer}
        for source, sink in ((reader, up_writer), (up_reader, writer)):
            task = asyncio.ensure_future(_pipe(source, sink))
            self._pipes.add(task)
            task.add_done_callback(self._pipes.discard)

    async def _until_target_accepts(self) -> None:
        while True:
            await asyncio.sleep(0.2)
            try:
                _, probe = await asyncio.open_connection(*self._target)
            except OSError:
                continue
            probe.transport.abort()
            break
        self._following = None
        if not self._cut:
            await self._listen()


async def _pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
    try:
        while data := await source.read(65536):
            sink.write(data)
            await sink.drain()
    except (OSError, asyncio.IncompleteReadError):
        pass
    finally:
        with contextlib.suppress(OSError, RuntimeError):
            sink.transport.abort()
