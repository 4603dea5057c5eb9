"""The production graph on a real two-node Ray cluster, driven as a user drives it.

A head node (CPU only) and a GPU node (2 logical GPUs) are ``ray start`` processes; the
application goes up by ``serve deploy`` of serve_config.yaml with the test's changes as data
(``conftest.cluster_serve_config``); ``serve status`` and Serve's REST API report it; every request
goes through Serve's HTTP proxies; every job ends in a callback to a real receiver.

The tests share one cluster and run in file order: the last one kills the GPU node.
"""

import concurrent.futures
import copy
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import yaml

from tests.cluster.conftest import APP, SLOW, Deployed
from tests.support.callback_receiver import CallbackReceiver

pytestmark = pytest.mark.cluster

GPU_ENGINES = ("MusicGenEngine", "StableAudioEngine")


def _body(gen_id: str, callback_url: str, engines: dict[str, str], duration: float = 2.0) -> dict[str, Any]:
    return {
        "generation_request_id": gen_id,
        "audio_file_id": "cluster-audio",
        "target_stems": list(engines),
        "parameters": {"target_bpm": 120, "duration_seconds": duration, "random_seed": 7, "engines": engines},
        "callback_url": callback_url,
    }


def _replicas(service: Deployed) -> dict[str, list[dict[str, Any]]]:
    """Running replicas per deployment, from Serve's REST API (what ``serve status`` reads)."""
    deployments = service.app_status().get("deployments") or {}
    return {
        name: [r for r in d.get("replicas") or [] if r["state"] == "RUNNING"]
        for name, d in deployments.items()
    }


def _deployment(config: dict[str, Any], name: str) -> dict[str, Any]:
    deployment: dict[str, Any] = next(
        d for d in config["applications"][0]["deployments"] if d["name"] == name
    )
    return deployment


def _node_names(service: Deployed) -> dict[str, str]:
    """Alive node id -> "head", or "gpu" for a worker node (every worker here is a GPU node)."""
    return {
        n["node_id"]: "head" if n["is_head_node"] else "gpu"
        for n in service.cluster.state("nodes")
        if n["state"] == "ALIVE"
    }


def _wait(what: str, check: Callable[[], Any], timeout: float, every: float = 0.5) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(every)
    raise TimeoutError(f"{what}: not within {timeout} s")


def _final_callbacks(callbacks: CallbackReceiver, ids: list[str], timeout: float) -> dict[str, dict]:
    deadline = time.monotonic() + timeout
    return {i: callbacks.wait_for(i, timeout=max(1.0, deadline - time.monotonic())) for i in ids}


def _access_log_posts(service: Deployed, replica_id: str) -> int:
    """POST /generate lines in one ingress replica's access log (the test config turns it on)."""
    logs = service.cluster.temp_dir / "session_latest" / "logs" / "serve"
    return sum(
        path.read_text(errors="replace").count("POST /generate ")
        for path in logs.glob(f"replica_{APP}_Ingress_{replica_id}*.log")
    )


# --- placement ---------------------------------------------------------------------------------


def test_serve_status_shows_the_graph_with_fractional_gpu_replicas_on_the_gpu_node(
    cluster_service: Deployed, callbacks: CallbackReceiver
) -> None:
    service = cluster_service
    status = service.cluster.cli("serve", "status", "-a", service.cluster.dashboard)
    assert status.returncode == 0, status.stderr
    app = yaml.safe_load(status.stdout)["applications"][APP]
    assert app["status"] == "RUNNING", status.stdout
    assert {name: d["status"] for name, d in app["deployments"].items()} == {
        name: "HEALTHY"
        for name in (
            "Ingress",
            "ProceduralEngine",
            "MusicGenEngine",
            "StableAudioEngine",
            "SlowEngine",
            "Uploader",
            "StreamRelay",
        )
    }
    assert app["deployments"]["MusicGenEngine"]["replica_states"] == {"RUNNING": 2}
    assert app["deployments"]["Ingress"]["replica_states"] == {"RUNNING": 2}

    nodes = _node_names(service)
    replicas = _replicas(service)
    placement = {name: sorted(nodes.get(r["node_id"], "?") for r in rs) for name, rs in replicas.items()}
    service.note(f"placement: {placement}")
    for name in GPU_ENGINES:
        assert placement[name] and set(placement[name]) == {"gpu"}, placement

    # Each GPU replica's actor asks for half a GPU and was granted half of one GPU instance (a
    # fractional request is never split over GPUs); the three halves fill one logical GPU (two
    # replicas share it) and half of the other.
    #
    # Which two share is Ray's choice, not the config's: the raylet places a fractional request
    # on the best-fitting GPU (the fullest that still fits, resource_instance_set.cc) in the order
    # it grants leases, and it grants MusicGen's and Stable Audio's (different scheduling
    # classes) in no fixed order. Both MusicGen replicas on one GPU when theirs come first
    # (most runs here); one MusicGen replica beside Stable Audio otherwise: which is what
    # serve_config.yaml's comment on Stable Audio plans for ("shared with one MusicGen replica").
    actors = {
        a["actor_id"]: a for a in service.cluster.state("actors", filter_keys="state", filter_values="ALIVE")
    }
    grants = _gpu_grants(service)
    shares: dict[str, list[tuple[int, float]]] = {}
    per_gpu: dict[int, float] = {}
    for name in GPU_ENGINES:
        for replica in replicas[name]:
            assert actors[replica["actor_id"]]["required_resources"].get("GPU") == 0.5
            (grant,) = grants[replica["actor_id"]]
            shares.setdefault(name, []).append(grant)
            per_gpu[grant[0]] = per_gpu.get(grant[0], 0.0) + grant[1]
    musicgen = shares["MusicGenEngine"]
    paired = musicgen[0][0] == musicgen[1][0]
    service.note(
        f"GPU grants (GPU index, share) per replica: {shares}; "
        + (
            "the two MusicGen replicas share one GPU"
            if paired
            else "one MusicGen replica shares with Stable Audio"
        )
    )
    assert [share for _, share in musicgen] == [0.5, 0.5]
    assert sorted(per_gpu.values()) == [0.5, 1.0], per_gpu

    # The engines run, on CPU: Ray's CUDA_VISIBLE_DEVICES names a GPU that does not exist here.
    health = service.client.get(f"{service.base_url}/health").json()
    assert health["status"] == "healthy", health
    assert health["services"]["mode"] == "ai" and health["gpu_available"] is False
    assert {health["engines"][e]["device"] for e in ("musicgen", "stable_audio")} == {"cpu"}
    ready = service.client.post(
        f"{service.base_url}/generate",
        json=_body(
            "cluster-mixed",
            callbacks.url,
            {"bass": "musicgen", "drums": "stable_audio", "piano": "procedural"},
        ),
    )
    assert ready.status_code == 202, ready.text
    done = callbacks.wait_for("cluster-mixed", timeout=120)
    assert done["status"] == "completed", done["error"]
    assert {s["stem_type"]: s["engine"] for s in done["generated_stems"]} == {
        "bass": "musicgen",
        "drums": "stable_audio",
        "piano": "procedural",
    }


def _gpu_grants(service: Deployed) -> dict[str, list[tuple[int, float]]]:
    """Per alive actor, the GPU instances Ray granted it (index, share), from the GCS actor table
    (``resource_mapping``: which GPU a fractional request was placed on; the state API gives only
    the amount)."""
    code = (
        "from ray._private.state import state\n"
        "from ray.core.generated import gcs_pb2\n"
        "out = {}\n"
        "for raw in state._connect_and_get_accessor().get_actor_table(None, None):\n"
        "    a = gcs_pb2.ActorTableData.FromString(raw)\n"
        "    out[a.actor_id.hex()] = [(r.index, r.quantity) for m in a.resource_mapping\n"
        "                             if m.name == 'GPU' for r in m.resource_ids]\n"
        "print(json.dumps(out))\n"
    )
    grants = service.cluster.driver(code)
    return {actor: [(int(i), float(q)) for i, q in pairs] for actor, pairs in grants.items()}


# --- two ingress replicas ----------------------------------------------------------------------


def test_fifty_concurrent_duplicates_over_two_ingress_replicas_make_one_generation(
    cluster_service: Deployed, callbacks: CallbackReceiver
) -> None:
    service = cluster_service
    ingress = _replicas(service)["Ingress"]
    assert len(ingress) == 2
    before = {r["replica_id"]: _access_log_posts(service, r["replica_id"]) for r in ingress}
    # As a load balancer in front of every node's proxy: the duplicates alternate between the
    # head's proxy and the GPU node's. A proxy prefers the ingress replica on its own node.
    proxies = [service.base_url, service.worker_proxy_url]
    body = _body("dup-cluster", callbacks.url, {"bass": SLOW}, duration=3.0)

    def post(i: int) -> httpx.Response:
        return httpx.post(f"{proxies[i % 2]}/generate", json=body, timeout=60)

    with concurrent.futures.ThreadPoolExecutor(max_workers=50) as pool:
        answers = list(pool.map(post, range(50)))

    assert {a.status_code for a in answers} <= {200, 202}, [a.text for a in answers if a.status_code >= 300]
    assert {(a.json()["generation_request_id"], a.json()["status"]) for a in answers} <= {
        ("dup-cluster", "processing"),
        ("dup-cluster", "completed"),
    }
    done = callbacks.wait_for("dup-cluster", timeout=60)
    assert done["status"] == "completed"
    time.sleep(2.0)  # a second generation would call back within this
    assert callbacks.count("dup-cluster") == 1
    # Every replica, through either proxy, tells the same finished job.
    views = [service.client.get(f"{proxies[i % 2]}/generate/dup-cluster").json() for i in range(10)]
    assert {(v["status"], v["stage"], v["attempt"], v["parameters"]["random_seed"]) for v in views} == {
        ("completed", "completed", 1, 7)
    }
    spread = {rid: _access_log_posts(service, rid) - n for rid, n in before.items()}
    service.note(f"50 duplicates: POSTs per ingress replica {spread}, callbacks 1")
    assert sum(spread.values()) == 50 and all(n > 0 for n in spread.values()), spread


def test_listeners_on_both_nodes_hear_one_generation_and_a_cancel_crosses_replicas(
    cluster_service: Deployed, callbacks: CallbackReceiver
) -> None:
    """Each proxy prefers the ingress replica on its node: two listeners, one on each replica,
    hear the audio the stem replica makes (through the relay) and the stored WAV equals it; a
    job posted through one node is cancelled through the other."""
    service = cluster_service
    proxies = [service.base_url, service.worker_proxy_url]
    body = _body("stream-cluster", callbacks.url, {"drums": "procedural", "bass": SLOW}, duration=6.0)
    assert httpx.post(f"{proxies[0]}/generate", json=body, timeout=60).status_code == 202

    def listen(proxy: str) -> bytes:
        url = f"{proxy}/generate/stream-cluster/stream?stem=drums&format=pcm"
        return httpx.get(url, timeout=120).content

    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        heard = list(pool.map(listen, proxies))
    done = callbacks.wait_for("stream-cluster", timeout=120)
    stored = httpx.get(f"{proxies[1]}/generate/stream-cluster/stream?stem=drums&format=pcm", timeout=60)

    assert done["status"] == "completed"
    assert heard[0] == heard[1] == stored.content and len(heard[0]) == 6 * 44100 * 4

    cancel = _body("cancel-cluster", callbacks.url, {"bass": SLOW}, duration=30.0)
    started = time.monotonic()
    assert httpx.post(f"{proxies[0]}/generate", json=cancel, timeout=60).status_code == 202
    _wait(
        "the slow engine generating",
        lambda: (
            service.client.get(f"{proxies[1]}/generate/cancel-cluster").json()["progress"]["fraction"] > 0
        ),
        timeout=60,
    )
    assert httpx.delete(f"{proxies[1]}/generate/cancel-cluster", timeout=30).status_code == 202
    cancelled = callbacks.wait_for("cancel-cluster", timeout=60)
    assert cancelled["status"] == "cancelled" and cancelled["generated_stems"] == []
    service.note(
        f"cancel across replicas: callback {time.monotonic() - started:.1f} s after the POST (30 s job)"
    )
    assert time.monotonic() - started < 25


# --- user_config redeploy ----------------------------------------------------------------------


def test_a_user_config_redeploy_reaches_running_replicas_without_a_restart(
    cluster_service: Deployed, callbacks: CallbackReceiver
) -> None:
    service = cluster_service
    before = {
        name: sorted((r["replica_id"], r["actor_id"], r["pid"]) for r in rs)
        for name, rs in _replicas(service).items()
    }
    health = service.client.get(f"{service.base_url}/health").json()
    assert health["engines"]["stable_audio"]["steps"] == 8
    first = _body("before-redeploy", callbacks.url, {"piano": "procedural"})
    assert service.client.post(f"{service.base_url}/generate", json=first).status_code == 202
    assert callbacks.wait_for("before-redeploy", timeout=60)["generated_stems"][0]["midi_url"]

    # Jobs in flight across the redeploy: on each reconfigured engine (MusicGen decoding when the
    # redeploy starts), and a slow one that surely spans it.
    in_flight: dict[str, tuple[dict[str, str], float]] = {
        "inflight-slow": ({"bass": SLOW}, 20.0),
        "inflight-musicgen": ({"bass": "musicgen"}, 60.0),
        "inflight-stable-audio": ({"drums": "stable_audio"}, 12.0),
        "inflight-procedural": ({"guitar": "procedural", "piano": "procedural", "synth": "procedural"}, 30.0),
    }
    for gen_id, (engines, duration) in in_flight.items():
        response = service.client.post(
            f"{service.base_url}/generate", json=_body(gen_id, callbacks.url, engines, duration)
        )
        assert response.status_code == 202, response.text
    _wait(
        "MusicGen decoding",
        lambda: (
            service.client.get(f"{service.base_url}/generate/inflight-musicgen").json()["progress"][
                "fraction"
            ]
            > 0
        ),
        timeout=60,
        every=0.2,
    )

    config = copy.deepcopy(service.config)
    _deployment(config, "ProceduralEngine")["user_config"]["midi"] = False
    _deployment(config, "StableAudioEngine")["user_config"]["cpu_num_inference_steps"] = 4
    _deployment(config, "MusicGenEngine")["user_config"]["top_k"] = 200
    started = time.monotonic()
    service.deploy(config)
    # An engine applies a new user_config from its next batch: while a replica is busy with the
    # one in flight, /health may find it too busy to describe itself (no "steps" then).
    seen: list[tuple[str, Any]] = []

    def new_steps_visible() -> bool:
        entry = service.client.get(f"{service.base_url}/health").json()["engines"]["stable_audio"]
        state = (entry["status"], entry.get("steps"))
        if not seen or seen[-1] != state:
            seen.append(state)
        return entry.get("steps") == 4

    _wait("Stable Audio's new steps in /health", new_steps_visible, timeout=120)
    visible = time.monotonic() - started
    still = [
        i
        for i in in_flight
        if service.client.get(f"{service.base_url}/generate/{i}").json()["status"] == "processing"
    ]
    app = service.wait_running(timeout=120)
    applied = {
        name: app["deployments"][name]["deployment_config"]["user_config"] for name in ("MusicGenEngine",)
    }
    assert applied["MusicGenEngine"]["top_k"] == 200
    assert "inflight-slow" in still, "no job was in flight when the new user_config reached the replicas"

    after = {
        name: sorted((r["replica_id"], r["actor_id"], r["pid"]) for r in rs)
        for name, rs in _replicas(service).items()
    }
    # Every replica from before still runs, as the same actor in the same process. The
    # reconfigured deployments and the ingress have exactly the same replicas; the slow engine's
    # autoscaler may have added one for the job in flight meanwhile.
    replaced = {name: sorted(set(ids) - set(after.get(name, []))) for name, ids in before.items()}
    assert not any(replaced.values()), f"replicas restarted by a user_config change: {replaced}"
    for name in ("Ingress", "Uploader", "ProceduralEngine", "MusicGenEngine", "StableAudioEngine"):
        assert after[name] == before[name], name
    outcomes = _final_callbacks(callbacks, list(in_flight), timeout=120)
    assert {i: c["status"] for i, c in outcomes.items()} == dict.fromkeys(in_flight, "completed"), {
        i: c["error"] for i, c in outcomes.items()
    }
    second = _body("after-redeploy", callbacks.url, {"piano": "procedural"})
    assert service.client.post(f"{service.base_url}/generate", json=second).status_code == 202
    assert callbacks.wait_for("after-redeploy", timeout=60)["generated_stems"][0].get("midi_url") is None
    service.note(
        f"user_config redeploy: visible on running replicas {visible:.1f} s after serve deploy; "
        f"the same {sum(len(v) for v in before.values())} replicas (ids, actors, pids) after it; "
        f"{len(in_flight)} in-flight jobs completed ({still} still running when it became visible); "
        f"/health stable_audio (status, steps) meanwhile: {seen}"
    )


# --- autoscaling -------------------------------------------------------------------------------


def test_the_autoscaler_adds_replicas_under_load_and_removes_them_after(
    cluster_service: Deployed, callbacks: CallbackReceiver
) -> None:
    service = cluster_service
    autoscaling = _deployment(service.config, "SlowEngine")["autoscaling_config"]
    low, high = autoscaling["min_replicas"], autoscaling["max_replicas"]

    def at_rest() -> bool:
        slow = service.app_status()["deployments"]["SlowEngine"]
        running = sum(1 for r in slow["replicas"] if r["state"] == "RUNNING")
        return bool(slow["target_num_replicas"] == low and running == low)

    _wait("SlowEngine at rest at its minimum", at_rest, timeout=60)
    ids = [f"load-{i}" for i in range(8)]
    started = time.monotonic()
    for gen_id in ids:
        response = service.client.post(
            f"{service.base_url}/generate", json=_body(gen_id, callbacks.url, {"bass": SLOW}, duration=8.0)
        )
        assert response.status_code == 202

    seen: list[tuple[float, int, int]] = [(0.0, low, low)]  # (s since the load began, target, running)
    finished_at = None
    while time.monotonic() - started < 180:
        app = service.app_status()["deployments"]["SlowEngine"]
        running = sum(1 for r in app["replicas"] if r["state"] == "RUNNING")
        now = round(time.monotonic() - started, 1)
        if not seen or seen[-1][1:] != (app["target_num_replicas"], running):
            seen.append((now, app["target_num_replicas"], running))
        if finished_at is None and all(callbacks.count(i) for i in ids):
            finished_at = now
        if finished_at is not None and running == low and app["target_num_replicas"] == low:
            break
        time.sleep(0.5)

    service.note(f"autoscaling SlowEngine (t s, target, running): {seen}")
    service.note(f"autoscaling: load of {len(ids)} jobs x 8 s ended at {finished_at} s")
    peak = max(running for _, _, running in seen)
    assert peak > low, f"no replica added under load: {seen}"
    assert peak == high, f"expected {high} replicas at the peak: {seen}"
    assert seen[-1][1:] == (low, low), f"replicas not removed after the load: {seen}"
    outcomes = _final_callbacks(callbacks, ids, timeout=30)
    assert {c["status"] for c in outcomes.values()} == {"completed"}


# --- node loss ---------------------------------------------------------------------------------


def test_killing_the_gpu_node_mid_job_ends_every_job_with_one_callback(
    cluster_service: Deployed, callbacks: CallbackReceiver
) -> None:
    service = cluster_service
    nodes = _node_names(service)
    on_gpu_node = {
        name: sum(1 for r in rs if nodes.get(r["node_id"]) == "gpu")
        for name, rs in _replicas(service).items()
    }
    # Jobs sent to the GPU node's proxy are run by the ingress replica there, which dies with the
    # node: the head's replica must resume them. The slow engine's jobs can run on the head; the
    # MusicGen job cannot run anywhere until a GPU node is back. The node dies while every job is
    # generating: none is storing (see the report: an uploader replica lost mid-store fails its
    # job rather than retrying it).
    head, gpu = service.base_url, service.worker_proxy_url
    jobs: dict[str, tuple[str, dict[str, str], float]] = {
        "loss-slow-head": (head, {"bass": SLOW}, 8.0),
        "loss-slow-gpu-0": (gpu, {"bass": SLOW}, 8.0),
        "loss-slow-gpu-1": (gpu, {"drums": SLOW}, 8.0),
        "loss-musicgen": (head, {"bass": "musicgen"}, 60.0),
    }
    for gen_id, (proxy, engines, duration) in jobs.items():
        body = _body(gen_id, callbacks.url, engines, duration)
        response = httpx.post(f"{proxy}/generate", json=body, timeout=30)
        assert response.status_code == 202, response.text

    def mid_job() -> dict[str, Any] | None:
        # Kill once MusicGen is decoding on the GPU node and the slow jobs are generating.
        views = {i: service.client.get(f"{head}/generate/{i}").json() for i in jobs}
        musicgen = views["loss-musicgen"]
        ready = 0 < musicgen["progress"]["fraction"] < 1 and musicgen["stage"] == "generating"
        slow = [v for i, v in views.items() if i.startswith("loss-slow")]
        return views if ready and all(v["stage"] == "generating" for v in slow) else None

    before = _wait("jobs mid-generation", mid_job, timeout=90, every=0.2)
    killed_at = time.monotonic()
    killed = service.cluster.kill_node("gpu")
    service.note(
        f"node loss: SIGKILLed {len(killed)} processes of the GPU node; replicas there {on_gpu_node}; "
        f"musicgen job at {before['loss-musicgen']['progress']['fraction']:.2f}"
    )
    service.cluster.wait_for_nodes(1, timeout=60)
    dead_after = time.monotonic() - killed_at

    cpu_jobs = [i for i in jobs if i != "loss-musicgen"]
    cpu_outcomes = _final_callbacks(callbacks, cpu_jobs, timeout=120)
    cpu_done = time.monotonic() - killed_at
    views = {i: service.client.get(f"{head}/generate/{i}").json() for i in jobs}
    service.note(
        f"node loss: GPU node declared dead {dead_after:.1f} s after the kill; CPU jobs ended by "
        f"{cpu_done:.1f} s: "
        + ", ".join(f"{i} {c['status']} (attempt {views[i]['attempt']})" for i, c in cpu_outcomes.items())
    )
    assert {i: c["status"] for i, c in cpu_outcomes.items()} == dict.fromkeys(cpu_jobs, "completed"), {
        i: c["error"] for i, c in cpu_outcomes.items()
    }
    # The jobs of the ingress replica that died were resumed by the other one: a second attempt.
    assert [views[i]["attempt"] for i in ("loss-slow-gpu-0", "loss-slow-gpu-1")] == [2, 2], views
    # Nothing can run the MusicGen job now: it waits (no deadline: see the report), alive.
    musicgen = views["loss-musicgen"]
    service.note(
        f"node loss: musicgen job {cpu_done:.0f} s without a GPU node: "
        f"{musicgen['status']}/{musicgen['stage']}, attempt {musicgen['attempt']}"
    )
    assert musicgen["status"] == "processing"

    # A GPU node joins (what a cluster autoscaler or KubeRay does for a lost node): MusicGen's
    # replicas start there and the waiting job finishes.
    asked_at = time.monotonic() - killed_at
    service.add_gpu_node("gpu2")
    joined_at = time.monotonic() - killed_at
    _wait("MusicGen replicas back", lambda: len(_replicas(service)["MusicGenEngine"]) == 2, timeout=180)
    back_at = time.monotonic() - killed_at
    outcome = callbacks.wait_for("loss-musicgen", timeout=120)
    service.note(
        f"node loss: replacement GPU node started at {asked_at:.1f} s, joined at {joined_at:.1f} s, "
        f"MusicGen replicas running at {back_at:.1f} s, musicgen job {outcome['status']} at "
        f"{time.monotonic() - killed_at:.1f} s after the kill"
    )
    assert outcome["status"] == "completed", outcome["error"]
    time.sleep(2.0)  # a second outcome of any job would call back within this
    counts = {i: callbacks.count(i) for i in jobs}
    assert counts == dict.fromkeys(jobs, 1), counts
