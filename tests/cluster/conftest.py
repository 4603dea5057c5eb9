"""A real two-node Ray cluster for the cluster tests, and the serve config they deploy to it.

Unlike the integration tests (one in-process Ray for the session), nothing here shares this
pytest process's Ray: the nodes are ``ray start`` processes (``tests.cluster.ray_cluster``), the
application goes up by ``serve deploy`` through the head's dashboard, and requests go through
Serve's HTTP proxy. The config is the production ``serve_config.yaml`` with the test's changes
applied to it as data (``cluster_serve_config``): tiny models by path, small CPU shares, short
autoscaling delays, local storage, short job leases.
"""

import copy
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from stemforge.launch.serveconfig import deployments, the_application
from tests.cluster.ray_cluster import RayCluster, clean_env, free_port
from tests.support.callback_receiver import CallbackReceiver, start_callback_receiver

REPO_ROOT = Path(__file__).resolve().parents[2]
APP = "stemforge"
SLOW = "tests.support.engines:SlowEngine"
# Engines this test deploys: the production ones that fit a CPU box in seconds, plus a slow CPU
# engine whose jobs last as long as the audio they make (load that is easy to sustain on 2 cores
# and a job that is surely running when a node is killed). AudioLDM 2 and Riffusion are left out.
ENGINES = ["procedural", "musicgen", "stable_audio", SLOW]
DROPPED = ("AudioLDM2Engine", "RiffusionEngine")
# Logical CPUs: the head hosts the CPU deployments, the GPU node the model engines (and any
# replica Serve's spread scheduling sends there).
HEAD_CPUS = 6
GPU_NODE_CPUS = 3
GPU_NODE_GPUS = 2
# Short job leases: a job whose ingress replica died is resumed within seconds.
JOB_ENV = {
    "JOB_HEARTBEAT_SECONDS": "1",
    "JOB_LEASE_SECONDS": "6",
    "JANITOR_INTERVAL_SECONDS": "1",
    "CALLBACK_RETRY_SCHEDULE": "0,1,2,4,8",
    "QUALITY_ANALYSIS": "false",  # CPU the uploaders of a 2-core box can spare
}
SHORT_AUTOSCALING = {
    "upscale_delay_s": 2.0,
    "downscale_delay_s": 4.0,
    "metrics_interval_s": 1.0,
    "look_back_period_s": 2.0,
}
DEPLOY_TIMEOUT_S = 240


def cluster_serve_config(
    production: dict[str, Any], *, http_port: int, models: dict[str, Path], storage: Path
) -> dict[str, Any]:
    """serve_config.yaml, changed by configuration only, for this two-node test cluster."""
    config = copy.deepcopy(production)
    config["http_options"] = {"host": "127.0.0.1", "port": http_port}
    app = the_application(config)
    env = app.setdefault("runtime_env", {}).setdefault("env_vars", {})
    env.update(
        {
            "MUSICGEN_MODEL": str(models["musicgen"]),
            "STABLE_AUDIO_MODEL": str(models["stable_audio"]),
            "LOCAL_STORAGE_DIR": str(storage),
            "PUBLIC_BASE_URL": f"http://127.0.0.1:{http_port}",
            "CALLBACK_ALLOWED_HOSTS": "127.0.0.1",
            # Replicas import the repository (the test engines under tests/) on every node.
            "PYTHONPATH": str(REPO_ROOT),
            **JOB_ENV,
        }
    )
    app["args"] = {**(app.get("args") or {}), "engines": list(ENGINES)}
    by_name = deployments(app)
    for name in DROPPED:
        by_name.pop(name, None)
    # The CPU shares the production config asks for (0.5-2 per replica) exceed a 2-core box.
    cpus = {"Ingress": 0.25, "Uploader": 0.25, "ProceduralEngine": 0.25}
    for name, deployment in by_name.items():
        options = deployment.setdefault("ray_actor_options", {})
        options["num_cpus"] = cpus.get(name, 0.5)
        autoscaling = deployment.get("autoscaling_config")
        if autoscaling is not None:
            autoscaling.update(SHORT_AUTOSCALING)
    by_name["Ingress"]["autoscaling_config"].update({"min_replicas": 2, "max_replicas": 2})
    # Two MusicGen replicas at 0.5 GPU: one logical GPU between them; Stable Audio's 0.5 on the other.
    by_name["MusicGenEngine"]["autoscaling_config"].update({"min_replicas": 2, "max_replicas": 2})
    by_name["StableAudioEngine"]["autoscaling_config"].update({"min_replicas": 1, "max_replicas": 1})
    for name in ("MusicGenEngine", "StableAudioEngine"):
        # A per-machine key, as configs/variants.yaml sets it: one torch thread per replica.
        by_name[name]["user_config"]["num_threads"] = 1
    # Ingress access logs on: they show which ingress replica answered each request.
    by_name["Ingress"].setdefault("logging_config", {})["enable_access_log"] = True
    by_name["SlowEngine"] = {
        "name": "SlowEngine",
        # One job at a time per replica: the rest wait in the callers' queues, which the
        # autoscaler counts, and go to new replicas as they come up.
        "max_ongoing_requests": 1,
        "autoscaling_config": {
            "min_replicas": 1,
            "max_replicas": 4,
            "target_ongoing_requests": 1,
            **SHORT_AUTOSCALING,
        },
        "ray_actor_options": {"num_cpus": 0.25},
    }
    app["deployments"] = list(by_name.values())
    config["applications"] = [app]
    return config


def _build_models(root: Path) -> subprocess.Popen[bytes]:
    """Tiny random MusicGen and Stable Audio checkpoints, built in a child process while the
    nodes start."""
    code = (
        "import sys; from pathlib import Path\n"
        "from tests.support.tiny_musicgen import save_tiny_musicgen\n"
        "from tests.support.tiny_stable_audio import build_tiny_stable_audio\n"
        "root = Path(sys.argv[1])\n"
        "save_tiny_musicgen(root / 'musicgen')\n"
        "build_tiny_stable_audio(root / 'stable_audio')\n"
    )
    return subprocess.Popen(
        [sys.executable, "-c", code, str(root)],
        cwd=REPO_ROOT,
        env=clean_env(PYTHONPATH=str(REPO_ROOT), HF_HUB_OFFLINE="1"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


class Deployed:
    """The cluster with the application deployed: its proxies' URLs, the config it runs (and its
    file, for ``serve deploy``), and the figures the tests measured (printed at the end)."""

    def __init__(self, cluster: RayCluster, config: dict[str, Any], config_path: Path, http_port: int):
        self.cluster = cluster
        self.config = config
        self.config_path = config_path
        self.base_url = f"http://127.0.0.1:{http_port}"  # the head node's proxy
        self.worker_proxy_url = ""  # the GPU node's proxy
        self.client = httpx.Client(timeout=30)
        self.report: list[str] = []

    def note(self, line: str) -> None:
        self.report.append(line)
        print(line, flush=True)

    def add_gpu_node(self, name: str) -> None:
        """A GPU node joins, its proxy on a port of its own: two proxies on one machine would
        otherwise share the HTTP port (SO_REUSEPORT) and the kernel would pick between them."""
        port = free_port()
        self.cluster.add_worker(
            name,
            num_cpus=GPU_NODE_CPUS,
            num_gpus=GPU_NODE_GPUS,
            env={"RAY_SERVE_WORKER_PROXY_HTTP_PORT": str(port)},
        )
        self.worker_proxy_url = f"http://127.0.0.1:{port}"

    def deploy(self, config: dict[str, Any] | None = None) -> subprocess.CompletedProcess[str]:
        if config is not None:
            self.config = config
            self.config_path.write_text(yaml.safe_dump(config, sort_keys=False))
        result = self.cluster.cli("serve", "deploy", str(self.config_path), "-a", self.cluster.dashboard)
        assert result.returncode == 0, f"serve deploy failed: {result.stdout}\n{result.stderr}"
        return result

    def app_status(self) -> dict[str, Any]:
        details = self.cluster.serve_details()
        app: dict[str, Any] = (details.get("applications") or {}).get(APP) or {}
        return app

    def wait_running(self, timeout: float = DEPLOY_TIMEOUT_S) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        app: dict[str, Any] = {}
        while time.monotonic() < deadline:
            app = self.app_status()
            if app.get("status") == "RUNNING":
                return app
            if app.get("status") == "DEPLOY_FAILED":
                raise RuntimeError(f"deploy failed: {app.get('message')}")
            time.sleep(1)
        states = {
            name: (d.get("status"), d.get("message")) for name, d in (app.get("deployments") or {}).items()
        }
        raise TimeoutError(f"{APP} not RUNNING after {timeout} s: {app.get('status')} {states}")


@pytest.fixture(scope="module")
def callbacks() -> Iterator[CallbackReceiver]:
    yield from start_callback_receiver()


@pytest.fixture(scope="module")
def cluster_service(request: pytest.FixtureRequest) -> Iterator[Deployed]:
    started = time.monotonic()
    failures = request.session.testsfailed
    root = Path(tempfile.mkdtemp(prefix="sf-cluster-", dir="/tmp"))
    models = _build_models(root / "models")
    cluster = RayCluster(root)
    http_port = free_port()
    try:
        cluster.start_head(num_cpus=HEAD_CPUS)
        service = Deployed(cluster, {}, root / "serve_config.cluster.yaml", http_port)
        service.add_gpu_node("gpu")
        _, errors = models.communicate(timeout=180)
        assert models.returncode == 0, f"building the tiny models failed: {errors.decode()[-3000:]}"
        production = yaml.safe_load((REPO_ROOT / "serve_config.yaml").read_text())
        config = cluster_serve_config(
            production,
            http_port=http_port,
            models={
                "musicgen": root / "models" / "musicgen",
                "stable_audio": root / "models" / "stable_audio",
            },
            storage=root / "blobs",
        )
        service.note(f"cluster up (head + GPU node) in {time.monotonic() - started:.1f} s")
        deploy_started = time.monotonic()
        service.deploy(config)
        service.wait_running()
        service.note(f"serve deploy to RUNNING in {time.monotonic() - deploy_started:.1f} s")
        yield service
        service.client.close()
        print("\n".join(["", "== cluster test figures ==", *service.report]), flush=True)
    finally:
        if models.poll() is None:
            models.kill()
        left = cluster.shutdown()
        assert not left, f"cluster processes still alive after shutdown: {left}"
        if request.session.testsfailed == failures:
            shutil.rmtree(root, ignore_errors=True)
        else:
            print(f"cluster logs kept in {cluster.temp_dir}/session_latest/logs", flush=True)
