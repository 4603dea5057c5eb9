"""Streaming through the real HTTP contract on a real local Ray: a stem's audio while it is made,
the running mix, Server-Sent Events, listeners that come and go, and the stored WAV equal to
what was streamed."""

import io
import json
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np
import pytest
import soundfile as sf

from stemforge.music.spec import SAMPLE_RATE
from tests.integration.conftest import Service
from tests.support.callback_receiver import CallbackReceiver

pytestmark = pytest.mark.integration

STEMS = ["drums", "bass", "piano", "guitar", "synth", "other", "vocals"]
WAV_HEADER_BYTES = 44


def _body(gen_id: str, callback_url: str, stems: list[str] = STEMS, seconds: float = 20.0) -> dict:
    return {
        "generation_request_id": gen_id,
        "audio_file_id": "stream-test",
        "target_stems": stems,
        "parameters": {"target_bpm": 110.0, "duration_seconds": seconds, "style": "pop", "random_seed": 5},
        "callback_url": callback_url,
    }


@dataclass
class Listening:
    """One client reading a stream in a thread: its bytes and when the first of them came."""

    url: str
    stop_after_bytes: int | None = None
    data: bytearray = field(default_factory=bytearray)
    first_byte_at: float | None = None
    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    thread: threading.Thread | None = None

    def start(self) -> "Listening":
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        return self

    def _run(self) -> None:
        with httpx.stream("GET", self.url, timeout=120) as response:
            self.status = response.status_code
            self.headers = dict(response.headers)
            for chunk in response.iter_bytes():
                if self.first_byte_at is None and chunk:
                    self.first_byte_at = time.monotonic()
                self.data.extend(chunk)
                if self.stop_after_bytes is not None and len(self.data) >= self.stop_after_bytes:
                    return  # the client goes away mid-stream

    def join(self, timeout: float = 120) -> "Listening":
        assert self.thread is not None
        self.thread.join(timeout)
        assert not self.thread.is_alive(), f"{self.url} still streaming after {timeout} s"
        return self


def _stored_pcm(service: Service, entry_url: str) -> bytes:
    audio, _ = sf.read(io.BytesIO(service.client.get(entry_url).content), dtype="int16", always_2d=True)
    return np.ascontiguousarray(audio, dtype="<i2").tobytes()


def _callback_time(receiver: CallbackReceiver, gen_id: str) -> tuple[dict, float]:
    payload = receiver.wait_for(gen_id, timeout=180)
    return payload, time.monotonic()


def test_a_stem_streams_while_the_job_runs_and_equals_the_stored_wav(
    service: Service, callback_receiver: CallbackReceiver
) -> None:
    gen_id = "stream-live"
    assert service.generate(_body(gen_id, callback_receiver.url)).status_code == 202
    url = f"{service.base_url}/generate/{gen_id}/stream"
    first = Listening(f"{url}?stem=drums").start()
    second = Listening(f"{url}?stem=drums").start()  # another listener of the same stem
    raw = Listening(f"{url}?stem=drums&format=pcm").start()
    mix = Listening(f"{url}?stem=mix").start()

    payload, finished_at = _callback_time(callback_receiver, gen_id)
    for listening in (first, second, raw, mix):
        listening.join()

    assert payload["status"] == "completed", payload.get("error")
    assert first.status == 200 and first.headers["content-type"] == "audio/wav"
    assert first.first_byte_at is not None and first.first_byte_at < finished_at - 1.0
    entry = next(e for e in payload["generated_stems"] if e["stem_type"] == "drums")
    stored = _stored_pcm(service, entry["blob_url"])
    assert len(stored) == round(20.0 * SAMPLE_RATE) * 2 * 2
    # The stream: a WAV header of open length, then exactly the stored samples.
    assert first.data[:4] == b"RIFF" and first.data[8:12] == b"WAVE"
    assert bytes(first.data[WAV_HEADER_BYTES:]) == stored
    assert bytes(second.data) == bytes(first.data)  # many listeners, one generation
    assert bytes(raw.data) == stored
    # The running mix: every stem summed, as long as they are.
    mixed = np.frombuffer(bytes(mix.data[WAV_HEADER_BYTES:]), dtype="<i2").reshape(-1, 2) / 32768.0
    stems = [
        np.frombuffer(_stored_pcm(service, e["blob_url"]), dtype="<i2").reshape(-1, 2) / 32768.0
        for e in payload["generated_stems"]
    ]
    assert mixed.shape == stems[0].shape
    np.testing.assert_allclose(mixed, np.clip(sum(stems), -1.0, 1.0), atol=len(stems) / 32768.0 + 1e-4)


def test_a_finished_job_streams_from_storage(service: Service, callback_receiver: CallbackReceiver) -> None:
    gen_id = "stream-after"
    assert service.generate(_body(gen_id, callback_receiver.url, ["bass"], 6.0)).status_code == 202
    payload = callback_receiver.wait_for(gen_id, timeout=120)

    late = Listening(f"{service.base_url}/generate/{gen_id}/stream?stem=bass").start().join()

    assert bytes(late.data[WAV_HEADER_BYTES:]) == _stored_pcm(
        service, payload["generated_stems"][0]["blob_url"]
    )


def test_a_listener_that_goes_away_does_not_stop_the_job(
    service: Service, callback_receiver: CallbackReceiver
) -> None:
    gen_id = "stream-gone"
    assert service.generate(_body(gen_id, callback_receiver.url)).status_code == 202

    gone = Listening(f"{service.base_url}/generate/{gen_id}/stream?stem=drums", stop_after_bytes=1000).start()
    gone.join()
    payload = callback_receiver.wait_for(gen_id, timeout=180)

    assert len(gone.data) >= 1000
    assert payload["status"] == "completed"
    assert len(payload["generated_stems"]) == len(STEMS)


def _events(text: str) -> list[tuple[str, dict]]:
    events = []
    for block in text.strip().split("\n\n"):
        name, data = None, None
        for line in block.splitlines():
            if line.startswith("event:"):
                name = line.removeprefix("event:").strip()
            elif line.startswith("data:"):
                data = json.loads(line.removeprefix("data:").strip())
        if name is not None:
            events.append((name, data))
    return events


def test_events_follow_the_job_in_order_and_end_with_the_callback_payload(
    service: Service, callback_receiver: CallbackReceiver
) -> None:
    gen_id = "stream-events"
    assert (
        service.generate(_body(gen_id, callback_receiver.url, ["drums", "bass", "piano"], 12.0)).status_code
        == 202
    )

    response = service.client.get(f"{service.base_url}/generate/{gen_id}/events", timeout=180)
    payload = callback_receiver.wait_for(gen_id, timeout=60)

    assert response.headers["content-type"].startswith("text/event-stream")
    events = _events(response.text)
    names = [name for name, _ in events]
    assert names[-1] == "callback"
    stages = [data["stage"] for name, data in events if name == "stage"]
    order = ["accepted", "generating", "storing", "calling back", "completed"]
    assert [order.index(stage) for stage in stages] == sorted(order.index(stage) for stage in stages)
    assert "generating" in stages
    fractions = [data["fraction"] for name, data in events if name == "progress"]
    assert fractions == sorted(fractions) and fractions
    stems = [data["stem_type"] for name, data in events if name == "stem"]
    assert sorted(stems) == ["bass", "drums", "piano"]
    assert all(data["blob_url"] for name, data in events if name == "stem")
    last = events[-1][1]
    assert last["status"] == payload["status"] == "completed"
    assert [s["blob_url"] for s in last["generated_stems"]] == [
        s["blob_url"] for s in payload["generated_stems"]
    ]


def test_streams_of_unknown_jobs_and_stems_are_refused(
    service: Service, callback_receiver: CallbackReceiver
) -> None:
    assert service.client.get(f"{service.base_url}/generate/no-such-job/stream?stem=bass").status_code == 404
    assert service.client.get(f"{service.base_url}/generate/no-such-job/events").status_code == 404
    too_long = "\U0001f3b8" * 128  # no such record can exist: a 404, not a storage failure
    for method, route in (("GET", ""), ("DELETE", ""), ("GET", "/stream?stem=bass"), ("GET", "/events")):
        assert (
            service.client.request(method, f"{service.base_url}/generate/{too_long}{route}").status_code
            == 404
        )
    gen_id = "stream-refused"
    assert service.generate(_body(gen_id, callback_receiver.url, ["bass"], 2.0)).status_code == 202
    wrong = service.client.get(f"{service.base_url}/generate/{gen_id}/stream?stem=vocals")
    assert wrong.status_code == 422 and "stem" in wrong.json()["message"]
    bad_format = service.client.get(f"{service.base_url}/generate/{gen_id}/stream?stem=bass&format=mp3")
    assert bad_format.status_code == 422
    callback_receiver.wait_for(gen_id, timeout=60)
    late = service.client.delete(f"{service.base_url}/generate/{gen_id}")
    assert late.status_code == 409 and "too late" in late.json()["message"]


def test_a_browser_plays_the_stream_while_the_job_runs(
    service: Service, callback_receiver: CallbackReceiver
) -> None:
    """Chromium's <audio> plays the open-ended WAV as it arrives: it is playing before the job ends."""
    sync_playwright = pytest.importorskip("playwright.sync_api").sync_playwright
    from tests.integration.test_playground import CHROMIUM, CHROMIUM_ARGS

    if not Path(CHROMIUM).is_file():
        pytest.skip(f"no Chromium at {CHROMIUM}")
    gen_id = "stream-browser"
    assert service.generate(_body(gen_id, callback_receiver.url, seconds=30.0)).status_code == 202
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.goto(f"{service.base_url}/health")
            heard = page.evaluate(
                """async (url) => {
                    const audio = new Audio(url);
                    await audio.play();
                    await new Promise((done) => {
                        const look = () => (audio.currentTime > 1.0 ? done() : setTimeout(look, 50));
                        look();
                    });
                    return {currentTime: audio.currentTime, paused: audio.paused};
                }""",
                f"{service.base_url}/generate/{gen_id}/stream?stem=drums",
            )
            playing_while_running = callback_receiver.count(gen_id) == 0
        finally:
            browser.close()
    payload = callback_receiver.wait_for(gen_id, timeout=180)

    assert heard["currentTime"] > 1.0 and not heard["paused"]
    assert playing_while_running, "the job had already called back when the browser was playing"
    assert payload["status"] == "completed"
