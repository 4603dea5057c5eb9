"""The whole service on a real local Ray with Azure Blob storage on a real Azurite: stems land in
blobs a client downloads with plain HTTP through read-only SAS URLs, and a storage outage in the
middle of a job ends in a failed callback within the configured bound."""

import io
import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
import pytest
import soundfile as sf
from azure.storage.blob import BlobServiceClient, ContainerClient
from ray import serve

from stemforge.storage.azure_blob import HEALTH_TTL_SECONDS
from stemforge.storage.azure_bounds import StorageBounds
from tests.integration.conftest import Service
from tests.support.azurite import Azurite, azure_settings, unique_container_name
from tests.support.callback_receiver import CallbackReceiver

pytestmark = pytest.mark.integration

STEMS = ["drums", "bass", "guitar"]
DURATION_SECONDS = 4.0
# Long enough that rendering outlasts the few milliseconds between the 202 and the outage.
OUTAGE_DURATION = 20.0
# Rendering a few seconds of procedural audio and Ray's hops, on a loaded 2-core box.
JOB_ALLOWANCE_SECONDS = 30.0
# How much slower than a healthy job a failed one may be, beyond the storage deadline.
SLACK_SECONDS = 5.0


def _request(gen_id: str, callback_url: str, duration: float = DURATION_SECONDS) -> dict:
    return {
        "generation_request_id": gen_id,
        "audio_file_id": "aud-azure",
        "target_stems": STEMS,
        "parameters": {"target_bpm": 110.0, "duration_seconds": duration, "style": "rock", "random_seed": 11},
        "callback_url": callback_url,
    }


def _container(server: Azurite, name: str) -> ContainerClient:
    return BlobServiceClient.from_connection_string(server.connection_string).get_container_client(name)


@pytest.fixture
def deployed(start_service: Callable[..., Service]) -> Iterator[Callable[..., Service]]:
    """Start Serve applications for one test and delete them after it, freeing the small box."""
    names: list[str] = []

    def deploy(settings: object, name: str) -> Service:
        names.append(name)
        return start_service(settings, name=name)

    yield deploy
    for name in names:
        serve.delete(name)


def test_stems_go_to_azure_and_download_through_read_only_sas_urls(
    azurite: Azurite, deployed: Callable[..., Service], callback_receiver: CallbackReceiver
) -> None:
    container = unique_container_name("e2e")
    settings = azure_settings(
        azurite,
        container,
        azure_sas_expiry_seconds=900,
        storage_timeout_seconds=10.0,
        storage_max_retries=2,
        callback_allowed_hosts=["127.0.0.1"],  # the callback receiver listens on loopback
    )
    service = deployed(settings, "azure-e2e")

    health = service.client.get(f"{service.base_url}/health").json()
    assert health["services"]["storage"] == "connected"
    assert _container(azurite, container).exists()  # created at start-up

    assert service.generate(_request("gen-azure", callback_receiver.url)).status_code == 202
    callback = callback_receiver.wait_for("gen-azure", timeout=60)

    assert callback["status"] == "completed", callback.get("error")
    assert [s["stem_type"] for s in callback["generated_stems"]] == STEMS
    for stem in callback["generated_stems"]:
        prefix = f"{azurite.blob_endpoint}/{container}/aud-azure/gen-azure/{stem['stem_type']}.wav?"
        assert stem["blob_url"].startswith(prefix)
        download = httpx.get(stem["blob_url"])  # no storage credentials: the SAS alone
        assert download.status_code == 200
        assert download.headers["content-type"] == "audio/wav"
        assert len(download.content) == stem["file_size_bytes"]
        info = sf.info(io.BytesIO(download.content))
        assert (info.format, info.samplerate, info.channels) == ("WAV", 44100, 2)
        assert info.frames == round(DURATION_SECONDS * 44100)
        # Read-only: the same URL cannot replace or delete the stem.
        assert (
            httpx.put(stem["blob_url"], content=b"x", headers={"x-ms-blob-type": "BlockBlob"}).status_code
            == 403
        )
        assert httpx.delete(stem["blob_url"]).status_code == 403
        properties = _container(azurite, container).get_blob_client(
            f"aud-azure/gen-azure/{stem['stem_type']}.wav"
        )
        assert properties.get_blob_properties().metadata == {
            "generation_request_id": "gen-azure",
            "stem_type": stem["stem_type"],
            "engine": stem["engine"],
            "seed": str(callback["parameters"]["random_seed"]),
        }
    # Every other URL in the callback (attachments such as MIDI) downloads the same way.
    for url in _other_urls(callback):
        assert url.startswith(f"{azurite.blob_endpoint}/{container}/aud-azure/gen-azure/")
        assert httpx.get(url).status_code == 200

    # Exactly the blobs the callback names, all committed: nothing stray or half-written. (Re-runs
    # overwriting the same paths are covered in tests/storage/test_azure_blob.py.)
    named = {urlsplit(stem["blob_url"]).path for stem in callback["generated_stems"]}
    named |= {urlsplit(url).path for url in _other_urls(callback)}
    container_path = urlsplit(f"{azurite.blob_endpoint}/{container}/").path
    stored = _blob_contents(azurite, container)
    assert {container_path + quote(name) for name in stored} == named


def _other_urls(callback: dict[str, Any]) -> list[str]:
    urls = [v for k, v in callback.items() if k.endswith("_url") and isinstance(v, str)]
    for stem in callback["generated_stems"]:
        urls += [v for k, v in stem.items() if k.endswith("_url") and k != "blob_url" and isinstance(v, str)]
    return urls


def _blob_contents(server: Azurite, container: str) -> dict[str, bytes]:
    """Every blob of the request, uncommitted ones included, by name."""
    client = _container(server, container)
    listed = client.list_blobs(name_starts_with="aud-azure/gen-azure/", include=["uncommittedblobs"])
    return {blob.name: client.download_blob(blob.name).readall() for blob in listed}


def test_azurite_stopped_mid_job_ends_in_a_failed_callback_within_the_bound(
    fresh_azurite: Azurite, deployed: Callable[..., Service], callback_receiver: CallbackReceiver
) -> None:
    settings = azure_settings(
        fresh_azurite,
        unique_container_name("outage"),
        storage_timeout_seconds=1.0,
        storage_max_retries=1,
        storage_retry_backoff_seconds=0.1,
        callback_allowed_hosts=["127.0.0.1"],
    )
    bound = StorageBounds.from_settings(settings).deadline_seconds
    service = deployed(settings, "azure-outage")

    # A healthy job first: how long render, upload and callback take here, on this box.
    started = time.monotonic()
    assert service.generate(_request("gen-ok", callback_receiver.url, OUTAGE_DURATION)).status_code == 202
    assert callback_receiver.wait_for("gen-ok", timeout=JOB_ALLOWANCE_SECONDS)["status"] == "completed"
    healthy_seconds = time.monotonic() - started
    limit = healthy_seconds + bound + SLACK_SECONDS

    # Hung mid-job: once the job is accepted (and rendering), Azurite stops answering but still
    # accepts connections.
    started = time.monotonic()
    assert service.generate(_request("gen-hung", callback_receiver.url, OUTAGE_DURATION)).status_code == 202
    fresh_azurite.pause()
    hung = callback_receiver.wait_for("gen-hung", timeout=limit + JOB_ALLOWANCE_SECONDS)
    hung_seconds = time.monotonic() - started

    assert hung["status"] == "failed"
    assert "storing stems failed" in hung["error"]
    assert "did not" in hung["error"]  # "did not answer in time" or "did not finish within"
    assert hung["generated_stems"] == []
    assert settings.storage_timeout_seconds <= hung_seconds < limit
    # /health stays fast while storage hangs, and says so once its cached answer runs out.
    assert _wait_until(lambda: _storage_health(service) != "connected", timeout=HEALTH_TTL_SECONDS + 5)

    # Dead mid-job: the process is killed after the job is accepted; connections are refused.
    fresh_azurite.resume()
    started = time.monotonic()
    assert service.generate(_request("gen-dead", callback_receiver.url, OUTAGE_DURATION)).status_code == 202
    fresh_azurite.kill()
    dead = callback_receiver.wait_for("gen-dead", timeout=limit + JOB_ALLOWANCE_SECONDS)

    assert dead["status"] == "failed"
    assert "unreachable" in dead["error"]
    assert time.monotonic() - started < limit
    assert callback_receiver.count("gen-hung") == 1 and callback_receiver.count("gen-dead") == 1


def _storage_health(service: Service) -> str:
    started = time.monotonic()
    storage: str = service.client.get(f"{service.base_url}/health").json()["services"]["storage"]
    assert time.monotonic() - started < 5.0, "/health was slow"
    return storage


def _wait_until(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"condition not met within {timeout} s")
        time.sleep(0.2)
    return True
