"""The service end to end on a real local Ray: 202 latency under concurrent clients, and request
to callback for the seed example and for four 30 s stems, each against a baseline measured in the
same run (GET /health for the 202; the engine alone, in process, for the callback).

The 202 path against the seed's shape (``--part repeat`` runs only this): a bare FastAPI app under
uvicorn (``bench/bare_accept.py``, a subprocess: the same ``GenerateRequest`` validation and one
job-record write to local disk) side by side with ours, whose clients POST repeats of one
already-accepted id (so nothing is generated while it is measured), through each of Serve's HTTP
proxies in turn: its Python proxy (the default) and HAProxy (``RAY_SERVE_ENABLE_HA_PROXY=1``,
straight to the ingress replica's own HTTP server). Rounds alternate between the bare app and ours,
so both see the same noise; each figure is the median over rounds, with its range, and the CPU
each process spent per request says where the time goes.
"""

import argparse
import concurrent.futures
import contextlib
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import ray
from ray import serve
from ray.serve import Application

import deployments.app as graph
from deployments.app import build_graph
from stemforge.engines.procedural import ProceduralEngine
from stemforge.music.spec import MusicSpec
from stemforge.settings import Settings
from tests.support.callback_receiver import CallbackReceiver, start_callback_receiver

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
# The Ingress deployment's settings that serve_config.yaml's Ingress entry carries, applied the
# way that entry applies them (to the Ingress only: its logging_config, and env vars in its
# ray_actor_options.runtime_env), so the bench measures what is deployed. Override with
# --ingress-logging / --ingress-env (e.g. Serve's defaults: enable_access_log=true and
# RAY_SERVE_RUN_USER_CODE_IN_SEPARATE_THREAD=1).
INGRESS_LOGGING_CONFIG: dict[str, Any] = {"enable_access_log": False}
INGRESS_ENV_VARS: dict[str, str] = {"RAY_SERVE_RUN_USER_CODE_IN_SEPARATE_THREAD": "0"}
PROXIES = ("python", "haproxy")
# The load's client threads share one GIL: at Python's default switch interval (5 ms) a ready
# thread waits up to clients x 5 ms for it, which shows as the fast server's p99 at 50 clients.
CLIENT_SWITCH_INTERVAL_S = 0.001


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:7.1f} ms"


def request_to_callback(
    base: str, receiver: CallbackReceiver, stems: list[str], seconds: float, runs: int
) -> list[float]:
    took = []
    for _ in range(runs):
        gen_id = f"bench-{uuid.uuid4().hex[:12]}"
        body = {
            "generation_request_id": gen_id,
            "audio_file_id": "bench",
            "target_stems": stems,
            "parameters": {
                "target_bpm": 120.0,
                "duration_seconds": seconds,
                "style": "rock",
                "random_seed": 1,
            },
            "callback_url": receiver.url,
        }
        start = time.perf_counter()
        httpx.post(f"{base}/generate", json=body, timeout=60).raise_for_status()
        if receiver.wait_for(gen_id, timeout=120)["status"] != "completed":
            raise RuntimeError(f"{gen_id} did not complete")
        took.append(time.perf_counter() - start)
    return took


def accept_latency(
    base: str, clients: int, per_client: int, path: str, accepted: list[str] | None = None
) -> dict[int, list[float]]:
    """Latency of each answer, by status code (202 accepted, 503 over MAX_ACTIVE_JOBS); the ids
    of accepted jobs go in ``accepted``."""

    def one_client(index: int) -> list[tuple[int, float]]:
        latencies = []
        with httpx.Client(timeout=60) as client:
            for n in range(per_client):
                start = time.perf_counter()
                if path == "/health":
                    response = client.get(f"{base}/health")
                else:
                    gen_id = f"load-{index}-{n}-{uuid.uuid4().hex[:6]}"
                    response = client.post(
                        f"{base}/generate",
                        json={
                            "generation_request_id": gen_id,
                            "audio_file_id": "bench",
                            "target_stems": ["drums"],
                            "parameters": {"duration_seconds": 0.5, "random_seed": 1},
                        },
                    )
                    if response.status_code == 202 and accepted is not None:
                        accepted.append(gen_id)  # list.append: safe across threads
                latencies.append((response.status_code, time.perf_counter() - start))
                if response.status_code not in (200, 202, 503):
                    raise RuntimeError(f"{path}: HTTP {response.status_code} {response.text[:200]}")
        return latencies

    by_status: dict[int, list[float]] = {}
    with concurrent.futures.ThreadPoolExecutor(max_workers=clients) as pool:
        for chunk in pool.map(one_client, range(clients)):
            for status, latency in chunk:
                by_status.setdefault(status, []).append(latency)
    return by_status


def wait_until_finished(base: str, ids: list[str], timeout: float = 600.0) -> None:
    """Until every job in ``ids`` has finished (so later measurements run with no generation)."""
    deadline = time.monotonic() + timeout
    with httpx.Client(timeout=30) as client:
        for gen_id in ids:
            while client.get(f"{base}/generate/{gen_id}").json().get("status") == "processing":
                if time.monotonic() > deadline:
                    raise TimeoutError(f"jobs still processing after {timeout:.0f} s")
                time.sleep(0.2)


# --- the 202 path against the seed's shape ---------------------------------------------------------


def process_cpu() -> dict[str, float]:
    """CPU seconds so far of this process ("client": the load's threads) and of its descendants
    (the local Ray, the bare app) by role; empty where /proc is not there."""
    tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    parents: dict[int, int] = {}
    cpu: dict[int, float] = {}
    names: dict[int, str] = {}
    for entry in os.listdir("/proc") if os.path.isdir("/proc") else []:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                name, fields = stat.read().rsplit(")", 1)
            with open(f"/proc/{entry}/cmdline", "rb") as cmdline:
                command = cmdline.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        pid, values = int(entry), fields.split()
        parents[pid] = int(values[1])
        cpu[pid] = (int(values[11]) + int(values[12])) / tick
        names[pid] = command or name
    ours = {os.getpid()}
    grew = True
    while grew:
        grew = False
        for pid, parent in parents.items():
            if parent in ours and pid not in ours:
                ours.add(pid)
                grew = True
    roles: dict[str, float] = {}
    for pid in ours:
        command = names[pid]
        if pid == os.getpid():
            role = "client"
        elif "bench.bare_accept" in command:
            role = "bare app"
        elif "ServeReplica:bench:Ingress" in command:
            role = "ingress replica"
        elif "ProxyActor" in command or "haproxy" in command.lower():
            role = "proxy"
        else:
            role = "rest"
        roles[role] = roles.get(role, 0.0) + cpu[pid]
    return roles


@dataclass
class Load:
    """One bounded load: ``clients`` keep-alive clients, each sending the same POST in a loop."""

    latencies: list[float]
    seconds: float  # wall time, first request to last answer
    statuses: set[int]
    cpu: dict[str, float]  # CPU seconds per role during the load (see ``process_cpu``)

    @property
    def p50(self) -> float:
        return statistics.median(self.latencies)

    @property
    def p99(self) -> float:
        return pct(self.latencies, 99)

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.seconds


def post_load(url: str, body: dict[str, Any], clients: int, per_client: int) -> Load:
    go = threading.Barrier(clients + 1)

    def one_client(_: int) -> list[tuple[int, float]]:
        answers = []
        with httpx.Client(timeout=60) as client:
            client.post(url, json=body)  # opens the keep-alive connection
            go.wait()
            for _ in range(per_client):
                start = time.perf_counter()
                response = client.post(url, json=body)
                answers.append((response.status_code, time.perf_counter() - start))
        return answers

    with concurrent.futures.ThreadPoolExecutor(max_workers=clients) as pool:
        futures = [pool.submit(one_client, i) for i in range(clients)]
        go.wait()
        cpu_before = process_cpu()
        start = time.perf_counter()
        results = [future.result() for future in futures]
        seconds = time.perf_counter() - start
        cpu_after = process_cpu()
    answers = [answer for chunk in results for answer in chunk]
    statuses = {status for status, _ in answers}
    if not statuses <= {200, 202}:
        raise RuntimeError(f"{url}: answers {sorted(statuses)}")
    cpu = {role: used - cpu_before.get(role, 0.0) for role, used in cpu_after.items()}
    return Load([latency for _, latency in answers], seconds, statuses, cpu)


def start_bare_app(port: int, storage_dir: str) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "uvicorn", "bench.bare_accept:app", "--host", HOST, "--port", str(port)]
    process = subprocess.Popen(
        command,
        cwd=ROOT,
        env={**os.environ, "BARE_STORAGE_DIR": storage_dir},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the bare app exited with {process.returncode}")
        try:
            if httpx.get(f"http://{HOST}:{port}/health", timeout=2).is_success:
                return process
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    process.kill()
    raise TimeoutError("the bare app did not start within 60 s")


def haproxy_env(folder: str) -> dict[str, str]:
    """Serve's HAProxy ingress in place of its Python proxy: HAProxy forwards HTTP straight to
    each ingress replica's own server (direct ingress). Its files and side ports default to fixed
    places (/tmp/haproxy-serve, 8404, 9101): private ones here, so runs on one machine never meet."""
    return {
        "RAY_SERVE_ENABLE_HA_PROXY": "1",
        "RAY_SERVE_HAPROXY_CONFIG_FILE_LOC": f"{folder}/haproxy.cfg",
        "RAY_SERVE_HAPROXY_SOCKET_PATH": f"{folder}/admin.sock",
        "RAY_SERVE_HAPROXY_SERVER_STATE_BASE": folder,
        "RAY_SERVE_HAPROXY_SERVER_STATE_FILE": f"{folder}/server-state",
        "RAY_SERVE_HAPROXY_METRICS_SOCKET_PATH": f"{folder}/metrics.sock",
        "RAY_SERVE_HAPROXY_STATS_PORT": str(free_port()),
        "RAY_SERVE_HAPROXY_METRICS_PORT": str(free_port()),
    }


def bench_graph(
    settings: Settings, ingress_env: dict[str, str], ingress_logging: dict[str, Any]
) -> Application:
    """``build_graph``, its Ingress deployment with the settings of serve_config.yaml's Ingress
    entry (``logging_config``; env vars in ``ray_actor_options.runtime_env``)."""
    ingress = graph._INGRESS
    options: dict[str, Any] = {}
    if ingress_logging:
        options["logging_config"] = ingress_logging
    if ingress_env:
        options["ray_actor_options"] = {
            **(ingress.ray_actor_options or {}),
            "runtime_env": {"env_vars": ingress_env},
        }
    graph._INGRESS = ingress.options(**options) if options else ingress
    try:
        return build_graph(settings)
    finally:
        graph._INGRESS = ingress


@contextlib.contextmanager
def local_service(
    proxy: str, ray_env: dict[str, str], ingress_env: dict[str, str], ingress_logging: dict[str, Any]
) -> Iterator[tuple[str, Settings]]:
    """A local Ray with the whole graph behind ``proxy``; yields its base URL and settings.
    ``ray_env`` goes in the environment the Ray processes start with (as on ``ray start``)."""
    env = dict(ray_env)
    # Short: Serve adds a 56-character folder per node, and socket paths end at 97 characters.
    haproxy_files = tempfile.mkdtemp(prefix="sfhap-", dir="/tmp")
    if proxy == "haproxy":
        env = {**haproxy_env(haproxy_files), **env}
    saved = {name: os.environ.get(name) for name in env}
    os.environ.update(env)
    port = free_port()
    base = f"http://{HOST}:{port}"
    try:
        ray.init(
            num_cpus=4, include_dashboard=False, log_to_driver=False, object_store_memory=512 * 1024 * 1024
        )
        serve.start(http_options={"host": HOST, "port": port})
        settings = Settings(
            local_storage_dir=Path(tempfile.mkdtemp(prefix="stemforge-bench-")),
            public_base_url=base,
            callback_allowed_hosts=[HOST],
        )
        serve.run(bench_graph(settings, ingress_env, ingress_logging), name="bench", route_prefix="/")
        yield base, settings
    finally:
        serve.shutdown()
        ray.shutdown()
        shutil.rmtree(haproxy_files, ignore_errors=True)
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def repeat_comparison(
    base: str,
    bare_url: str,
    receiver: CallbackReceiver,
    clients_list: list[int],
    per_client: int,
    rounds: int,
) -> dict[tuple[str, int], list[Load]]:
    """The bare app and ours, alternating, ``rounds`` times at each client count."""
    gen_id = f"repeat-{uuid.uuid4().hex[:12]}"
    body = {
        "generation_request_id": gen_id,
        "audio_file_id": "bench",
        "target_stems": ["guitar", "bass"],
        "parameters": {"target_bpm": 120.0, "duration_seconds": 5.0, "style": "rock", "random_seed": 1},
        "callback_url": receiver.url,
    }
    accepted = httpx.post(f"{base}/generate", json=body, timeout=60)
    if accepted.status_code != 202:
        raise RuntimeError(f"the first request was not accepted: {accepted.status_code} {accepted.text}")
    receiver.wait_for(gen_id, timeout=120)  # no generation while measured
    urls = {"bare": bare_url, "ours": f"{base}/generate"}
    loads: dict[tuple[str, int], list[Load]] = {}
    for url in urls.values():  # warm both
        post_load(url, body, max(clients_list), 5)
    for _ in range(rounds):
        for clients in clients_list:
            for name, url in urls.items():
                loads.setdefault((name, clients), []).append(post_load(url, body, clients, per_client))
    return loads


def print_comparison(
    by_proxy: dict[str, dict[tuple[str, int], list[Load]]], clients_list: list[int], per_client: int
) -> None:
    def span(values: list[float], scale: float = 1.0, width: int = 6) -> str:
        mid, low, high = statistics.median(values) * scale, min(values) * scale, max(values) * scale
        return f"{mid:{width}.1f} ({low:.1f}-{high:.1f})"

    def ratio(values: list[float]) -> str:
        return f"x{statistics.median(values):.2f} ({min(values):.2f}-{max(values):.2f})"

    def answers(runs: list[Load]) -> str:
        return ",".join(str(status) for status in sorted({s for run in runs for s in run.statuses}))

    rounds = min(len(runs) for loads in by_proxy.values() for runs in loads.values())
    print(
        f"202 path: POST /generate, {per_client} requests per keep-alive client, median of {rounds} rounds"
        " (range)\n  bare: FastAPI + uvicorn, validation and one record write (measured beside each of ours);"
        "\n  ours: the Ray Serve graph through Serve's Python proxy or HAProxy, repeats of an accepted id"
    )
    print(f"  {'clients':>7}  {'server':>14}  {'p50 ms':>18}  {'p99 ms':>18}  {'req/s':>20}  answers")
    rows: list[tuple[int, str, list[Load]]] = []
    for clients in clients_list:
        for proxy, loads in by_proxy.items():
            rows += [(clients, f"bare ({proxy})", loads[("bare", clients)])]
            rows += [(clients, f"ours {proxy}", loads[("ours", clients)])]
    for clients, name, runs in rows:
        print(
            f"  {clients:7d}  {name:>14}  {span([r.p50 for r in runs], 1000):>18}"
            f"  {span([r.p99 for r in runs], 1000):>18}  {span([r.rate for r in runs], 1, 7):>20}"
            f"  {answers(runs)}"
        )
    print("  ours/bare, round by round:")
    for clients in clients_list:
        for proxy, loads in by_proxy.items():
            pairs = list(zip(loads[("ours", clients)], loads[("bare", clients)], strict=True))
            print(
                f"  {clients:7d}  {proxy:>14}  p50 {ratio([o.p50 / b.p50 for o, b in pairs]):>18}"
                f"  p99 {ratio([o.p99 / b.p99 for o, b in pairs]):>18}"
                f"  req/s {ratio([o.rate / b.rate for o, b in pairs]):>18}"
            )
    print("  CPU per request (ms, median of rounds), by process:")
    for clients, name, runs in rows:
        roles = sorted({role for run in runs for role in run.cpu})
        shares = {
            role: statistics.median(1000 * run.cpu.get(role, 0.0) / len(run.latencies) for run in runs)
            for role in roles
        }
        text = ", ".join(f"{role} {value:.2f}" for role, value in shares.items() if value >= 0.01)
        print(f"  {clients:7d}  {name:>14}  {text}")


def env_pairs(pairs: list[str]) -> dict[str, str]:
    env = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep:
            raise SystemExit(f"expected NAME=VALUE, got {pair!r}")
        env[name] = value
    return env


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--part", choices=["all", "repeat"], default="all", help="repeat: the 202 comparison only"
    )
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--per-client", type=int, default=10)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--repeat-clients", default="10,50", help="client counts of the 202 comparison")
    parser.add_argument("--repeat-requests", type=int, default=40, help="requests per client, per round")
    parser.add_argument("--repeat-rounds", type=int, default=3)
    parser.add_argument(
        "--proxies", default=",".join(PROXIES), help=f"Serve HTTP proxies ours is measured through: {PROXIES}"
    )
    parser.add_argument(
        "--ray-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="in the environment the Ray processes start with (controller, proxy, replicas)",
    )
    parser.add_argument(
        "--ingress-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="env var of the Ingress replicas, over INGRESS_ENV_VARS (empty VALUE: Serve's default)",
    )
    parser.add_argument(
        "--ingress-logging",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="key of the Ingress deployment's logging_config, over INGRESS_LOGGING_CONFIG",
    )
    args = parser.parse_args()
    proxies = [name for name in args.proxies.split(",") if name]
    if not set(proxies) <= set(PROXIES) or not proxies:
        raise SystemExit(f"--proxies: choose from {PROXIES}")
    ray_env = env_pairs(args.ray_env)
    ingress_env = {k: v for k, v in {**INGRESS_ENV_VARS, **env_pairs(args.ingress_env)}.items() if v}
    ingress_logging: dict[str, Any] = dict(INGRESS_LOGGING_CONFIG)
    for key, value in env_pairs(args.ingress_logging).items():
        ingress_logging[key] = {"true": True, "false": False}.get(value.lower(), value)
    clients_list = [int(n) for n in args.repeat_clients.split(",")]
    sys.setswitchinterval(CLIENT_SWITCH_INTERVAL_S)

    engine_only = 0.0
    if args.part == "all":
        engine = ProceduralEngine(Settings())
        spec = MusicSpec(bpm=120, duration_seconds=30, seed=1, style="rock")
        engine.generate(spec, ["drums"])  # warm
        start = time.perf_counter()
        engine.generate(spec, ["guitar", "bass", "drums", "piano"])
        engine_only = time.perf_counter() - start

    bare_port = free_port()
    bare_files = tempfile.mkdtemp(prefix="stemforge-bare-")
    bare = start_bare_app(bare_port, bare_files)
    bare_url = f"http://{HOST}:{bare_port}/generate"
    receivers = contextlib.contextmanager(start_callback_receiver)
    by_proxy: dict[str, dict[tuple[str, int], list[Load]]] = {}
    try:
        with receivers() as receiver:
            for index, proxy in enumerate(proxies):
                with local_service(proxy, ray_env, ingress_env, ingress_logging) as (base, settings):
                    if args.part == "all" and index == 0:
                        seed_example = request_to_callback(
                            base, receiver, ["guitar", "bass"], 5.0, args.runs * 2
                        )
                        four_stems = request_to_callback(
                            base, receiver, ["guitar", "bass", "drums", "piano"], 30.0, args.runs
                        )
                        health = accept_latency(base, args.clients, args.per_client, "/health")
                        accepted_ids: list[str] = []
                        accepted = accept_latency(
                            base, args.clients, args.per_client, "/generate", accepted_ids
                        )
                        wait_until_finished(base, accepted_ids)
                        first_proxy, limit = proxy, settings.max_active_jobs
                    by_proxy[proxy] = repeat_comparison(
                        base, bare_url, receiver, clients_list, args.repeat_requests, args.repeat_rounds
                    )
    finally:
        bare.terminate()
        bare.wait(10)
        shutil.rmtree(bare_files, ignore_errors=True)

    print(f"settings: Ingress env {ingress_env}, Ingress logging_config {ingress_logging}, Ray env {ray_env}")
    if args.part == "all":
        print(f"request -> callback (local storage, procedural engine; Serve's {first_proxy} proxy)")
        seed_p50, seed_max = ms(statistics.median(seed_example)), ms(max(seed_example))
        print(f"  seed example (2 stems x 5 s):  p50 {seed_p50}   max {seed_max}")
        print(
            f"  4 stems x 30 s:                p50 {ms(statistics.median(four_stems))}"
            f"   max {ms(max(four_stems))}"
            f"   (engine alone, in process: {ms(engine_only)}; service overhead x"
            f"{statistics.median(four_stems) / engine_only:.2f})"
        )
        print(f"{args.clients} concurrent clients x {args.per_client} requests (MAX_ACTIVE_JOBS={limit})")
        for status, latencies in sorted(accepted.items()):
            print(
                f"  POST /generate -> {status}: {len(latencies):4d} answers"
                f"   p50 {ms(statistics.median(latencies))}   p99 {ms(pct(latencies, 99))}"
            )
        baseline = health[200]
        print(
            f"  GET /health (baseline): p50 {ms(statistics.median(baseline))}   p99 {ms(pct(baseline, 99))}"
        )
        ratio = statistics.median(accepted.get(202, [0.0])) / statistics.median(baseline)
        print(f"  ratio p50 202/health: x{ratio:.2f}")
    print_comparison(by_proxy, clients_list, args.repeat_requests)


if __name__ == "__main__":
    main()
