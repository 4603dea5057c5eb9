"""Counting CPUs and GPUs the way Ray will."""

import pytest

from stemforge.launch.machine import count_cpus, count_gpus, detect

SMI_TWO = "GPU 0: NVIDIA H100 (UUID: GPU-aaa)\nGPU 1: NVIDIA H100 (UUID: GPU-bbb)\n"


@pytest.mark.parametrize(
    ("smi", "visible", "expected"),
    [
        (None, None, 0),  # no nvidia-smi
        ("", None, 0),
        (SMI_TWO, None, 2),
        (SMI_TWO, "0", 1),
        (SMI_TWO, "0,1,2,3", 2),  # listing more than exist does not make more
        (SMI_TWO, "", 0),
        (SMI_TWO, "-1", 0),
        (None, "0,1", 0),  # a variable alone is no GPU
    ],
)
def test_gpus_are_nvidia_smi_lines_capped_by_cuda_visible_devices(
    smi: str | None, visible: str | None, expected: int
) -> None:
    assert count_gpus(smi, visible) == expected


@pytest.mark.parametrize(
    ("cpu_count", "quota", "expected"), [(2, None, 2), (16, 4.0, 4), (16, 2.5, 2), (4, 8.0, 4), (8, 0.5, 1)]
)
def test_cpus_are_the_cpu_count_lowered_to_a_container_quota(
    cpu_count: int, quota: float | None, expected: float
) -> None:
    assert count_cpus(cpu_count, quota) == expected


def test_detect_answers_on_this_machine() -> None:
    machine = detect()
    assert machine.cpus >= 1 and machine.gpus >= 0
