"""The model engines through the whole service: tiny random Stable Audio, AudioLDM 2, Riffusion
and MusicGen models of the real architectures, saved and loaded like real checkpoints, beside the
procedural engine; a request's stems routed to several engines by the table and by
``parameters.engines``, and each engine alone."""

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
AUDIOLDM2 = {"cpu_num_inference_steps": 2}
RIFFUSION = {"cpu_num_inference_steps": 2, "griffin_lim_iterations": 4, "tile_columns": 256}
MUSICGEN = {"measure_tempo": False}


@pytest.fixture(scope="module")
def models_service(
    start_service: Callable[..., Service], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Service]:
    pytest.importorskip("torch")
    pytest.importorskip("diffusers")
    from tests.support.tiny_audioldm2 import build_tiny_audioldm2
    from tests.support.tiny_musicgen import save_tiny_musicgen
    from tests.support.tiny_riffusion import build_tiny_riffusion
    from tests.support.tiny_stable_audio import build_tiny_stable_audio

    root = tmp_path_factory.mktemp("models-service")
    settings = Settings(
        local_storage_dir=root / "blobs",
        mock_generation=False,
        musicgen_model=str(save_tiny_musicgen(root / "tiny-musicgen")),
        stable_audio_model=str(build_tiny_stable_audio(root / "tiny-stable-audio")),
        audioldm2_model=str(build_tiny_audioldm2(root / "tiny-audioldm2")),
        riffusion_model=str(build_tiny_riffusion(root / "tiny-riffusion")),
    )
    routing = RoutingTable.from_mapping(
        {
            "mock": {"default": "procedural"},
            "ai": {
                "default": "musicgen",
                "stems": {
                    "drums": "stable_audio",
                    "vocals": "procedural",
                    "guitar": "riffusion",
                    "other": "audioldm2",
                },
            },
        }
    )
    service = start_service(
        settings,
        name="models",
        routing=routing,
        engine_configs={
            "stable_audio": STABLE_AUDIO,
            "audioldm2": AUDIOLDM2,
            "riffusion": RIFFUSION,
            "musicgen": MUSICGEN,
        },
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


def test_health_reports_every_engine_truthfully(models_service: Service) -> None:
    body = models_service.client.get(f"{models_service.base_url}/health").json()

    assert body["status"] == "healthy"
    assert body["services"]["stable_audio"] == "available"
    assert set(body["engines"]) == {"procedural", "musicgen", "stable_audio", "audioldm2", "riffusion"}
    for name in ("stable_audio", "audioldm2", "riffusion"):
        engine = body["engines"][name]
        assert engine["status"] == "available" and engine["device"] == "cpu"
        assert engine["steps"] == 2 and engine["preview"] is True
        assert any("CPU preview" in problem for problem in engine["problems"])
    # AudioLDM 2's vocoder makes 16 kHz audio: its 8 kHz bandwidth is said, not hidden.
    audioldm2 = body["engines"]["audioldm2"]
    assert (audioldm2["native_sample_rate"], audioldm2["bandwidth_hz"]) == (16000, 8000)


def test_one_request_s_stems_from_five_engines_come_back_aligned(
    models_service: Service, callback_receiver: CallbackReceiver
) -> None:
    body = _body(
        "sa-1",
        callback_receiver.url,
        ["drums", "bass", "piano", "guitar", "other", "vocals"],
        style="house",
        engines={"bass": "stable_audio"},  # an override of the table
    )

    assert models_service.generate(body).status_code == 202

    callback = callback_receiver.wait_for("sa-1", timeout=300)
    assert callback["status"] == "completed", callback.get("error")
    engines = {s["stem_type"]: s["engine"] for s in callback["generated_stems"]}
    assert engines == {
        "drums": "stable_audio",
        "bass": "stable_audio",
        "piano": "musicgen",
        "guitar": "riffusion",
        "other": "audioldm2",
        "vocals": "procedural",
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
    assert callback["parameters"]["riffusion"]["steps"] == 2


@pytest.mark.parametrize("engine", ["stable_audio", "audioldm2", "riffusion"])
def test_each_diffusion_engine_alone_through_the_unchanged_contract(
    models_service: Service, callback_receiver: CallbackReceiver, engine: str
) -> None:
    body = _body(
        f"alone-{engine}", callback_receiver.url, ["bass", "synth"], engines={"bass": engine, "synth": engine}
    )

    assert models_service.generate(body).status_code == 202

    callback = callback_receiver.wait_for(f"alone-{engine}", timeout=240)
    assert callback["status"] == "completed", callback.get("error")
    assert {s["engine"] for s in callback["generated_stems"]} == {engine}
    for stem in callback["generated_stems"]:
        assert (stem["sample_rate"], stem["channels"], stem["duration_seconds"]) == (44100, 2, 2.0)


@pytest.mark.parametrize(
    ("engines", "field", "words"),
    [
        (
            {"drums": "kazoo:Kazoo"},
            "parameters.engines.drums",
            ["not deployed", "audioldm2, musicgen, procedural, riffusion, stable_audio"],
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
