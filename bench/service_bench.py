"""The service end to end on a real local Ray: 202 latency under concurrent clients, and request
to callback for the seed example and for four 30 s stems, each against a baseline measured in the
same run (GET /health for the 202; the engine alone, in process, for the callback)."""

import argparse
import concurrent.futures
import statistics
import tempfile
import time
import uuid

import httpx
import ray
from ray import serve

from deployments.app import build_graph
from stemforge.engines.procedural import ProceduralEngine
from stemforge.music.spec import MusicSpec
from stemforge.settings import Settings
from tests.support.callback_receiver import CallbackReceiver, start_callback_receiver

PORT = 8765
BASE = f"http://127.0.0.1:{PORT}"


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:7.1f} ms"


def request_to_callback(
    receiver: CallbackReceiver, stems: list[str], seconds: float, runs: int
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
        httpx.post(f"{BASE}/generate", json=body, timeout=60).raise_for_status()
        if receiver.wait_for(gen_id, timeout=120)["status"] != "completed":
            raise RuntimeError(f"{gen_id} did not complete")
        took.append(time.perf_counter() - start)
    return took


def accept_latency(clients: int, per_client: int, path: str) -> dict[int, list[float]]:
    """Latency of each answer, by status code (202 accepted, 503 over MAX_ACTIVE_JOBS)."""

    def one_client(index: int) -> list[tuple[int, float]]:
        latencies = []
        with httpx.Client(timeout=60) as client:
            for n in range(per_client):
                start = time.perf_counter()
                if path == "/health":
                    response = client.get(f"{BASE}/health")
                else:
                    response = client.post(
                        f"{BASE}/generate",
                        json={
                            "generation_request_id": f"load-{index}-{n}-{uuid.uuid4().hex[:6]}",
                            "audio_file_id": "bench",
                            "target_stems": ["drums"],
                            "parameters": {"duration_seconds": 0.5, "random_seed": 1},
                        },
                    )
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--per-client", type=int, default=10)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    engine = ProceduralEngine(Settings())
    spec = MusicSpec(bpm=120, duration_seconds=30, seed=1, style="rock")
    engine.generate(spec, ["drums"])  # warm
    start = time.perf_counter()
    engine.generate(spec, ["guitar", "bass", "drums", "piano"])
    engine_only = time.perf_counter() - start

    ray.init(num_cpus=4, include_dashboard=False, log_to_driver=False, object_store_memory=512 * 1024 * 1024)
    serve.start(http_options={"host": "127.0.0.1", "port": PORT})
    settings = Settings(
        local_storage_dir=tempfile.mkdtemp(prefix="stemforge-bench-"),
        public_base_url=BASE,
        callback_allowed_hosts=["127.0.0.1"],
    )
    serve.run(build_graph(settings), name="bench", route_prefix="/")
    receiver_gen = start_callback_receiver()
    receiver = next(receiver_gen)
    try:
        seed_example = request_to_callback(receiver, ["guitar", "bass"], 5.0, args.runs * 2)
        four_stems = request_to_callback(receiver, ["guitar", "bass", "drums", "piano"], 30.0, args.runs)
        health = accept_latency(args.clients, args.per_client, "/health")
        accepted = accept_latency(args.clients, args.per_client, "/generate")
    finally:
        receiver_gen.close()
        ray.shutdown()

    print("request -> callback (local storage, procedural engine)")
    seed_p50, seed_max = ms(statistics.median(seed_example)), ms(max(seed_example))
    print(f"  seed example (2 stems x 5 s):  p50 {seed_p50}   max {seed_max}")
    print(
        f"  4 stems x 30 s:                p50 {ms(statistics.median(four_stems))}"
        f"   max {ms(max(four_stems))}"
        f"   (engine alone, in process: {ms(engine_only)}; service overhead x"
        f"{statistics.median(four_stems) / engine_only:.2f})"
    )
    limit = settings.max_active_jobs
    print(f"{args.clients} concurrent clients x {args.per_client} requests (MAX_ACTIVE_JOBS={limit})")
    for status, latencies in sorted(accepted.items()):
        print(
            f"  POST /generate -> {status}: {len(latencies):4d} answers"
            f"   p50 {ms(statistics.median(latencies))}   p99 {ms(pct(latencies, 99))}"
        )
    baseline = health[200]
    print(f"  GET /health (baseline): p50 {ms(statistics.median(baseline))}   p99 {ms(pct(baseline, 99))}")
    ratio = statistics.median(accepted.get(202, [0.0])) / statistics.median(baseline)
    print(f"  ratio p50 202/health: x{ratio:.2f}")


if __name__ == "__main__":
    main()
