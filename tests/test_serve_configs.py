"""The Serve configs shipped in the repository are valid as Ray reads them and as the engines do,
and the variants are exactly what `make configs` derives from serve_config.yaml."""

from pathlib import Path
from typing import Any

import pytest
from ray.serve.schema import ServeDeploySchema

from deployments.engine_replica import BATCH_KEYS
from stemforge.engines.musicgen.config import parse_config
from stemforge.engines.registry import ENGINES, engine_class, engine_entry
from stemforge.launch import generate
from stemforge.launch.machine import Machine
from stemforge.launch.preflight import replica_settings
from stemforge.launch.resources import demands, shortfall
from stemforge.launch.serveconfig import read_serve_config, the_application
from stemforge.routing import RoutingTable

ROOT = Path(__file__).resolve().parent.parent
CPU_CONFIGS = [
    ROOT / "configs" / "serve.cpu.yaml",
    ROOT / "configs" / "serve.cpu-musicgen.yaml",
    ROOT / "configs" / "serve.cpu-models.yaml",
]
CONFIGS = [
    ROOT / "serve_config.yaml",
    *CPU_CONFIGS,
    ROOT / "configs" / "serve.gpu.yaml",
    ROOT / "cluster" / "rayservice.yaml",
]


# Engine deployments whose user_config the engine's own parser checks (beside MusicGen's).
ENGINE_CLASSES = {
    "StableAudioEngine": "stable_audio",
    "AudioLDM2Engine": "audioldm2",
    "RiffusionEngine": "riffusion",
}


def _deployments(path: Path) -> dict[str, dict[str, Any]]:
    schema = ServeDeploySchema.model_validate(read_serve_config(path))
    (application,) = schema.applications
    return {d.name: d.model_dump(exclude_unset=True) for d in application.deployments}


def test_committed_variants_are_what_make_configs_writes() -> None:
    rendered = generate.render(ROOT)
    assert set(rendered) == set(CONFIGS) - {ROOT / "serve_config.yaml"}
    stale = [str(path.relative_to(ROOT)) for path, text in rendered.items() if path.read_text() != text]
    assert not stale, f"{stale} differ from serve_config.yaml + configs/variants.yaml: run `make configs`"


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_serve_config_parses_and_engine_user_configs_are_accepted(path: Path) -> None:
    deployments = _deployments(path)
    assert {"Ingress", "ProceduralEngine", "Uploader"} <= set(deployments)
    for name, deployment in deployments.items():
        user_config = dict(deployment.get("user_config") or {})
        if name == "MusicGenEngine":
            parse_config({k: v for k, v in user_config.items() if k not in BATCH_KEYS})
        if name in ENGINE_CLASSES:
            engine = engine_class(ENGINE_CLASSES[name])
            engine.parse_config({k: v for k, v in user_config.items() if k not in BATCH_KEYS})


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_every_engine_the_config_routes_stems_to_is_deployed(path: Path) -> None:
    application = the_application(read_serve_config(path))
    settings = replica_settings(application["runtime_env"]["env_vars"])
    routed = RoutingTable.load(settings.stem_routing_file).engines(settings.mode)
    listed = set(_deployments(path))
    assert {engine_entry(engine).deployment_name for engine in routed} <= listed
    assert sorted(application["args"]["engines"]) == sorted(
        name for name, entry in ENGINES.items() if entry.deployment_name in listed
    )


def test_production_musicgen_replicas_share_a_gpu_and_spin_briefly_between_operations() -> None:
    musicgen = _deployments(ROOT / "serve_config.yaml")["MusicGenEngine"]
    options = musicgen["ray_actor_options"]
    assert 0 < options["num_gpus"] < 1
    assert options["runtime_env"]["env_vars"]["GOMP_SPINCOUNT"] == "300000"
    assert musicgen["user_config"]["lean_decoder"] is True


@pytest.mark.parametrize("path", CPU_CONFIGS, ids=lambda p: p.name)
def test_cpu_configs_fit_a_two_core_machine(path: Path) -> None:
    # Ray schedules by declared CPUs: a graph declaring more than the machine has never starts.
    # The same rule as the launcher's preflight.
    application = the_application(read_serve_config(path))
    assert shortfall(demands(application), Machine(cpus=2, gpus=0), path.name) is None


def test_each_config_pins_the_mode_its_engines_serve() -> None:
    # A config deploying only the procedural engine must not inherit MOCK_GENERATION=false from
    # the shell (the mode would route to an engine it lacks).
    modes = {
        path.name: the_application(read_serve_config(path))["runtime_env"]["env_vars"]["MOCK_GENERATION"]
        for path in CONFIGS
    }
    assert modes == {
        "serve_config.yaml": "false",
        "serve.cpu.yaml": "true",
        "serve.cpu-musicgen.yaml": "false",
        "serve.cpu-models.yaml": "false",
        "serve.gpu.yaml": "false",
        "rayservice.yaml": "false",
    }
