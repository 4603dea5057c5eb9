"""format_event and comment, parsed back as an EventSource would (WHATWG HTML's algorithm)."""

import json
import re
from typing import Any

import pytest

from stemforge.streaming.sse import comment, format_event


def _parse(stream: bytes) -> list[dict[str, Any]]:
    """Dispatched events as {id, event, data} (data JSON-decoded), per the spec's line rules."""
    events: list[dict[str, Any]] = []
    data: list[str] = []
    event_type, last_id = "message", None
    for line in re.split(r"\r\n|\r|\n", stream.decode("utf-8")):
        if line == "":  # dispatch; the type resets, the last id persists
            if data:
                events.append({"id": last_id, "event": event_type, "data": json.loads("\n".join(data))})
            data, event_type = [], "message"
        elif not line.startswith(":"):  # a comment is ignored
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "data":
                data.append(value)
            elif name == "event":
                event_type = value
            elif name == "id":
                last_id = value
    return events


def test_events_round_trip() -> None:
    awkward = {"text": "two\nlines\r\nand \u2028 a separator", "quote": '"', "é": [1, 2.5, None, True]}
    stream = (
        format_event("progress", {"stem": "drums", "frames": 44100}, event_id=1)
        + comment()
        + format_event("status", awkward, event_id=2)
        + comment("keep\nalive")
        + format_event("done", "plain string")
    )
    assert stream.isascii()
    assert _parse(stream) == [
        {"id": "1", "event": "progress", "data": {"stem": "drums", "frames": 44100}},
        {"id": "2", "event": "status", "data": awkward},
        {"id": "2", "event": "done", "data": "plain string"},  # the last id stays, as in EventSource
    ]


def test_wire_format() -> None:
    assert (
        format_event("progress", {"a": 1, "b": [1, 2]}, 7)
        == b'id: 7\nevent: progress\ndata: {"a":1,"b":[1,2]}\n\n'
    )
    assert format_event("x", None) == b"event: x\ndata: null\n\n"
    assert comment() == b": ping\n\n"
    assert comment("a\nb") == b": a\n: b\n\n"


def test_fields_that_would_break_the_stream_are_refused() -> None:
    with pytest.raises(ValueError):
        format_event("bad\nevent", {})
    with pytest.raises(ValueError):
        format_event("x", {}, event_id=-1)
    with pytest.raises(ValueError):
        format_event("x", float("nan"))  # not JSON
