"""A Ray cluster of real processes on this machine: a head node and worker nodes, each started by
``ray start --block`` as its own process group, as an operator starts the nodes of a cluster.

Ray's workers put themselves in process groups of their own, and outlive a killed raylet for a
moment, so process groups alone do not find everything a node started. Every node is therefore
started with a marker in its environment (``STEMFORGE_CLUSTER=<token>:<node>``), which its raylet,
agents and workers inherit: ``pids()`` finds them all by reading ``/proc/<pid>/environ``, and
``kill_node`` / ``shutdown`` signal exactly those PIDs. Nothing here runs ``ray stop``, which
stops every Ray on the machine (other tests' included).
"""

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

MARKER = "STEMFORGE_CLUSTER"
BIN = Path(sys.executable).parent
# What every node's processes share: no usage reporting, no token auth (a token in ~/.ray would
# otherwise turn it on for the CLI and not for the nodes, or the other way round).
BASE_ENV = {
    "RAY_USAGE_STATS_ENABLED": "0",
    "RAY_AUTH_MODE": "disabled",
    "OMP_WAIT_POLICY": "PASSIVE",
}
# The GCS declares a node dead after failure_threshold missed health checks, period_ms apart:
# about 3 s here (Ray's default is about 15 s).
SYSTEM_CONFIG = {
    "health_check_initial_delay_ms": 1000,
    "health_check_period_ms": 1000,
    "health_check_timeout_ms": 1000,
    "health_check_failure_threshold": 3,
}
OBJECT_STORE_BYTES = 256 * 1024 * 1024


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without any Ray address or session of its own (an in-process
    Ray of other tests sets some), plus ``BASE_ENV`` and ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_", MARKER))}
    env.pop("PYTHONPATH", None)
    return {**env, **BASE_ENV, **extra}


@dataclass
class Node:
    name: str
    process: subprocess.Popen[bytes]
    log: Path
    killed: bool = False


@dataclass
class RayCluster:
    root: Path  # short: Ray's socket paths under it must stay under 108 characters
    token: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    gcs_port: int = field(default_factory=free_port)
    dashboard_port: int = field(default_factory=free_port)
    nodes: dict[str, Node] = field(default_factory=dict)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.gcs_port}"

    @property
    def dashboard(self) -> str:
        return f"http://127.0.0.1:{self.dashboard_port}"

    @property
    def temp_dir(self) -> Path:
        return self.root / "ray"

    # --- nodes ----------------------------------------------------------------------------------

    def start_head(self, num_cpus: float) -> None:
        """Start the head node (no GPUs, the dashboard that ``serve deploy`` talks to); returns
        once its GCS listens."""
        self._start(
            "head",
            [
                "--head",
                f"--port={self.gcs_port}",
                f"--num-cpus={num_cpus}",
                "--num-gpus=0",
                "--include-dashboard=true",
                "--dashboard-host=127.0.0.1",
                f"--dashboard-port={self.dashboard_port}",
                f"--ray-client-server-port={free_port()}",
                f"--system-config={json.dumps(SYSTEM_CONFIG)}",
            ],
        )
        self.wait_for_gcs()

    def add_worker(
        self, name: str, num_cpus: float, num_gpus: float, env: dict[str, str] | None = None
    ) -> None:
        """Start a worker node and wait until every node started so far is alive."""
        self._start(
            name,
            [f"--address={self.address}", f"--num-cpus={num_cpus}", f"--num-gpus={num_gpus}"],
            env or {},
        )
        self.wait_for_nodes(sum(1 for n in self.nodes.values() if not n.killed), timeout=120)

    def _start(self, name: str, args: list[str], env: dict[str, str] | None = None) -> None:
        self.temp_dir.mkdir(parents=True, exist_ok=True)
        log = self.root / f"ray-start-{name}.log"
        command = [
            str(BIN / "ray"),
            "start",
            "--block",
            *args,
            f"--temp-dir={self.temp_dir}",
            f"--object-store-memory={OBJECT_STORE_BYTES}",
            f"--dashboard-agent-listen-port={free_port()}",
            "--disable-usage-stats",
        ]
        with log.open("wb") as out:
            process = subprocess.Popen(
                command,
                # NUMBA_CACHE_DIR: librosa's numba functions cache compiled code; a node this test
                # SIGKILLs mid-write must not leave a corrupt cache for other processes (a
                # segfault in the next test process that loads it).
                env=clean_env(
                    **(env or {}),
                    NUMBA_CACHE_DIR=str(self.root / "numba-cache"),
                    **{MARKER: f"{self.token}:{name}"},
                ),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # its own process group: a Ctrl-C of pytest does not reach it
            )
        self.nodes[name] = Node(name, process, log)

    def wait_for_gcs(self, timeout: float = 90) -> None:
        """Until the head's GCS accepts connections: worker nodes can join from then on, while the
        head's own raylet and dashboard are still starting."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._check_alive()
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.gcs_port), 1):
                return
            time.sleep(0.2)
        raise TimeoutError(f"the head's GCS did not listen on {self.gcs_port} within {timeout} s")

    def _check_alive(self) -> None:
        for node in self.nodes.values():
            if not node.killed and node.process.poll() is not None:
                raise RuntimeError(f"ray start of {node.name} exited: {node.log.read_text()[-3000:]}")

    def wait_for_nodes(self, alive: int, timeout: float) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            self._check_alive()
            try:
                nodes = self.state("nodes")
                last = [(n["node_name"], n["state"]) for n in nodes]
                if sum(1 for n in nodes if n["state"] == "ALIVE") == alive:
                    return nodes
            except (httpx.HTTPError, KeyError, ValueError) as exc:
                last = exc
            time.sleep(0.5)
        raise TimeoutError(f"{alive} alive Ray nodes not seen within {timeout} s: {last}")

    def kill_node(self, name: str) -> list[int]:
        """SIGKILL everything the node runs (raylet, agents, workers) at once: a machine lost."""
        pids = self.pids(name)
        for pid in pids:
            _signal(pid, signal.SIGKILL)
        self.nodes[name].killed = True
        self.nodes[name].process.wait(timeout=10)
        return pids

    def shutdown(self) -> list[int]:
        """Stop every process of this cluster by PID: SIGTERM, then SIGKILL what is left. Returns
        the PIDs still alive afterwards (none, unless something refused to die)."""
        by_node = self.pids_by_node()
        # Worker nodes first, then the head: a head stopping first leaves workers retrying it.
        for name in sorted(by_node, key=lambda n: n == "head"):
            for pid in by_node[name]:
                _signal(pid, signal.SIGTERM)
        deadline = time.monotonic() + 15
        while self.pids() and time.monotonic() < deadline:
            time.sleep(0.3)
        for pid in self.pids():
            _signal(pid, signal.SIGKILL)
        for node in self.nodes.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                node.process.wait(timeout=10)
        deadline = time.monotonic() + 5
        while self.pids() and time.monotonic() < deadline:
            time.sleep(0.2)
        return self.pids()

    def pids(self, node: str | None = None) -> list[int]:
        """The PIDs of this cluster's processes (or of one node's), found by their marker."""
        by_node = self.pids_by_node()
        if node is not None:
            return by_node.get(node, [])
        return sorted(pid for pids in by_node.values() for pid in pids)

    def pids_by_node(self) -> dict[str, list[int]]:
        prefix = f"{MARKER}={self.token}:".encode()
        found: dict[str, list[int]] = {}
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or int(entry.name) == os.getpid():
                continue
            try:
                environ = (entry / "environ").read_bytes()
                # A zombie is dead already: only its parent's wait() is missing.
                if (entry / "stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
                    continue
            except OSError:
                continue
            for var in environ.split(b"\0"):
                if var.startswith(prefix):
                    found.setdefault(var[len(prefix) :].decode(), []).append(int(entry.name))
                    break
        return found

    # --- talking to it --------------------------------------------------------------------------

    def state(self, resource: str, **params: Any) -> list[dict[str, Any]]:
        """Ray's state API through the dashboard (``ray list ...``): nodes, actors, ..."""
        response = httpx.get(
            f"{self.dashboard}/api/v0/{resource}",
            params={"limit": 1000, "detail": "true", **params},
            timeout=30,
        )
        response.raise_for_status()
        body = response.json()
        if not body.get("result", False):
            raise ValueError(f"state API {resource}: {body.get('msg')}")
        result: list[dict[str, Any]] = body["data"]["result"]["result"]
        return result

    def serve_details(self) -> dict[str, Any]:
        """Serve's REST API (what ``serve status`` reads): applications, deployments, replicas."""
        response = httpx.get(f"{self.dashboard}/api/serve/applications/", timeout=30)
        response.raise_for_status()
        details: dict[str, Any] = response.json()
        return details

    def cli(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """A Ray CLI command (``serve deploy ...``, ``serve status``) as a user runs it."""
        return subprocess.run(
            [str(BIN / args[0]), *args[1:]],
            env=clean_env(),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def driver(self, code: str, timeout: float = 60) -> Any:
        """Run ``code`` in a short-lived Ray driver connected to the cluster; it prints JSON."""
        script = f"import ray, json\nray.init(address={self.address!r}, log_to_driver=False)\n{code}\n"
        result = subprocess.run(
            [sys.executable, "-c", script],
            env=clean_env(),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"driver failed: {result.stderr[-3000:]}")
        return json.loads(result.stdout.strip().splitlines()[-1])


def _signal(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)
