"""Serve config variants: serve_config.yaml plus a small overlay per machine.

serve_config.yaml is the one declaration of the graph. A variant may change only what differs
between machines, so a change to the graph or to an engine's parameters reaches every variant:

- ``proxy_location``, ``http_options``;
- ``env_vars``: the application's ``runtime_env.env_vars`` (a value, or null to remove one);
- ``omit``: engine deployments the variant does not deploy (``args.engines`` follows);
- ``deployments.<name>``: replicas and resources (``DEPLOYMENT_KEYS``) and, in ``user_config``,
  only the per-variant keys (``PER_VARIANT_USER_CONFIG``); mappings merge key by key, null
  removes a key.

Anything else (application name, route, import path, the deployments, every other ``user_config``
key) comes from serve_config.yaml unchanged; an overlay that tries to change it is refused.
"""

import copy
from collections.abc import Mapping
from typing import Any

from stemforge.errors import ConfigurationError
from stemforge.launch.serveconfig import the_application

VARIANT_KEYS = frozenset({"header", "proxy_location", "http_options", "env_vars", "omit", "deployments"})
# What an overlay may set per deployment, in the order generated files list them.
DEPLOYMENT_KEYS_IN_ORDER = (
    "num_replicas",
    "autoscaling_config",
    "max_ongoing_requests",
    "max_queued_requests",
    "graceful_shutdown_timeout_s",
    "ray_actor_options",
    "user_config",
)
DEPLOYMENT_KEYS = frozenset(DEPLOYMENT_KEYS_IN_ORDER)
# Engine parameters that depend on the machine, not on the service: CPU threads, CPU int8.
PER_VARIANT_USER_CONFIG = frozenset({"num_threads", "cpu_int8"})


def merge(base: Mapping[str, Any], overlay: Mapping[str, Any]) -> dict[str, Any]:
    """``overlay`` over ``base``: mappings merge key by key, None removes a key, anything else
    replaces."""
    merged = dict(base)
    for key, value in overlay.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def derive(
    base: Mapping[str, Any], overlay: Mapping[str, Any], engine_deployments: Mapping[str, str], variant: str
) -> dict[str, Any]:
    """The variant's serve config. ``engine_deployments``: engine name -> its deployment name, for
    the engines in the base's ``args.engines``."""

    def refuse(what: str) -> ConfigurationError:
        return ConfigurationError(
            f"variant {variant}: {what} (see stemforge/launch/variants.py for the rule)"
        )

    unknown = set(overlay) - VARIANT_KEYS
    if unknown:
        raise refuse(f"an overlay may not set {sorted(unknown)}; allowed: {sorted(VARIANT_KEYS)}")
    config = merge(base, {key: overlay[key] for key in ("proxy_location", "http_options") if key in overlay})
    application = the_application(config, "serve_config.yaml")
    if "env_vars" in overlay:
        runtime_env = merge(application.get("runtime_env") or {}, {"env_vars": overlay["env_vars"]})
        application["runtime_env"] = runtime_env

    deployments = [dict(d) for d in application.get("deployments") or []]
    omit = list(overlay.get("omit") or [])
    by_deployment = {deployment: engine for engine, deployment in engine_deployments.items()}
    for name in omit:
        if name not in by_deployment:
            raise refuse(
                f"omit: {name!r} is not an engine deployment of serve_config.yaml {sorted(by_deployment)}"
            )
    deployments = [d for d in deployments if d["name"] not in omit]
    args = dict(application.get("args") or {})
    if "engines" in args:
        args["engines"] = [engine for engine in args["engines"] if engine_deployments.get(engine) not in omit]
        application["args"] = args

    changes = overlay.get("deployments") or {}
    names = [d["name"] for d in deployments]
    for name, change in changes.items():
        if name not in names:
            raise refuse(
                f"deployment {name!r} is not in serve_config.yaml (or is omitted); a variant cannot add one"
            )
        bad = set(change) - DEPLOYMENT_KEYS
        if bad:
            raise refuse(f"{name}: an overlay may not set {sorted(bad)}; allowed: {sorted(DEPLOYMENT_KEYS)}")
        shared = set(change.get("user_config") or {}) - PER_VARIANT_USER_CONFIG
        if shared:
            raise refuse(
                f"{name}.user_config: {sorted(shared)} must be the same everywhere (set them in "
                f"serve_config.yaml); per-variant keys: {sorted(PER_VARIANT_USER_CONFIG)}"
            )
    application["deployments"] = [merge(d, changes.get(d["name"]) or {}) for d in deployments]
    config["applications"] = [application]
    return config
