"""A real HTTP server on loopback serving files from memory: a user's track behind a URL."""

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class FileServer:
    port: int
    files: dict[str, tuple[bytes, str]] = field(default_factory=dict)  # path -> (body, content type)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}/{path.lstrip('/')}"

    def add(self, path: str, body: bytes, content_type: str = "application/octet-stream") -> str:
        self.files["/" + path.lstrip("/")] = (body, content_type)
        return self.url(path)


@contextmanager
def serve_files() -> Iterator[FileServer]:
    box: list[FileServer] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            found = box[0].files.get(self.path)
            if found is None:
                self.send_error(404)
                return
            body, content_type = found
            self.send_response(200)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    box.append(FileServer(port=server.server_address[1]))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield box[0]
    finally:
        server.shutdown()
        server.server_close()
