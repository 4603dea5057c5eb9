"""The application builder named in serve_config.yaml (``import_path: deployments.app:build_app``).

The graph: Ingress -> one EngineReplica deployment per engine the routing table needs ->
Uploader. Deployment names here are the ones serve_config.yaml configures.
"""

from typing import Any

from ray.serve import Application

from deployments.engines.registry import engine_entry
from deployments.engines.replica import EngineReplica
from deployments.ingress import Ingress
from deployments.routing import RoutingTable
from deployments.settings import Settings
from deployments.uploader import Uploader


def build_graph(settings: Settings, routing: RoutingTable | None = None) -> Application:
    routing = routing or RoutingTable.load(settings.stem_routing_file)
    engines = {
        name: EngineReplica.options(name=engine_entry(name).deployment_name).bind(name, settings)
        for name in routing.engines(settings.mode)
    }
    uploader = Uploader.bind(settings)
    return Ingress.options(num_replicas=settings.workers).bind(engines, uploader, routing, settings)


def build_app(args: dict[str, Any]) -> Application:
    """Builder for ``serve run`` / ``serve deploy``. Settings come from the environment (the
    seed's variables, plus ``runtime_env.env_vars`` in the YAML); ``args`` may override any of
    them by field name, e.g. ``args: {mock_generation: false}``."""
    settings = Settings(**(args or {}))
    return build_graph(settings)
