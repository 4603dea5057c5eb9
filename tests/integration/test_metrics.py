"""The application's metrics on Ray's Prometheus endpoint, after a real request."""

import re
import time

import httpx
import pytest
import ray

from tests.integration.conftest import Service
from tests.support.callback_receiver import CallbackReceiver

pytestmark = pytest.mark.integration

EXPECTED = (
    r'ray_stemforge_jobs_accepted_total\{[^}]*engine="procedural"',
    r'ray_stemforge_jobs_finished_total\{[^}]*engine="procedural"[^}]*status="completed"',
    r'ray_stemforge_generation_seconds_bucket\{[^}]*engine="procedural"',
    r'ray_stemforge_audio_seconds_total\{[^}]*engine="procedural"[^}]*\} ([0-9.]+)',
    r'ray_stemforge_stems_total\{[^}]*engine="procedural"',
    r'ray_stemforge_callback_attempts_total\{[^}]*outcome="delivered"',
    r'ray_stemforge_storage_seconds_bucket\{[^}]*operation="put"',
    r'ray_stemforge_jobs_in_stage\{[^}]*stage="generating"',
    r"ray_stemforge_job_seconds_bucket",
)


def _scrape() -> str:
    texts = []
    for node in ray.nodes():
        port = node.get("MetricsExportPort")
        if node.get("Alive") and port:
            texts.append(httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text)
    return "\n".join(texts)


def test_a_request_shows_up_in_every_application_metric(
    service: Service, callback_receiver: CallbackReceiver
) -> None:
    body = {
        "generation_request_id": "metrics-1",
        "audio_file_id": "aud-metrics",
        "target_stems": ["drums", "bass"],
        "parameters": {"duration_seconds": 1.5, "random_seed": 1},
        "callback_url": callback_receiver.url,
    }
    assert service.generate(body).status_code == 202
    assert callback_receiver.wait_for("metrics-1", timeout=120)["status"] == "completed"

    # Ray's agent exports what the replicas recorded every few seconds.
    deadline, missing = time.monotonic() + 60, list(EXPECTED)
    while missing and time.monotonic() < deadline:
        text = _scrape()
        missing = [pattern for pattern in EXPECTED if not re.search(pattern, text)]
        if missing:
            time.sleep(2)
    assert not missing, f"not exported: {missing}"
    audio = [float(value) for value in re.findall(EXPECTED[3], text)]
    assert sum(audio) >= 3.0  # 2 stems x 1.5 s (other tests' requests add to it)
