from pathlib import Path

import pytest

from stemforge.errors import BlobNotFound, StorageError
from stemforge.storage.base import Storage, blob_path
from stemforge.storage.local import LocalDiskStorage


@pytest.fixture()
def storage(tmp_path: Path) -> LocalDiskStorage:
    return LocalDiskStorage(tmp_path, "audio-files", "http://stems.example:8080")


def test_it_fulfils_the_storage_contract(storage: LocalDiskStorage) -> None:
    assert isinstance(storage, Storage)
    assert storage.check() == "connected"


def test_put_then_get_round_trips_and_the_url_is_served_by_the_service(storage: LocalDiskStorage) -> None:
    path = blob_path("aud-1", "gen-1", "drums.wav")

    blob = storage.put(path, b"RIFF....", content_type="audio/wav")

    assert storage.get(path) == b"RIFF...."
    assert blob.size_bytes == 8
    assert blob.url == "http://stems.example:8080/blobs/audio-files/aud-1/gen-1/drums.wav"


def test_a_rewrite_replaces_the_blob_whole_and_leaves_no_temporary_files(
    storage: LocalDiskStorage, tmp_path: Path
) -> None:
    path = blob_path("aud-1", "gen-1", "bass.wav")
    storage.put(path, b"first version", content_type="audio/wav")

    storage.put(path, b"second", content_type="audio/wav")

    assert storage.get(path) == b"second"
    assert [p.name for p in (tmp_path / "audio-files" / "aud-1" / "gen-1").iterdir()] == ["bass.wav"]


@pytest.mark.parametrize("path", ["../outside.wav", "a/../../outside.wav", "/etc/passwd", ""])
def test_paths_cannot_leave_the_container(storage: LocalDiskStorage, path: str) -> None:
    with pytest.raises(BlobNotFound):
        storage.put(path, b"x", content_type="audio/wav")


def test_a_missing_blob_is_blob_not_found(storage: LocalDiskStorage) -> None:
    with pytest.raises(BlobNotFound):
        storage.get("aud/gen/none.wav")


@pytest.mark.parametrize("name", ["\U0001f3b8" * 128 + ".json", "a" * 256, "\u00e9" * 128])
def test_a_name_too_long_to_exist_is_not_found_not_a_storage_failure(
    storage: LocalDiskStorage, name: str
) -> None:
    # An id of 128 four-byte characters makes a file name no file system holds (255 bytes).
    storage.put("_jobs/records/other.json", b"{}", content_type="application/json")  # the folder exists
    with pytest.raises(BlobNotFound):
        storage.get(f"_jobs/records/{name}")


def test_a_write_that_cannot_happen_is_a_storage_error(storage: LocalDiskStorage, tmp_path: Path) -> None:
    (tmp_path / "audio-files" / "aud-1").write_text("a file where a folder should be")

    with pytest.raises(StorageError, match="cannot write"):
        storage.put("aud-1/gen/drums.wav", b"x", content_type="audio/wav")


def test_create_writes_only_when_absent(storage: LocalDiskStorage) -> None:
    assert storage.create("_jobs/g1.json", b"first", content_type="application/json") is True
    assert storage.create("_jobs/g1.json", b"second", content_type="application/json") is False
    assert storage.get("_jobs/g1.json") == b"first"


def test_of_concurrent_creators_exactly_one_wins(storage: LocalDiskStorage) -> None:
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=16) as pool:
        wins = list(
            pool.map(
                lambda i: storage.create("race/one", str(i).encode(), content_type="text/plain"), range(50)
            )
        )

    assert wins.count(True) == 1


def test_list_and_delete(storage: LocalDiskStorage) -> None:
    for path in ("_jobs/open/a", "_jobs/open/b", "_jobs/a.json", "aud/gen/drums.wav"):
        storage.put(path, b"x", content_type="text/plain")

    assert storage.list("_jobs/open/") == ["_jobs/open/a", "_jobs/open/b"]
    assert storage.list("_jobs/") == ["_jobs/a.json", "_jobs/open/a", "_jobs/open/b"]
    assert storage.list("nothing/") == []
    storage.delete("_jobs/open/a")
    storage.delete("_jobs/open/a")  # already gone: no error
    assert storage.list("_jobs/open/") == ["_jobs/open/b"]


@pytest.fixture()
def small_disk(tmp_path: Path):  # type: ignore[no-untyped-def]
    """A real 2 MiB filesystem (tmpfs; needs root, as CI runs)."""
    import subprocess

    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_health_says_a_full_disk_cannot_take_a_write(small_disk: Path) -> None:
    storage = LocalDiskStorage(small_disk, "audio-files", "http://svc")
    assert storage.check() == "connected"
    filler = small_disk / "filler"
    with open(filler, "wb") as handle:
        try:
            while True:
                handle.write(bytes(64 * 1024))
                handle.flush()
        except OSError:
            pass  # full to the last page

    status = storage.check()

    assert status != "connected"
    assert "cannot take a write" in status and "No space left" in status
    assert [p.name for p in (small_disk / "audio-files").iterdir()] == [], "the probe cleans up"
    filler.unlink()
    assert storage.check() == "connected"


@pytest.mark.parametrize(
    "path",
    [
        "_jobs/records/gen-1.json",
        "./_jobs/records/gen-1.json",
        "aud-1/../_jobs/records/gen-1.json",
        "x/y/../../_jobs/records/gen-1.json",
        "aud-1/gen-1/.drums.wav.abc.part",
        "aud-1/gen-1/drums\x00.wav",
        "../outside.wav",
        "aud-1/gen-1",
    ],
)
def test_public_files_never_include_job_records_staging_files_or_escapes(
    storage: LocalDiskStorage, tmp_path: Path, path: str
) -> None:
    storage.put("_jobs/records/gen-1.json", b"{}", content_type="application/json")
    storage.put(blob_path("aud-1", "gen-1", "drums.wav"), b"RIFF", content_type="audio/wav")
    (tmp_path / "audio-files" / "aud-1" / "gen-1" / ".drums.wav.abc.part").write_bytes(b"half")
    (tmp_path / "outside.wav").write_bytes(b"RIFF")

    with pytest.raises(BlobNotFound):
        storage.public_file(path, hidden_prefixes=("_jobs",))
    assert storage.public_file("aud-1/gen-1/drums.wav", hidden_prefixes=("_jobs",)).read_bytes() == b"RIFF"


def test_a_nul_in_a_path_is_not_found_rather_than_a_crash(storage: LocalDiskStorage) -> None:
    with pytest.raises(BlobNotFound):
        storage.get("_jobs/records/gen\x00.json")
