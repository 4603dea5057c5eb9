"""Read-only SAS URLs for stored blobs, so a client without storage credentials can download them.

Two signers, picked by what the service holds: the account key (a connection string with
``AccountKey=``), or a user delegation key fetched with the Entra ID token credential (which needs
the "Storage Blob Delegator" role or one that includes it, such as "Storage Blob Data
Contributor"). A SAS connection string cannot sign anything.
"""

import threading
from datetime import UTC, datetime, timedelta
from typing import Protocol
from urllib.parse import urlsplit

from azure.storage.blob import (
    BlobSasPermissions,
    BlobServiceClient,
    UserDelegationKey,
    generate_blob_sas,
)

from stemforge.errors import ConfigurationError
from stemforge.storage.azure_client import signing_key, uses_token_credential

# A SAS starts a little in the past: the client's clock, or a storage node's, may run behind ours.
CLOCK_SKEW = timedelta(minutes=5)
# Azure caps a user delegation key at seven days from the request.
_MAX_DELEGATION_KEY_LIFETIME = timedelta(days=7) - timedelta(minutes=1)
# A fetched delegation key is reused for this long beyond the SAS lifetime, so most uploads
# sign without a round trip.
_DELEGATION_KEY_SPARE = timedelta(hours=1)


class SasSigner(Protocol):
    def sign(self, container: str, blob_name: str) -> str:
        """A read-only SAS token (the URL query, without ``?``) for one blob."""
        ...


def _https_only(client: BlobServiceClient) -> str | None:
    # Over a real account, refuse the SAS on plain HTTP; Azurite serves plain HTTP only.
    return "https" if urlsplit(client.url).scheme == "https" else None


class AccountKeySigner:
    def __init__(self, client: BlobServiceClient, account_key: str, lifetime: timedelta) -> None:
        self._account_name = client.account_name or ""
        self._account_key = account_key
        self._lifetime = lifetime
        self._protocol = _https_only(client)

    def sign(self, container: str, blob_name: str) -> str:
        now = datetime.now(UTC)
        return generate_blob_sas(
            self._account_name,
            container,
            blob_name,
            account_key=self._account_key,
            permission=BlobSasPermissions(read=True),
            start=now - CLOCK_SKEW,
            expiry=now + self._lifetime,
            protocol=self._protocol,
        )


class UserDelegationSigner:
    """Signs with a user delegation key, fetched once and reused until too close to its expiry."""

    def __init__(self, client: BlobServiceClient, lifetime: timedelta) -> None:
        self._client = client
        self._account_name = client.account_name or ""
        self._lifetime = lifetime
        self._protocol = _https_only(client)
        self._lock = threading.Lock()
        self._key: UserDelegationKey | None = None
        self._key_expiry = datetime.min.replace(tzinfo=UTC)

    def _current_key(self, now: datetime) -> UserDelegationKey:
        with self._lock:
            if self._key is None or self._key_expiry < now + self._lifetime:
                expiry = now + min(self._lifetime + _DELEGATION_KEY_SPARE, _MAX_DELEGATION_KEY_LIFETIME)
                self._key = self._client.get_user_delegation_key(now - CLOCK_SKEW, expiry)
                self._key_expiry = expiry
            return self._key

    def sign(self, container: str, blob_name: str) -> str:
        now = datetime.now(UTC)
        key = self._current_key(now)
        return generate_blob_sas(
            self._account_name,
            container,
            blob_name,
            user_delegation_key=key,
            permission=BlobSasPermissions(read=True),
            start=now - CLOCK_SKEW,
            # A SAS cannot outlive the key that signed it.
            expiry=min(now + self._lifetime, self._key_expiry),
            protocol=self._protocol,
        )


def signer_for(client: BlobServiceClient, lifetime_seconds: int) -> SasSigner | None:
    """The signer the client's credential allows; None when SAS URLs are off (lifetime 0)."""
    if lifetime_seconds <= 0:
        return None
    lifetime = timedelta(seconds=lifetime_seconds)
    account_key = signing_key(client)
    if account_key:
        return AccountKeySigner(client, account_key, lifetime)
    if uses_token_credential(client):
        return UserDelegationSigner(client, lifetime)
    raise ConfigurationError(
        "AZURE_SAS_EXPIRY_SECONDS > 0 needs a credential that can sign: a connection string with "
        "AccountKey=, or AZURE_STORAGE_ACCOUNT_URL with an Entra ID identity allowed to get a user "
        "delegation key; a connection string holding a SAS cannot sign new ones"
    )
