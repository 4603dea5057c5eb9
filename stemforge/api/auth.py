"""API key check: ``Authorization: Bearer <key>`` or ``X-API-Key: <key>``, never a query
parameter (URLs end up in logs)."""

import hmac
from collections.abc import Callable, Mapping

from pydantic import SecretStr
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

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


class ApiKeyGuard:
    """ASGI middleware: requests to guarded paths without the key get 401 before anything else
    looks at them (a bad body from an unauthenticated client is a 401, not a 422)."""

    def __init__(
        self, app: ASGIApp, expected: Callable[[], SecretStr | None], guarded: Callable[[str], bool]
    ) -> None:
        """``guarded(path)``: whether a path, relative to the app's root, needs the key."""
        self._app = app
        self._expected = expected  # read per request: the replica sets it from its settings
        self._guarded = guarded

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path, root = scope.get("path", ""), scope.get("root_path", "")
        relative = path[len(root) :] if root and path.startswith(root) else path  # Serve's route prefix
        if scope["type"] == "http" and self._guarded(relative):
            headers = {
                k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers") or []
            }
            try:
                check_api_key(headers, self._expected())
            except Unauthorized as exc:
                response = JSONResponse({"message": exc.message, "error": "Unauthorized"}, status_code=401)
                await response(scope, receive, send)
                return
        await self._app(scope, receive, send)
