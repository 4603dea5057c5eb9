"""API key check: ``Authorization: Bearer <key>`` or ``X-API-Key: <key>``, never a query
parameter (URLs end up in logs)."""

import hmac
from collections.abc import Mapping

from pydantic import SecretStr

from stemforge.errors import Unauthorized


def presented_key(headers: Mapping[str, str]) -> str | None:
    authorization = headers.get("authorization", "")
    scheme, _, credentials = authorization.partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return credentials.strip()
    return headers.get("x-api-key") or None


def check_api_key(headers: Mapping[str, str], expected: SecretStr | None) -> None:
    if expected is None:
        return
    key = presented_key(headers)
    # compare_digest takes the same time wherever the strings differ.
    if key is None or not hmac.compare_digest(key.encode(), expected.get_secret_value().encode()):
        raise Unauthorized("a valid API key is required: 'Authorization: Bearer <key>' or 'X-API-Key: <key>'")
