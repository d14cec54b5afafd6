"""A real Prometheus for tests: scrapes one target every second with the alert rules loaded.

    with running("127.0.0.1:8080") as prometheus:
        prometheus.wait_until('up{job="session-fulfillment"} == 1')
        prometheus.query("sum(rate(fulfillment_events_total[10s]))")

It runs the `prometheus` binary (Debian package `prometheus`, which `make test` installs) in a
temporary directory with a generated configuration, listening on a free loopback port, and stops
it when the block ends, whatever happens inside.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.observability.promql import ALERTS

JOB = "session-fulfillment"


class PrometheusError(Exception):
    """The HTTP API answered something other than `status: success`."""


@dataclass(frozen=True)
class Prometheus:
    url: str
    log: Path

    def api(self, path: str, **params: str) -> Any:
        """GET /api/v1/<path>; the `data` of a successful answer, else PrometheusError."""
        address = f"{self.url}/api/v1/{path}"
        if params:
            address += "?" + urllib.parse.urlencode(params)
        try:
            with urllib.request.urlopen(address, timeout=10) as response:
                answer = json.load(response)
        except urllib.error.HTTPError as error:
            # Bad expressions come back as 400/422 with a JSON error body.
            answer = json.load(error)
        if answer.get("status") != "success":
            raise PrometheusError(
                f"{path} {params}: {answer.get('errorType')}: {answer.get('error')}"
            )
        return answer["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        """An instant query; the result's samples (a scalar or string becomes one sample)."""
        data = self.api("query", query=expr)
        if data["resultType"] in {"scalar", "string"}:
            return [{"metric": {}, "value": data["result"]}]
        result: list[dict[str, Any]] = data["result"]
        return result

    def wait_until(self, expr: str, timeout: float = 60.0) -> list[dict[str, Any]]:
        """Query `expr` until it returns data (e.g. a comparison that holds)."""
        deadline = time.monotonic() + timeout
        while True:
            result = self.query(expr)
            if result:
                return result
            if time.monotonic() > deadline:
                raise TimeoutError(f"no data for {expr!r} after {timeout} s")
            time.sleep(0.5)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _binary() -> str:
    found = shutil.which("prometheus")
    if found is None:
        pytest.fail(
            "prometheus is not installed: `make test` installs it (Debian package `prometheus`)",
            pytrace=False,
        )
    return found


def _wait_ready(process: subprocess.Popen[bytes], url: str, log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"prometheus exited with {process.returncode}:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(f"{url}/-/ready", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"prometheus not ready after {timeout} s:\n{log.read_text()}")
        time.sleep(0.2)


@contextmanager
def running(
    target: str,
    *,
    rule_files: Sequence[Path] = (ALERTS,),
    job: str = JOB,
    interval: str = "1s",
    timeout: float = 60.0,
) -> Iterator[Prometheus]:
    """Prometheus scraping `target` (host:port, path /metrics) as `job` every `interval`, and
    evaluating `rule_files` as often; stopped (then killed if need be) on exit."""
    with tempfile.TemporaryDirectory(prefix="prometheus-") as directory:
        root = Path(directory)
        config = root / "prometheus.yml"
        config.write_text(
            yaml.safe_dump(
                {
                    "global": {"scrape_interval": interval, "evaluation_interval": interval},
                    "rule_files": [str(path.resolve()) for path in rule_files],
                    "scrape_configs": [
                        {
                            "job_name": job,
                            "scrape_timeout": interval,
                            "static_configs": [{"targets": [target]}],
                        }
                    ],
                }
            ),
            "utf-8",
        )
        port = _free_port()
        url = f"http://127.0.0.1:{port}"
        log = root / "prometheus.log"
        with log.open("wb") as output:
            process = subprocess.Popen(
                [
                    _binary(),
                    f"--config.file={config}",
                    f"--storage.tsdb.path={root / 'data'}",
                    f"--web.listen-address=127.0.0.1:{port}",
                    "--log.level=warn",
                ],
                stdout=output,
                stderr=subprocess.STDOUT,
                cwd=root,
            )
            try:
                _wait_ready(process, url, log, timeout)
                yield Prometheus(url=url, log=log)
            finally:
                process.terminate()
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
