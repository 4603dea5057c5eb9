"""Peak memory of the ingress replica during one large request: 7 stems x 300 s from the
procedural engine (about 740 MB of float32 audio). The ingress should only see references to the
engines' results, never the audio itself; the uploader's peak is printed beside it.

Memory is read from /proc (``VmRSS`` now, ``VmHWM`` the process's peak so far) of the replica
processes, which Ray names ``ServeReplica:{app}:{deployment}``.
"""

import argparse
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import ray
from ray import serve

from deployments.app import build_graph
from stemforge.settings import Settings
from tests.support.callback_receiver import start_callback_receiver

PORT = 8766
BASE = f"http://127.0.0.1:{PORT}"
APP = "membench"
STEMS = ["vocals", "drums", "bass", "guitar", "piano", "synth", "other"]


def replica_pid(deployment: str) -> int:
    marker = f"ServeReplica:{APP}:{deployment}".encode()
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if marker in cmdline.read_bytes():
                return int(cmdline.parent.name)
        except OSError:
            continue
    raise RuntimeError(f"no process for replica {deployment}")


def memory_mib(pid: int) -> dict[str, float]:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0]) / 1024
    return fields


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=300.0)
    args = parser.parse_args()

    ray.init(num_cpus=4, include_dashboard=False, log_to_driver=False, object_store_memory=2 * 1024**3)
    serve.start(http_options={"host": "127.0.0.1", "port": PORT})
    base = f"{BASE}/{APP}"
    settings = Settings(
        local_storage_dir=tempfile.mkdtemp(prefix="stemforge-membench-"),
        public_base_url=base,
        callback_allowed_hosts=["127.0.0.1"],
        max_duration_seconds=max(300.0, args.seconds),
    )
    serve.run(build_graph(settings), name=APP, route_prefix=f"/{APP}")
    receiver_gen = start_callback_receiver()
    receiver = next(receiver_gen)
    try:
        pids = {name: replica_pid(name) for name in ("Ingress", "Uploader")}
        before = {name: memory_mib(pid) for name, pid in pids.items()}
        gen_id = f"mem-{uuid.uuid4().hex[:10]}"
        body = {
            "generation_request_id": gen_id,
            "audio_file_id": "membench",
            "target_stems": STEMS,
            "parameters": {"duration_seconds": args.seconds, "style": "rock", "random_seed": 7},
            "callback_url": receiver.url,
        }
        start = time.perf_counter()
        httpx.post(f"{base}/generate", json=body, timeout=60).raise_for_status()
        result = receiver.wait_for(gen_id, timeout=900)
        took = time.perf_counter() - start
        after = {name: memory_mib(pid) for name, pid in pids.items()}
    finally:
        receiver_gen.close()
        ray.shutdown()

    audio_mib = len(STEMS) * args.seconds * 44100 * 2 * 4 / 2**20
    print(
        f"{len(STEMS)} stems x {args.seconds:g} s ({audio_mib:.0f} MiB of float32 audio): "
        f"{result['status']} in {took:.1f} s"
    )
    for name in pids:
        print(
            f"  {name:8s} RSS before {before[name]['VmRSS']:7.1f} MiB   peak {after[name]['VmHWM']:7.1f} MiB"
            f"   (peak - before: {after[name]['VmHWM'] - before[name]['VmRSS']:+7.1f} MiB)"
        )


if __name__ == "__main__":
    main()
