"""Build the Blob service client from settings, in either credential style the issue names.

- ``AZURE_STORAGE_CONNECTION_STRING``: account key (or a SAS) inside the string; Azurite uses it.
- ``AZURE_STORAGE_ACCOUNT_URL``: Microsoft Entra ID through ``DefaultAzureCredential`` (managed
  identity, workload identity, ``AZURE_CLIENT_ID``/``AZURE_TENANT_ID``/``AZURE_CLIENT_SECRET``,
  and on a developer machine the Azure CLI login).
"""

from typing import Any
from urllib.parse import urlsplit

from azure.core.credentials import TokenCredential
from azure.storage.blob import BlobServiceClient

from stemforge.errors import ConfigurationError
from stemforge.settings import Settings
from stemforge.storage.azure_bounds import StorageBounds

# Blobs up to this size go in one Put Blob, which the service commits whole or not at all.
# Azure accepts 5000 MiB in one; a stem at the longest duration and widest sample format stays
# below this, so stems never need staged blocks that a failed upload could leave uncommitted.
SINGLE_PUT_LIMIT = 256 * 1024 * 1024
# Above it: blocks of this size, committed at the end in one Put Block List.
BLOCK_SIZE = 8 * 1024 * 1024


def service_client_from_settings(
    settings: Settings, bounds: StorageBounds, credential: TokenCredential | None = None
) -> BlobServiceClient:
    """``credential`` replaces ``DefaultAzureCredential`` in the account-URL style."""
    options = {
        **bounds.client_options(),
        "max_single_put_size": SINGLE_PUT_LIMIT,
        "max_block_size": BLOCK_SIZE,
    }
    if settings.azure_storage_connection_string:
        return _from_connection_string(settings.azure_storage_connection_string, options)
    if settings.azure_storage_account_url:
        return _from_account_url(settings.azure_storage_account_url, options, credential)
    raise ConfigurationError(
        "Azure Blob storage needs AZURE_STORAGE_CONNECTION_STRING or AZURE_STORAGE_ACCOUNT_URL"
    )


def _from_connection_string(connection_string: str, options: dict[str, Any]) -> BlobServiceClient:
    try:
        client = BlobServiceClient.from_connection_string(connection_string, **options)
    except ValueError as exc:
        # The SDK's message never echoes the string, which holds the account key.
        raise ConfigurationError(f"AZURE_STORAGE_CONNECTION_STRING is not usable: {exc}") from None
    names = {part.split("=", 1)[0].strip().lower() for part in connection_string.split(";") if "=" in part}
    if not names & {"accountkey", "sharedaccesssignature"}:
        # The SDK would go on anonymously and fail at the first upload.
        raise ConfigurationError(
            "AZURE_STORAGE_CONNECTION_STRING holds no credential: it needs AccountKey= or "
            "SharedAccessSignature="
        )
    return client


def _from_account_url(
    account_url: str, options: dict[str, Any], credential: TokenCredential | None
) -> BlobServiceClient:
    parts = urlsplit(account_url)
    if parts.scheme != "https" or not parts.netloc:
        # The SDK refuses to send a bearer token over plain HTTP, but only at the first request.
        raise ConfigurationError(
            f"AZURE_STORAGE_ACCOUNT_URL must be an https:// URL such as "
            f"https://<account>.blob.core.windows.net; got {account_url!r}"
        )
    if parts.query:
        raise ConfigurationError(
            "AZURE_STORAGE_ACCOUNT_URL must not carry a query (a SAS belongs in "
            "AZURE_STORAGE_CONNECTION_STRING as SharedAccessSignature=...)"
        )
    if credential is None:
        # Imported here: azure-identity is only needed, and only loads its plugins, in this style.
        from azure.identity import DefaultAzureCredential

        # Interactive browser sign-in stays off (the default): a replica has nobody to sign in.
        credential = DefaultAzureCredential()
    return BlobServiceClient(account_url=account_url, credential=credential, **options)


def signing_key(client: BlobServiceClient) -> str | None:
    """The account key the client signs requests with, or None (token credential or SAS)."""
    return getattr(client.credential, "account_key", None)


def uses_token_credential(client: BlobServiceClient) -> bool:
    return hasattr(client.credential, "get_token")
