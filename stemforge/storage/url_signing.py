"""Signed, expiring read URLs for the local-disk backend: what a SAS is to Azure blobs.

With ``API_KEY`` set, stems must not be readable by anyone who can guess their path (the ids are
the client's, often guessable). Each URL the service hands out then carries an expiry and an
HMAC of the path and expiry under a key derived from the API key; ``GET /blobs/...`` answers a
valid signature or the API key, nothing else.
"""

import base64
import hashlib
import hmac
import time
from collections.abc import Callable, Mapping
from urllib.parse import urlencode

EXPIRES = "se"  # Azure's names for the same two facts
SIGNATURE = "sig"


class BlobUrlSigner:
    def __init__(self, secret: bytes, expiry_seconds: int, clock: Callable[[], float] = time.time) -> None:
        self._secret = secret
        self._expiry = expiry_seconds
        self._clock = clock

    @classmethod
    def from_api_key(cls, api_key: str, expiry_seconds: int) -> "BlobUrlSigner":
        # A key of its own: a signature never reveals anything about the API key itself.
        return cls(
            hmac.new(api_key.encode(), b"stemforge local blob urls", hashlib.sha256).digest(), expiry_seconds
        )

    def _signature(self, path: str, expires: int) -> str:
        digest = hmac.new(self._secret, f"{path}\n{expires}".encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")

    def query(self, path: str) -> str:
        expires = int(self._clock()) + self._expiry
        return urlencode({EXPIRES: expires, SIGNATURE: self._signature(path, expires)})

    def verify(self, path: str, params: Mapping[str, str]) -> bool:
        expires, signature = params.get(EXPIRES, ""), params.get(SIGNATURE, "")
        if not expires.isdigit() or not signature or int(expires) < self._clock():
            return False
        return hmac.compare_digest(signature, self._signature(path, int(expires)))
