"""Stable Audio through the whole service: a tiny random pipeline of the real architecture,
saved and loaded like the real checkpoint, beside a tiny MusicGen and the procedural engine;
a request's stems routed to several engines by the table and by ``parameters.engines``."""

import io
from collections.abc import Callable, Iterator

import httpx
import pytest
import soundfile as sf
from ray import serve

from stemforge.routing import RoutingTable
from stemforge.settings import Settings
from tests.integration.conftest import Service
from tests.support.callback_receiver import CallbackReceiver

pytestmark = pytest.mark.integration

STABLE_AUDIO = {"cpu_num_inference_steps": 2, "max_batch_size": 4, "batch_wait_timeout_s": 0.2}
MUSICGEN = {"measure_tempo": False}


@pytest.fixture(scope="module")
def models_service(
    start_service: Callable[..., Service], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Service]:
    pytest.importorskip("torch")
    pytest.importorskip("diffusers")
    from tests.support.tiny_musicgen import save_tiny_musicgen
    from tests.support.tiny_stable_audio import build_tiny_stable_audio

    root = tmp_path_factory.mktemp("models-service")
    settings = Settings(
        local_storage_dir=root / "blobs",
        mock_generation=False,
        musicgen_model=str(save_tiny_musicgen(root / "tiny-musicgen")),
        stable_audio_model=str(build_tiny_stable_audio(root / "tiny-stable-audio")),
    )
    routing = RoutingTable.from_mapping(
        {
            "mock": {"default": "procedural"},
            "ai": {"default": "musicgen", "stems": {"drums": "stable_audio", "vocals": "procedural"}},
        }
    )
    service = start_service(
        settings,
        name="models",
        routing=routing,
        engine_configs={"stable_audio": STABLE_AUDIO, "musicgen": MUSICGEN},
    )
    yield service
    serve.delete("models")  # its replicas' CPU shares go back to the other applications


def _body(gen_id: str, callback_url: str, stems: list[str], **parameters: object) -> dict:
    return {
        "generation_request_id": gen_id,
        "audio_file_id": "aud-sa",
        "target_stems": stems,
        "parameters": {"target_bpm": 120, "duration_seconds": 2.0, "random_seed": 9, **parameters},
        "callback_url": callback_url,
    }


def test_health_reports_stable_audio_truthfully(models_service: Service) -> None:
    body = models_service.client.get(f"{models_service.base_url}/health").json()

    assert body["status"] == "healthy"
    assert body["services"]["stable_audio"] == "available"
    engine = body["engines"]["stable_audio"]
    assert engine["device"] == "cpu"
    assert engine["steps"] == 2 and engine["preview"] is True
    assert any("CPU preview" in problem for problem in engine["problems"])


def test_one_request_s_stems_from_three_engines_come_back_aligned(
    models_service: Service, callback_receiver: CallbackReceiver
) -> None:
    body = _body(
        "sa-1",
        callback_receiver.url,
        ["drums", "bass", "piano", "other"],
        style="house",
        engines={"bass": "stable_audio", "other": "procedural"},  # overrides of the table
    )

    assert models_service.generate(body).status_code == 202

    callback = callback_receiver.wait_for("sa-1", timeout=240)
    assert callback["status"] == "completed", callback.get("error")
    engines = {s["stem_type"]: s["engine"] for s in callback["generated_stems"]}
    assert engines == {
        "drums": "stable_audio",
        "bass": "stable_audio",
        "piano": "musicgen",
        "other": "procedural",
    }
    assert callback["parameters"]["engines"] == engines
    for stem in callback["generated_stems"]:
        info = sf.info(io.BytesIO(httpx.get(stem["blob_url"]).content))
        assert (info.samplerate, info.channels, info.frames) == (44100, 2, 2 * 44100)
    # Several engines: every model stem was measured and lined up on the grid.
    for stem in callback["generated_stems"]:
        if stem["engine"] != "procedural":
            assert "measured_bpm" in stem and "grid_shift_ms" in stem
    prompts = callback["parameters"]["prompts"]
    assert "120 BPM" in prompts["drums"] and "house" in prompts["drums"]
    assert callback["parameters"]["stable_audio"]["steps"] == 2


@pytest.mark.parametrize(
    ("engines", "field", "words"),
    [
        (
            {"drums": "riffusion"},
            "parameters.engines.drums",
            ["not deployed", "musicgen, procedural, stable_audio"],
        ),
        ({"vocals": "musicgen"}, "parameters.engines.vocals", ["not in target_stems"]),
    ],
)
def test_an_override_the_deployment_cannot_serve_is_a_422_naming_the_stem(
    models_service: Service, engines: dict, field: str, words: list[str]
) -> None:
    answer = models_service.generate(_body("sa-bad", "http://127.0.0.1:9/cb", ["drums"], engines=engines))

    assert answer.status_code == 422
    detail = answer.json()
    text = str(detail)
    assert field in text
    for word in words:
        assert word in text
