"""The Serve configs shipped in the repository are valid as Ray reads them and as the engines do."""

from pathlib import Path
from typing import Any

import pytest
import yaml
from ray.serve.schema import ServeDeploySchema

from deployments.engine_replica import _BATCH_KEYS
from stemforge.engines.musicgen.config import parse_config

ROOT = Path(__file__).resolve().parent.parent
CPU_CONFIGS = [ROOT / "configs" / "serve.cpu.yaml", ROOT / "configs" / "serve.cpu-musicgen.yaml"]
CONFIGS = [ROOT / "serve_config.yaml", *CPU_CONFIGS]


def _deployments(path: Path) -> dict[str, dict[str, Any]]:
    schema = ServeDeploySchema.model_validate(yaml.safe_load(path.read_text()))
    (application,) = schema.applications
    return {d.name: d.model_dump(exclude_unset=True) for d in application.deployments}


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_serve_config_parses_and_engine_user_configs_are_accepted(path: Path) -> None:
    deployments = _deployments(path)
    assert {"Ingress", "ProceduralEngine", "Uploader"} <= set(deployments)
    for name, deployment in deployments.items():
        user_config = dict(deployment.get("user_config") or {})
        if name == "MusicGenEngine":
            parse_config({k: v for k, v in user_config.items() if k not in _BATCH_KEYS})


def test_production_musicgen_replicas_share_a_gpu_and_spin_briefly_between_operations() -> None:
    musicgen = _deployments(ROOT / "serve_config.yaml")["MusicGenEngine"]
    options = musicgen["ray_actor_options"]
    assert 0 < options["num_gpus"] < 1
    assert options["runtime_env"]["env_vars"]["GOMP_SPINCOUNT"] == "300000"
    assert musicgen["user_config"]["lean_decoder"] is True


@pytest.mark.parametrize("path", CPU_CONFIGS, ids=lambda p: p.name)
def test_cpu_configs_fit_a_two_core_machine(path: Path) -> None:
    # Ray schedules by declared CPUs: a graph declaring more than the machine has never starts.
    deployments = _deployments(path)
    declared = sum(
        d.get("num_replicas", 1) * d.get("ray_actor_options", {}).get("num_cpus", 1)
        for d in deployments.values()
    )
    assert declared <= 2
    assert all(d.get("ray_actor_options", {}).get("num_gpus", 0) == 0 for d in deployments.values())
