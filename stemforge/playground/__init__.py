"""The playground: a page to try requests and audition the stems in a browser, served at
``/playground``.

Static files only (``static/``: plain ES modules, no build step, nothing fetched from a CDN), so
the page is served without the API key; every API call it makes sends the key the user typed
(``X-API-Key``, kept in the tab's session storage, never put in a URL). ``config.json`` tells
the page the request contract's choices (stems, styles, ranges) so they stay in one place.
"""

from functools import cache
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse, Response

from stemforge.api.schemas import (
    DURATION_CEILING_SECONDS,
    MAX_BPM,
    MAX_SEED,
    MIN_BPM,
    MIN_DURATION_SECONDS,
)
from stemforge.music.spec import STEM_TYPES
from stemforge.music.styles import STYLES

STATIC_DIR = Path(__file__).resolve().parent / "static"
PLAYGROUND_PATH = "/playground"
INDEX = "index.html"

_MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
}
# What static/ may serve (its package.json only tells node the modules are ES modules, for tests).
SERVED_SUFFIXES = frozenset(_MEDIA_TYPES)

# Only the page's own origin runs scripts or styles; audio may come from a blob store elsewhere
# (Azure SAS URLs), so fetches may go to any http(s) origin. No referrer: signed blob URLs stay
# out of other servers' logs.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
        "media-src 'self' blob:; connect-src 'self' http: https:; object-src 'none'; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


@cache
def static_files() -> dict[str, Path]:
    """The files the page may load, by name: fixed when the module is first used, so a request
    can only name one of them (no path is ever built from the URL)."""
    return {
        path.name: path
        for path in sorted(STATIC_DIR.iterdir())
        if path.is_file() and path.suffix in SERVED_SUFFIXES and path.name != INDEX
    }


def playground_config() -> dict[str, Any]:
    """The request contract's choices, for the form."""
    return {
        "stems": list(STEM_TYPES),
        "styles": list(STYLES),
        "bpm": {"min": MIN_BPM, "max": MAX_BPM, "default": 120.0},
        "duration_seconds": {"min": MIN_DURATION_SECONDS, "max": DURATION_CEILING_SECONDS, "default": 30.0},
        "temperature": {"min": 0.0, "max": 2.0, "default": 1.0},
        "random_seed": {"min": 0, "max": MAX_SEED},
        "api_key_headers": ["X-API-Key", "Authorization: Bearer"],
    }


def playground_router(path: str = PLAYGROUND_PATH) -> APIRouter:
    """``GET {path}``: the page; ``GET {path}/{file}``: its modules and styles; ``{path}/``
    redirects to the page (its relative links assume no trailing slash)."""
    router = APIRouter(include_in_schema=False)
    page = path.rstrip("/")
    leaf = page.rsplit("/", 1)[-1]

    @router.get(page)
    async def index() -> FileResponse:
        return FileResponse(STATIC_DIR / INDEX, media_type=_MEDIA_TYPES[".html"], headers=SECURITY_HEADERS)

    @router.get(page + "/")
    async def index_with_slash() -> RedirectResponse:
        # Relative, so it holds under any route prefix Serve mounts the app at.
        return RedirectResponse(f"../{leaf}", status_code=308)

    @router.get(page + "/config.json")
    async def config() -> JSONResponse:
        return JSONResponse(playground_config(), headers={"Cache-Control": "no-cache"})

    @router.get(page + "/{name}")
    async def asset(name: str) -> Response:
        target = static_files().get(name)
        if target is None:
            return JSONResponse({"message": f"no playground file {name!r}"}, status_code=404)
        return FileResponse(target, media_type=_MEDIA_TYPES[target.suffix], headers=SECURITY_HEADERS)

    return router


def include_playground(app: FastAPI, path: str = PLAYGROUND_PATH) -> None:
    """Serve the playground from ``app`` at ``path``."""
    app.include_router(playground_router(path))


__all__ = ["PLAYGROUND_PATH", "include_playground", "playground_config", "playground_router", "static_files"]
