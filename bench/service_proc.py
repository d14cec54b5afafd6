"""The service under test as a real process (`fulfillment run`), its log going to a file: the
same interpreter, event loop and logging cost a deployment has, nothing shared with the bench."""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path
from typing import Any

from bench.stack import FULFILLMENT, service_env


class ServiceProcess:
    def __init__(self, values: dict[str, Any], log_path: Path) -> None:
        self._env = service_env(values)
        self.log_path = log_path
        self._process: asyncio.subprocess.Process | None = None
        self.started_at = 0.0  # epoch seconds, just before the exec

    @property
    def pid(self) -> int:
        assert self._process is not None
        return self._process.pid

    @property
    def exit_code(self) -> int | None:
        return self._process.returncode if self._process else None

    async def start(self) -> None:
        """Raises OSError when the executable cannot be started."""
        with self.log_path.open("ab") as log:
            self.started_at = time.time()
            self._process = await asyncio.create_subprocess_exec(
                str(FULFILLMENT),
                "run",
                env=self._env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=asyncio.subprocess.STDOUT,
            )

    async def stop(self, *, within: float = 60.0) -> tuple[int | None, float]:
        """SIGTERM, then wait; SIGKILL after `within` seconds. Returns the exit code (negative:
        killed by that signal; None if it was never started) and the seconds to exit."""
        process = self._process
        if process is None:
            return None, 0.0
        started = time.perf_counter()
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), within)
            except TimeoutError:
                process.kill()
                await process.wait()
        return process.returncode, time.perf_counter() - started

    def log_tail(self, lines: int = 15) -> str:
        try:
            text = self.log_path.read_bytes()[-64 * 1024 :].decode(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])
