"""Streaming on a real local Ray: how soon a listener hears a stem, and how fast the stream
runs, against the time to the finished job in the same run.

For each engine a request is posted and its first stem listened to at once
(``GET /generate/{id}/stream?stem=...&format=pcm``): time to the first audio byte, to the
stream's end and to the callback (the finished job), and the stream's real-time factor (seconds
of audio delivered per second of listening, from the first byte). Engines: the procedural one
(seven 30 s stems) and full-size MusicGen-small with random weights on CPU (``--musicgen``, one
10 s stem: minutes).
"""

import argparse
import contextlib
import socket
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import httpx
import ray
from ray import serve

from deployments.app import build_graph
from stemforge.music.spec import CHANNELS, SAMPLE_RATE
from stemforge.routing import RoutingTable
from stemforge.settings import Settings
from tests.support.callback_receiver import CallbackReceiver, start_callback_receiver

HOST = "127.0.0.1"
BYTES_PER_SECOND = SAMPLE_RATE * CHANNELS * 2


@dataclass
class Figures:
    label: str
    audio_seconds: float
    first_byte: float
    stream_end: float
    finished: float

    def line(self) -> str:
        listening = max(1e-9, self.stream_end - self.first_byte)
        return (
            f"{self.label:<34} first audio {self.first_byte:7.2f} s | stream end {self.stream_end:7.2f} s | "
            f"job finished {self.finished:7.2f} s | first audio at {self.first_byte / self.finished:5.1%} "
            f"of the job | stream {self.audio_seconds / listening:6.1f}x real time"
        )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def measure(
    base: str, receiver: CallbackReceiver, label: str, stems: list[str], seconds: float, listen_to: str
) -> Figures:
    gen_id = f"bench-{uuid.uuid4().hex[:10]}"
    body = {
        "generation_request_id": gen_id,
        "audio_file_id": "bench",
        "target_stems": stems,
        "parameters": {"target_bpm": 120, "duration_seconds": seconds, "style": "pop", "random_seed": 1},
        "callback_url": receiver.url,
    }
    started = time.monotonic()
    got: dict[str, float] = {}
    size = [0]

    def listen() -> None:
        url = f"{base}/generate/{gen_id}/stream?stem={listen_to}&format=pcm"
        with httpx.stream("GET", url, timeout=3600) as response:
            for chunk in response.iter_bytes():
                if chunk and "first" not in got:
                    got["first"] = time.monotonic() - started
                size[0] += len(chunk)
        got["end"] = time.monotonic() - started

    response = httpx.post(f"{base}/generate", json=body, timeout=60)
    response.raise_for_status()
    listener = threading.Thread(target=listen)
    listener.start()
    payload = receiver.wait_for(gen_id, timeout=3600)
    finished = time.monotonic() - started
    listener.join()
    if payload["status"] != "completed":
        raise RuntimeError(f"{label}: {payload.get('error')}")
    return Figures(label, size[0] / BYTES_PER_SECOND, got["first"], got["end"], finished)


def wait_running(name: str, base: str, timeout: float = 900) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = serve.status().applications.get(name)
        if status is not None and status.status == "RUNNING" and httpx.get(f"{base}/health").is_success:
            return
        time.sleep(1)
    raise TimeoutError(f"{name} not running after {timeout} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--musicgen", action="store_true", help="also full-size MusicGen-small (minutes)")
    parser.add_argument("--musicgen-seconds", type=float, default=10.0)
    args = parser.parse_args()
    port = free_port()
    ray.init(num_cpus=16, include_dashboard=False, log_to_driver=False)
    serve.start(http_options={"host": HOST, "port": port})
    with (
        tempfile.TemporaryDirectory() as scratch,
        contextlib.contextmanager(start_callback_receiver)() as receiver,
    ):
        root = Path(scratch)
        base = f"http://{HOST}:{port}/procedural"
        settings = Settings(
            local_storage_dir=root / "blobs", public_base_url=base, callback_allowed_hosts=[HOST]
        )
        serve.run(build_graph(settings), name="procedural", route_prefix="/procedural", blocking=False)
        wait_running("procedural", base)
        stems = ["drums", "bass", "piano", "guitar", "synth", "other", "vocals"]
        for which, stem in (("first", stems[0]), ("last", stems[-1]), ("mix", "mix")):
            label = f"procedural, 7 x 30 s ({which}: {stem})"
            print(measure(base, receiver, label, stems, 30.0, stem).line(), flush=True)
        if args.musicgen:
            from bench.musicgen_bench import build_checkpoint

            checkpoint = build_checkpoint(root / "musicgen-small")
            base = f"http://{HOST}:{port}/musicgen"
            settings = Settings(
                local_storage_dir=root / "blobs",
                public_base_url=base,
                callback_allowed_hosts=[HOST],
                mock_generation=False,
                musicgen_model=str(checkpoint),
            )
            routing = RoutingTable.from_mapping(
                {"mock": {"default": "procedural"}, "ai": {"default": "musicgen"}}
            )
            serve.run(
                build_graph(settings, routing, engine_configs={"musicgen": {"num_threads": 2}}),
                name="musicgen",
                route_prefix="/musicgen",
                blocking=False,
            )
            wait_running("musicgen", base)
            seconds = args.musicgen_seconds
            label = f"musicgen-small, 1 x {seconds:g} s"
            print(measure(base, receiver, label, ["bass"], seconds, "bass").line(), flush=True)
    serve.shutdown()
    ray.shutdown()


if __name__ == "__main__":
    main()
