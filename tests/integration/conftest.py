"""A real local Ray with Serve, shared by the integration tests of a session.

``start_service(settings, name)`` deploys the whole graph (build_graph) as its own Serve
application under ``/{name}``; ``service`` is the default one: procedural engine, local-disk
storage in a temporary folder. ``callback_receiver`` is a real HTTP server on loopback.
"""

import os
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import ray
from ray import serve

from deployments.app import build_graph
from stemforge.routing import RoutingTable
from stemforge.settings import Settings
from tests.support.callback_receiver import CallbackReceiver, start_callback_receiver

REPO_ROOT = Path(__file__).resolve().parents[2]
# Logical CPUs: several applications share this 2-core box in tests, each asking ~1.4 CPUs.
RAY_LOGICAL_CPUS = 16
APP_START_TIMEOUT_S = 120


@dataclass
class Service:
    name: str
    base_url: str  # e.g. http://127.0.0.1:PORT/name
    settings: Settings
    client: httpx.Client

    def generate(self, body: dict) -> httpx.Response:
        return self.client.post(f"{self.base_url}/generate", json=body)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def serve_port() -> Iterator[int]:
    port = _free_port()
    ray.init(
        num_cpus=RAY_LOGICAL_CPUS,
        num_gpus=1,  # a logical GPU: GPU-shaped configs schedule; code still falls back to CPU
        include_dashboard=False,
        object_store_memory=256 * 1024 * 1024,
        log_to_driver=bool(os.environ.get("STEMFORGE_TEST_RAY_LOGS")),
        # Replicas import test engines (tests.support.engines) by path, like a user's own engine.
        runtime_env={"env_vars": {"PYTHONPATH": str(REPO_ROOT), "HF_HUB_OFFLINE": "1"}},
    )
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    yield port
    serve.shutdown()
    ray.shutdown()


@pytest.fixture(scope="session")
def start_service(
    serve_port: int, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[..., Service]]:
    started: list[Service] = []

    def start(
        settings: Settings | None = None,
        name: str = "stemforge",
        routing: RoutingTable | None = None,
        engine_configs: dict | None = None,
    ) -> Service:
        base_url = f"http://127.0.0.1:{serve_port}/{name}"
        if settings is None:
            settings = Settings(local_storage_dir=tmp_path_factory.mktemp(f"blobs-{name}"))
        # Tests run their callback receivers on loopback, which the SSRF guard refuses by default.
        settings = settings.model_copy(
            update={
                "public_base_url": base_url,
                "callback_allowed_hosts": settings.callback_allowed_hosts or ["127.0.0.1"],
            }
        )
        serve.run(
            build_graph(settings, routing, engine_configs=engine_configs),
            name=name,
            route_prefix=f"/{name}",
            blocking=False,
        )
        client = httpx.Client(timeout=30)
        service = Service(name=name, base_url=base_url, settings=settings, client=client)
        _wait_until_running(name, client, base_url)
        started.append(service)
        return service

    yield start
    for service in started:
        service.client.close()


def _wait_until_running(name: str, client: httpx.Client, base_url: str) -> None:
    # /health can answer while replicas are still starting: wait for the application to be RUNNING.
    deadline = time.monotonic() + APP_START_TIMEOUT_S
    while time.monotonic() < deadline:
        status = serve.status().applications.get(name)
        if status is not None and status.status == "RUNNING" and client.get(f"{base_url}/health").is_success:
            return
        if status is not None and status.status == "DEPLOY_FAILED":
            raise RuntimeError(f"application {name} failed to deploy: {status.message}")
        time.sleep(0.5)
    detail = serve.status().applications.get(name)
    raise TimeoutError(f"application {name} not running after {APP_START_TIMEOUT_S} s: {detail}")


@pytest.fixture(scope="session")
def service(start_service: Callable[..., Service]) -> Service:
    return start_service()


SESSION_APPLICATIONS = frozenset({"stemforge"})  # the ``service`` fixture's, shared by every module


def _applications() -> set[str]:
    return set(serve.status().applications) if ray.is_initialized() else set()


def _delete_applications_since(before: set[str]) -> None:
    for name in _applications() - before - SESSION_APPLICATIONS:
        serve.delete(name)


@pytest.fixture(autouse=True)
def _a_test_s_own_applications_end_with_it(request: pytest.FixtureRequest) -> Iterator[None]:
    """Applications a test starts itself (not its module's fixtures, set up before this) are
    deleted after it: each holds logical CPUs and a few hundred MB per replica, and a box full of
    idle ones cannot schedule the next test's replicas."""
    if "start_service" not in request.fixturenames:
        yield
        return
    before = _applications()
    yield
    _delete_applications_since(before)


@pytest.fixture(scope="module", autouse=True)
def _a_module_s_applications_end_with_it(request: pytest.FixtureRequest) -> Iterator[None]:
    """The same for the applications of a module's fixtures, at the end of the module."""
    before = _applications()
    yield
    _delete_applications_since(before)


@pytest.fixture()
def callback_receiver() -> Iterator[CallbackReceiver]:
    yield from start_callback_receiver()


@pytest.fixture()
def blob_root(service: Service) -> Path:
    return Path(service.settings.local_storage_dir) / service.settings.blob_container_name
