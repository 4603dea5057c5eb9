"""MusicGen through the whole service: a tiny random model of the real architecture, saved and
loaded like a real checkpoint, routed to by MOCK_GENERATION=false."""

import concurrent.futures
import io
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
import soundfile as sf

from stemforge.routing import RoutingTable
from stemforge.settings import Settings
from tests.integration.conftest import Service
from tests.support.callback_receiver import CallbackReceiver

pytestmark = pytest.mark.integration

# Merge concurrent requests: a wide window so both land in one batch on a busy box.
BATCHING = {"max_batch_size": 8, "batch_wait_timeout_s": 1.0, "measure_tempo": False}


@pytest.fixture(scope="module")
def musicgen_service(
    start_service: Callable[..., Service], tmp_path_factory: pytest.TempPathFactory
) -> Service:
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from tests.support.tiny_musicgen import save_tiny_musicgen

    root = tmp_path_factory.mktemp("musicgen-service")
    model = save_tiny_musicgen(root / "tiny-musicgen")
    settings = Settings(local_storage_dir=root / "blobs", mock_generation=False, musicgen_model=str(model))
    # Drums stay procedural: a request's stems fan out to two engines and come back aligned.
    routing = RoutingTable.from_mapping(
        {"mock": {"default": "procedural"}, "ai": {"default": "musicgen", "stems": {"drums": "procedural"}}}
    )
    return start_service(settings, name="musicgen", routing=routing, engine_configs={"musicgen": BATCHING})


def _body(gen_id: str, callback_url: str, stems: list[str]) -> dict:
    return {
        "generation_request_id": gen_id,
        "audio_file_id": "aud-mg",
        "target_stems": stems,
        "parameters": {"target_bpm": 110, "duration_seconds": 2.0, "style": "funk", "random_seed": 3},
        "callback_url": callback_url,
    }


def test_health_reports_musicgen_available_in_ai_mode(musicgen_service: Service) -> None:
    body = musicgen_service.client.get(f"{musicgen_service.base_url}/health").json()

    assert body["services"]["musicgen"] == "available"
    assert body["services"]["mode"] == "ai"
    assert body["engines"]["musicgen"]["device"] == "cpu"


def test_musicgen_stems_come_back_as_44k_stereo_wavs_with_their_prompts(
    musicgen_service: Service, callback_receiver: CallbackReceiver
) -> None:
    body = _body("mg-1", callback_receiver.url, ["bass", "drums", "guitar"])

    assert musicgen_service.generate(body).status_code == 202

    callback = callback_receiver.wait_for("mg-1", timeout=180)
    assert callback["status"] == "completed", callback.get("error")
    engines = {s["stem_type"]: s["engine"] for s in callback["generated_stems"]}
    assert engines == {"bass": "musicgen", "drums": "procedural", "guitar": "musicgen"}
    for stem in callback["generated_stems"]:
        info = sf.info(io.BytesIO(httpx.get(stem["blob_url"]).content))
        assert (info.samplerate, info.channels, info.frames) == (44100, 2, 2 * 44100)
    assert set(callback["parameters"]["prompts"]) == {"bass", "guitar"}
    assert "bass" in callback["parameters"]["prompts"]["bass"].lower()


def test_concurrent_requests_are_merged_into_one_batch(
    musicgen_service: Service, callback_receiver: CallbackReceiver
) -> None:
    bodies = [
        _body("mg-a", callback_receiver.url, ["bass", "piano"]),
        _body("mg-b", callback_receiver.url, ["synth"]),
    ]

    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        answers = list(pool.map(musicgen_service.generate, bodies))

    assert [a.status_code for a in answers] == [202, 202]
    stems = [
        s
        for gen_id in ("mg-a", "mg-b")
        for s in callback_receiver.wait_for(gen_id, timeout=180)["generated_stems"]
    ]
    assert {s["batch_size"] for s in stems} == {3}  # 2 + 1 stems decoded together


def test_a_cancelled_job_stops_early_calls_back_cancelled_and_stores_nothing(
    musicgen_service: Service, callback_receiver: CallbackReceiver
) -> None:
    import time

    gen_id = "mg-cancel"
    body = _body(gen_id, callback_receiver.url, ["bass", "guitar"])
    body["parameters"]["duration_seconds"] = 120.0  # minutes of decoding on this box, uncancelled
    started = time.monotonic()
    assert musicgen_service.generate(body).status_code == 202
    status_url = f"{musicgen_service.base_url}/generate/{gen_id}"
    deadline = time.monotonic() + 120
    while musicgen_service.client.get(status_url).json()["progress"]["fraction"] <= 0.0:
        assert time.monotonic() < deadline, "the job never started generating"
        time.sleep(0.2)

    cancel = musicgen_service.client.delete(status_url)
    callback = callback_receiver.wait_for(gen_id, timeout=60)

    assert cancel.status_code == 202 and cancel.json()["status"] == "cancelling"
    assert callback["status"] == "cancelled"
    assert "cancelled" in callback["error"]
    assert callback["generated_stems"] == []
    assert time.monotonic() - started < 60  # far from the minutes a 120 s stem takes here
    record = musicgen_service.client.get(status_url).json()
    assert record["status"] == "cancelled" and record["stage"] == "failed"
    settings = musicgen_service.settings
    job_folder = Path(settings.local_storage_dir) / settings.blob_container_name / "aud-mg" / gen_id
    assert not job_folder.exists() or not any(job_folder.iterdir())
    # Cancelling it again: too late.
    assert musicgen_service.client.delete(status_url).status_code == 409


def test_a_musicgen_stem_streams_whole_once_made_and_equals_the_stored_wav(
    musicgen_service: Service, callback_receiver: CallbackReceiver
) -> None:
    gen_id = "mg-stream"
    assert musicgen_service.generate(_body(gen_id, callback_receiver.url, ["bass"])).status_code == 202

    streamed = musicgen_service.client.get(
        f"{musicgen_service.base_url}/generate/{gen_id}/stream?stem=bass&format=pcm", timeout=180
    )
    callback = callback_receiver.wait_for(gen_id, timeout=60)

    audio, _ = sf.read(
        io.BytesIO(httpx.get(callback["generated_stems"][0]["blob_url"]).content), dtype="int16"
    )
    assert streamed.content == audio.astype("<i2").tobytes()
