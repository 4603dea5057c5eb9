"""Reading a Serve config file: a plain one (``serve run`` / ``serve deploy``), or a KubeRay
RayService, whose ``spec.serveConfigV2`` embeds one as a string."""

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from stemforge.errors import ConfigurationError


def read_serve_config(path: Path) -> dict[str, Any]:
    try:
        raw = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigurationError(f"cannot read serve config {path}: {exc}") from exc
    if isinstance(raw, Mapping) and raw.get("kind") == "RayService":
        embedded = (raw.get("spec") or {}).get("serveConfigV2")
        if not isinstance(embedded, str):
            raise ConfigurationError(f"{path}: a RayService without a spec.serveConfigV2 string")
        raw = yaml.safe_load(embedded)
    if not isinstance(raw, Mapping) or not isinstance(raw.get("applications"), list):
        raise ConfigurationError(f"{path} is not a Serve config (no 'applications' list)")
    return dict(raw)


def the_application(config: Mapping[str, Any], path: Path | str = "serve config") -> dict[str, Any]:
    """The one application: stemforge's configs declare exactly one."""
    applications = config.get("applications") or []
    if len(applications) != 1 or not isinstance(applications[0], Mapping):
        raise ConfigurationError(f"{path}: expected exactly one application, found {len(applications)}")
    return dict(applications[0])


def deployments(application: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The application's deployments by name, in file order."""
    return {str(d["name"]): dict(d) for d in application.get("deployments") or []}


def app_env_vars(application: Mapping[str, Any]) -> dict[str, str]:
    return {str(k): str(v) for k, v in ((application.get("runtime_env") or {}).get("env_vars") or {}).items()}


def replica_env_vars(application: Mapping[str, Any], deployment: str) -> dict[str, str]:
    """What a replica of ``deployment`` sees on top of the environment Ray was started in: the
    application's env_vars, then the deployment's own (they add to the application's)."""
    options = deployments(application).get(deployment, {}).get("ray_actor_options") or {}
    own = (options.get("runtime_env") or {}).get("env_vars") or {}
    return {**app_env_vars(application), **{str(k): str(v) for k, v in own.items()}}
