"""Signed local blob URLs: valid for their path until they expire, and for nothing else."""

from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest

from stemforge.storage.local import LocalDiskStorage
from stemforge.storage.url_signing import BlobUrlSigner


class _Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture()
def clock() -> _Clock:
    return _Clock()


@pytest.fixture()
def storage(tmp_path: Path, clock: _Clock) -> LocalDiskStorage:
    signer = BlobUrlSigner(b"k" * 32, expiry_seconds=3600, clock=clock)
    return LocalDiskStorage(tmp_path, "audio-files", "http://svc", signer=signer)


def _query(url: str) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(url).query))


def test_a_stored_blob_s_url_is_signed_and_verifies_until_it_expires(
    storage: LocalDiskStorage, clock: _Clock
) -> None:
    blob = storage.put("aud-1/gen-1/drums.wav", b"RIFF", content_type="audio/wav")
    assert blob.url.startswith("http://svc/blobs/audio-files/aud-1/gen-1/drums.wav?se=")
    params = _query(blob.url)
    assert storage.signed_for("aud-1/gen-1/drums.wav", params)
    assert storage.signed_for("aud-1/./gen-1/drums.wav", params), "checked on the resolved path"
    clock.now += 3601
    assert not storage.signed_for("aud-1/gen-1/drums.wav", params)


@pytest.mark.parametrize(
    "tamper",
    [
        lambda p: {**p, "sig": p["sig"][:-1] + ("A" if p["sig"][-1] != "A" else "B")},
        lambda p: {**p, "se": str(int(p["se"]) + 1)},
        lambda p: {"se": p["se"]},
        lambda p: {},
    ],
)
def test_a_tampered_or_missing_signature_is_refused(storage: LocalDiskStorage, tamper) -> None:  # type: ignore[no-untyped-def]
    params = _query(storage.put("aud-1/gen-1/drums.wav", b"RIFF", content_type="audio/wav").url)
    assert not storage.signed_for("aud-1/gen-1/drums.wav", tamper(params))


def test_a_signature_is_for_one_path_only(storage: LocalDiskStorage) -> None:
    params = _query(storage.put("aud-1/gen-1/drums.wav", b"RIFF", content_type="audio/wav").url)
    storage.put("aud-1/gen-1/bass.wav", b"RIFF", content_type="audio/wav")
    assert not storage.signed_for("aud-1/gen-1/bass.wav", params)
    assert not storage.signed_for("_jobs/records/gen-1.json", params)


def test_without_a_signer_urls_are_plain_and_nothing_verifies(tmp_path: Path) -> None:
    storage = LocalDiskStorage(tmp_path, "audio-files", "http://svc")
    url = storage.put("aud-1/gen-1/drums.wav", b"RIFF", content_type="audio/wav").url
    assert url == "http://svc/blobs/audio-files/aud-1/gen-1/drums.wav"
    assert not storage.signed_for("aud-1/gen-1/drums.wav", {"se": "9999999999", "sig": "x"})
