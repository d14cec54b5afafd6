"""The directory `fulfillment run` gives prometheus-client's multiprocess mode: fresh, private,
set before prometheus-client is imported, gone after the run, and leftovers of dead runs
removed at the next start."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from service.bootstrap.metrics_dir import PREFIX, shared_metrics_directory

RUN = """
import json, os, sys
from service.bootstrap.metrics_dir import ENV, shared_metrics_directory
with shared_metrics_directory() as directory:
    from prometheus_client import Counter, CollectorRegistry
    from prometheus_client.values import ValueClass
    fresh = sorted(os.listdir(directory))
    Counter("c", "c", registry=CollectorRegistry()).inc()
    seen = {
        "directory": str(directory),
        "env": os.environ[ENV],
        "mode": oct(directory.stat().st_mode & 0o777),
        "fresh": fresh,
        "written": sorted(os.listdir(directory)),
        "multiprocess": ValueClass._multiprocess,
    }
seen["env_after"] = os.environ.get(ENV)
print(json.dumps(seen))
"""


def _run(tmp_path: Path) -> dict[str, object]:
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    done = subprocess.run(
        [sys.executable, "-c", RUN],
        env=env | {"TMPDIR": str(tmp_path)},
        capture_output=True,
        check=True,
        timeout=60,
    )
    seen: dict[str, object] = json.loads(done.stdout)
    return seen


def test_a_run_s_metrics_directory_is_fresh_private_and_gone_after_it(tmp_path: Path) -> None:
    seen = _run(tmp_path)

    directory = Path(str(seen["directory"]))
    assert directory.parent == tmp_path and directory.name.startswith(PREFIX)
    assert seen["env"] == str(directory) and seen["env_after"] is None
    assert seen["mode"] == "0o700"
    assert seen["fresh"] == []
    assert seen["multiprocess"] is True
    assert seen["written"] == [f"counter_{directory.name.split('-')[2]}.db"]
    assert not directory.exists()


def test_a_dead_run_s_directory_is_removed_at_the_next_start_and_a_live_one_s_kept(
    tmp_path: Path,
) -> None:
    ended = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        timeout=30,
    )
    dead = tmp_path / f"{PREFIX}{int(ended.stdout)}-abc"
    live = tmp_path / f"{PREFIX}{os.getpid()}-def"
    other = tmp_path / "fulfillment-other"
    for directory in (dead, live, other):
        directory.mkdir()
        (directory / "counter_1.db").write_bytes(b"x")

    _run(tmp_path)

    assert not dead.exists()
    assert live.exists() and other.exists()


def test_prometheus_client_imported_before_the_directory_is_refused() -> None:
    import prometheus_client  # noqa: F401 (already imported by the service's modules)

    with pytest.raises(RuntimeError, match="before its multiprocess directory"):
        with shared_metrics_directory():
            pass
