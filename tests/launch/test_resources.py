"""What a serve config asks at start-up against what the machine has."""

from typing import Any

import pytest

from stemforge.launch.machine import Machine
from stemforge.launch.resources import Demand, demands, shortfall, start_replicas


def _app(*deployments: dict[str, Any]) -> dict[str, Any]:
    return {"name": "stemforge", "deployments": list(deployments)}


@pytest.mark.parametrize(
    ("deployment", "default", "expected"),
    [
        ({"num_replicas": 3}, 1, 3),
        ({"autoscaling_config": {"min_replicas": 2, "max_replicas": 8}}, 1, 2),
        ({"autoscaling_config": {"max_replicas": 8}}, 1, 1),  # Serve's default minimum
        ({"autoscaling_config": {"min_replicas": 1, "initial_replicas": 3}}, 1, 3),
        ({"autoscaling_config": {"min_replicas": 0}}, 1, 0),  # scale to zero: nothing at start
        ({"num_replicas": "auto"}, 1, 1),
        ({}, 4, 4),  # neither: the code's own value (WORKERS for the ingress)
    ],
)
def test_replicas_at_start_up(deployment: dict[str, Any], default: int, expected: int) -> None:
    assert start_replicas(deployment, default) == expected


def test_omitted_num_cpus_counts_as_one_cpu() -> None:
    # ray_actor_options in YAML replaces the decorator's: without num_cpus a replica asks for 1.
    (demand,) = demands(_app({"name": "Uploader", "num_replicas": 1, "ray_actor_options": {}}))
    assert demand == Demand("Uploader", 1, 1.0, 0.0)


def test_a_graph_that_fits_is_accepted_even_to_the_last_share() -> None:
    # 0.1 + 0.2 + 1.5 + 0.2 is 2.0000000000000004 in floats; Ray counts in 1/10000ths.
    app = _app(
        {"name": "Ingress", "ray_actor_options": {"num_cpus": 0.1}},
        {"name": "ProceduralEngine", "num_replicas": 1, "ray_actor_options": {"num_cpus": 0.2}},
        {"name": "MusicGenEngine", "num_replicas": 1, "ray_actor_options": {"num_cpus": 1.5}},
        {"name": "Uploader", "num_replicas": 1, "ray_actor_options": {"num_cpus": 0.2}},
    )
    assert shortfall(demands(app), Machine(cpus=2, gpus=0), "cpu.yaml") is None


def test_too_many_cpus_names_every_deployment_and_the_numbers() -> None:
    app = _app(
        {"name": "Ingress", "ray_actor_options": {"num_cpus": 0.1}},
        {"name": "ProceduralEngine", "num_replicas": 1, "ray_actor_options": {"num_cpus": 1}},
        {"name": "MusicGenEngine", "num_replicas": 1, "ray_actor_options": {"num_cpus": 1}},
        {"name": "Uploader", "num_replicas": 1, "ray_actor_options": {"num_cpus": 0.25}},
    )
    message = shortfall(demands(app, {"Ingress": 1}), Machine(cpus=2, gpus=0), "configs/x.yaml")
    assert message is not None
    assert "configs/x.yaml cannot start on this machine (2 CPUs and 0 GPUs)" in message
    assert "ask for 2.35 at start-up; this machine has 2" in message
    assert "MusicGenEngine: 1 replica x 1 CPU = 1 CPU" in message
    assert "Ingress: 1 replica x 0.1 CPU = 0.1 CPU" in message
    assert "Uploader: 1 replica x 0.25 CPU = 0.25 CPU" in message
    assert "GPUs:" not in message  # only what is short


def test_gpus_on_a_cpu_box_name_the_gpu_deployment() -> None:
    app = _app(
        {"name": "Ingress", "ray_actor_options": {"num_cpus": 0.5}},
        {
            "name": "MusicGenEngine",
            "autoscaling_config": {"min_replicas": 2, "max_replicas": 8},
            "ray_actor_options": {"num_cpus": 1, "num_gpus": 0.5},
        },
    )
    message = shortfall(demands(app), Machine(cpus=16, gpus=0), "serve_config.yaml")
    assert message is not None
    assert "GPUs: the deployments ask for 1 at start-up; this machine has 0" in message
    assert "MusicGenEngine: 2 replicas x 1 CPU, 0.5 GPU = 2 CPU, 1 GPU" in message
    assert "Ingress" not in message  # it asks no GPU, and the CPUs are enough
    assert shortfall(demands(app), Machine(cpus=16, gpus=1), "serve_config.yaml") is None
