"""The directory in which the instances of one `fulfillment run` share their metrics.

prometheus-client keeps every metric of a process in memory-mapped files under
`PROMETHEUS_MULTIPROC_DIR` when that variable is set as it is first imported, and the instance
serving the service's port sums every instance's files (service/observe/shared_metrics.py).
Each start gets a fresh, private (0700), empty directory, removed when the service stops: files
left by an earlier run would be counted again. A run that could not remove its own (killed) has
it removed by the next start on the same machine (or container).
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ENV = "PROMETHEUS_MULTIPROC_DIR"
PREFIX = "fulfillment-metrics-"


@contextmanager
def shared_metrics_directory() -> Iterator[Path]:
    """Sets `PROMETHEUS_MULTIPROC_DIR` to a new directory for this process and the instances it
    forks; removes it, and restores the variable, on exit.

    Raises RuntimeError if prometheus-client is already imported: it would keep each process's
    metrics to itself, and the service's port would serve a fraction of them."""
    if "prometheus_client" in sys.modules:
        raise RuntimeError("prometheus_client was imported before its multiprocess directory")
    remove_left_over(Path(tempfile.gettempdir()))
    directory = Path(tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}-"))
    inherited = os.environ.get(ENV)
    os.environ[ENV] = str(directory)
    try:
        yield directory
    finally:
        if inherited is None:
            os.environ.pop(ENV, None)
        else:
            os.environ[ENV] = inherited
        shutil.rmtree(directory, ignore_errors=True)


def remove_left_over(root: Path) -> None:
    """The directories of runs that ended without removing theirs: their process is gone, or
    has this process's pid (a container restarted: the service is pid 1 again)."""
    for directory in root.glob(f"{PREFIX}*-*"):
        pid = directory.name.removeprefix(PREFIX).split("-", 1)[0]
        if pid.isdigit() and (int(pid) == os.getpid() or not _running(int(pid))):
            shutil.rmtree(directory, ignore_errors=True)


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's
        return True
    return True
