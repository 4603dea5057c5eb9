"""The bytes of a ``/generate/{id}/stream`` response: a WAV header of open length (``wav``)
or none (``pcm``), then 16-bit PCM, from the relay's live stream or from a stored stem."""

from collections.abc import AsyncIterator
from typing import Any

from stemforge.music.spec import CHANNELS, SAMPLE_RATE
from stemforge.streaming.pcm import to_pcm16, wav_stream_header

STORED_CHUNK_BYTES = 4 * SAMPLE_RATE * CHANNELS * 2  # 4 s of stored 16-bit audio


async def live_body(listen: Any, format: str) -> AsyncIterator[bytes]:
    """The relay's stream as bytes: a WAV header of open length first (``wav``), then PCM as
    the engines make it. A client that goes away only closes this stream: the job goes on."""
    header_sent = format != "wav"
    try:
        async for item in listen:
            if isinstance(item, dict):
                if not header_sent and ("sample_rate" in item or "missing" in item):
                    header_sent = True
                    yield wav_stream_header(
                        item.get("sample_rate", SAMPLE_RATE), item.get("channels", CHANNELS)
                    )
                continue
            yield to_pcm16(item)
    finally:
        listen.cancel()


async def stored_body(pcm: bytes, format: str) -> AsyncIterator[bytes]:
    if format == "wav":
        yield wav_stream_header(SAMPLE_RATE, CHANNELS)
    for start in range(0, len(pcm), STORED_CHUNK_BYTES):
        yield pcm[start : start + STORED_CHUNK_BYTES]
