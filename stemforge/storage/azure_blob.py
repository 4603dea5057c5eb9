"""Azure Blob Storage backend: stems as block blobs in one container.

Chosen by ``storage_from_settings`` when ``AZURE_STORAGE_CONNECTION_STRING`` or
``AZURE_STORAGE_ACCOUNT_URL`` is set. ``from_settings`` connects, creates the container if it is
missing and, when SAS URLs are on, signs once, so a bad account, credential or container fails
the replica at start-up rather than the first job.

Every call is bounded (see ``azure_bounds``): an outage turns into ``StorageError`` within
``deadline_seconds``. Uploads go from memory in one Put Blob (up to
``azure_client.SINGLE_PUT_LIMIT``), which the service commits whole or not at all, and
overwrite: re-running a request replaces its blobs and never leaves a half-written one or a
second copy.
"""

import contextlib
import logging
import re
import uuid
from collections.abc import Callable, Mapping
from typing import TypeVar
from urllib.parse import urlsplit, urlunsplit

from azure.core.credentials import TokenCredential
from azure.core.exceptions import (
    AzureError,
    ClientAuthenticationError,
    HttpResponseError,
    ResourceExistsError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceRequestTimeoutError,
    ServiceResponseError,
    ServiceResponseTimeoutError,
)
from azure.storage.blob import BlobClient, BlobServiceClient, ContainerClient, ContentSettings

from stemforge.errors import BlobNotFound, ConfigurationError, StemforgeError, StorageError
from stemforge.settings import Settings
from stemforge.storage.azure_bounds import StorageBounds, call_with_deadline
from stemforge.storage.azure_client import service_client_from_settings
from stemforge.storage.azure_health import CachedProbe
from stemforge.storage.azure_sas import SasSigner, signer_for
from stemforge.storage.base import StoredBlob

logger = logging.getLogger(__name__)
T = TypeVar("T")

# Above the client's single-put limit (see azure_client), blocks go up this many at a time.
UPLOAD_CONCURRENCY = 4

# Health: cache the answer this long; never hold /health longer than HEALTH_WAIT_SECONDS.
HEALTH_TTL_SECONDS = 5.0
HEALTH_WAIT_SECONDS = 1.0
HEALTH_PROBE_TIMEOUT_SECONDS = 5.0

_IDENTITY_HINT = (
    " (it tries, in order: AZURE_TENANT_ID/AZURE_CLIENT_ID/AZURE_CLIENT_SECRET, workload identity, "
    "managed identity, a signed-in Azure CLI; the azure.identity log names each one's reason)"
)

# Metadata of blobs written by create(): who wrote them.
_CREATE_TOKEN = "stemforge_create_token"

# Azure metadata names are C# identifiers; values travel as HTTP header values.
_METADATA_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class AzureBlobStorage:
    name = "azure"

    def __init__(
        self,
        client: BlobServiceClient,
        container: str,
        bounds: StorageBounds,
        signer: SasSigner | None = None,
        *,
        health_ttl_seconds: float = HEALTH_TTL_SECONDS,
    ) -> None:
        self._client = client
        self._container_name = container
        self._container: ContainerClient = client.get_container_client(container)
        self._bounds = bounds
        self._signer = signer
        self._endpoint = _without_query(client.url).rstrip("/")
        self._health = CachedProbe(
            self._probe, ttl_seconds=health_ttl_seconds, wait_seconds=HEALTH_WAIT_SECONDS
        )

    # --- start-up ----------------------------------------------------------------------------
    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        credential: TokenCredential | None = None,
        health_ttl_seconds: float = HEALTH_TTL_SECONDS,
    ) -> "AzureBlobStorage":
        """Connect, make sure the container exists, and prove SAS signing works if it is on.

        Raises ``ConfigurationError`` for settings or credentials that cannot work and
        ``StorageError`` for an account that does not answer; takes at most two deadlines.
        ``credential`` replaces ``DefaultAzureCredential`` when ``AZURE_STORAGE_ACCOUNT_URL`` is
        used (say, a ``ManagedIdentityCredential`` pinned to one identity).
        """
        bounds = StorageBounds.from_settings(settings)
        client = service_client_from_settings(settings, bounds, credential)
        signer = signer_for(client, settings.azure_sas_expiry_seconds)
        storage = cls(
            client, settings.blob_container_name, bounds, signer, health_ttl_seconds=health_ttl_seconds
        )
        storage.ensure_container()
        if signer is not None:
            storage._run(
                f"signing a test SAS for container {settings.blob_container_name!r}", storage._test_sign
            )
        logger.info(
            "Azure Blob storage ready: %s/%s (%s)",
            storage._endpoint,
            storage._container_name,
            bounds.describe(),
        )
        return storage

    def ensure_container(self) -> None:
        """Create the container unless it exists; several replicas may race here, harmlessly."""

        def ensure() -> None:
            try:
                self._container.get_container_properties()
            except ResourceNotFoundError:
                try:
                    self._container.create_container()
                    logger.info("created blob container %s", self._container_name)
                except ResourceExistsError:
                    pass

        self._run(f"opening container {self._container_name!r}", ensure)

    def _test_sign(self) -> None:
        if self._signer is not None:
            self._signer.sign(self._container_name, "stemforge-start-up-check")

    # --- the Storage protocol ----------------------------------------------------------------
    @property
    def deadline_seconds(self) -> float:
        """The longest ``put`` or ``get`` can take before it raises ``StorageError``."""
        return self._bounds.deadline_seconds

    def put(
        self,
        path: str,
        data: bytes,
        *,
        content_type: str,
        metadata: Mapping[str, str] | None = None,
    ) -> StoredBlob:
        blob_metadata = _checked_metadata(metadata or {})
        blob = self._container.get_blob_client(path)

        def upload() -> str:
            blob.upload_blob(
                data,
                blob_type="BlockBlob",
                overwrite=True,
                length=len(data),
                metadata=blob_metadata,
                content_settings=ContentSettings(content_type=content_type),
                max_concurrency=UPLOAD_CONCURRENCY,
            )
            return self._download_url(blob)

        url = self._run(f"uploading {path!r} ({len(data)} bytes)", upload)
        return StoredBlob(path=path, url=url, size_bytes=len(data))

    def create(self, path: str, data: bytes, *, content_type: str) -> bool:
        blob = self._container.get_blob_client(path)
        # The service refuses the write if the blob exists (If-None-Match: *), atomically. The
        # token tells our own write apart from a rival's when a retry finds the blob already
        # there because our first attempt landed but its answer was lost.
        token = uuid.uuid4().hex

        def create_if_absent() -> bool:
            try:
                blob.upload_blob(
                    data,
                    blob_type="BlockBlob",
                    overwrite=False,
                    length=len(data),
                    metadata={_CREATE_TOKEN: token},
                    content_settings=ContentSettings(content_type=content_type),
                )
                return True
            except ResourceExistsError:
                try:
                    return blob.get_blob_properties().metadata.get(_CREATE_TOKEN) == token
                except ResourceNotFoundError:
                    return False  # deleted meanwhile: it existed when we tried, so we lost

        return self._run(f"creating {path!r} ({len(data)} bytes)", create_if_absent)

    def delete(self, path: str) -> None:
        blob = self._container.get_blob_client(path)

        def delete_if_present() -> None:
            with contextlib.suppress(ResourceNotFoundError):
                blob.delete_blob()

        self._run(f"deleting {path!r}", delete_if_present)

    def list(self, prefix: str) -> list[str]:
        def names() -> list[str]:
            # Every page is fetched inside the deadline, not lazily by the caller.
            return sorted(b.name for b in self._container.list_blobs(name_starts_with=prefix))

        return self._run(f"listing {prefix!r}", names)

    def get(self, path: str) -> bytes:
        blob = self._container.get_blob_client(path)

        def download() -> bytes:
            try:
                return blob.download_blob().readall()
            except ResourceNotFoundError:
                raise BlobNotFound(f"no blob at {path!r} in container {self._container_name!r}") from None

        return self._run(f"downloading {path!r}", download)

    def check(self) -> str:
        return self._health.status()

    # --- internals ---------------------------------------------------------------------------
    def _download_url(self, blob: BlobClient) -> str:
        # Never hand out the query of our own URL: with a SAS connection string it is our SAS.
        url = _without_query(blob.url)
        if self._signer is None:
            return url
        return f"{url}?{self._signer.sign(self._container_name, blob.blob_name)}"

    def _run(self, what: str, call: Callable[[], T]) -> T:
        """Run one storage operation under the deadline, with the SDK's errors made ours."""

        def translated() -> T:
            try:
                return call()
            except StemforgeError:
                raise
            except Exception as exc:
                raise _translate(exc, what, self._endpoint) from exc

        return call_with_deadline(
            translated,
            self._bounds.deadline_seconds,
            f"Azure Blob storage at {self._endpoint}: {what} ({self._bounds.describe()})",
        )

    def _probe(self) -> str:
        timeout = min(self._bounds.timeout_seconds, HEALTH_PROBE_TIMEOUT_SECONDS)
        try:
            self._container.get_container_properties(
                retry_total=0, connection_timeout=timeout, read_timeout=timeout
            )
        except ResourceNotFoundError:
            return f"container {self._container_name!r} does not exist"
        except Exception as exc:
            return _translate(exc, "checking the container", self._endpoint).message
        return "connected"


def _checked_metadata(metadata: Mapping[str, str]) -> dict[str, str]:
    for key, value in metadata.items():
        if not _METADATA_KEY.match(key):
            raise StorageError(f"blob metadata name {key!r} is not a valid identifier")
        if not str(value).isascii():
            raise StorageError(f"blob metadata {key}={value!r} is not ASCII")
    return {key: str(value) for key, value in metadata.items()}


def _without_query(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _translate(exc: Exception, what: str, endpoint: str) -> StemforgeError:
    """One short, clear message per failure; the SDK's own carry whole HTTP dumps."""
    where = f"Azure Blob storage at {endpoint}"
    if isinstance(exc, ClientAuthenticationError) or (
        isinstance(exc, HttpResponseError) and exc.status_code in (401, 403)
    ):
        code = getattr(exc, "error_code", None)
        detail = f"{code}: {_first_line(exc)}" if code else _first_line(exc)
        if "DefaultAzureCredential" in str(exc):
            detail += _IDENTITY_HINT
        return ConfigurationError(f"{where} refused the credentials while {what}: {detail}")
    # A hung server shows up as a read timeout, or as a write timeout wrapped in "connection
    # aborted" once the socket buffers are full.
    if isinstance(exc, ServiceResponseTimeoutError | ServiceRequestTimeoutError) or (
        isinstance(exc, ServiceResponseError | ServiceRequestError) and "timed out" in str(exc)
    ):
        return StorageError(f"{where} did not answer in time while {what}: {_first_line(exc)}")
    if isinstance(exc, ServiceRequestError):
        return StorageError(f"{where} is unreachable while {what}: {_first_line(exc)}")
    if isinstance(exc, ServiceResponseError):
        return StorageError(f"{where} dropped the connection while {what}: {_first_line(exc)}")
    if isinstance(exc, HttpResponseError):
        code = getattr(exc, "error_code", None) or "no error code"
        return StorageError(
            f"{where} answered HTTP {exc.status_code} ({code}) while {what}: {_first_line(exc)}"
        )
    if isinstance(exc, AzureError):
        return StorageError(f"{where} failed while {what}: {_first_line(exc)}")
    if isinstance(exc, ValueError | TypeError):
        # The SDK raises these for settings it cannot use, e.g. an account key that is not base64.
        return ConfigurationError(f"{where}: settings not usable while {what}: {_first_line(exc)}")
    return StorageError(f"{where} failed while {what}: {type(exc).__name__}: {_first_line(exc)}")
