"""The Azure Blob backend against a real Azurite: uploads, SAS URLs, start-up checks, outages.

Run with ``pytest -p tests.support.azurite`` until tests/conftest.py loads that plugin.
"""

import os
import socket
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import httpx
import pytest
from azure.storage.blob import (
    AccountSasPermissions,
    BlobServiceClient,
    ContainerClient,
    ResourceTypes,
    generate_account_sas,
)

from stemforge.errors import BlobNotFound, ConfigurationError, StorageError
from stemforge.settings import Settings
from stemforge.storage.azure_blob import HEALTH_WAIT_SECONDS, AzureBlobStorage
from stemforge.storage.azure_bounds import StorageBounds
from stemforge.storage.base import Storage
from stemforge.storage.factory import storage_from_settings
from tests.support.azurite import (
    DEV_ACCOUNT_KEY,
    DEV_ACCOUNT_NAME,
    Azurite,
    AzuriteBearerToken,
    azure_settings,
    unique_container_name,
)

PATH = "aud-1/gen-1/drums.wav"
METADATA = {"generation_request_id": "gen-1", "stem_type": "drums", "engine": "procedural", "seed": "42"}
# Slack for a loaded 2-core test box on top of a bound the code promises.
SLACK_SECONDS = 1.5


def inspect(server: Azurite, container: str) -> ContainerClient:
    """An independent SDK client, to see what the backend really wrote."""
    return BlobServiceClient.from_connection_string(server.connection_string).get_container_client(container)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- start-up ---------------------------------------------------------------------------------
def test_factory_picks_azure_and_creates_the_missing_container(
    azurite: Azurite, azure_container_name: str
) -> None:
    container = inspect(azurite, azure_container_name)
    assert not container.exists()

    storage = storage_from_settings(azure_settings(azurite, azure_container_name))

    assert storage.name == "azure"
    assert isinstance(storage, Storage)
    assert container.exists()
    # A second replica starting on the now existing container is just as happy.
    assert (
        AzureBlobStorage.from_settings(azure_settings(azurite, azure_container_name)).check() == "connected"
    )


def test_wrong_account_key_fails_at_start_up_without_echoing_the_key(
    azurite: Azurite, azure_container_name: str
) -> None:
    wrong_key = "d3Jvbmcta2V5LXdyb25nLWtleS13cm9uZy1rZXktd3Jvbmcta2V5LXdyb25nLWtleQ=="
    settings = azure_settings(
        azurite,
        azure_container_name,
        azure_storage_connection_string=azurite.connection_string_with_key(wrong_key),
    )

    with pytest.raises(ConfigurationError, match="refused the credentials") as caught:
        AzureBlobStorage.from_settings(settings)

    assert wrong_key not in caught.value.message
    assert not inspect(azurite, azure_container_name).exists()


@pytest.mark.parametrize(
    ("connection_string", "reason"),
    [("not a connection string", "malformed"), ("AccountName=only-a-name", "no credential")],
)
def test_malformed_connection_string_fails_at_start_up(connection_string: str, reason: str) -> None:
    settings = azure_settings_without_server(azure_storage_connection_string=connection_string)

    with pytest.raises(ConfigurationError, match=f"AZURE_STORAGE_CONNECTION_STRING.*{reason}"):
        AzureBlobStorage.from_settings(settings)


def test_account_url_must_be_https_for_a_token_credential() -> None:
    settings = azure_settings_without_server(
        azure_storage_connection_string=None,
        azure_storage_account_url="http://127.0.0.1:10000/devstoreaccount1",
    )

    with pytest.raises(ConfigurationError, match="https://"):
        AzureBlobStorage.from_settings(settings)


def test_account_url_without_any_identity_fails_at_start_up(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # No identity anywhere: no AZURE_* variables, no Azure CLI on PATH, an empty home (no token
    # cache). On an Azure VM with a managed identity this would find one; CI runners have none.
    for name in list(os.environ):
        if name.startswith(("AZURE_", "IDENTITY_", "MSI_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("PATH", str(tmp_path))
    settings = azure_settings_without_server(
        azure_storage_connection_string=None,
        azure_storage_account_url=f"https://127.0.0.1:{closed_port()}/devstoreaccount1",
    )
    started = time.monotonic()

    with pytest.raises(ConfigurationError, match="DefaultAzureCredential"):
        AzureBlobStorage.from_settings(settings)

    assert time.monotonic() - started < StorageBounds.from_settings(settings).deadline_seconds + SLACK_SECONDS


def test_unreachable_account_fails_at_start_up_quickly(fresh_azurite: Azurite) -> None:
    settings = azure_settings(fresh_azurite, unique_container_name())
    fresh_azurite.stop()
    started = time.monotonic()

    with pytest.raises(StorageError, match="unreachable"):
        AzureBlobStorage.from_settings(settings)

    assert time.monotonic() - started < StorageBounds.from_settings(settings).deadline_seconds + SLACK_SECONDS


def test_hung_account_fails_at_start_up_within_the_deadline(fresh_azurite: Azurite) -> None:
    settings = azure_settings(fresh_azurite, unique_container_name())
    fresh_azurite.pause()
    started = time.monotonic()

    with pytest.raises(StorageError, match="did not"):
        AzureBlobStorage.from_settings(settings)

    elapsed = time.monotonic() - started
    assert settings.storage_timeout_seconds <= elapsed
    assert elapsed < StorageBounds.from_settings(settings).deadline_seconds + SLACK_SECONDS


# --- uploads and downloads ----------------------------------------------------------------------
def test_put_stores_the_whole_blob_with_content_type_and_metadata(
    azurite: Azurite, azure_container_name: str
) -> None:
    storage = AzureBlobStorage.from_settings(azure_settings(azurite, azure_container_name))
    data = os.urandom(300_000)

    stored = storage.put(PATH, data, content_type="audio/wav", metadata=METADATA)

    assert stored.path == PATH
    assert stored.size_bytes == len(data)
    assert stored.url == f"{azurite.blob_endpoint}/{azure_container_name}/{PATH}"
    properties = inspect(azurite, azure_container_name).get_blob_client(PATH).get_blob_properties()
    assert properties.size == len(data)
    assert properties.content_settings.content_type == "audio/wav"
    assert properties.metadata == METADATA
    assert properties.blob_type == "BlockBlob"
    assert storage.get(PATH) == data


def test_rerun_replaces_the_blob_leaving_no_duplicate_or_uncommitted_block(
    azurite: Azurite, azure_container_name: str
) -> None:
    storage = AzureBlobStorage.from_settings(azure_settings(azurite, azure_container_name))
    first, second = os.urandom(200_000), os.urandom(150_000)

    storage.put(PATH, first, content_type="audio/wav", metadata=METADATA)
    storage.put(PATH, second, content_type="audio/wav", metadata={**METADATA, "seed": "43"})

    listed = list(
        inspect(azurite, azure_container_name).list_blobs(
            name_starts_with="aud-1/gen-1/", include=["uncommittedblobs", "metadata"]
        )
    )
    assert [(b.name, b.size, b.metadata["seed"]) for b in listed] == [(PATH, len(second), "43")]
    assert storage.get(PATH) == second


def test_get_of_a_missing_blob_raises_blob_not_found(azurite: Azurite, azure_container_name: str) -> None:
    storage = AzureBlobStorage.from_settings(azure_settings(azurite, azure_container_name))

    with pytest.raises(BlobNotFound):
        storage.get("aud-1/gen-1/nothing.wav")


def test_metadata_names_must_be_identifiers(azurite: Azurite, azure_container_name: str) -> None:
    storage = AzureBlobStorage.from_settings(azure_settings(azurite, azure_container_name))

    with pytest.raises(StorageError, match="stem-type"):
        storage.put(PATH, b"RIFF", content_type="audio/wav", metadata={"stem-type": "drums"})

    assert not inspect(azurite, azure_container_name).get_blob_client(PATH).exists()


def test_create_writes_only_if_absent_and_exactly_one_of_concurrent_creators_wins(
    azurite: Azurite, azure_container_name: str
) -> None:
    storage = AzureBlobStorage.from_settings(azure_settings(azurite, azure_container_name))
    path = "_jobs/records/gen-1.json"

    assert storage.create(path, b'{"first": true}', content_type="application/json") is True
    assert storage.create(path, b'{"second": true}', content_type="application/json") is False
    assert storage.get(path) == b'{"first": true}'

    race = "_jobs/claims/gen-1/run-1/attempt-2"
    with ThreadPoolExecutor(max_workers=8) as pool:
        wins = list(
            pool.map(lambda i: storage.create(race, str(i).encode(), content_type="text/plain"), range(8))
        )
    assert wins.count(True) == 1
    assert storage.get(race) == str(wins.index(True)).encode()


def test_list_returns_the_paths_under_a_prefix_and_delete_is_idempotent(
    azurite: Azurite, azure_container_name: str
) -> None:
    storage = AzureBlobStorage.from_settings(azure_settings(azurite, azure_container_name))
    for path in ("_jobs/open/b.json", "_jobs/open/a.json", "_jobs/records/a.json", "aud-1/gen-1/drums.wav"):
        storage.put(path, b"{}", content_type="application/json")

    assert storage.list("_jobs/open/") == ["_jobs/open/a.json", "_jobs/open/b.json"]
    assert storage.list("nothing/") == []

    storage.delete("_jobs/open/a.json")
    storage.delete("_jobs/open/a.json")  # already gone: no error
    assert storage.list("_jobs/") == ["_jobs/open/b.json", "_jobs/records/a.json"]


# --- SAS URLs -----------------------------------------------------------------------------------
def test_sas_url_reads_but_refuses_writes_deletes_and_tampering(
    azurite: Azurite, azure_container_name: str
) -> None:
    settings = azure_settings(azurite, azure_container_name, azure_sas_expiry_seconds=600)
    storage = AzureBlobStorage.from_settings(settings)
    data = os.urandom(50_000)

    url = storage.put(PATH, data, content_type="audio/wav", metadata=METADATA).url

    assert url.startswith(f"{azurite.blob_endpoint}/{azure_container_name}/{PATH}?")
    query = parse_qs(urlsplit(url).query)
    assert query["sp"] == ["r"]
    expiry = datetime.fromisoformat(query["se"][0].replace("Z", "+00:00"))
    assert abs(expiry - (datetime.now(UTC) + timedelta(seconds=600))) < timedelta(seconds=30)
    download = httpx.get(url)
    assert download.status_code == 200
    assert download.headers["content-type"] == "audio/wav"
    assert download.content == data
    overwrite = httpx.put(url, content=b"evil", headers={"x-ms-blob-type": "BlockBlob"})
    assert overwrite.status_code == 403
    assert httpx.delete(url).status_code == 403
    assert httpx.get(with_query(url, sp="rw")).status_code == 403
    assert httpx.get(url.replace(PATH, "aud-1/gen-1/bass.wav")).status_code == 403
    assert storage.get(PATH) == data


def test_sas_url_stops_working_after_its_lifetime(azurite: Azurite, azure_container_name: str) -> None:
    lifetime = 3  # the SAS expiry has whole-second precision: at least 2 s of validity
    storage = AzureBlobStorage.from_settings(
        azure_settings(azurite, azure_container_name, azure_sas_expiry_seconds=lifetime)
    )
    url = storage.put(PATH, b"RIFF" * 10, content_type="audio/wav", metadata=METADATA).url

    assert httpx.get(url).status_code == 200
    time.sleep(lifetime + 1.5)
    assert httpx.get(url).status_code == 403


def test_sas_connection_string_cannot_sign_and_its_sas_never_leaks(
    azurite: Azurite, azure_container_name: str
) -> None:
    account_sas = generate_account_sas(
        DEV_ACCOUNT_NAME,
        DEV_ACCOUNT_KEY,
        resource_types=ResourceTypes(service=True, container=True, object=True),
        permission=AccountSasPermissions(read=True, write=True, create=True, list=True),
        expiry=datetime.now(UTC) + timedelta(hours=1),
    )
    sas_connection = f"BlobEndpoint={azurite.blob_endpoint};SharedAccessSignature={account_sas}"
    signing = azure_settings(
        azurite,
        azure_container_name,
        azure_storage_connection_string=sas_connection,
        azure_sas_expiry_seconds=600,
    )
    with pytest.raises(ConfigurationError, match="cannot sign"):
        AzureBlobStorage.from_settings(signing)

    storage = AzureBlobStorage.from_settings(signing.model_copy(update={"azure_sas_expiry_seconds": 0}))
    stored = storage.put(PATH, b"RIFF", content_type="audio/wav", metadata=METADATA)

    assert stored.url == f"{azurite.blob_endpoint}/{azure_container_name}/{PATH}"
    assert storage.get(PATH) == b"RIFF"


def test_account_url_with_a_token_credential_uploads_and_signs_with_a_delegation_key(
    entra_azurite: Azurite, azure_container_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    ca_file = entra_azurite.ca_file
    assert ca_file is not None
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(ca_file))  # the SDK's transport trusts Azurite's cert
    settings = azure_settings(
        entra_azurite,
        azure_container_name,
        azure_storage_connection_string=None,
        azure_storage_account_url=entra_azurite.blob_endpoint,
        azure_sas_expiry_seconds=600,
    )
    storage = AzureBlobStorage.from_settings(settings, credential=AzuriteBearerToken())
    data = os.urandom(40_000)

    url = storage.put(PATH, data, content_type="audio/wav", metadata=METADATA).url

    assert storage.get(PATH) == data
    assert storage.check() == "connected"
    assert url.startswith(f"{entra_azurite.blob_endpoint}/{azure_container_name}/{PATH}?")
    query = {key: values[0] for key, values in parse_qs(urlsplit(url).query).items()}
    # Signed with a user delegation key that Azurite issued to this token's identity, read-only,
    # HTTPS only, and never outliving the key.
    assert (query["skoid"], query["sktid"]) == (AzuriteBearerToken.object_id, AzuriteBearerToken.tenant_id)
    assert (query["sp"], query["spr"], query["sr"]) == ("r", "https", "b")
    assert query["se"] <= query["ske"]
    # Downloading it is left to real Azure: this SDK's user delegation string-to-sign has two
    # fields more than Azurite 3.35 computes, so Azurite refuses every such SAS.


# --- outages ------------------------------------------------------------------------------------
def test_upload_to_a_stopped_azurite_fails_fast_and_recovers_after_restart(fresh_azurite: Azurite) -> None:
    container = unique_container_name()
    storage = AzureBlobStorage.from_settings(azure_settings(fresh_azurite, container))
    fresh_azurite.kill()
    started = time.monotonic()

    with pytest.raises(StorageError, match="unreachable"):
        storage.put(PATH, b"RIFF" * 1000, content_type="audio/wav", metadata=METADATA)

    assert time.monotonic() - started < storage.deadline_seconds + SLACK_SECONDS
    fresh_azurite.start()  # same port, empty: the same storage object works again
    storage.ensure_container()
    assert storage.put(PATH, b"RIFF", content_type="audio/wav", metadata=METADATA).size_bytes == 4


def test_upload_to_a_hung_azurite_fails_within_the_deadline(fresh_azurite: Azurite) -> None:
    storage = AzureBlobStorage.from_settings(azure_settings(fresh_azurite, unique_container_name()))
    fresh_azurite.pause()
    started = time.monotonic()

    with pytest.raises(StorageError, match="did not"):
        storage.put(PATH, os.urandom(2_000_000), content_type="audio/wav", metadata=METADATA)

    elapsed = time.monotonic() - started
    assert elapsed >= 1.0  # it really waited for the hung server
    assert elapsed < storage.deadline_seconds + SLACK_SECONDS
    fresh_azurite.resume()
    assert storage.put(PATH, b"RIFF", content_type="audio/wav", metadata=METADATA).size_bytes == 4


# --- health -------------------------------------------------------------------------------------
def test_check_is_cached_fast_when_hung_and_names_the_reason(fresh_azurite: Azurite) -> None:
    container = unique_container_name()
    ttl = 2.0
    storage = AzureBlobStorage.from_settings(azure_settings(fresh_azurite, container), health_ttl_seconds=ttl)
    assert storage.check() == "connected"

    fresh_azurite.pause()
    assert storage.check() == "connected"  # cached: no request within the TTL
    time.sleep(ttl)
    started = time.monotonic()
    hung = storage.check()
    assert time.monotonic() - started < HEALTH_WAIT_SECONDS + SLACK_SECONDS
    assert hung.startswith("no answer from storage")

    fresh_azurite.kill()
    fresh_azurite.start()  # back, but in-memory: the container is gone
    assert wait_for_check(storage, lambda s: "does not exist" in s, ttl)

    storage.ensure_container()
    assert wait_for_check(storage, lambda s: s == "connected", ttl)


def test_check_reports_an_unreachable_account(fresh_azurite: Azurite) -> None:
    storage = AzureBlobStorage.from_settings(
        azure_settings(fresh_azurite, unique_container_name()), health_ttl_seconds=0.1
    )
    fresh_azurite.stop()

    assert wait_for_check(storage, lambda s: "unreachable" in s, 0.1)


# --- the launcher itself ------------------------------------------------------------------------
def test_azurite_restarts_on_its_port_and_is_stopped_by_pid() -> None:
    server = Azurite().start()
    port, pid = server.port, server.pid
    assert pid is not None
    server.restart()
    assert server.port == port
    assert server.pid != pid

    last_pid = server.pid
    assert last_pid is not None
    server.close()

    with pytest.raises(ProcessLookupError):
        os.kill(last_pid, 0)
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port}/")


def test_deadline_covers_every_attempt_and_every_backoff() -> None:
    bounds = StorageBounds(timeout_seconds=20.0, max_retries=2, backoff_seconds=0.5)

    # 3 attempts of 20 s, backoffs of 0.5 s and 1 s at +20 % jitter.
    assert bounds.deadline_seconds == pytest.approx(3 * 20.0 + (0.5 + 1.0) * 1.2)


# --- helpers ------------------------------------------------------------------------------------
def azure_settings_without_server(**overrides: Any) -> Settings:
    """Settings for start-up errors that are found before any request is sent."""
    values: dict[str, Any] = {
        "azure_storage_account_url": None,
        "blob_container_name": unique_container_name(),
        "storage_timeout_seconds": 1.0,
        "storage_max_retries": 1,
        "storage_retry_backoff_seconds": 0.1,
        "_env_file": None,
        **overrides,
    }
    return Settings(**values)


def with_query(url: str, **replace: str) -> str:
    parts = urlsplit(url)
    query = {key: values[0] for key, values in parse_qs(parts.query).items()}
    query.update(replace)
    return urlunsplit(parts._replace(query=urlencode(query)))


def wait_for_check(
    storage: AzureBlobStorage, wanted: Callable[[str], bool], ttl: float, timeout: float = 15.0
) -> bool:
    """Poll ``check()`` until its answer satisfies ``wanted``; each call must itself be fast."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        started = time.monotonic()
        answer = storage.check()
        assert time.monotonic() - started < HEALTH_WAIT_SECONDS + SLACK_SECONDS
        if wanted(answer):
            return True
        time.sleep(ttl)
    return False
