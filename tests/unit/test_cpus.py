"""`FULFILLMENT_PROCESSES=auto`: the CPUs this process may use, by affinity and CFS quota."""

from __future__ import annotations

from pathlib import Path

import pytest

from service.bootstrap.cpus import usable_cpus
from service.bootstrap.supervisor import instances
from service.config.settings import Settings

V2 = "0::/kubepods/pod1/app\n"
V1 = "4:memory:/kubepods/pod1/app\n2:cpu,cpuacct:/kubepods/pod1/app\n0::/\n"


def _write(root: Path, relative: str, files: dict[str, str]) -> None:
    folder = root / relative
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(text + "\n")


def _cpus(tmp_path: Path, membership: str, affinity: int) -> int:
    proc = tmp_path / "cgroup"
    proc.write_text(membership)
    return usable_cpus(affinity=set(range(affinity)), proc_cgroup=proc, cgroup_root=tmp_path / "fs")


def test_without_a_quota_every_cpu_in_the_affinity_mask_counts(tmp_path: Path) -> None:
    _write(tmp_path / "fs", "kubepods/pod1/app", {"cpu.max": "max 100000"})
    assert _cpus(tmp_path, V2, affinity=3) == 3


def test_a_v2_quota_of_two_and_a_half_cpus_gives_two(tmp_path: Path) -> None:
    _write(tmp_path / "fs", "kubepods/pod1/app", {"cpu.max": "250000 100000"})
    assert _cpus(tmp_path, V2, affinity=8) == 2


def test_a_parent_cgroups_lower_quota_wins(tmp_path: Path) -> None:
    _write(tmp_path / "fs", "kubepods/pod1/app", {"cpu.max": "400000 100000"})
    _write(tmp_path / "fs", "kubepods/pod1", {"cpu.max": "100000 100000"})
    assert _cpus(tmp_path, V2, affinity=8) == 1


def test_inside_a_container_the_quota_at_the_mount_root_counts(tmp_path: Path) -> None:
    # The host's path is not visible in the container's own cgroup namespace.
    _write(tmp_path / "fs", "", {"cpu.max": "200000 100000"})
    assert _cpus(tmp_path, V2, affinity=8) == 2


def test_a_v1_cfs_quota_caps_it(tmp_path: Path) -> None:
    _write(
        tmp_path / "fs",
        "cpu,cpuacct/kubepods/pod1/app",
        {"cpu.cfs_quota_us": "300000", "cpu.cfs_period_us": "100000"},
    )
    assert _cpus(tmp_path, V1, affinity=8) == 3


def test_a_v1_quota_of_minus_one_is_no_quota(tmp_path: Path) -> None:
    _write(
        tmp_path / "fs",
        "cpu,cpuacct/kubepods/pod1/app",
        {"cpu.cfs_quota_us": "-1", "cpu.cfs_period_us": "100000"},
    )
    assert _cpus(tmp_path, V1, affinity=4) == 4


def test_a_quota_below_one_cpu_still_runs_one_instance(tmp_path: Path) -> None:
    _write(tmp_path / "fs", "kubepods/pod1/app", {"cpu.max": "50000 100000"})
    assert _cpus(tmp_path, V2, affinity=2) == 1


def test_the_affinity_mask_caps_a_larger_quota(tmp_path: Path) -> None:
    _write(tmp_path / "fs", "kubepods/pod1/app", {"cpu.max": "800000 100000"})
    assert _cpus(tmp_path, V2, affinity=2) == 2


def test_unreadable_cgroup_files_mean_no_quota(tmp_path: Path) -> None:
    proc = tmp_path / "missing"
    assert usable_cpus(affinity={0, 1}, proc_cgroup=proc, cgroup_root=tmp_path) == 2


def test_a_count_given_is_the_count_run_and_auto_is_this_machines(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert instances(Settings(processes=3)) == 3
    monkeypatch.setattr("service.bootstrap.supervisor.usable_cpus", lambda: 5)
    assert instances(Settings(processes="auto")) == 5
