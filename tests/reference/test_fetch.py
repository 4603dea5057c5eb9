"""Fetching reference files from a real HTTP server on loopback, through the real SSRF guard;
reading blobs from real local-disk storage; base64 MIDI made with pretty_midi."""

import asyncio
import base64
import io
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pretty_midi
import pytest
import soundfile as sf

from stemforge.errors import InvalidRequest
from stemforge.reference.decode import decode_audio
from stemforge.reference.fetch import (
    SCHEME_MESSAGE,
    FetchLimits,
    classify_source,
    decode_base64_midi,
    fetch_url,
    read_blob,
)
from stemforge.storage.local import LocalDiskStorage
from tests.reference.test_decode import MP3, encode, tone

FIELD = "parameters.reference_audio"
MIDI_FIELD = "parameters.midi"
LOOPBACK = frozenset({"127.0.0.1"})
MAX_BYTES = 1_000_000
LIMITS = FetchLimits(max_bytes=MAX_BYTES, timeout_seconds=5.0, max_redirects=3)
FILES = {
    "/a.wav": (("WAV", "PCM_16"), "audio/wav"),
    "/a.flac": (("FLAC", "PCM_16"), "audio/flac"),
    "/a.ogg": (("OGG", "VORBIS"), "audio/ogg"),
    "/a.mp3": (("MP3", "MPEG_LAYER_III"), "audio/mpeg"),
}


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that gave up (too big, too slow) breaks the pipe: expected here


def _handler(files: dict[str, tuple[bytes, str]], port: list[int]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def answer(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            if "content-length" not in {k.lower() for k in headers or {}}:
                self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def redirect(self, location: str) -> None:
            self.answer(302, headers={"location": location})

        def do_GET(self) -> None:
            path = self.path
            if path in files:
                body, content_type = files[path]
                self.answer(200, body, {"content-type": content_type})
            elif path == "/redirect":
                self.redirect("/a.wav")
            elif path.startswith("/chain/"):  # /chain/N: N redirects before the file
                left = int(path.removeprefix("/chain/"))
                self.redirect(f"/chain/{left - 1}" if left > 1 else "/a.wav")
            elif path == "/to-private":
                self.redirect("http://10.0.0.1/a.wav")
            elif path == "/to-metadata":
                self.redirect("http://169.254.169.254/latest/meta-data/")
            elif path == "/to-localhost":
                self.redirect(f"http://localhost:{port[0]}/a.wav")
            elif path == "/to-ftp":
                self.redirect("ftp://example.com/a.wav")
            elif path == "/slow-headers":
                time.sleep(3)
                self.answer(200, files["/a.wav"][0])
            elif path == "/slow-body":  # each read is quick; the whole body takes 2 s
                self.send_response(200)
                self.send_header("content-length", "20")
                self.end_headers()
                for _ in range(20):
                    self.wfile.write(b"x")
                    self.wfile.flush()
                    time.sleep(0.1)
            elif path == "/big":
                self.answer(200, bytes(MAX_BYTES + 1), {"content-type": "audio/wav"})
            elif path == "/big-unsized":  # HTTP/1.0, no Content-Length: the body ends at close
                self.send_response(200)
                self.send_header("content-type", "audio/wav")
                self.end_headers()
                for _ in range(40):
                    self.wfile.write(bytes(100_000))
            elif path == "/exact":
                self.answer(200, b"y" * MAX_BYTES)
            elif path == "/junk":
                self.answer(
                    200, b"<!doctype html><html><body>Welcome</body></html>", {"content-type": "text/html"}
                )
            elif path == "/empty":
                self.answer(200)
            else:
                self.answer(404, b"not found", {"content-type": "text/plain"})

    return Handler


@pytest.fixture(scope="module")
def files() -> dict[str, bytes]:
    made = {}
    for path, ((fmt, subtype), _) in FILES.items():
        if fmt in sf.available_formats():
            made[path] = encode(tone(seconds=1.0), 44_100, fmt, subtype)
    return made


@pytest.fixture(scope="module")
def server(files: dict[str, bytes]) -> Iterator[str]:
    port: list[int] = []
    served = {path: (body, FILES[path][1]) for path, body in files.items()}
    httpd = _Server(("127.0.0.1", 0), _handler(served, port))
    port.append(httpd.server_address[1])
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port[0]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def fetch(url: str, limits: FetchLimits = LIMITS, allowed: frozenset[str] = LOOPBACK, **kwargs: Any) -> bytes:
    return asyncio.run(fetch_url(url, FIELD, limits, allowed, **kwargs))


def refused(url: str, limits: FetchLimits = LIMITS, allowed: frozenset[str] = LOOPBACK, **kwargs: Any) -> str:
    with pytest.raises(InvalidRequest) as caught:
        fetch(url, limits, allowed, **kwargs)
    assert caught.value.field == FIELD
    assert caught.value.status_code == 422
    return caught.value.problems[0][1]


# --- fetching -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "fmt"),
    [("/a.wav", "WAV"), ("/a.flac", "FLAC"), ("/a.ogg", "OGG"), pytest.param("/a.mp3", "MP3", marks=MP3)],
)
def test_each_format_is_fetched_whole_and_decodes(
    server: str, files: dict[str, bytes], path: str, fmt: str
) -> None:
    data = fetch(server + path)
    assert data == files[path]
    decoded = decode_audio(data, FIELD, 60)
    assert decoded.format == fmt
    assert decoded.sample_rate == 44_100


def test_a_redirect_is_followed(server: str, files: dict[str, bytes]) -> None:
    assert fetch(server + "/redirect") == files["/a.wav"]
    assert fetch(server + "/chain/3") == files["/a.wav"]  # exactly max_redirects


def test_a_redirect_chain_past_the_limit_is_refused(server: str) -> None:
    assert refused(server + "/chain/4") == "redirected more than 3 times"
    no_redirects = FetchLimits(max_bytes=MAX_BYTES, timeout_seconds=5, max_redirects=0)
    assert refused(server + "/redirect", no_redirects) == "redirected more than 0 times"


def test_http_errors_are_refused_with_their_status(server: str) -> None:
    assert refused(server + "/missing.wav") == "could not be fetched: HTTP 404"


def test_a_slow_answer_is_refused_at_the_deadline(server: str) -> None:
    quick = FetchLimits(max_bytes=MAX_BYTES, timeout_seconds=0.5)
    started = time.monotonic()
    assert refused(server + "/slow-headers", quick) == "not fetched within 0.5 s"
    assert time.monotonic() - started < 2


def test_the_deadline_covers_the_whole_body_not_each_read(server: str) -> None:
    quick = FetchLimits(max_bytes=MAX_BYTES, timeout_seconds=0.5)
    started = time.monotonic()
    assert refused(server + "/slow-body", quick) == "not fetched within 0.5 s"
    assert time.monotonic() - started < 1.5


def test_a_body_over_the_limit_is_refused_by_its_content_length(server: str) -> None:
    assert refused(server + "/big") == f"larger than {MAX_BYTES} bytes: Content-Length is {MAX_BYTES + 1}"


def test_a_body_over_the_limit_without_content_length_is_cut_off(server: str) -> None:
    assert refused(server + "/big-unsized") == f"larger than {MAX_BYTES} bytes"


def test_a_body_of_exactly_the_limit_is_taken(server: str) -> None:
    assert len(fetch(server + "/exact")) == MAX_BYTES


def test_junk_is_fetched_and_then_refused_as_not_audio(server: str) -> None:
    data = fetch(server + "/junk")
    with pytest.raises(InvalidRequest, match=r"not audio \(WAV, FLAC, OGG or MP3\)"):
        decode_audio(data, FIELD, 60)


def test_an_empty_body_is_refused(server: str) -> None:
    assert refused(server + "/empty") == "the file at the URL is empty (0 bytes)"


def test_a_closed_port_is_unreachable() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    assert refused(f"http://127.0.0.1:{port}/a.wav").startswith("unreachable: ConnectError")


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com/a.wav",
        "file:///etc/passwd",
        "gopher://example.com/",
        "data:audio/wav;base64,UklGRg==",
    ],
)
def test_only_http_and_https_are_fetched(url: str) -> None:
    assert refused(url) == SCHEME_MESSAGE


def test_plain_http_can_be_turned_off(server: str) -> None:
    assert refused(server + "/a.wav", allow_http=False) == SCHEME_MESSAGE


def test_an_invalid_url_is_refused() -> None:
    assert refused("https://[not-an-ip]/a.wav").startswith("not a valid URL (Invalid IPv6 address")
    assert refused("http:///a.wav") == "not a valid URL (it has no host)"


# --- the SSRF guard -------------------------------------------------------------------------


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_loopback_is_refused_unless_allowed(server: str, host: str) -> None:
    url = server.replace("127.0.0.1", host) + "/a.wav"
    message = refused(url, allowed=frozenset())
    assert f"host {host!r} resolves to non-public address(es)" in message
    assert "127.0.0.1" in message
    assert message.endswith("reference files are fetched from public addresses only")


@pytest.mark.parametrize(
    ("path", "target"),
    [
        ("/to-private", "http://10.0.0.1/a.wav"),
        ("/to-metadata", "http://169.254.169.254/latest/meta-data/"),
        ("/to-localhost", "localhost"),  # a name for an address that is allowed only as 127.0.0.1
    ],
)
def test_a_redirect_into_the_private_network_is_refused(server: str, path: str, target: str) -> None:
    message = refused(server + path)
    assert message.startswith("redirected to 'http://"), message
    assert target in message
    assert "non-public address(es)" in message


def test_a_redirect_to_another_scheme_is_refused(server: str) -> None:
    assert refused(server + "/to-ftp") == f"redirected to 'ftp://example.com/a.wav': {SCHEME_MESSAGE}"


def test_a_caller_transport_goes_under_the_guard_and_stays_open(server: str, files: dict[str, bytes]) -> None:
    async def both() -> tuple[bytes, str]:
        async with httpx.AsyncHTTPTransport() as shared:
            data = await fetch_url(server + "/a.wav", FIELD, LIMITS, LOOPBACK, transport=shared)
            try:
                await fetch_url(server + "/a.wav", FIELD, LIMITS, (), transport=shared)
            except InvalidRequest as exc:
                return data, exc.problems[0][1]
            raise AssertionError("the guard let loopback through")

    data, message = asyncio.run(both())
    assert data == files["/a.wav"]
    assert "non-public address(es)" in message


# --- blobs ------------------------------------------------------------------------------------


@pytest.fixture()
def storage(tmp_path: Path) -> LocalDiskStorage:
    return LocalDiskStorage(tmp_path, "audio-files", "http://localhost:8080")


def test_a_blob_is_read(storage: LocalDiskStorage, files: dict[str, bytes]) -> None:
    storage.put("uploads/user-1/take_1.wav", files["/a.wav"], content_type="audio/wav")
    assert read_blob(storage, "uploads/user-1/take_1.wav", FIELD, MAX_BYTES) == files["/a.wav"]


def test_a_missing_blob_is_refused(storage: LocalDiskStorage) -> None:
    with pytest.raises(InvalidRequest) as caught:
        read_blob(storage, "uploads/none.wav", FIELD, MAX_BYTES)
    assert caught.value.field == FIELD
    assert caught.value.problems == [(FIELD, "no file at blob path 'uploads/none.wav' in the container")]


def test_a_blob_over_the_limit_is_refused(storage: LocalDiskStorage) -> None:
    storage.put("uploads/big.wav", bytes(2001), content_type="audio/wav")
    with pytest.raises(InvalidRequest, match="larger than 2000 bytes: got 2001 bytes"):
        read_blob(storage, "uploads/big.wav", FIELD, 2000)


def test_an_empty_blob_is_refused(storage: LocalDiskStorage) -> None:
    storage.put("uploads/empty.wav", b"", content_type="audio/wav")
    with pytest.raises(InvalidRequest, match=r"is empty \(0 bytes\)"):
        read_blob(storage, "uploads/empty.wav", FIELD, MAX_BYTES)


@pytest.mark.parametrize(
    "path",
    [
        "../outside.wav",
        "uploads/../../outside.wav",
        "/uploads/a.wav",
        "uploads//a.wav",
        "uploads/./a.wav",
        "uploads/a.wav/",
        ".hidden.wav",
        "_jobs/records/g-1.json",
        "uploads/a b.wav",
        "",
    ],
)
def test_unsafe_blob_paths_are_refused(storage: LocalDiskStorage, tmp_path: Path, path: str) -> None:
    (tmp_path / "outside.wav").write_bytes(b"secret")
    storage.put("_jobs/records/g-1.json", b"{}", content_type="application/json")
    storage.put("uploads/a.wav", b"audio", content_type="audio/wav")
    with pytest.raises(InvalidRequest) as caught:
        read_blob(storage, path, FIELD, MAX_BYTES)
    assert caught.value.problems[0][1].startswith(f"{SCHEME_MESSAGE}: {path!r} is neither (a blob path is")


# --- base64 MIDI and classification -----------------------------------------------------------


@pytest.fixture(scope="module")
def smf() -> bytes:
    song = pretty_midi.PrettyMIDI(initial_tempo=120)
    piano = pretty_midi.Instrument(program=0)
    for i, pitch in enumerate((60, 64, 67, 72)):
        piano.notes.append(pretty_midi.Note(velocity=90, pitch=pitch, start=i * 0.5, end=i * 0.5 + 0.45))
    song.instruments.append(piano)
    buffer = io.BytesIO()
    song.write(buffer)
    data = buffer.getvalue()
    assert data.startswith(b"MThd")
    return data


def test_base64_midi_is_decoded_in_its_common_spellings(smf: bytes) -> None:
    plain = base64.b64encode(smf).decode()
    spellings = [
        plain,
        "\n".join(plain[i : i + 76] for i in range(0, len(plain), 76)),  # MIME line breaks
        plain.rstrip("="),  # unpadded
        base64.urlsafe_b64encode(smf).decode(),
        f"data:audio/midi;base64,{plain}",
        f"  {plain}\n",
    ]
    for text in spellings:
        assert classify_source(text) == "base64", text[:40]
        assert decode_base64_midi(text, MIDI_FIELD, MAX_BYTES) == smf


def test_base64_midi_over_the_limit_is_refused(smf: bytes) -> None:
    text = base64.b64encode(smf).decode()
    with pytest.raises(InvalidRequest, match=f"larger than 20 bytes: got {len(smf)} bytes") as caught:
        decode_base64_midi(text, MIDI_FIELD, 20)
    assert caught.value.field == MIDI_FIELD


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("https://example.com/song.mid", "url"),
        ("http://127.0.0.1:8080/a.wav", "url"),
        ("ftp://example.com/song.mid", "url"),
        ("uploads/song.mid", "blob"),
        ("uploads/take1", "blob"),  # base64's alphabet too, but a path first
        ("/uploads/take1", "blob"),  # refused by read_blob, as a path
        ("../etc/passwd", "blob"),
    ],
)
def test_urls_and_blob_paths_are_not_base64(text: str, kind: str) -> None:
    assert classify_source(text) == kind
    assert decode_base64_midi(text, MIDI_FIELD, MAX_BYTES) is None


def test_base64_of_something_else_is_refused_as_not_midi(files: dict[str, bytes]) -> None:
    for data in (files["/a.wav"], b"hello, world!"):
        text = base64.b64encode(data).decode()
        assert classify_source(text) == "base64"
        with pytest.raises(InvalidRequest) as caught:
            decode_base64_midi(text, MIDI_FIELD, MAX_BYTES)
        assert caught.value.problems == [
            (MIDI_FIELD, "is base64 but not a Standard MIDI File: the decoded bytes do not start with 'MThd'")
        ]
