import time
from pathlib import Path

import pytest

from stemforge.jobs.records import JobRecord, fingerprint
from stemforge.jobs.store import JobStore
from stemforge.jobs.ticket import JobTicket
from stemforge.music.spec import MusicSpec
from stemforge.storage.local import LocalDiskStorage


@pytest.fixture()
def store(tmp_path: Path) -> JobStore:
    return JobStore(LocalDiskStorage(tmp_path, "audio-files", "http://svc"))


def _record(gen_id: str = "g1") -> JobRecord:
    ticket = JobTicket(
        generation_request_id=gen_id,
        audio_file_id="a1",
        callback_url=None,
        accepted_at=time.time(),
        stems=("drums",),
        routes={"procedural": ("drums",)},
        spec=MusicSpec(bpm=90, duration_seconds=2, seed=4, chord_progression=("Am", "F")),
        parameters={"random_seed": 4},
    )
    return JobRecord.for_ticket(ticket, fingerprint("{}"))


def test_a_record_round_trips_with_its_ticket(store: JobStore) -> None:
    record = _record()

    assert store.create(record) is True
    loaded = store.get("g1")

    assert loaded is not None
    assert loaded.job_ticket() == record.job_ticket()
    assert loaded.job_ticket().spec.chord_progression == ("Am", "F")


def test_the_first_creator_wins_and_the_record_is_kept(store: JobStore) -> None:
    first, second = _record(), _record()

    assert store.create(first) is True
    assert store.create(second) is False
    loaded = store.get("g1")
    assert loaded is not None and loaded.run_id == first.run_id


def test_open_markers_track_unfinished_jobs(store: JobStore) -> None:
    record = _record()
    store.create(record)

    store.beat(record, at=123.0)

    assert [(m.generation_request_id, m.heartbeat_at) for m in store.open_markers()] == [("g1", 123.0)]
    store.close("g1")
    assert store.open_markers() == []


def test_each_claim_is_won_once(store: JobStore) -> None:
    record = _record()

    assert store.claim(record, "attempt-2") is True
    assert store.claim(record, "attempt-2") is False
    assert store.claim(record, "attempt-3") is True


def test_a_missing_record_is_none(store: JobStore) -> None:
    assert store.get("nope") is None
