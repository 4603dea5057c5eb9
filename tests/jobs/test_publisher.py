"""The uploader's logic without Ray: stems, attachments and the callback payload, on real local
storage. (The record and the callback belong to the lifecycle: tests/jobs/test_lifecycle.py.)"""

import asyncio
import io
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from stemforge.engines.base import Attachment, EngineResult, RenderedStem
from stemforge.jobs.publisher import ResultPublisher
from stemforge.jobs.ticket import JobTicket
from stemforge.music.spec import MusicSpec
from stemforge.storage.local import LocalDiskStorage


def _ticket(stems: tuple[str, ...] = ("drums", "bass")) -> JobTicket:
    spec = MusicSpec(bpm=100, duration_seconds=1.0, seed=11)
    return JobTicket(
        generation_request_id="gen-9",
        audio_file_id="aud-9",
        callback_url="http://receiver.example/cb",
        accepted_at=time.time() - 0.5,
        stems=stems,
        routes={"procedural": stems},
        spec=spec,
        parameters={"random_seed": 11, "target_bpm": 100},
    )


def _result(*stems: str) -> EngineResult:
    audio = np.zeros((44100, 2), dtype=np.float32)
    audio[:, 0] = 0.25
    return EngineResult(
        stems=[
            RenderedStem(
                s,
                audio,
                "procedural",
                [Attachment("midi", "mid", b"MThd", "audio/midi")],
                {"measured_bpm": 100.2},
                prompt=f"solo {s}",
            )
            for s in stems
        ],
        applied={"key": "C major"},
        attachments=[Attachment("song_plan", "json", b"{}", "application/json")],
    )


def _publisher(root: Path) -> tuple[ResultPublisher, LocalDiskStorage]:
    storage = LocalDiskStorage(root, "audio-files", "http://svc")
    return ResultPublisher(storage), storage


def test_stems_are_stored_and_the_payload_lists_them_in_request_order(tmp_path: Path) -> None:
    publisher, storage = _publisher(tmp_path)

    payload = asyncio.run(publisher.store(_ticket(), [_result("bass", "drums")])).model_dump(mode="json")

    assert payload["status"] == "completed"
    assert [s["stem_type"] for s in payload["generated_stems"]] == ["drums", "bass"]
    drums = payload["generated_stems"][0]
    assert drums["blob_url"] == "http://svc/blobs/audio-files/aud-9/gen-9/drums.wav"
    assert drums["midi_url"] == "http://svc/blobs/audio-files/aud-9/gen-9/drums.mid"
    assert drums["measured_bpm"] == 100.2
    assert "prompt" not in drums
    assert payload["song_plan_url"] == "http://svc/blobs/audio-files/aud-9/gen-9/song_plan.json"
    assert payload["parameters"] == {
        "random_seed": 11,
        "target_bpm": 100,
        "key": "C major",
        "prompts": {"drums": "solo drums", "bass": "solo bass"},
    }
    assert payload["processing_time_seconds"] >= 0.5
    audio, rate = sf.read(io.BytesIO(storage.get("aud-9/gen-9/drums.wav")), always_2d=True)
    assert rate == 44100 and audio.shape == (44100, 2)
    assert drums["file_size_bytes"] == len(storage.get("aud-9/gen-9/drums.wav"))


def test_a_storage_failure_becomes_a_failed_payload(tmp_path: Path) -> None:
    publisher, _ = _publisher(tmp_path)
    (tmp_path / "audio-files" / "aud-9").write_text("blocks the folder")

    payload = asyncio.run(publisher.store(_ticket(), [_result("drums", "bass")]))

    assert payload.status == "failed"
    assert (payload.error or "").startswith("storing stems failed: cannot write")
    assert payload.generated_stems == []
    assert payload.parameters["random_seed"] == 11


def test_a_stem_missing_from_the_results_fails_the_job(tmp_path: Path) -> None:
    publisher, _ = _publisher(tmp_path)
    payload = asyncio.run(publisher.store(_ticket(), [_result("drums")]))
    assert payload.status == "failed"
    assert "['bass']" in (payload.error or "")


def _tone_result(*stems: str, gain_db: float | None = None) -> EngineResult:
    t = np.arange(44100) / 44100
    audio = np.stack([0.3 * np.sin(2 * np.pi * 220 * t)] * 2, axis=1).astype(np.float32)
    return EngineResult(stems=[RenderedStem(s, audio, "procedural", mix_gain_db=gain_db) for s in stems])


def test_every_stem_has_its_quality_and_the_mix_is_stored_next_to_the_stems(tmp_path: Path) -> None:
    from stemforge.dsp.loudness import true_peak_dbfs

    publisher, storage = _publisher(tmp_path)

    payload = asyncio.run(publisher.store(_ticket(), [_tone_result("drums", "bass")])).model_dump(mode="json")

    assert payload["status"] == "completed"
    for stem in payload["generated_stems"]:
        assert stem["quality"]["length_seconds"] == 1.0
        assert stem["quality"]["loudness_lufs"] < -5
        assert stem["quality"]["clipped_samples"] == 0
    assert payload["mix_url"] == "http://svc/blobs/audio-files/aud-9/gen-9/mix.wav"
    mix, rate = sf.read(io.BytesIO(storage.get("aud-9/gen-9/mix.wav")), always_2d=True)
    assert rate == 44100 and mix.shape == (44100, 2)
    assert true_peak_dbfs(mix) <= -1.0
    assert payload["quality"]["same_length"] is True
    assert payload["quality"]["mix"]["gain_sources"] == {
        "drums": "loudness-matched",
        "bass": "loudness-matched",
    }
    # One second is too short to judge a tempo: no tempo warnings, and a clean tone has no others.
    assert payload["generated_stems"][0]["quality"]["tempo_confidence"] is None
    assert payload["warnings"] == []


def test_warnings_name_the_stem_and_the_value_against_its_bound(tmp_path: Path) -> None:
    publisher, _ = _publisher(tmp_path)

    payload = asyncio.run(publisher.store(_ticket(), [_result("drums", "bass")]))

    # _result's audio is a constant 0.25 on the left channel.
    assert "drums: DC offset 0.2500 of full scale (bound 0.01)" in (payload.warnings or [])
    assert "bass: DC offset 0.2500 of full scale (bound 0.01)" in (payload.warnings or [])


def test_an_analysis_fault_costs_the_quality_never_the_stems(tmp_path: Path, monkeypatch) -> None:
    import stemforge.jobs.publisher as publisher_module

    def broken(*args: object) -> None:
        raise RuntimeError("mixer on fire")

    monkeypatch.setattr(publisher_module, "mix_stems", broken)
    publisher, _ = _publisher(tmp_path)

    payload = asyncio.run(publisher.store(_ticket(), [_tone_result("drums", "bass")]))

    assert payload.status == "completed"
    assert len(payload.generated_stems) == 2
    assert payload.mix_url is None
    assert payload.warnings == ["quality: not measured: RuntimeError('mixer on fire')"]


def test_analysis_off_leaves_the_payload_as_before(tmp_path: Path) -> None:
    from stemforge.quality.bounds import QualityConfig

    storage = LocalDiskStorage(tmp_path, "audio-files", "http://svc")
    publisher = ResultPublisher(storage, quality=QualityConfig(enabled=False))

    payload = asyncio.run(publisher.store(_ticket(), [_tone_result("drums", "bass")])).model_dump()

    assert payload["quality"] is None and payload["warnings"] is None and payload["mix_url"] is None
    assert "quality" not in payload["generated_stems"][0]
    assert not (tmp_path / "audio-files" / "aud-9" / "gen-9" / "mix.wav").exists()
