"""A real HTTP server on loopback that plays the client's callback endpoint."""

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class ReceivedCallback:
    path: str
    headers: dict[str, str]  # names lower-cased
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class CallbackReceiver:
    """Records every POST. ``responses`` is a queue of answers (200 once empty), so a test can
    make the client endpoint fail a few times first: a status code, ``(status, headers)``,
    ``("stall", seconds)`` to hold the connection without answering, or ``("slow", seconds)``
    to answer 200 after a while. ``default`` answers once the queue is empty."""

    server: ThreadingHTTPServer
    received: list[ReceivedCallback] = field(default_factory=list)
    responses: list[Any] = field(default_factory=list)
    lock: threading.Condition = field(default_factory=threading.Condition)
    default: Any = 200

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}/callback"

    def wait_for(self, generation_request_id: str, timeout: float = 30.0) -> dict[str, Any]:
        """The first callback for ``generation_request_id``, waiting up to ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        with self.lock:
            while True:
                for callback in self.received:
                    payload = callback.json()
                    if payload.get("generation_request_id") == generation_request_id:
                        return dict(payload)
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"no callback for {generation_request_id} within {timeout} s")
                self.lock.wait(remaining)

    def count(self, generation_request_id: str) -> int:
        with self.lock:
            return sum(
                1 for c in self.received if c.json().get("generation_request_id") == generation_request_id
            )


def _handler(receiver_box: list[CallbackReceiver]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            receiver = receiver_box[0]
            body = self.rfile.read(int(self.headers.get("content-length", 0)))
            with receiver.lock:
                answer = receiver.responses.pop(0) if receiver.responses else receiver.default
                headers = {k.lower(): v for k, v in self.headers.items()}
                receiver.received.append(ReceivedCallback(self.path, headers, body))
                receiver.lock.notify_all()
            if isinstance(answer, tuple) and answer[0] == "stall":
                time.sleep(answer[1])
                return
            if isinstance(answer, tuple) and answer[0] == "slow":
                time.sleep(answer[1])
                answer = 200
            status, extra_headers = answer if isinstance(answer, tuple) else (answer, {})
            self.send_response(status)
            for name, value in extra_headers.items():
                self.send_header(name, value)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


class _Server(ThreadingHTTPServer):
    request_queue_size = 128  # bursts of concurrent callbacks: socketserver's default is 5
    daemon_threads = True


def start_callback_receiver() -> Iterator[CallbackReceiver]:
    box: list[CallbackReceiver] = []
    server = _Server(("127.0.0.1", 0), _handler(box))
    receiver = CallbackReceiver(server=server)
    box.append(receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
