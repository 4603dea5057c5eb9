"""The engine replica's side of streaming against a real StreamHub: the engine's audio arrives in
order and in chunks, and a cancel reaches the engine through its progress tracker."""

import asyncio
from typing import Any

import numpy as np
import pytest

from stemforge.engines.base import StreamTarget
from stemforge.engines.progress import ProgressTracker
from stemforge.errors import JobCancelled
from stemforge.streaming.hub import StreamHub
from stemforge.streaming.publisher import MAX_CALL_FRAMES, StreamPublisher


class HubHandle:
    """The hub behind the handle interface the publisher calls (``relay.method.remote(...)``)."""

    def __init__(self, hub: StreamHub, fail: str | None = None) -> None:
        self.hub = hub
        self.fail = fail
        self.calls: list[str] = []

    def __getattr__(self, method: str) -> Any:
        outer = self

        class Method:
            async def remote(self, *args: Any) -> Any:
                outer.calls.append(method)
                if method == outer.fail:
                    raise ConnectionError("relay gone")
                if method == "open":
                    outer.hub.open(args[0], args[1])
                    return outer.hub.is_cancelled(args[0])
                return getattr(outer.hub, method)(*args)

        return Method()


def _audio(seconds: float, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-0.5, 0.5, (round(seconds * 44100), 2)).astype(np.float32)


def test_stems_reach_listeners_in_chunks_exactly_as_the_engine_made_them() -> None:
    async def run() -> tuple[np.ndarray, np.ndarray]:
        hub = StreamHub()
        tracker = ProgressTracker(["drums", "bass"])
        publisher = StreamPublisher(HubHandle(hub), StreamTarget("job", ("drums", "bass")), tracker)
        await publisher.open()
        drums, bass = _audio(25.0, 1), _audio(1.0, 2)
        publisher.sink("drums", drums[:500_000])
        publisher.sink("drums", drums[500_000:])
        publisher.sink("bass", bass)
        listener = hub.listen("job", "drums")
        await publisher.finish(("drums", "bass"))
        heard = [chunk async for chunk in listener]
        assert max(chunk.shape[0] for chunk in heard) <= MAX_CALL_FRAMES
        return np.concatenate(heard), drums

    heard, drums = asyncio.run(run())
    np.testing.assert_array_equal(heard, drums)


def test_a_cancel_at_the_relay_stops_the_engine_at_its_next_report() -> None:
    async def run() -> ProgressTracker:
        hub = StreamHub()
        tracker = ProgressTracker(["drums"])
        publisher = StreamPublisher(HubHandle(hub), StreamTarget("job", ("drums",)), tracker)
        await publisher.open()
        hub.cancel("job")
        publisher.sink("drums", _audio(0.5, 3))
        await publisher.flush()
        return tracker

    tracker = asyncio.run(run())
    assert tracker.cancelled
    with pytest.raises(JobCancelled):
        tracker("drums", 0.5)


def test_a_relay_that_fails_stops_the_stream_never_the_job() -> None:
    async def run() -> tuple[ProgressTracker, HubHandle]:
        handle = HubHandle(StreamHub(), fail="publish")
        tracker = ProgressTracker(["drums"])
        publisher = StreamPublisher(handle, StreamTarget("job", ("drums",)), tracker)
        await publisher.open()
        publisher.sink("drums", _audio(2.0, 4))
        await publisher.finish(("drums",))
        return tracker, handle

    tracker, handle = asyncio.run(run())
    assert not tracker.cancelled
    assert handle.calls == ["open", "publish"]  # nothing more after the failure
    tracker("drums", 1.0)  # the engine goes on
