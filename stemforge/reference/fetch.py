"""Reading a user's reference file: from an http(s) URL, from a blob path in our container, or
(MIDI only) from base64 of a Standard MIDI File in the request itself.

A URL is fetched with the SSRF guard of ``stemforge.jobs.ssrf`` at every hop: each request's host
is resolved, refused unless every address is public (``allowed_hosts`` exempts names such as
``localhost``), and connected to at the address that was checked. Redirects are followed here,
one guarded request at a time, up to ``FetchLimits.max_redirects``. One deadline covers the whole
fetch (resolution, connection, headers, body, every redirect) and the body is read only up to
``FetchLimits.max_bytes``. Every refusal is an ``InvalidRequest`` naming the request's field.
"""

import asyncio
import base64
import binascii
import functools
import re
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Literal

import httpx

from stemforge.errors import BlobNotFound, InvalidRequest
from stemforge.jobs.ssrf import (
    CallbackURLRefused,
    GuardedTransport,
    IPAddress,
    ascii_host,
    is_public,
    resolve,
)
from stemforge.storage.base import Storage

SCHEME_MESSAGE = "must be an https URL (or http where allowed), or a blob path in our container"
BLOB_PATH_RULE = (
    "'/'-separated names of letters, digits, '.', '_' and '-', each starting with a letter or digit"
)
SMF_MAGIC = b"MThd"
USER_AGENT = "stemforge-reference"
MAX_BLOB_PATH = 1024  # Azure's limit on a blob name

_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:")
# No empty segment (so no leading '/' or '//'), no '.' or '..', no hidden or staging file
# ('.x.part'), nothing under the job records' '_jobs/'.
_SEGMENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_BASE64 = re.compile(r"[A-Za-z0-9+/]*={0,2}")
_BASE64_URLSAFE = re.compile(r"[A-Za-z0-9_-]*={0,2}")
_DATA_URI = re.compile(r"data:[^,]*;base64,", re.IGNORECASE)
_WHITESPACE = re.compile(r"\s+")
_REDIRECTS = frozenset({301, 302, 303, 307, 308})


@dataclass(frozen=True)
class FetchLimits:
    max_bytes: int
    timeout_seconds: float  # the whole fetch (connect, headers, body, redirects), not per read
    max_redirects: int = 3

    def __post_init__(self) -> None:
        if self.max_bytes <= 0 or self.timeout_seconds <= 0 or self.max_redirects < 0:
            raise ValueError(f"invalid fetch limits: {self}")


def _shown(text: str, limit: int = 100) -> str:
    """``text`` for a message: quoted, and cut short so a huge value is not echoed whole."""
    return repr(text if len(text) <= limit else text[:limit] + "...")


# --- classification -------------------------------------------------------------------------


def is_blob_path(text: str) -> bool:
    """Whether ``text`` is a path we read from our container (see ``BLOB_PATH_RULE``)."""
    return 0 < len(text) <= MAX_BLOB_PATH and all(_SEGMENT.fullmatch(part) for part in text.split("/"))


def _base64_payload(text: str) -> str | None:
    """``text`` as canonical padded base64 (whitespace and a ``data:...;base64,`` prefix removed,
    the URL-safe alphabet accepted), or ``None`` when it is not base64 at all."""
    compact = _WHITESPACE.sub("", _DATA_URI.sub("", text.strip(), count=1))
    if not compact:
        return None
    if not _BASE64.fullmatch(compact) and _BASE64_URLSAFE.fullmatch(compact):
        compact = compact.translate(str.maketrans("-_", "+/"))
    if not _BASE64.fullmatch(compact):
        return None
    body = compact.rstrip("=")
    if len(body) % 4 == 1:  # no byte count encodes to this many characters
        return None
    return body + "=" * (-len(body) % 4)


def _starts_smf(payload: str) -> bool:
    return len(payload) >= 8 and base64.b64decode(payload[:8]).startswith(SMF_MAGIC)


def _path_like(text: str) -> bool:
    """A blob path, or one with a stray leading '/': read (and refused) as a path, not base64."""
    return is_blob_path(text) or is_blob_path(text.lstrip("/"))


def classify_source(text: str) -> Literal["url", "blob", "base64"]:
    """How a field's value is read.

    ``"base64"``: base64 (or a base64 ``data:`` URI) of a Standard MIDI File, or base64 that could
    not be a blob path (``decode_base64_midi`` then says it is not MIDI). ``"url"``: it has a
    scheme (``fetch_url`` refuses all but http(s)). ``"blob"``: the rest (``read_blob`` refuses a
    path that breaks ``BLOB_PATH_RULE``)."""
    stripped = text.strip()
    payload = _base64_payload(stripped)
    if payload is not None and (_starts_smf(payload) or not _path_like(stripped)):
        return "base64"
    if _SCHEME.match(stripped):
        return "url"
    return "blob"


def decode_base64_midi(text: str, field: str, max_bytes: int) -> bytes | None:
    """The Standard MIDI File ``text`` holds as base64, or ``None`` when ``text`` is not base64 (or
    is as much a blob path, such as ``uploads/take1``): the caller then reads it as a URL or blob.

    Refused (``InvalidRequest``): base64 that cannot be a blob path but does not decode to a
    Standard MIDI File (``MThd`` first), and a file over ``max_bytes``."""
    payload = _base64_payload(text)
    if payload is None:
        return None
    if not _starts_smf(payload):
        if _path_like(text.strip()):
            return None
        raise InvalidRequest(
            field, "is base64 but not a Standard MIDI File: the decoded bytes do not start with 'MThd'"
        )
    size = len(payload) // 4 * 3 - payload.count("=")
    if size > max_bytes:
        raise InvalidRequest(field, f"larger than {max_bytes} bytes: got {size} bytes")
    try:
        return base64.b64decode(payload, validate=True)
    except binascii.Error as exc:  # not expected: the payload is canonical already
        raise InvalidRequest(field, f"is not valid base64 ({exc})") from None


# --- blobs ------------------------------------------------------------------------------------


def read_blob(storage: Storage, path: str, field: str, max_bytes: int) -> bytes:
    """A file already in our container. Blocking (storage calls are): run it in a thread from an
    event loop. ``StorageError`` other than a missing blob is the backend's, and propagates."""
    path = path.strip()
    if not is_blob_path(path):
        raise InvalidRequest(
            field, f"{SCHEME_MESSAGE}: {_shown(path)} is neither (a blob path is {BLOB_PATH_RULE})"
        )
    try:
        data = storage.get(path)
    except BlobNotFound:
        raise InvalidRequest(field, f"no file at blob path {_shown(path)} in the container") from None
    if len(data) > max_bytes:
        raise InvalidRequest(field, f"larger than {max_bytes} bytes: got {len(data)} bytes")
    if not data:
        raise InvalidRequest(field, f"the file at blob path {_shown(path)} is empty (0 bytes)")
    return data


# --- URLs -------------------------------------------------------------------------------------


def _checked_addresses(host: str, port: int, allowed_hosts: Collection[str], field: str) -> list[IPAddress]:
    """The addresses to connect to (none: an exempt host, connected to by name), or
    ``InvalidRequest`` naming the non-public one. The rule is the callbacks' (``ssrf.is_public``)."""
    if host.lower().strip("[]") in allowed_hosts:
        return []
    try:
        addresses = resolve(host.strip("[]"), port)
    except CallbackURLRefused as exc:  # does not resolve
        raise InvalidRequest(field, exc.problems[0][1]) from None
    private = [str(a) for a in addresses if not is_public(a)]
    if private or not addresses:
        raise InvalidRequest(
            field,
            f"host {host!r} resolves to non-public address(es) {private}; reference files are "
            "fetched from public addresses only",
        )
    return addresses


def _parse_url(url: str, field: str, schemes: tuple[str, ...]) -> httpx.URL:
    try:
        parsed = httpx.URL(url)
        host = ascii_host(parsed)
    except (httpx.InvalidURL, UnicodeError, ValueError) as exc:
        raise InvalidRequest(field, f"not a valid URL ({exc})") from None
    if parsed.scheme not in schemes:
        raise InvalidRequest(field, SCHEME_MESSAGE)
    if not host:
        raise InvalidRequest(field, "not a valid URL (it has no host)")
    return parsed


def _describe(exc: Exception) -> str:
    detail = str(exc).strip()
    return f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__


@contextmanager
def _http_errors(field: str, limits: FetchLimits) -> Iterator[None]:
    try:
        yield
    except httpx.TimeoutException:
        raise InvalidRequest(field, f"not fetched within {limits.timeout_seconds:g} s") from None
    except httpx.ConnectError as exc:
        raise InvalidRequest(field, f"unreachable: {_describe(exc)}") from None
    except httpx.HTTPError as exc:  # a broken answer: protocol error, connection reset mid-body
        raise InvalidRequest(field, f"could not be fetched: {_describe(exc)}") from None


async def _read_body(response: httpx.Response, field: str, max_bytes: int) -> bytes:
    declared = response.headers.get("content-length", "").strip()
    if declared.isdigit() and int(declared) > max_bytes:
        raise InvalidRequest(field, f"larger than {max_bytes} bytes: Content-Length is {declared}")
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > max_bytes:
            raise InvalidRequest(field, f"larger than {max_bytes} bytes")
        chunks.append(chunk)
    if size == 0:
        raise InvalidRequest(field, "the file at the URL is empty (0 bytes)")
    return b"".join(chunks)


async def _follow(
    client: httpx.AsyncClient, url: httpx.URL, field: str, limits: FetchLimits, schemes: tuple[str, ...]
) -> bytes:
    for hop in range(limits.max_redirects + 1):
        try:
            with _http_errors(field, limits):
                response = await client.send(client.build_request("GET", url), stream=True)
        except InvalidRequest as exc:
            if hop == 0:
                raise
            raise InvalidRequest(field, f"redirected to {_shown(str(url))}: {exc.problems[0][1]}") from None
        try:
            if response.status_code in _REDIRECTS and "location" in response.headers:
                if hop == limits.max_redirects:
                    raise InvalidRequest(field, f"redirected more than {limits.max_redirects} times")
                location = response.headers["location"]
                try:
                    url = url.join(location)
                except (httpx.InvalidURL, UnicodeError, ValueError):
                    raise InvalidRequest(field, f"redirected to an invalid URL {_shown(location)}") from None
                if url.scheme not in schemes:
                    raise InvalidRequest(field, f"redirected to {_shown(str(url))}: {SCHEME_MESSAGE}")
                continue
            if not response.is_success:
                raise InvalidRequest(field, f"could not be fetched: HTTP {response.status_code}")
            with _http_errors(field, limits):
                return await _read_body(response, field, limits.max_bytes)
        finally:
            await response.aclose()
    raise AssertionError("unreachable: the last hop returns or raises")


async def fetch_url(
    url: str,
    field: str,
    limits: FetchLimits,
    allowed_hosts: Collection[str],
    transport: httpx.AsyncBaseTransport | None = None,
    *,
    allow_http: bool = True,
) -> bytes:
    """The body at ``url`` (GET), SSRF-guarded at every hop, within ``limits``.

    ``transport`` is the one the guard sends through once a host is checked (a shared pool, say;
    the caller closes it): it never replaces the guard. ``allow_http=False`` refuses plain http,
    redirects included."""
    schemes = ("https", "http") if allow_http else ("https",)
    parsed = _parse_url(url.strip(), field, schemes)
    # The callbacks' guard, its refusals naming this field; a transport passed in stays the caller's.
    check = functools.partial(_checked_addresses, field=field)
    guard = GuardedTransport(allowed_hosts, transport, check=check, close_inner=transport is None)
    try:
        async with asyncio.timeout(limits.timeout_seconds):
            async with httpx.AsyncClient(
                transport=guard,
                follow_redirects=False,
                trust_env=False,  # no proxy from the environment around the guard, no .netrc
                timeout=limits.timeout_seconds,
                headers={"user-agent": USER_AGENT, "accept-encoding": "identity"},
            ) as client:
                return await _follow(client, parsed, field, limits, schemes)
    except TimeoutError:
        raise InvalidRequest(field, f"not fetched within {limits.timeout_seconds:g} s") from None
