"""Running `fulfillment` as an operator does: a real subprocess, its whole output captured."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

FULFILLMENT = Path(sys.prefix) / "bin" / "fulfillment"


@dataclass(frozen=True)
class Finished:
    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    @property
    def lines(self) -> list[str]:
        return self.stderr.splitlines()


@dataclass
class Running:
    process: asyncio.subprocess.Process
    stderr_path: Path
    finished: Finished | None = None

    async def wait_for_stderr(self, text: str, within: float) -> None:
        """Until the process has written `text` to stderr; fails if it ends first."""
        async with asyncio.timeout(within):
            while text not in self.stderr_path.read_text("utf-8", errors="replace"):
                assert self.process.returncode is None, "the process ended first"
                await asyncio.sleep(0.2)


@asynccontextmanager
async def running(
    *args: str, env: dict[str, str], stop_within: float = 45.0
) -> AsyncIterator[Running]:
    """`fulfillment args...` started; on exit it gets SIGTERM (if still running) and must end
    within `stop_within` s. Output goes to files, so a chatty process never blocks on a pipe."""
    with tempfile.TemporaryDirectory() as directory:
        out_path, err_path = Path(directory) / "stdout", Path(directory) / "stderr"
        with out_path.open("wb") as out, err_path.open("wb") as err:
            process = await asyncio.create_subprocess_exec(
                str(FULFILLMENT), *args, env=env, stdout=out, stderr=err
            )
        handle = Running(process, err_path)
        try:
            yield handle
        finally:
            if process.returncode is None:
                process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), stop_within)
            finally:
                if process.returncode is None:
                    process.kill()
                    await process.wait()
            assert process.returncode is not None
            handle.finished = Finished(
                process.returncode,
                out_path.read_text("utf-8", errors="replace"),
                err_path.read_text("utf-8", errors="replace"),
            )


async def fulfillment(*args: str, env: dict[str, str], within: float = 60.0) -> Finished:
    """Runs `fulfillment args...` to its end, which must come within `within` s."""
    async with running(*args, env=env, stop_within=5.0) as handle:
        await asyncio.wait_for(handle.process.wait(), within)
    assert handle.finished is not None
    return handle.finished


def make_ca(directory: Path) -> Path:
    """A CA that signed nothing any server here presents."""
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-new",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=a CA nobody here trusts",
            "-keyout",
            str(directory / "foreign-ca-key.pem"),
            "-out",
            str(directory / "foreign-ca.pem"),
        ],
        check=True,
        capture_output=True,
        timeout=30,
    )
    return directory / "foreign-ca.pem"
