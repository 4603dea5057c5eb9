"""The application builder named in serve_config.yaml (``import_path: deployments.app:build_app``).

The graph: Ingress -> one EngineReplica deployment per engine the routing table needs ->
Uploader; the StreamRelay beside them carries stems' audio as it is made from the engines to
listeners on any ingress replica. Deployment names here are the ones serve_config.yaml configures.
"""

from collections.abc import Iterable, Mapping
from typing import Any, cast

from ray.serve import Application, Deployment

from deployments.engine_replica import EngineReplica
from deployments.ingress import Ingress
from deployments.stream_relay import StreamRelay
from deployments.uploader import Uploader
from stemforge.engines.registry import engine_entry
from stemforge.errors import ConfigurationError
from stemforge.routing import RoutingTable
from stemforge.settings import Settings

# @serve.deployment turns these classes into Deployments; type checkers see the classes.
_ENGINE = cast(Deployment, EngineReplica)
_UPLOADER = cast(Deployment, Uploader)
_INGRESS = cast(Deployment, Ingress)
_RELAY = cast(Deployment, StreamRelay)


def build_graph(
    settings: Settings,
    routing: RoutingTable | None = None,
    extra_engines: Iterable[str] = (),
    engine_configs: Mapping[str, Mapping[str, Any]] | None = None,
) -> Application:
    """Bind the graph: every engine the routing needs in this mode, plus ``extra_engines``
    (those the serve config configures even when this mode does not route to them: Serve refuses
    a config that names a deployment the application lacks). ``engine_configs`` gives an engine's
    ``user_config`` when no serve config does (programmatic use, tests)."""
    routing = routing or RoutingTable.load(settings.stem_routing_file)
    names = sorted(set(routing.engines(settings.mode)) | set(extra_engines))
    relay = _RELAY.bind()
    engines = {}
    for name in names:
        options: dict[str, Any] = {"name": engine_entry(name).deployment_name}
        if engine_configs and name in engine_configs:
            options["user_config"] = dict(engine_configs[name])
        engines[name] = _ENGINE.options(**options).bind(name, settings, relay)
    uploader = _UPLOADER.bind(settings)
    return _INGRESS.options(num_replicas=settings.workers).bind(engines, uploader, routing, settings, relay)


def build_app(args: dict[str, Any]) -> Application:
    """Builder for ``serve run`` / ``serve deploy``.

    ``args.engines``: the engines whose deployments the config lists. Every other key overrides a
    setting by field name (e.g. ``mock_generation: false``); settings otherwise come from the
    environment: the seed's variables, or ``runtime_env.env_vars`` in the YAML.
    """
    overrides = dict(args or {})
    extra_engines = overrides.pop("engines", None) or []
    if not isinstance(extra_engines, list):
        raise ConfigurationError(f"args.engines must be a list of engine names; got {extra_engines!r}")
    for name in extra_engines:
        engine_entry(name)
    return build_graph(Settings(**overrides), extra_engines=extra_engines)
