"""The seed's contract end to end: HTTP in, stems in storage, callback out, on a real local Ray."""

import io
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
import soundfile as sf

from stemforge.settings import Settings
from tests.integration.conftest import Service
from tests.support.callback_receiver import CallbackReceiver

pytestmark = pytest.mark.integration

# The seed README's "Generate Request (Mock Mode)" example, plus a callback URL.
SEED_EXAMPLE = {
    "generation_request_id": "test-gen-123",
    "audio_file_id": "test-audio-123",
    "target_stems": ["guitar", "bass"],
    "parameters": {"target_bpm": 120.0, "duration_seconds": 5.0, "style": "rock"},
}


def _request(gen_id: str, callback_url: str | None, **parameters: object) -> dict:
    body = {**SEED_EXAMPLE, "generation_request_id": gen_id}
    body["parameters"] = {**SEED_EXAMPLE["parameters"], **parameters}  # type: ignore[dict-item]
    if callback_url:
        body["callback_url"] = callback_url
    return body


def test_health_reports_the_seed_fields_truthfully(service: Service) -> None:
    response = service.client.get(f"{service.base_url}/health")

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "healthy"
    assert body["services"] == {
        "stable_audio": "not_configured",
        "musicgen": "not_configured",
        "storage": "connected",
        "mode": "mock",
    }
    assert body["gpu_available"] is False
    assert body["engines"]["procedural"]["status"] == "available"
    assert "T" in body["timestamp"]


def test_seed_example_is_accepted_and_called_back_with_downloadable_wavs(
    service: Service, callback_receiver: CallbackReceiver, blob_root: Path
) -> None:
    body = {**SEED_EXAMPLE, "callback_url": callback_receiver.url}

    response = service.generate(body)

    assert response.status_code == 202
    assert response.json() == {
        "generation_request_id": "test-gen-123",
        "status": "processing",
        "message": "Generation started. Stems will be available shortly.",
    }
    callback = callback_receiver.wait_for("test-gen-123", timeout=30)
    assert callback["status"] == "completed"
    assert callback["audio_file_id"] == "test-audio-123"
    assert callback["error"] is None
    assert callback["processing_time_seconds"] > 0
    assert [s["stem_type"] for s in callback["generated_stems"]] == ["guitar", "bass"]
    assert isinstance(callback["parameters"]["random_seed"], int)
    assert callback["parameters"]["target_bpm"] == 120.0
    assert callback["parameters"]["style"] == "rock"
    for stem in callback["generated_stems"]:
        assert stem["blob_url"].endswith(f"/test-audio-123/test-gen-123/{stem['stem_type']}.wav")
        download = httpx.get(stem["blob_url"])
        assert download.status_code == 200
        assert download.headers["content-type"] == "audio/wav"
        assert len(download.content) == stem["file_size_bytes"]
        info = sf.info(io.BytesIO(download.content))
        assert (info.samplerate, info.channels, info.format) == (44100, 2, "WAV")
        assert (stem["format"], stem["sample_rate"], stem["channels"]) == ("wav", 44100, 2)
        assert info.frames == 5 * 44100
    # Blobs only, written whole: no temporary files left beside them (the seed's step 7).
    names = [p.name for p in (blob_root / "test-audio-123" / "test-gen-123").iterdir()]
    assert {"bass.wav", "guitar.wav"} <= set(names)
    assert not [name for name in names if name.startswith(".") or name.endswith(".part")]


def test_every_stem_type_has_the_same_length(service: Service, callback_receiver: CallbackReceiver) -> None:
    body = _request("all-stems", callback_receiver.url, duration_seconds=3.3, random_seed=5)
    body["target_stems"] = ["vocals", "drums", "bass", "guitar", "piano", "synth", "other"]

    assert service.generate(body).status_code == 202

    callback = callback_receiver.wait_for("all-stems")
    assert callback["status"] == "completed"
    frames = {
        sf.info(io.BytesIO(httpx.get(s["blob_url"]).content)).frames for s in callback["generated_stems"]
    }
    assert frames == {round(3.3 * 44100)}


def test_same_seed_gives_identical_bytes_and_another_seed_differs(
    service: Service, callback_receiver: CallbackReceiver
) -> None:
    for gen_id, seed in (("seed-a", 7), ("seed-b", 7), ("seed-c", 8)):
        body = _request(gen_id, callback_receiver.url, random_seed=seed)
        body["target_stems"] = ["drums", "bass"]
        assert service.generate(body).status_code == 202

    audio = {}
    for gen_id in ("seed-a", "seed-b", "seed-c"):
        callback = callback_receiver.wait_for(gen_id)
        audio[gen_id] = [httpx.get(s["blob_url"]).content for s in callback["generated_stems"]]
        assert callback["parameters"]["random_seed"] in (7, 8)
    assert audio["seed-a"] == audio["seed-b"]
    assert audio["seed-a"] != audio["seed-c"]


def test_without_callback_url_the_stems_are_still_stored(service: Service, blob_root: Path) -> None:
    assert service.generate(_request("no-callback", None)).status_code == 202

    expected = blob_root / "test-audio-123" / "no-callback" / "bass.wav"
    _wait_for(lambda: expected.exists(), timeout=30)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"target_stems": ["kazoo"]}, "target_stems[0]"),
        ({"target_stems": []}, "target_stems"),
        ({"target_stems": ["bass", "bass"]}, "target_stems"),
        ({"parameters": {"target_bpm": 500}}, "parameters.target_bpm"),
        ({"parameters": {"duration_seconds": 0}}, "parameters.duration_seconds"),
        ({"parameters": {"temperature": 2.5}}, "parameters.temperature"),
        ({"parameters": {"chord_progression": ["C", "Xm"]}}, "parameters.chord_progression[1]"),
        ({"generation_request_id": "../etc"}, "generation_request_id"),
        ({"audio_file_id": "a/b"}, "audio_file_id"),
        ({"callback_url": "ftp://example.com/cb"}, "callback_url"),
    ],
)
def test_bad_input_is_a_422_naming_the_field(service: Service, change: dict, field: str) -> None:
    body = {**SEED_EXAMPLE, **change}

    response = service.generate(body)

    assert response.status_code == 422
    assert field in [d["field"] for d in response.json()["detail"]]
    assert response.json()["message"].startswith(field) or f"; {field}" in response.json()["message"]


def test_duration_over_the_deployment_limit_names_the_limit(service: Service) -> None:
    over = service.settings.max_duration_seconds + 1

    response = service.generate(_request("too-long", None, duration_seconds=over))

    assert response.status_code == 422
    assert "parameters.duration_seconds" in response.json()["message"]
    assert "MAX_DURATION_SECONDS" in response.json()["message"]


def test_a_storage_failure_still_calls_back_failed_with_a_reason(
    start_service: Callable[..., Service], callback_receiver: CallbackReceiver, tmp_path: Path
) -> None:
    broken = start_service(Settings(local_storage_dir=tmp_path, blob_container_name="broken"), name="broken")
    # A file where the audio file's folder should be: job records can be written, stems cannot.
    (tmp_path / "broken" / "test-audio-123").write_text("not a folder")

    assert broken.generate(_request("doomed", callback_receiver.url)).status_code == 202

    callback = callback_receiver.wait_for("doomed")
    assert callback["status"] == "failed"
    assert "storing stems failed" in callback["error"]
    assert callback["generated_stems"] == []
    assert callback["generation_request_id"] == "doomed"


def test_unknown_blob_is_404_and_paths_cannot_escape(service: Service) -> None:
    base = f"{service.base_url}/blobs/{service.settings.blob_container_name}"

    assert service.client.get(f"{base}/nope/nope/drums.wav").status_code == 404
    assert service.client.get(f"{base}/..%2F..%2Fetc/passwd").status_code == 404


def _wait_for(condition: Callable[[], bool], timeout: float) -> None:
    import time

    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met")
        time.sleep(0.1)
