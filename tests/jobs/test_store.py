import time
from pathlib import Path
from typing import Any

import pytest

from stemforge.errors import StorageError
from stemforge.jobs.records import JobRecord, fingerprint
from stemforge.jobs.store import JobStore
from stemforge.jobs.ticket import JobTicket
from stemforge.music.spec import MusicSpec
from stemforge.storage.base import StoredBlob
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


def test_each_claim_is_won_once_per_window(store: JobStore) -> None:
    record = _record()

    # Windows are whole multiples of the ttl (960-1020 s here).
    assert store.claim(record, "attempt-2", now=960.0, ttl_seconds=60) is True
    assert store.claim(record, "attempt-2", now=1019.0, ttl_seconds=60) is False
    assert store.claim(record, "attempt-3", now=960.0, ttl_seconds=60) is True


def test_a_claim_left_by_a_dead_replica_expires(store: JobStore) -> None:
    # A replica that dies holding a claim (say during a callback attempt) used to block that
    # work for ever: every later sweep asked for the same claim.
    record = _record()
    assert store.claim(record, "callback-3", now=970.0, ttl_seconds=60) is True
    assert store.claim(record, "callback-3", now=1010.0, ttl_seconds=60) is False
    assert store.claim(record, "callback-3", now=1030.0, ttl_seconds=60) is True


def test_closing_a_job_removes_its_marker_and_claims(store: JobStore, tmp_path: Path) -> None:
    record = _record()
    store.create(record)
    store.claim(record, "callback-2", now=1000.0, ttl_seconds=60)
    store.close("g1")
    assert store.open_markers() == []
    assert not list((tmp_path / "audio-files" / "_jobs" / "claims").rglob("*@*"))


class _NoMarkers(LocalDiskStorage):
    """Real local storage whose disk refuses the open-job marker (full to the last page)."""

    def put(self, path: str, data: bytes, **kwargs: Any) -> StoredBlob:
        if path.startswith("_jobs/open/"):
            raise StorageError("No space left on device")
        return super().put(path, data, **kwargs)


class _NoRecords(LocalDiskStorage):
    def create(self, path: str, data: bytes, *, content_type: str) -> bool:
        if path.startswith("_jobs/records/"):
            raise StorageError("No space left on device")
        return super().create(path, data, content_type=content_type)


@pytest.mark.parametrize("storage_type", [_NoMarkers, _NoRecords])
def test_a_job_is_never_recorded_without_its_open_marker(tmp_path: Path, storage_type: type) -> None:
    # The record used to be written first: with the marker refused the POST answered 503, yet a
    # repeat found the record ("already accepted") and nothing ever ran it.
    store = JobStore(storage_type(tmp_path, "audio-files", "http://svc"))
    with pytest.raises(StorageError):
        store.create(_record())
    assert store.get("g1") is None
    assert store.open_markers() == []


def test_a_missing_record_is_none(store: JobStore) -> None:
    assert store.get("nope") is None
