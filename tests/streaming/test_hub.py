"""StreamHub: producers and concurrent listeners on one event loop, the running mix, cancel,
reset, retention and the publish rules."""

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import numpy as np
import pytest

from stemforge.streaming.hub import Listener, StreamEnd, StreamHub, StreamLimitExceeded, StreamNotFound

T = TypeVar("T")
RATE = 1000  # small rates keep the memory bound's arithmetic readable


def _run(main: Callable[[], Awaitable[T]]) -> T:
    async def bounded() -> T:
        return await asyncio.wait_for(main(), timeout=10)  # a hang fails, never stalls the suite

    return asyncio.run(bounded())


def _audio(frames: int, seed: int, channels: int = 2) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-1, 1, (frames, channels)).astype(np.float32)


def _chunks(audio: np.ndarray, size: int) -> list[tuple[int, np.ndarray]]:
    return [(start, audio[start : start + size]) for start in range(0, len(audio), size)]


async def _collect(listener: Listener) -> np.ndarray:
    parts = [chunk async for chunk in listener]
    return np.concatenate(parts) if parts else np.zeros((0, listener.channels), np.float32)


def test_concurrent_listeners_get_exactly_what_was_published() -> None:
    audio = _audio(10_000, 1)

    async def main() -> None:
        hub = StreamHub()
        hub.open("j", ["drums", "bass"], sample_rate=RATE)
        listeners = [hub.listen("j", "drums") for _ in range(3)]
        tasks = [asyncio.create_task(_collect(listener)) for listener in listeners]
        for start, chunk in _chunks(audio, 777):
            assert hub.publish("j", "drums", start, chunk) is False
            await asyncio.sleep(0)  # listeners run between chunks: they read live
        hub.finish_stem("j", "drums")
        for listener, got in zip(listeners, await asyncio.gather(*tasks), strict=True):
            np.testing.assert_array_equal(got, audio)
            assert listener.end == StreamEnd("complete", 10_000)
            assert listener.end.ok

        # Late joiners: everything from the start, or from any frame (mid-chunk included).
        np.testing.assert_array_equal(await _collect(hub.listen("j", "drums")), audio)
        np.testing.assert_array_equal(await _collect(hub.listen("j", "drums", from_frame=1234)), audio[1234:])
        assert len(await _collect(hub.listen("j", "drums", from_frame=10_000))) == 0

    _run(main)


def test_listeners_share_read_only_chunks() -> None:
    async def main() -> None:
        hub = StreamHub()
        hub.open("j", ["drums"])
        source = _audio(100, 2)
        hub.publish("j", "drums", 0, source)
        source[:] = 0  # the producer reusing its array changes nothing buffered
        first = await anext(hub.listen("j", "drums"))
        second = await anext(hub.listen("j", "drums", from_frame=10))
        assert np.shares_memory(first, second)
        assert not first.flags.writeable
        np.testing.assert_array_equal(first, _audio(100, 2))

    _run(main)


def test_a_slow_listener_stalls_neither_the_producer_nor_a_fast_listener() -> None:
    audio = _audio(5_000, 3)

    async def main() -> None:
        hub = StreamHub()
        hub.open("j", ["vocals"])
        release = asyncio.Event()
        slow_got: list[np.ndarray] = []

        async def slow() -> None:
            async for chunk in hub.listen("j", "vocals"):
                slow_got.append(chunk)
                await release.wait()  # a client that stopped reading

        slow_task = asyncio.create_task(slow())
        fast_task = asyncio.create_task(_collect(hub.listen("j", "vocals")))
        for start, chunk in _chunks(audio, 500):
            hub.publish("j", "vocals", start, chunk)
            await asyncio.sleep(0)
        hub.finish_stem("j", "vocals")
        np.testing.assert_array_equal(await fast_task, audio)
        assert len(slow_got) == 1 and not slow_task.done()

        release.set()
        await slow_task
        np.testing.assert_array_equal(np.concatenate(slow_got), audio)

    _run(main)


def test_mix_is_the_gained_sum_and_never_runs_ahead_of_the_slowest_stem() -> None:
    drums, bass = _audio(3_000, 4), _audio(2_000, 5)
    gains = {"drums": -6.0, "bass": 3.0}
    expected = np.zeros((3_000, 2))
    expected += drums * 10 ** (-6 / 20)
    expected[:2_000] += bass * 10 ** (3 / 20)

    async def main() -> None:
        hub = StreamHub()
        hub.open("j", ["drums", "bass"], sample_rate=RATE, mix_gains_db=gains)
        listener = hub.listen("j", "mix")
        task = asyncio.create_task(_collect(listener))

        async def settle() -> None:
            for _ in range(5):
                await asyncio.sleep(0)

        hub.publish("j", "drums", 0, drums[:2_500])
        await settle()
        assert listener.position == 0  # bass has nothing yet
        hub.publish("j", "bass", 0, bass[:700])
        await settle()
        assert listener.position == 700
        hub.publish("j", "bass", 700, bass[700:])
        await settle()
        assert listener.position == 2_000
        hub.finish_stem("j", "bass")  # shorter: silence past its end, no longer a constraint
        await settle()
        assert listener.position == 2_500
        hub.publish("j", "drums", 2_500, drums[2_500:])
        await settle()
        assert listener.position == 3_000 and not task.done()  # drums may still grow
        hub.finish_stem("j", "drums")
        got = await task
        assert listener.end is not None and listener.end.ok
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-6)
        assert got.dtype == np.float32

        # A late mix listener catches up in bounded blocks.
        small_blocks = StreamHub(mix_block_frames=256)
        small_blocks.open("k", ["drums"])
        small_blocks.publish("k", "drums", 0, drums)
        small_blocks.finish_stem("k", "drums")
        blocks = [block async for block in small_blocks.listen("k", "mix", from_frame=100)]
        assert max(len(block) for block in blocks) == 256
        np.testing.assert_array_equal(np.concatenate(blocks), drums[100:])

    _run(main)


def test_cancel_stops_producers_and_listeners() -> None:
    async def main() -> None:
        hub = StreamHub()
        hub.open("j", ["drums", "bass"])
        hub.publish("j", "drums", 0, _audio(100, 6))
        stem_listener, mix_listener = hub.listen("j", "drums"), hub.listen("j", "mix")
        tasks = [asyncio.create_task(_collect(listener)) for listener in (stem_listener, mix_listener)]
        await asyncio.sleep(0)
        assert not hub.is_cancelled("j")
        assert hub.cancel("j") is True
        assert hub.cancel("j") is False  # already cancelled
        assert hub.is_cancelled("j")
        assert hub.publish("j", "drums", 100, _audio(100, 7)) is True
        assert hub.snapshot("j")["stems"]["drums"]["frames"] == 100  # nothing stored
        stem_audio, mix_audio = await asyncio.gather(*tasks)
        assert len(stem_audio) == 100 and len(mix_audio) == 0
        assert stem_listener.end == StreamEnd("cancelled", 100)
        assert mix_listener.end == StreamEnd("cancelled", 0)
        assert not stem_listener.end.ok

        # A listener joining after the cancel stops at once; a finished job is not "running".
        late = hub.listen("j", "drums")
        assert len(await _collect(late)) == 0 and late.end == StreamEnd("cancelled", 0)
        hub.open("done", ["drums"])
        hub.finish_job("done", "succeeded")
        assert hub.cancel("done") is False and hub.cancel("unknown") is False
        assert hub.is_cancelled("unknown") is False

    _run(main)


def test_a_job_that_ends_before_its_stem_ends_its_listeners_with_the_outcome() -> None:
    async def main() -> None:
        hub = StreamHub()
        hub.open("j", ["drums", "bass"])
        hub.publish("j", "drums", 0, _audio(300, 8))
        hub.finish_stem("j", "drums")
        listener = hub.listen("j", "bass")
        task = asyncio.create_task(_collect(listener))
        hub.publish("j", "bass", 0, _audio(50, 9))
        await asyncio.sleep(0)
        hub.finish_job("j", "failed", {"error": "engine crashed"})
        assert len(await task) == 50
        assert listener.end == StreamEnd("job_finished", 50, "failed", {"error": "engine crashed"})
        # The finished stem still streams in full, with the job's outcome attached.
        drums = hub.listen("j", "drums")
        assert len(await _collect(drums)) == 300
        assert drums.end == StreamEnd("complete", 300, "failed", {"error": "engine crashed"})
        with pytest.raises(ValueError, match="after the stem or job finished"):
            hub.publish("j", "bass", 50, _audio(10, 10))

    _run(main)


def test_reset_starts_a_fresh_attempt() -> None:
    async def main() -> None:
        hub = StreamHub()
        hub.open("j", ["drums"])
        hub.publish("j", "drums", 0, _audio(100, 11))
        listener = hub.listen("j", "drums")
        task = asyncio.create_task(_collect(listener))
        await asyncio.sleep(0)
        hub.reset("j")
        assert len(await task) == 100
        assert listener.end == StreamEnd("reset", 100)

        assert hub.snapshot("j")["attempt"] == 1
        assert hub.snapshot("j")["stems"]["drums"] == {"frames": 0, "finished": False}
        fresh = _audio(80, 12)
        hub.publish("j", "drums", 0, fresh)  # the new attempt starts at frame 0
        hub.finish_stem("j", "drums")
        np.testing.assert_array_equal(await _collect(hub.listen("j", "drums")), fresh)

    _run(main)


def test_publish_must_be_contiguous_and_retries_are_idempotent() -> None:
    hub = StreamHub()
    hub.open("j", ["drums"])
    audio = _audio(300, 13)
    assert hub.publish("j", "drums", 0, audio[:100]) is False
    assert hub.publish("j", "drums", 100, audio[100:200]) is False
    with pytest.raises(ValueError, match="not contiguous"):
        hub.publish("j", "drums", 250, audio[250:])
    with pytest.raises(ValueError, match="not contiguous"):
        hub.publish("j", "drums", -1, audio[:10])

    # Retries of buffered frames (across a chunk boundary too) are ignored...
    assert hub.publish("j", "drums", 0, audio[:100]) is False
    assert hub.publish("j", "drums", 50, audio[50:170]) is False
    assert hub.snapshot("j")["stems"]["drums"]["frames"] == 200
    # ...a longer one appends only its new tail...
    assert hub.publish("j", "drums", 150, audio[150:260]) is False
    assert hub.snapshot("j")["stems"]["drums"]["frames"] == 260
    # ...and one that differs from what is buffered is refused.
    with pytest.raises(ValueError, match="differs"):
        hub.publish("j", "drums", 100, audio[100:200] + 0.01)
    with pytest.raises(ValueError, match="shape"):
        hub.publish("j", "drums", 260, audio[260:, :1])

    hub.publish("j", "drums", 260, audio[260:])
    hub.finish_stem("j", "drums")
    assert hub.publish("j", "drums", 200, audio[200:]) is False  # a retry after the finish
    with pytest.raises(ValueError, match="after the stem or job finished"):
        hub.publish("j", "drums", 300, audio[:1])
    np.testing.assert_array_equal(_run(lambda: _collect(hub.listen("j", "drums"))), audio)


def test_memory_bound_per_job() -> None:
    hub = StreamHub(max_buffered_seconds_per_job=2.0)
    hub.open("j", ["drums", "bass"], sample_rate=RATE)
    hub.publish("j", "drums", 0, _audio(1_500, 14))
    with pytest.raises(StreamLimitExceeded, match="2 s of audio per job"):
        hub.publish("j", "bass", 0, _audio(501, 15))  # the bound counts every stem
    assert hub.snapshot("j")["stems"]["bass"]["frames"] == 0
    hub.publish("j", "bass", 0, _audio(500, 15))
    assert hub.snapshot("j")["buffered_seconds"] == 2.0


def test_finished_jobs_are_evicted_after_their_retention() -> None:
    now = [0.0]
    hub = StreamHub(retain_seconds=300, clock=lambda: now[0])
    for job_id in ("finished", "cancelled", "running"):
        hub.open(job_id, ["drums"])
    hub.finish_job("finished", "succeeded", {"mix": "mix.wav"})
    hub.cancel("cancelled")
    now[0] = 299.9
    assert hub.snapshot("finished")["outcome"] == "succeeded"
    hub.listen("cancelled", "drums")
    now[0] = 300.0
    for job_id in ("finished", "cancelled"):
        with pytest.raises(StreamNotFound):
            hub.listen(job_id, "drums")
    now[0] = 10_000.0
    assert hub.snapshot("running")["outcome"] is None  # never evicted while it runs
    hub.open("finished", ["bass"])  # an evicted id can be opened afresh


def test_open_and_lookups() -> None:
    hub = StreamHub()
    hub.open("j", ["drums", "bass"], mix_gains_db={"drums": -3.0})
    hub.open("j", ["drums", "bass"], mix_gains_db={"drums": -3.0})  # a retried open: no-op
    hub.publish("j", "drums", 0, _audio(10, 16))
    hub.open("j", ["drums", "bass"], mix_gains_db={"drums": -3.0})
    assert hub.snapshot("j")["stems"]["drums"]["frames"] == 10
    with pytest.raises(ValueError, match="different declaration"):
        hub.open("j", ["drums"])
    with pytest.raises(ValueError, match="running mix"):
        hub.open("k", ["mix"])
    with pytest.raises(ValueError, match="distinct"):
        hub.open("k", ["drums", "drums"])
    with pytest.raises(ValueError, match="undeclared"):
        hub.open("k", ["drums"], mix_gains_db={"bass": 0.0})

    with pytest.raises(StreamNotFound) as missing:
        hub.listen("nope", "drums")
    assert isinstance(missing.value, KeyError) and "nope" in str(missing.value)
    with pytest.raises(StreamNotFound, match="no stem 'piano'"):
        hub.listen("j", "piano")
    with pytest.raises(StreamNotFound):
        hub.publish("nope", "drums", 0, _audio(1, 0))
    with pytest.raises(ValueError):
        hub.listen("j", "drums", from_frame=-1)
    listener = hub.listen("j", "mix")
    assert (listener.sample_rate, listener.channels, listener.end) == (44100, 2, None)
