"""Quality analysis through the whole service: every callback brings each stem's quality, the
request's, warnings and a mix (docs/quality.md)."""

import io
from collections.abc import Callable

import httpx
import pytest
import soundfile as sf

from stemforge.dsp.loudness import true_peak_dbfs
from stemforge.settings import Settings
from tests.integration.conftest import Service
from tests.support.callback_receiver import CallbackReceiver

pytestmark = pytest.mark.integration

CHORDS = ["C", "G", "Am", "F"]


def _body(gen_id: str, callback_url: str, stems: list[str], bpm: float, seconds: float) -> dict:
    return {
        "generation_request_id": gen_id,
        "audio_file_id": "aud-quality",
        "target_stems": stems,
        "parameters": {
            "target_bpm": bpm,
            "duration_seconds": seconds,
            "style": "pop",
            "chord_progression": CHORDS,
            "random_seed": 7,
        },
        "callback_url": callback_url,
    }


def _download_wav(url: str) -> tuple:
    audio, rate = sf.read(io.BytesIO(httpx.get(url).content), always_2d=True)
    return audio, rate


def test_a_procedural_callback_measures_the_asked_tempo_and_chords_and_brings_a_mix(
    service: Service, callback_receiver: CallbackReceiver
) -> None:
    body = _body("quality-proc", callback_receiver.url, ["drums", "bass", "piano"], bpm=97.0, seconds=12.0)

    assert service.generate(body).status_code == 202
    callback = callback_receiver.wait_for("quality-proc", timeout=90)

    assert callback["status"] == "completed", callback.get("error")
    stems = {s["stem_type"]: s["quality"] for s in callback["generated_stems"]}
    assert stems["drums"]["tempo_bpm"] == pytest.approx(97.0, rel=0.01)
    assert stems["drums"]["tempo_relation"] == "1"
    assert stems["piano"]["chord_adherence"] >= 0.75
    assert stems["bass"]["chord_adherence"] >= 0.75
    quality = callback["quality"]
    assert quality["tempo_bpm"] == pytest.approx(97.0, rel=0.01)  # the mix's
    assert quality["same_length"] is True and quality["length_seconds"] == 12.0
    assert quality["same_grid"] is True
    assert quality["key"] == "C major" == callback["parameters"]["key"]
    assert not [w for w in callback["warnings"] if "tempo" in w or "chords" in w or "grid" in w]
    # The analysis runs beside the stems' storage; measured here (docs/quality.md) well under this.
    assert quality["analysis_seconds"] < 20.0
    mix, rate = _download_wav(callback["mix_url"])
    assert callback["mix_url"].endswith("/aud-quality/quality-proc/mix.wav")
    assert (rate, mix.shape) == (44100, (12 * 44100, 2))
    assert true_peak_dbfs(mix) <= -1.0
    assert quality["mix"]["true_peak_dbtp"] <= -1.0
    # GET /generate/{id} shows the same.
    status = service.client.get(f"{service.base_url}/generate/quality-proc").json()
    assert status["quality"] == quality and status["warnings"] == callback["warnings"]
    assert status["mix_url"] == callback["mix_url"]
    assert status["generated_stems"][0]["quality"] == callback["generated_stems"][0]["quality"]


@pytest.fixture(scope="module")
def noisy_service(start_service: Callable[..., Service], tmp_path_factory: pytest.TempPathFactory) -> Service:
    """A tiny random MusicGen (its audio is noise) renders the bass and guitar; drums stay
    procedural."""
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from stemforge.routing import RoutingTable
    from tests.support.tiny_musicgen import save_tiny_musicgen

    root = tmp_path_factory.mktemp("quality-musicgen")
    model = save_tiny_musicgen(root / "tiny-musicgen")
    settings = Settings(local_storage_dir=root / "blobs", mock_generation=False, musicgen_model=str(model))
    routing = RoutingTable.from_mapping(
        {"mock": {"default": "procedural"}, "ai": {"default": "musicgen", "stems": {"drums": "procedural"}}}
    )
    return start_service(
        settings, name="quality-mg", routing=routing, engine_configs={"musicgen": {"measure_tempo": False}}
    )


def test_noise_from_a_model_engine_is_warned_about_by_stem(
    noisy_service: Service, callback_receiver: CallbackReceiver
) -> None:
    body = _body("quality-noise", callback_receiver.url, ["drums", "bass", "guitar"], bpm=120.0, seconds=4.0)

    assert noisy_service.generate(body).status_code == 202
    callback = callback_receiver.wait_for("quality-noise", timeout=180)

    assert callback["status"] == "completed", callback.get("error")
    engines = {s["stem_type"]: s["engine"] for s in callback["generated_stems"]}
    assert engines == {"drums": "procedural", "bass": "musicgen", "guitar": "musicgen"}
    warnings = callback["warnings"]
    assert any(w.startswith(("bass: ", "guitar: ")) for w in warnings), warnings
    guitar = next(s["quality"] for s in callback["generated_stems"] if s["stem_type"] == "guitar")
    assert guitar["chord_adherence"] < 0.5
    assert any(w.startswith("guitar: follows the asked chords in") for w in warnings)
    mix, _ = _download_wav(callback["mix_url"])
    assert mix.shape == (4 * 44100, 2)
    assert true_peak_dbfs(mix) <= -1.0
