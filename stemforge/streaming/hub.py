"""StreamHub: one replica's in-memory broker between a job's producers and its listeners.

Producers :meth:`~StreamHub.publish` each stem's audio in order; any number of listeners
:meth:`~StreamHub.listen` to a stem (or to ``"mix"``, the running mix) from any frame. Every
chunk is stored once, read-only, and listeners read the shared buffer at their own pace (views,
no copies), so a slow listener only falls behind: it never holds up a producer or another
listener. Memory is bounded per job (``max_buffered_seconds_per_job``) instead.

Not thread-safe by design: every method runs on the replica's one event loop, and only a
listener's wait ever awaits, so no state changes between a check and the wait that follows it.

How a listen ends: iteration always stops cleanly; the :class:`Listener`'s ``end`` then says
why (:class:`StreamEnd`; ``end.ok`` only when every frame of a finished stem was delivered).
A route streaming WAV can close the connection early when not ``ok``; ``/events`` can report
``end.reason`` and the job's outcome.

The running mix is a plain sum of the stems at ``mix_gains_db`` (0 dB unless given), unlimited
(16-bit output saturates past full scale). The stored ``mix.wav``, made later by the uploader
(``stemforge.quality.mix``), differs: stems without an engine gain are loudness-matched, and
the whole sum is turned down until its true peak is under the ceiling (-1 dBTP).
"""

import asyncio
import time
from bisect import bisect_right
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

MIX = "mix"

EndReason = Literal["complete", "cancelled", "reset", "job_finished"]


class StreamNotFound(KeyError):
    """No such job (never opened, or evicted after its retention) or no such stem in it."""

    def __str__(self) -> str:  # KeyError's own str() is the repr of its argument
        return str(self.args[0]) if self.args else "stream not found"


class StreamLimitExceeded(RuntimeError):
    """A publish would buffer more audio for one job than the hub allows."""


@dataclass(frozen=True)
class StreamEnd:
    """Why a listen stopped.

    ``complete``: the stem (for the mix: every stem) was finished and delivered to its end;
    ``cancelled``: the job was cancelled (undelivered audio is dropped: cancel means stop);
    ``reset``: a fresh attempt started, so this listener's audio belongs to an abandoned one;
    ``job_finished``: the job ended (``finish_job``, e.g. failed) before the stem finished.
    """

    reason: EndReason
    end_frame: int  # the first frame not delivered
    outcome: str | None = None
    payload: dict[str, Any] | None = None

    @property
    def ok(self) -> bool:
        return self.reason == "complete"


class _StemBuffer:
    """A stem's chunks in order, with each one's start frame for lookups by frame."""

    def __init__(self) -> None:
        self.chunks: list[np.ndarray] = []
        self.starts: list[int] = []
        self.frames = 0
        self.finished = False

    def append(self, chunk: np.ndarray) -> None:
        self.chunks.append(chunk)
        self.starts.append(self.frames)
        self.frames += chunk.shape[0]

    def rest_of_chunk(self, start: int) -> np.ndarray:
        """A view from frame ``start`` (buffered) to the end of the chunk holding it."""
        index = bisect_right(self.starts, start) - 1
        return self.chunks[index][start - self.starts[index] :]

    def views(self, start: int, stop: int) -> list[np.ndarray]:
        """Views of the buffered frames ``[start, stop)`` (clamped to what is buffered)."""
        stop = min(stop, self.frames)
        out = []
        index = bisect_right(self.starts, start) - 1
        while start < stop:
            chunk, offset = self.chunks[index], start - self.starts[index]
            piece = chunk[offset : offset + stop - start]
            out.append(piece)
            start += piece.shape[0]
            index += 1
        return out


@dataclass
class _Job:
    stems: tuple[str, ...]
    sample_rate: int
    channels: int
    gains: dict[str, float]  # linear
    buffers: dict[str, _StemBuffer]
    attempt: int = 0
    cancelled: bool = False
    outcome: str | None = None
    payload: dict[str, Any] | None = None
    ended_at: float | None = None  # retention counts from here (finish_job or cancel)
    # Broadcast: every change sets this event and puts a fresh one in its place, so each waiter
    # wakes exactly once per change, however many there are.
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def notify(self) -> None:
        self.changed.set()
        self.changed = asyncio.Event()

    def buffered_frames(self) -> int:
        return sum(buffer.frames for buffer in self.buffers.values())


class StreamHub:
    def __init__(
        self,
        retain_seconds: float = 300.0,
        max_buffered_seconds_per_job: float = 3600.0,
        mix_block_frames: int = 65536,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._jobs: dict[str, _Job] = {}
        self._retain_seconds = retain_seconds
        self._max_buffered_seconds = max_buffered_seconds_per_job
        # A late mix listener catches up in blocks this long, not in one array of the whole song.
        self._mix_block_frames = mix_block_frames
        self._clock = clock

    # Producers' side.

    def open(
        self,
        job_id: str,
        stems: Sequence[str],
        sample_rate: int = 44100,
        channels: int = 2,
        mix_gains_db: Mapping[str, float] | None = None,
    ) -> None:
        """Declare a job's stems. Reopening with the same declaration is a no-op (a retried
        open); with a different one it is a ValueError."""
        self._evict()
        names = tuple(stems)
        gains_db = dict(mix_gains_db or {})
        if not names or len(set(names)) != len(names):
            raise ValueError(f"stems must be distinct and at least one; got {names}")
        if MIX in names:
            raise ValueError(f"{MIX!r} names the running mix; it cannot be a stem")
        if unknown := set(gains_db) - set(names):
            raise ValueError(f"mix gains for undeclared stems: {sorted(unknown)}")
        if sample_rate <= 0 or channels <= 0:
            raise ValueError(f"sample_rate and channels must be positive; got {sample_rate}, {channels}")
        gains = {name: 10 ** (gains_db.get(name, 0.0) / 20) for name in names}
        existing = self._jobs.get(job_id)
        if existing is not None:
            same = (existing.stems, existing.sample_rate, existing.channels, existing.gains) == (
                names,
                sample_rate,
                channels,
                gains,
            )
            if not same:
                raise ValueError(f"job {job_id!r} is already open with a different declaration")
            return
        self._jobs[job_id] = _Job(
            stems=names,
            sample_rate=sample_rate,
            channels=channels,
            gains=gains,
            buffers={name: _StemBuffer() for name in names},
        )

    def reset(self, job_id: str) -> None:
        """A fresh attempt: drop every buffered frame, finished flag and outcome. Listeners of
        the old attempt end with ``reset``; a cancel stays (it was the user's)."""
        job = self._job(job_id)
        job.attempt += 1
        job.buffers = {name: _StemBuffer() for name in job.stems}
        job.outcome, job.payload = None, None
        if not job.cancelled:  # a cancelled job's retention keeps counting from its cancel
            job.ended_at = None
        job.notify()

    def publish(self, job_id: str, stem: str, start_frame: int, chunk: np.ndarray) -> bool:
        """Append ``chunk`` (float, ``(frames, channels)``) at ``start_frame``; True when the job
        is cancelled, so the producer stops (nothing is stored then).

        ``start_frame`` must be the stem's frame count so far. A retry of frames already
        buffered is ignored when it matches them (a longer one appends its new tail); one that
        does not match, a gap, or new frames after the stem or job finished are ValueErrors.
        """
        job = self._job(job_id)
        if job.cancelled:
            return True
        buffer = self._buffer(job, job_id, stem)
        if chunk.ndim != 2 or chunk.shape[1] != job.channels:
            raise ValueError(f"chunk must have shape (frames, {job.channels}); got {chunk.shape}")
        if start_frame < 0 or start_frame > buffer.frames:
            raise ValueError(
                f"{job_id}/{stem}: publish at frame {start_frame} is not contiguous "
                f"(the stem has {buffer.frames} frames)"
            )
        overlap = min(chunk.shape[0], buffer.frames - start_frame)
        if overlap > 0:
            self._check_retry(buffer, job_id, stem, start_frame, chunk[:overlap])
        fresh = chunk[overlap:]
        if fresh.shape[0] == 0:
            return False
        if buffer.finished or job.outcome is not None:
            raise ValueError(f"{job_id}/{stem}: new frames after the stem or job finished")
        limit = int(self._max_buffered_seconds * job.sample_rate)
        if job.buffered_frames() + fresh.shape[0] > limit:
            raise StreamLimitExceeded(
                f"{job_id}: {fresh.shape[0]} more frames would exceed the stream buffer's bound of "
                f"{self._max_buffered_seconds:g} s of audio per job (across its stems)"
            )
        # One copy per publish: the producer may reuse its array, and listeners share this one.
        stored = np.array(fresh, dtype=np.float32, order="C", copy=True)
        stored.flags.writeable = False
        buffer.append(stored)
        job.notify()
        return False

    @staticmethod
    def _check_retry(buffer: _StemBuffer, job_id: str, stem: str, start: int, chunk: np.ndarray) -> None:
        offset = 0
        for view in buffer.views(start, start + chunk.shape[0]):
            part = chunk[offset : offset + view.shape[0]].astype(np.float32)
            if not np.array_equal(view, part, equal_nan=True):
                raise ValueError(
                    f"{job_id}/{stem}: a republish of frames {start}..{start + chunk.shape[0]} "
                    "differs from the audio already buffered"
                )
            offset += view.shape[0]

    def finish_stem(self, job_id: str, stem: str) -> None:
        """The stem has all its frames (idempotent)."""
        job = self._job(job_id)
        buffer = self._buffer(job, job_id, stem)
        if not buffer.finished:
            buffer.finished = True
            job.notify()

    def finish_job(self, job_id: str, outcome: str, payload: dict[str, Any] | None = None) -> None:
        """The job ended (``succeeded``, ``failed``, ...): retention starts. Stems not finished
        stay unfinished; their listeners end with ``job_finished``. A later call updates the
        outcome; retention still counts from the first end."""
        job = self._job(job_id)
        job.outcome, job.payload = outcome, payload
        if job.ended_at is None:
            job.ended_at = self._clock()
        job.notify()

    def cancel(self, job_id: str) -> bool:
        """Cancel: publishes return True and listeners stop. Whether the job was running (known,
        not finished, not already cancelled). Retention starts, in case no producer reports."""
        self._evict()
        job = self._jobs.get(job_id)
        if job is None or job.cancelled or job.outcome is not None:
            return False
        job.cancelled = True
        job.ended_at = self._clock()
        job.notify()
        return True

    def is_cancelled(self, job_id: str) -> bool:
        """False for an unknown job as for a running one."""
        self._evict()
        job = self._jobs.get(job_id)
        return job is not None and job.cancelled

    # Listeners' side.

    def listen(self, job_id: str, stem: str, from_frame: int = 0) -> "Listener":
        """An async iterator of float32 ``(frames, channels)`` read-only chunks of ``stem`` (or
        of the running mix, ``"mix"``) from ``from_frame``: what is buffered at once, then live
        chunks as they come. Raises :class:`StreamNotFound` here, before any iteration."""
        job = self._job(job_id)
        if stem != MIX:
            self._buffer(job, job_id, stem)
        if from_frame < 0:
            raise ValueError(f"from_frame must be non-negative; got {from_frame}")
        return Listener(job, job_id, stem, from_frame, self._mix_block_frames)

    def snapshot(self, job_id: str) -> dict[str, Any]:
        """The job's state as plain data, for debugging and tests."""
        job = self._job(job_id)
        return {
            "job_id": job_id,
            "attempt": job.attempt,
            "sample_rate": job.sample_rate,
            "channels": job.channels,
            "stems": {
                name: {"frames": buffer.frames, "finished": buffer.finished}
                for name, buffer in job.buffers.items()
            },
            "buffered_seconds": job.buffered_frames() / job.sample_rate,
            "cancelled": job.cancelled,
            "outcome": job.outcome,
            "payload": job.payload,
        }

    # Internals.

    def _evict(self) -> None:
        now = self._clock()
        expired = [
            job_id
            for job_id, job in self._jobs.items()
            if job.ended_at is not None and now - job.ended_at >= self._retain_seconds
        ]
        for job_id in expired:
            # A listener still reading holds its own reference to the job; it finishes normally.
            del self._jobs[job_id]

    def _job(self, job_id: str) -> _Job:
        self._evict()
        job = self._jobs.get(job_id)
        if job is None:
            raise StreamNotFound(f"no stream for job {job_id!r}")
        return job

    @staticmethod
    def _buffer(job: _Job, job_id: str, stem: str) -> _StemBuffer:
        buffer = job.buffers.get(stem)
        if buffer is None:
            raise StreamNotFound(f"job {job_id!r} has no stem {stem!r} (it has {', '.join(job.stems)})")
        return buffer


class Listener(AsyncIterator[np.ndarray]):
    """One listen (see :meth:`StreamHub.listen`). ``position`` is the next frame it yields;
    ``end`` is None while it runs and says why it stopped once it has (:class:`StreamEnd`)."""

    def __init__(self, job: _Job, job_id: str, stem: str, from_frame: int, mix_block_frames: int) -> None:
        self._job = job
        self._mix_block_frames = mix_block_frames
        self._attempt = job.attempt
        self.job_id = job_id
        self.stem = stem
        self.sample_rate = job.sample_rate
        self.channels = job.channels
        self.position = from_frame
        self.end: StreamEnd | None = None

    def __aiter__(self) -> "Listener":
        return self

    async def __anext__(self) -> np.ndarray:
        while self.end is None:
            job = self._job
            if job.attempt != self._attempt:
                self._stop("reset")
            elif job.cancelled:
                self._stop("cancelled")
            else:
                chunk = self._next_stem_chunk() if self.stem != MIX else self._next_mix_block()
                if chunk is not None:
                    self.position += chunk.shape[0]
                    return chunk
                if self._complete():
                    self._stop("complete")
                elif job.outcome is not None:
                    self._stop("job_finished")
                else:
                    await job.changed.wait()
        raise StopAsyncIteration

    def _stop(self, reason: EndReason) -> None:
        job = self._job
        # A reset cleared the outcome the listener's attempt had; it has none of its own.
        outcome, payload = (None, None) if reason == "reset" else (job.outcome, job.payload)
        self.end = StreamEnd(reason, self.position, outcome, payload)

    def _complete(self) -> bool:
        buffers = self._job.buffers
        if self.stem != MIX:
            return buffers[self.stem].finished and self.position >= buffers[self.stem].frames
        return all(b.finished for b in buffers.values()) and self.position >= self._mix_limit()

    def _next_stem_chunk(self) -> np.ndarray | None:
        buffer = self._job.buffers[self.stem]
        if self.position >= buffer.frames:
            return None
        # Chunks go out as published (a view; never merged), so a late listener catches up
        # chunk by chunk.
        return buffer.rest_of_chunk(self.position)

    def _mix_limit(self) -> int:
        """The mix is known up to where every unfinished stem has reached; a finished stem is
        silence past its end, so once all are finished the mix runs to the longest."""
        buffers = self._job.buffers.values()
        unfinished = [b.frames for b in buffers if not b.finished]
        return min(unfinished) if unfinished else max(b.frames for b in buffers)

    def _next_mix_block(self) -> np.ndarray | None:
        start = self.position
        stop = min(self._mix_limit(), start + self._mix_block_frames)
        if stop <= start:
            return None
        # float64 sum, as the stored mix (stemforge.quality.mix) does, then float32 as stems are.
        total = np.zeros((stop - start, self.channels), dtype=np.float64)
        for name, buffer in self._job.buffers.items():
            gain = self._job.gains[name]
            at = 0
            for view in buffer.views(start, stop):
                total[at : at + view.shape[0]] += view.astype(np.float64) * gain
                at += view.shape[0]
        block = total.astype(np.float32)
        block.flags.writeable = False
        return block
