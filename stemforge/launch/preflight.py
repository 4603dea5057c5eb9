"""Checks that take seconds and save an endless wait: a serve config either can start here or
the launcher says why before Ray starts.

- the settings the replicas will build (this environment plus the config's env_vars) are valid;
- every engine the mode routes stems to has a deployment in the config (else Serve adds it with
  the code's default resources, e.g. the procedural graph started while the mode routes to
  MusicGen);
- the deployments' resources fit the machine (``resources``);
- each model replica the config deploys (MusicGen, Stable Audio) finds its checkpoint.
"""

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from stemforge.engines import checkpoints
from stemforge.engines.checkpoints import CheckpointKind
from stemforge.engines.registry import ENGINES, engine_entry
from stemforge.errors import ConfigurationError
from stemforge.launch.machine import Machine
from stemforge.launch.resources import demands, shortfall
from stemforge.launch.serveconfig import app_env_vars, deployments, replica_env_vars
from stemforge.routing import RoutingTable
from stemforge.settings import Settings

MUSICGEN = "musicgen"


@dataclass(frozen=True)
class ModelEngine:
    """A deployed engine whose replicas load a checkpoint named by a setting."""

    engine: str  # registry name
    label: str  # for messages
    setting: str  # the Settings field naming the checkpoint
    extra: str  # the pip extra with its packages
    kind: CheckpointKind


MODEL_ENGINES = (
    ModelEngine(MUSICGEN, "MusicGen", "musicgen_model", "musicgen", checkpoints.MUSICGEN),
    ModelEngine(
        "stable_audio", "Stable Audio", "stable_audio_model", "stable-audio", checkpoints.STABLE_AUDIO
    ),
    ModelEngine("audioldm2", "AudioLDM 2", "audioldm2_model", "audioldm2", checkpoints.AUDIOLDM2),
    ModelEngine("riffusion", "Riffusion", "riffusion_model", "riffusion", checkpoints.RIFFUSION),
)


@dataclass
class Report:
    notes: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def replica_settings(env_vars: Mapping[str, str]) -> Settings:
    """The Settings a replica builds: the environment Ray was started in (this one), overridden
    by the config's runtime_env env_vars."""
    fields = Settings.model_fields
    # Strings, parsed as the environment's would be; init arguments win over the environment.
    overrides: dict[str, Any] = {
        name.lower(): value for name, value in env_vars.items() if name.lower() in fields
    }
    return Settings(**overrides)


def overridden(config_name: str, env_vars: Mapping[str, str], environ: Mapping[str, str]) -> list[str]:
    """Notes for the variables the config sets differently from this environment: runtime_env
    wins in the replicas, which surprises whoever set the variable."""
    return [
        f"{config_name} sets {key}={value} for the service, overriding {key}={environ[key]} "
        "from the environment"
        for key, value in env_vars.items()
        if key in environ and environ[key] != value
    ]


def check(config_name: str, application: Mapping[str, Any], machine: Machine) -> Report:
    report = Report(notes=overridden(config_name, app_env_vars(application), os.environ))
    try:
        settings = replica_settings(app_env_vars(application))
        routing = RoutingTable.load(settings.stem_routing_file)
    except ValidationError as exc:
        report.problems.append(f"settings the replicas would refuse at start-up: {exc}")
        return report
    except ConfigurationError as exc:
        report.problems.append(exc.message)
        return report
    routed = routing.engines(settings.mode)
    report.notes.append(
        f"mode {settings.mode} (MOCK_GENERATION={str(settings.mock_generation).lower()}): "
        f"stems go to {', '.join(routed)}"
    )
    _check_routes(config_name, application, settings, routed, report)
    problem = shortfall(demands(application, {"Ingress": settings.workers}), machine, config_name)
    if problem:
        report.problems.append(problem)
    listed = deployments(application)
    for model in MODEL_ENGINES:
        if ENGINES[model.engine].deployment_name in listed:
            _check_checkpoint(application, model, report)
    return report


def _check_routes(
    config_name: str, application: Mapping[str, Any], settings: Settings, routed: list[str], report: Report
) -> None:
    listed = set(deployments(application))
    missing = [engine for engine in routed if engine_entry(engine).deployment_name not in listed]
    if missing:
        names = ", ".join(f"{engine} ({engine_entry(engine).deployment_name})" for engine in missing)
        report.problems.append(
            f"{config_name} has no deployment for {names}, which mode {settings.mode} "
            f"(MOCK_GENERATION={str(settings.mock_generation).lower()}) routes stems to "
            f"({settings.stem_routing_file}). Serve would add it with the code's default resources, "
            "which need not fit this machine. Unset SERVE_CONFIG to let the launcher choose, or use "
            "configs/serve.cpu-musicgen.yaml (CPU) or serve_config.yaml (GPUs)."
        )


def engine_env(application: Mapping[str, Any], engine: str = MUSICGEN) -> dict[str, str]:
    return replica_env_vars(application, ENGINES[engine].deployment_name)


def hugging_face_env(application: Mapping[str, Any]) -> dict[str, str]:
    """The HF_* variables the model replicas get from the config (HF_HOME, HF_HUB_CACHE,
    HF_HUB_OFFLINE): the checkpoint lookup here must see the cache the replicas will see."""
    found: dict[str, str] = {}
    for model in MODEL_ENGINES:
        env = engine_env(application, model.engine)
        found.update({key: value for key, value in env.items() if key.startswith("HF_")})
    return found


def _check_checkpoint(application: Mapping[str, Any], model: ModelEngine, report: Report) -> None:
    kind = model.kind
    try:
        settings = replica_settings(engine_env(application, model.engine))
        name = getattr(settings, model.setting)
        folder = checkpoints.resolve_checkpoint(name, kind)
    except ModuleNotFoundError as exc:
        report.problems.append(
            f'the {model.label} engine needs the package {exc.name!r}: pip install "stemforge[{model.extra}]"'
        )
    except ConfigurationError as exc:
        report.problems.append(exc.message)
    except ValidationError as exc:
        report.problems.append(f"settings the {model.label} replica would refuse at start-up: {exc}")
    else:
        report.notes.append(f"{kind.setting}={name}: checkpoint in {Path(folder)}")
