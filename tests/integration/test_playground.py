"""The playground end to end: Debian's Chromium, driven by Playwright, against the real service on
a real local Ray, with API_KEY set (the page must send it as a header, never in a URL).

Screenshots (laptop and phone) go to ``$STEMFORGE_TEST_ARTIFACTS`` (default
``.stemforge/test-artifacts/``) for CI to keep.
"""

import io
import json
import os
import shutil
import subprocess
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import soundfile as sf
from pydantic import SecretStr

from stemforge.settings import Settings
from tests.integration.conftest import REPO_ROOT, Service

try:
    from playwright.sync_api import Browser, BrowserContext, Page, Request, Route, expect, sync_playwright
except ImportError:  # pragma: no cover - the dev extra installs it
    sync_playwright = None  # type: ignore[assignment]

pytestmark = pytest.mark.integration

KEY = "pg-s3cret-key"
CHROMIUM = os.environ.get("STEMFORGE_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--autoplay-policy=no-user-gesture-required",
]
DURATION = 2.0
ARTIFACTS = Path(os.environ.get("STEMFORGE_TEST_ARTIFACTS", REPO_ROOT / ".stemforge" / "test-artifacts"))
UI_TIMEOUT_MS = 60_000


@pytest.fixture(scope="module")
def browser() -> Iterator["Browser"]:
    if sync_playwright is None:
        pytest.skip("playwright is not installed (pip install -e '.[dev]'; make install does it)")
    if not (Path(CHROMIUM).is_file() and os.access(CHROMIUM, os.X_OK)):
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium; make system-packages does it)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def keyed_service(start_service: Callable[..., Service], tmp_path_factory: pytest.TempPathFactory) -> Service:
    settings = Settings(local_storage_dir=tmp_path_factory.mktemp("playground"), api_key=SecretStr(KEY))
    return start_service(settings, name="pg")


@pytest.fixture()
def context(browser: "Browser", keyed_service: Service) -> Iterator["BrowserContext"]:
    origin = keyed_service.base_url.rsplit("/", 1)[0]
    context = browser.new_context(
        viewport={"width": 1280, "height": 900}, accept_downloads=True, base_url=origin
    )
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=origin)
    context.set_default_timeout(UI_TIMEOUT_MS)
    yield context
    context.close()


def _open(context: "BrowserContext", service: Service) -> tuple["Page", list["Request"]]:
    page = context.new_page()
    requests: list[Request] = []
    page.on("request", lambda request: requests.append(request))
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(f"{service.base_url}/playground")
    expect(page.locator("body")).to_have_attribute("data-ready", "true")
    assert not errors, errors
    return page, requests


def _fill_form(page: "Page", stems: list[str], **fields: str) -> None:
    for checkbox in page.locator("#stem-choices input[type=checkbox]").all():
        checkbox.set_checked(checkbox.get_attribute("id", timeout=1000) in {f"stem-{s}" for s in stems})
    for label, value in fields.items():
        page.get_by_label(label).fill(value)


def _max_levels(page: "Page") -> dict[str, float]:
    """Per track, the loudest it sent to the mix over 0.6 s of playback (the graph's own meters),
    after 0.2 s for the meters' window (46 ms) to hold only audio from after the last change."""
    levels: dict[str, float] = page.evaluate(
        """async () => {
            await new Promise((r) => setTimeout(r, 200));
            const top = {};
            for (let i = 0; i < 12; i++) {
                for (const [name, level] of Object.entries(window.playground.mixer.levels()))
                    top[name] = Math.max(top[name] ?? 0, level);
                await new Promise((r) => setTimeout(r, 50));
            }
            return top;
        }"""
    )
    return levels


def _gains(page: "Page") -> dict[str, float]:
    gains: dict[str, float] = page.evaluate(
        "Object.fromEntries(window.playground.mixer.tracks.map((t) => [t.name, t.gain.gain.value]))"
    )
    return gains


def _track(page: "Page", name: str) -> Any:
    return page.locator(f'[data-track="{name}"]')


def test_a_take_from_the_form_to_players_mute_solo_and_downloads(
    context: "BrowserContext", keyed_service: Service
) -> None:
    page, requests = _open(context, keyed_service)
    expect(page.locator("#health")).to_contain_text("procedural")
    page.get_by_label("API key").fill(KEY)
    assert page.evaluate("sessionStorage.getItem('stemforge.playground.apiKey')") == KEY
    assert page.evaluate("localStorage.length") == 0

    request_id = page.get_by_label("generation_request_id").input_value()
    _fill_form(
        page,
        ["drums", "bass"],
        target_bpm="100",
        duration_seconds=str(DURATION),
        style="funk",
        chord_progression="Am7 D7",
        prompt="tight groove",
        temperature="0.5",
        random_seed="1234",
    )
    # The engine choices are the deployed engines (from /health); "default" sends no override.
    assert page.get_by_label("engine for drums").locator("option").all_inner_texts() == [
        "default",
        "procedural",
    ]
    page.get_by_label("engine for drums").select_option("procedural")
    with page.expect_response(lambda r: r.url.endswith("/generate") and r.request.method == "POST") as posted:
        page.get_by_role("button", name="Generate").press("Enter")  # a real button, by keyboard
    response = posted.value
    assert response.status == 202, response.text()
    assert response.request.header_value("x-api-key") == KEY
    assert response.request.post_data_json == {
        "generation_request_id": request_id,
        "audio_file_id": "playground",
        "target_stems": ["drums", "bass"],
        "parameters": {
            "target_bpm": 100,
            "duration_seconds": DURATION,
            "style": "funk",
            "chord_progression": ["Am7", "D7"],
            "prompt": "tight groove",
            "temperature": 0.5,
            "random_seed": 1234,
            "engines": {"drums": "procedural"},
        },
    }

    # Progress: a bar per stem, filled when the job completes; then the players.
    expect(page.locator("#stem-progress li")).to_have_count(2)
    expect(page.locator("#result-status")).to_contain_text("tracks ready")
    assert page.evaluate("window.playground.job.stagesSeen.at(-1)") == "completed"
    assert page.evaluate("[...document.querySelectorAll('#stem-progress progress')].map((p) => p.value)") == [
        1,
        1,
    ]
    expect(page.locator("#job-status")).to_contain_text("completed")
    status = page.evaluate("window.playground.result.status")
    # The service's mix, where it sends one, is a track of its own, muted at first.
    mix = {"mix": 0} if status.get("mix_url") else {}

    tracks = page.evaluate(
        "window.playground.mixer.tracks.map((t) => [t.name, t.buffer.duration, t.buffer.numberOfChannels])"
    )
    assert [name for name, _, _ in tracks] == ["drums", "bass", *mix]
    for name, duration, channels in tracks:
        assert duration == pytest.approx(DURATION, abs=0.01), name
        assert channels == 2
    for name, *_ in tracks:
        inked = page.evaluate(
            """(id) => {
                const c = document.getElementById(id);
                const data = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                let n = 0;
                for (let i = 3; i < data.length; i += 4) n += data[i] > 0;
                return n / (c.width * c.height);
            }""",
            f"wave-{name}",
        )
        assert 0.01 < inked < 0.99, f"{name}'s waveform is blank or solid ({inked:.3f} inked)"

    # Quality figures and warnings are shown where the service sends them (see the next test).
    if any(stem.get("quality") for stem in status["generated_stems"]):
        expect(page.locator("#stem-quality th[scope=col]")).to_have_text(["figure", "drums", "bass"])
    if status.get("quality"):
        first = next(iter(status["quality"]))
        expect(page.locator("#request-quality")).to_contain_text(first)
    if status.get("warnings"):
        expect(page.locator("#warnings-list li")).to_have_count(len(status["warnings"]))

    # All stems play together, through their own gains: mute and solo change what reaches the mix.
    page.get_by_label("Loop").check()
    page.get_by_role("button", name="Play").click()
    page.wait_for_function(
        "() => window.playground.mixer.playing && window.playground.mixer.position() > 0.1"
    )
    assert page.evaluate("window.playground.mixer.context.state") == "running"
    assert page.evaluate("window.playground.mixer.tracks.every((t) => t.source !== null)")
    assert _gains(page) == {"drums": 1, "bass": 1, **mix}
    levels = _max_levels(page)
    assert levels["drums"] > 1e-3 and levels["bass"] > 1e-3 and levels.get("mix", 0) == 0, levels

    _track(page, "drums").get_by_role("button", name="Mute").click()
    assert _gains(page) == {"drums": 0, "bass": 1, **mix}
    levels = _max_levels(page)
    assert levels["drums"] == 0 and levels["bass"] > 1e-3, levels

    _track(page, "drums").get_by_role("button", name="Mute").click()
    _track(page, "bass").get_by_role("button", name="Solo").click()
    expect(_track(page, "bass").get_by_role("button", name="Solo")).to_have_attribute("aria-pressed", "true")
    assert _gains(page) == {"drums": 0, "bass": 1, **mix}
    levels = _max_levels(page)
    assert levels["drums"] == 0 and levels["bass"] > 1e-3, levels
    _track(page, "bass").get_by_role("button", name="Solo").click()

    if mix:  # unmuted and soloed, the service's mix alone is heard
        _track(page, "mix").get_by_role("button", name="Mute").click()
        _track(page, "mix").get_by_role("button", name="Solo").click()
        assert _gains(page) == {"drums": 0, "bass": 0, "mix": 1}
        levels = _max_levels(page)
        assert levels["drums"] == levels["bass"] == 0 and levels["mix"] > 1e-3, levels
        _track(page, "mix").get_by_role("button", name="Solo").click()
        _track(page, "mix").get_by_role("button", name="Mute").click()

    volume = page.get_by_label("Volume").nth(1)  # bass, by keyboard: 10 steps of 0.05 down
    for _ in range(10):
        volume.press("ArrowLeft")
    assert _gains(page) == {"drums": 1, "bass": pytest.approx(0.5), **mix}
    page.get_by_role("button", name="Pause").click()
    assert not page.evaluate("window.playground.mixer.playing")

    # Downloads: each stem's WAV as the service stored it, and a zip of everything.
    key = {"x-api-key": KEY}
    stored = {
        s["stem_type"]: httpx.get(s["blob_url"], headers=key).content for s in status["generated_stems"]
    }
    if mix:
        stored["mix"] = httpx.get(status["mix_url"], headers=key).content
    with page.expect_download() as wav:
        _track(page, "drums").get_by_role("link", name="drums.wav").click()
    assert Path(wav.value.path()).read_bytes() == stored["drums"]

    with page.expect_download() as archive:
        page.get_by_role("button", name="Download all (.zip)").click()
    assert archive.value.suggested_filename == f"{request_id}.zip"
    with zipfile.ZipFile(archive.value.path()) as bundle:
        assert bundle.testzip() is None  # every CRC checks out
        names = set(bundle.namelist())
        assert {f"{request_id}/{s}.{ext}" for s in ("drums", "bass") for ext in ("wav", "mid")} <= names
        for name, data in stored.items():
            assert bundle.read(f"{request_id}/{name}.wav") == data
            assert sf.info(io.BytesIO(data)).duration == pytest.approx(DURATION, abs=0.01)
        assert json.loads(bundle.read(f"{request_id}/request.json")) == response.request.post_data_json

    # The mix as heard: the tracks at their settings now (bass at half volume, the service's mix muted).
    with page.expect_download() as heard:
        page.get_by_role("button", name="Download mix as heard (.wav)").click()
    mixed, rate = sf.read(heard.value.path())
    drums, bass = (sf.read(io.BytesIO(stored[stem]))[0] for stem in ("drums", "bass"))
    assert rate == 44100 and mixed.shape == drums.shape
    assert abs(mixed).max() > 1e-2
    assert abs(mixed - np.clip(drums + 0.5 * bass, -1, 1)).max() < 1e-3

    # The key went as a header to every service call and into no URL at all.
    assert requests, "no requests recorded"
    assert not [r.url for r in requests if KEY in r.url]
    api_calls = [r for r in requests if "/pg/generate" in r.url]
    assert api_calls and all(r.headers.get("x-api-key") == KEY for r in api_calls)

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=ARTIFACTS / "playground-laptop.png", full_page=True)
    page.locator("#result").screenshot(path=ARTIFACTS / "playground-result.png")
    page.set_viewport_size({"width": 390, "height": 844})  # a phone: nothing wider than the screen
    page.wait_for_timeout(300)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.screenshot(path=ARTIFACTS / "playground-phone.png", full_page=True)


def test_copy_as_curl_and_json_reproduce_the_request(
    context: "BrowserContext", keyed_service: Service
) -> None:
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    page, _ = _open(context, keyed_service)

    # Without the key the service refuses, and the page says what to do.
    page.get_by_role("button", name="Generate").click()
    expect(page.locator("#form-status")).to_contain_text("API key")
    expect(page.get_by_label("API key")).to_be_focused()

    page.get_by_label("API key").fill(KEY)
    request_id = page.get_by_label("generation_request_id").input_value()
    _fill_form(page, ["piano"], duration_seconds="1", prompt="it's a $HOME `date` test", random_seed="7")
    page.get_by_role("button", name="Copy as curl").click()
    expect(page.locator("#form-status")).to_contain_text("Copied the curl command")
    command = page.evaluate("navigator.clipboard.readText()")
    assert command.startswith("curl ") and KEY not in command

    run = ["bash", "-c", command + " -s -o /dev/null -w '%{http_code}'"]
    env = {"PATH": os.environ["PATH"], "STEMFORGE_API_KEY": KEY}
    assert subprocess.run(run, env=env, capture_output=True, text=True, timeout=30).stdout == "202"
    del env["STEMFORGE_API_KEY"]
    assert subprocess.run(run, env=env, capture_output=True, text=True, timeout=30).stdout == "401"

    job = httpx.get(f"{keyed_service.base_url}/generate/{request_id}", headers={"x-api-key": KEY}).json()
    assert job["parameters"]["prompt"] == "it's a $HOME `date` test"  # quoted, not expanded
    assert job["parameters"]["random_seed"] == 7 and job["target_stems"] == ["piano"]

    page.get_by_role("button", name="Copy as JSON").click()
    expect(page.locator("#form-status")).to_contain_text("Copied the request as JSON")
    body = json.loads(page.evaluate("navigator.clipboard.readText()"))
    assert body["generation_request_id"] == request_id
    # The same body the curl command sent: the service sees a repeat, not a conflicting request (409).
    again = httpx.post(f"{keyed_service.base_url}/generate", json=body, headers={"x-api-key": KEY})
    assert again.status_code in (200, 202), again.text

    # A stem's engine choice becomes parameters.engines; stems left on "default" are not named.
    page.get_by_role("checkbox", name="bass").check()
    page.get_by_label("engine for piano").select_option("procedural")
    page.get_by_role("button", name="Copy as JSON").click()
    body = json.loads(page.evaluate("navigator.clipboard.readText()"))
    assert body["target_stems"] == ["bass", "piano"]
    assert body["parameters"]["engines"] == {"piano": "procedural"}


def test_a_result_without_the_additive_fields_still_plays(
    context: "BrowserContext", keyed_service: Service
) -> None:
    """The quality figures, warnings and the service's mix are additive: a service (or a job) without
    them gives players for the stems alone and no empty quality or warning sections."""
    page, _ = _open(context, keyed_service)

    def without_additions(route: "Route") -> None:
        answer = route.fetch()
        status = answer.json()
        for field in ("quality", "warnings", "mix_url"):
            status.pop(field, None)
        for stem in status.get("generated_stems", []):
            stem.pop("quality", None)
        route.fulfill(response=answer, json=status)

    page.route("**/pg/generate/*", without_additions)
    page.get_by_label("API key").fill(KEY)
    _fill_form(page, ["synth"], duration_seconds="1")
    page.get_by_role("button", name="Generate").click()
    expect(page.locator("#result-status")).to_contain_text("1 track ready")
    assert page.evaluate("window.playground.mixer.tracks.map((t) => t.name)") == ["synth"]
    expect(page.locator("#quality")).to_be_hidden()
    expect(page.locator("#warnings")).to_be_hidden()
