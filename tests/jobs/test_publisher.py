"""The uploader's logic without Ray: real local storage, a real callback endpoint on loopback."""

import asyncio
import io
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from stemforge.engines.base import Attachment, EngineResult, RenderedStem
from stemforge.jobs.callbacks import CallbackClient, CallbackDelivery
from stemforge.jobs.publisher import ResultPublisher
from stemforge.jobs.records import JobRecord
from stemforge.jobs.store import JobStore
from stemforge.jobs.ticket import JobTicket
from stemforge.music.spec import MusicSpec
from stemforge.storage.local import LocalDiskStorage
from tests.support.callback_receiver import CallbackReceiver, start_callback_receiver


@pytest.fixture()
def receiver():  # type: ignore[no-untyped-def]
    yield from start_callback_receiver()


def _ticket(callback_url: str | None, stems: tuple[str, ...] = ("drums", "bass")) -> JobTicket:
    spec = MusicSpec(bpm=100, duration_seconds=1.0, seed=11)
    return JobTicket(
        generation_request_id="gen-9",
        audio_file_id="aud-9",
        callback_url=callback_url,
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
                {"prompt": f"solo {s}", "measured_bpm": 100.2},
            )
            for s in stems
        ],
        applied={"key": "C major"},
        attachments=[Attachment("song_plan", "json", b"{}", "application/json")],
    )


def _publisher(root: Path) -> tuple[ResultPublisher, LocalDiskStorage]:
    storage = LocalDiskStorage(root, "audio-files", "http://svc")
    client = CallbackClient(timeout_seconds=2, allowed_hosts=["127.0.0.1"])
    delivery = CallbackDelivery(client, [0, 0], inline_wait_max_seconds=10)
    return ResultPublisher(storage, JobStore(storage), delivery), storage


def test_stems_are_stored_and_the_callback_lists_them_in_request_order(
    tmp_path: Path, receiver: CallbackReceiver
) -> None:
    publisher, storage = _publisher(tmp_path)

    payload = asyncio.run(publisher.publish(_ticket(receiver.url), [_result("bass", "drums")]))

    sent = receiver.wait_for("gen-9")
    assert sent == payload.model_dump(mode="json")
    assert sent["status"] == "completed"
    assert [s["stem_type"] for s in sent["generated_stems"]] == ["drums", "bass"]
    drums = sent["generated_stems"][0]
    assert drums["blob_url"] == "http://svc/blobs/audio-files/aud-9/gen-9/drums.wav"
    assert drums["midi_url"] == "http://svc/blobs/audio-files/aud-9/gen-9/drums.mid"
    assert drums["measured_bpm"] == 100.2
    assert sent["song_plan_url"] == "http://svc/blobs/audio-files/aud-9/gen-9/song_plan.json"
    assert sent["parameters"] == {
        "random_seed": 11,
        "target_bpm": 100,
        "key": "C major",
        "prompts": {"drums": "solo drums", "bass": "solo bass"},
    }
    assert sent["processing_time_seconds"] >= 0.5
    audio, rate = sf.read(io.BytesIO(storage.get("aud-9/gen-9/drums.wav")), always_2d=True)
    assert rate == 44100 and audio.shape == (44100, 2)
    assert drums["file_size_bytes"] == len(storage.get("aud-9/gen-9/drums.wav"))


def test_a_storage_failure_becomes_a_failed_callback(tmp_path: Path, receiver: CallbackReceiver) -> None:
    publisher, _ = _publisher(tmp_path)
    (tmp_path / "audio-files" / "aud-9").write_text("blocks the folder")

    payload = asyncio.run(publisher.publish(_ticket(receiver.url), [_result("drums", "bass")]))

    sent = receiver.wait_for("gen-9")
    assert sent["status"] == payload.status == "failed"
    assert sent["error"].startswith("storing stems failed: cannot write")
    assert sent["generated_stems"] == []


def test_a_stem_missing_from_the_results_fails_the_job(tmp_path: Path, receiver: CallbackReceiver) -> None:
    publisher, _ = _publisher(tmp_path)

    asyncio.run(publisher.publish(_ticket(receiver.url), [_result("drums")]))

    sent = receiver.wait_for("gen-9")
    assert sent["status"] == "failed"
    assert "['bass']" in sent["error"]


def test_fail_sends_the_reason(tmp_path: Path, receiver: CallbackReceiver) -> None:
    publisher, _ = _publisher(tmp_path)

    asyncio.run(publisher.fail(_ticket(receiver.url), "generation failed: ValueError: boom"))

    sent = receiver.wait_for("gen-9")
    assert (sent["status"], sent["error"]) == ("failed", "generation failed: ValueError: boom")
    assert sent["parameters"]["random_seed"] == 11


def test_the_outcome_is_recorded_on_the_job_and_the_job_closed(
    tmp_path: Path, receiver: CallbackReceiver
) -> None:
    publisher, storage = _publisher(tmp_path)
    store = JobStore(storage)
    ticket = _ticket(receiver.url)
    store.create(JobRecord.for_ticket(ticket, fingerprint="f"))
    assert [m.generation_request_id for m in store.open_markers()] == ["gen-9"]

    asyncio.run(publisher.publish(ticket, [_result("drums", "bass")]))

    record = store.get("gen-9")
    assert record is not None
    assert (record.status, record.stage) == ("completed", "done")
    assert record.result is not None and record.result.generated_stems[0].stem_type == "drums"
    assert record.callback is not None and record.callback.delivered
    assert record.callback.webhook_id == ticket.webhook_id
    assert store.open_markers() == []


def test_an_undelivered_callback_keeps_the_job_open_with_its_next_attempt(
    tmp_path: Path, receiver: CallbackReceiver
) -> None:
    storage = LocalDiskStorage(tmp_path, "audio-files", "http://svc")
    store = JobStore(storage)
    client = CallbackClient(timeout_seconds=2, allowed_hosts=["127.0.0.1"])
    publisher = ResultPublisher(
        storage, store, CallbackDelivery(client, [0, 3600], inline_wait_max_seconds=1)
    )
    ticket = _ticket(receiver.url)
    store.create(JobRecord.for_ticket(ticket, fingerprint="f"))
    receiver.responses.append(503)

    asyncio.run(publisher.fail(ticket, "engine exploded"))

    record = store.get("gen-9")
    assert record is not None and record.callback is not None
    assert record.status == "failed"
    assert [a.status_code for a in record.callback.attempts] == [503]
    assert (
        record.callback.next_attempt_at is not None and record.callback.next_attempt_at > time.time() + 3000
    )
    assert [m.generation_request_id for m in store.open_markers()] == ["gen-9"]


def test_a_run_whose_record_was_replaced_by_a_newer_job_does_not_overwrite_it(
    tmp_path: Path, receiver: CallbackReceiver
) -> None:
    publisher, storage = _publisher(tmp_path)
    store = JobStore(storage)
    old_run, new_run = _ticket(receiver.url), _ticket(receiver.url)
    store.create(JobRecord.for_ticket(old_run, fingerprint="f"))
    store.replace(JobRecord.for_ticket(new_run, fingerprint="f"))  # the id was reused after its window

    asyncio.run(publisher.publish(old_run, [_result("drums", "bass")]))

    assert receiver.wait_for("gen-9")["status"] == "completed"  # the old run's client still hears back
    record = store.get("gen-9")
    assert record is not None
    assert (record.run_id, record.status) == (new_run.run_id, "processing")
