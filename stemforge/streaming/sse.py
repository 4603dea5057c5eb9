"""The Server-Sent Events wire format (WHATWG HTML, "server-sent events"), for ``/events``.

An event is ``id:``, ``event:`` and ``data:`` lines closed by a blank line. The data is compact
JSON with every non-ASCII character escaped, so it is a single line of ASCII: no CR or LF (or
anything a parser might take for one) can end a line early. Were a serialisation ever to span
lines, each one becomes a ``data:`` line of its own, which a client joins back with ``\\n``.
"""

import json
from typing import Any


def _single_line(field: str, value: str) -> str:
    # A CR or LF in a field other than data would end the field and start a forged one.
    if "\r" in value or "\n" in value:
        raise ValueError(f"SSE {field} must not contain CR or LF: {value!r}")
    return value


def format_event(event: str, data: Any, event_id: int | None = None) -> bytes:
    """One event's bytes. ``event_id`` lets a reconnecting client resume (``Last-Event-ID``)."""
    lines = []
    if event_id is not None:
        if event_id < 0:
            raise ValueError(f"event_id must be non-negative; got {event_id}")
        lines.append(f"id: {event_id}")
    lines.append(f"event: {_single_line('event', event)}")
    payload = json.dumps(data, separators=(",", ":"), ensure_ascii=True, allow_nan=False)
    lines.extend(f"data: {line}" for line in payload.split("\n"))
    return ("\n".join(lines) + "\n\n").encode("ascii")


def comment(text: str = "ping") -> bytes:
    """A comment (``: ping``): clients ignore it; it keeps proxies from closing an idle stream."""
    return "".join(f": {line}\n" for line in text.splitlines() or [""]).encode("utf-8") + b"\n"
