"""What this machine offers Ray: CPUs and GPUs, counted the way Ray counts them, cheaply (no torch,
no Ray: a preflight must answer in well under a second)."""

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

_CGROUP_V2_CPU_MAX = Path("/sys/fs/cgroup/cpu.max")
_CGROUP_V1_QUOTA = Path("/sys/fs/cgroup/cpu/cpu.cfs_quota_us")
_CGROUP_V1_PERIOD = Path("/sys/fs/cgroup/cpu/cpu.cfs_period_us")


@dataclass(frozen=True)
class Machine:
    cpus: float
    gpus: int

    def describe(self) -> str:
        return f"{self.cpus:g} CPUs and {self.gpus} GPUs"


def detect() -> Machine:
    return Machine(cpus=count_cpus(os.cpu_count() or 1, _cgroup_quota()), gpus=count_gpus(_nvidia_smi_list()))


def count_cpus(cpu_count: int, cgroup_quota: float | None) -> float:
    """Ray's own rule (ray._private.utils.get_num_cpus): the kernel's CPU count, lowered to a
    container's CPU quota, truncated to whole CPUs. Ray ignores the affinity mask, so we do too:
    what matters here is what Ray will schedule, not how fast it runs."""
    if cgroup_quota is not None and cgroup_quota > 0:
        return float(max(1, int(min(cpu_count, cgroup_quota))))
    return float(cpu_count)


def count_gpus(nvidia_smi_list: str | None, cuda_visible_devices: str | None = None) -> int:
    """GPUs Ray will see: the lines of ``nvidia-smi -L`` ("GPU 0: ..."), capped by
    CUDA_VISIBLE_DEVICES when it is set (an empty value or -1 hides them all)."""
    if cuda_visible_devices is None:
        cuda_visible_devices = os.environ.get("CUDA_VISIBLE_DEVICES")
    detected = sum(1 for line in (nvidia_smi_list or "").splitlines() if line.startswith("GPU "))
    if cuda_visible_devices is None:
        return detected
    visible = [
        d for d in cuda_visible_devices.split(",") if d.strip() and d.strip() not in ("-1", "NoDevFiles")
    ]
    return min(detected, len(visible))


def _nvidia_smi_list() -> str | None:
    if shutil.which("nvidia-smi") is None:
        return None
    try:
        done = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout if done.returncode == 0 else None


def _cgroup_quota() -> float | None:
    try:
        if _CGROUP_V2_CPU_MAX.is_file():
            quota, period = _CGROUP_V2_CPU_MAX.read_text().split()
            return float(quota) / float(period) if quota.isdigit() else None  # "max": no quota
        if _CGROUP_V1_QUOTA.is_file() and _CGROUP_V1_PERIOD.is_file():
            quota_us = float(_CGROUP_V1_QUOTA.read_text())
            return quota_us / float(_CGROUP_V1_PERIOD.read_text()) if quota_us > 0 else None
    except (OSError, ValueError):
        pass
    return None
