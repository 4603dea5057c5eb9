"""The page's pure modules (zip writer, WAV encoder, request builder, curl quoting, mute/solo
rule), run by node: the same files the browser loads."""

import base64
import io
import json
import re
import shutil
import subprocess
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf

STATIC = Path(__file__).resolve().parents[2] / "stemforge" / "playground" / "static"
NODE = shutil.which("node")

pytestmark = pytest.mark.skipif(NODE is None, reason="node is not installed (make install needs it for npm)")


def _node(script: str) -> Any:
    """Runs an ES module script that may import ``@/name.js`` (a static file) and prints JSON."""
    source = script.replace("@/", f"{STATIC.as_uri()}/")
    done = subprocess.run(
        [str(NODE), "--input-type=module", "-e", source], capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_the_zip_holds_every_file_byte_for_byte_with_good_crcs() -> None:
    rng = np.random.default_rng(1)
    files = {
        "take-1/drums.wav": rng.integers(0, 256, 70_001, dtype=np.uint8).tobytes(),
        "take-1/empty.mid": b"",
        "take-1/gr\u00fc\u00dfe \u266a.json": '{"note": "\u266a"}'.encode(),
    }
    encoded = {name: base64.b64encode(data).decode() for name, data in files.items()}
    archive = _node(
        f"""
        import {{ zipStore, crc32 }} from "@/zip.js";
        const files = Object.entries({json.dumps(encoded)}).map(([name, b64]) => ({{
            name, data: Uint8Array.from(Buffer.from(b64, "base64")) }}));
        files.push({{ name: "take-1/text.txt", data: "plain text \u00e9" }});
        const zip = zipStore(files, new Date(2026, 10, 24, 12, 30, 10));
        console.log(JSON.stringify({{ zip: Buffer.from(zip).toString("base64"),
            check: crc32(new TextEncoder().encode("123456789")) }}));
        """
    )
    assert archive["check"] == 0xCBF43926  # the CRC-32 check value
    with zipfile.ZipFile(io.BytesIO(base64.b64decode(archive["zip"]))) as bundle:
        assert bundle.testzip() is None
        assert bundle.namelist() == [*files, "take-1/text.txt"]
        for name, data in files.items():
            assert bundle.read(name) == data
            info = bundle.getinfo(name)
            assert info.compress_type == zipfile.ZIP_STORED and info.flag_bits & 0x800  # UTF-8 names
            assert info.date_time == (2026, 11, 24, 12, 30, 10)
        assert bundle.read("take-1/text.txt") == "plain text \u00e9".encode()


def test_the_zip_refuses_names_that_would_escape_or_repeat() -> None:
    refused = _node(
        """
        import { zipStore } from "@/zip.js";
        const tries = [[{ name: "../x", data: "" }], [{ name: "/x", data: "" }],
                       [{ name: "a", data: "" }, { name: "a", data: "" }], [{ name: "", data: "" }]];
        console.log(JSON.stringify(tries.map((files) => {
            try { zipStore(files); return "written"; } catch (e) { return e.message; } })));
        """
    )
    assert len(refused) == 4 and "written" not in refused


def test_the_mix_wav_is_16_bit_stereo_pcm_of_the_samples() -> None:
    encoded = _node(
        """
        import { encodeWav } from "@/wav.js";
        const n = 4410, left = new Float32Array(n), right = new Float32Array(n);
        for (let i = 0; i < n; i++) { left[i] = Math.sin(2 * Math.PI * 441 * i / 44100) * 0.5; right[i] = 2; }
        console.log(JSON.stringify(Buffer.from(encodeWav([left, right], 44100)).toString("base64")));
        """
    )
    audio, rate = sf.read(io.BytesIO(base64.b64decode(encoded)), dtype="float32")
    assert rate == 44100 and audio.shape == (4410, 2)
    assert sf.info(io.BytesIO(base64.b64decode(encoded))).subtype == "PCM_16"
    expected = np.sin(2 * np.pi * 441 * np.arange(4410) / 44100) * 0.5
    assert np.abs(audio[:, 0] - expected).max() < 1e-4
    assert np.allclose(audio[:, 1], 32767 / 32768)  # clipped to full scale, not wrapped


def test_the_request_leaves_out_what_the_form_leaves_empty() -> None:
    built = _node(
        """
        import { buildRequest, parseChords, randomId } from "@/request.js";
        const full = buildRequest({ generation_request_id: " take-1 ", audio_file_id: "song",
            target_stems: ["drums", "bass"], target_bpm: "97.5", duration_seconds: "12",
            style: " funk ", chord_progression: "Am7, D7 | G/B  Cmaj7", prompt: "tight",
            temperature: "0", random_seed: "0",
            engines: { drums: "procedural", bass: "default", piano: "musicgen" } });
        const bare = buildRequest({ generation_request_id: "t", audio_file_id: "s", target_stems: ["piano"],
            target_bpm: "", duration_seconds: " ", style: "", chord_progression: "", prompt: "  ",
            temperature: "", random_seed: "", engines: { piano: "default" } });
        const ids = Array.from({ length: 50 }, () => randomId());
        console.log(JSON.stringify({ full, bare, chords: parseChords(" C\\tG\\n"), ids }));
        """
    )
    assert built["full"] == {
        "generation_request_id": "take-1",
        "audio_file_id": "song",
        "target_stems": ["drums", "bass"],
        "parameters": {
            "target_bpm": 97.5,
            "duration_seconds": 12,
            "style": "funk",
            "chord_progression": ["Am7", "D7", "G/B", "Cmaj7"],
            "prompt": "tight",
            "temperature": 0,
            "random_seed": 0,
            "engines": {"drums": "procedural"},  # "default" and unchosen stems are not sent
        },
    }
    assert built["bare"] == {
        "generation_request_id": "t",
        "audio_file_id": "s",
        "target_stems": ["piano"],
        "parameters": {},
    }
    assert built["chords"] == ["C", "G"]
    ids = built["ids"]
    assert len(set(ids)) == len(ids)
    assert all(re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}", i) for i in ids)


def test_copy_as_curl_quotes_everything_and_reads_the_key_from_the_environment() -> None:
    nasty = 'it\'s "quoted" $HOME `date` \\ \n new line; rm -rf /'
    body = {
        "generation_request_id": "t",
        "audio_file_id": "s",
        "target_stems": ["bass"],
        "parameters": {"prompt": nasty},
    }
    commands = _node(
        f"""
        import {{ toCurl }} from "@/request.js";
        const body = {json.dumps(body)};
        console.log(JSON.stringify([toCurl("http://127.0.0.1:8080/x'y/generate", body, {{ withKey: true }}),
                                    toCurl("http://127.0.0.1:8080/generate", body)]));
        """
    )
    keyed, plain = commands
    assert "$STEMFORGE_API_KEY" in keyed and "X-API-Key" not in plain
    # A stand-in curl prints the arguments bash hands it.
    shim = "curl() { printf '%s\\0' \"$@\"; }; "
    args = subprocess.run(
        ["bash", "-c", shim + keyed],
        env={"STEMFORGE_API_KEY": "k-123", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        timeout=10,
    ).stdout.split(b"\0")[:-1]
    words = [a.decode() for a in args]
    assert words[:2] == ["-X", "POST"] and words[2] == "http://127.0.0.1:8080/x'y/generate"
    assert words[words.index("-H", 4) + 1] == "X-API-Key: k-123"
    assert json.loads(words[words.index("-d") + 1]) == body


def test_mute_and_solo_decide_what_a_track_sends() -> None:
    table = _node(
        """
        import { effectiveGain } from "@/mixer.js";
        const rows = [];
        const both = [false, true];
        for (const muted of both) for (const solo of both) for (const anySolo of both) {
            if (solo && !anySolo) continue;  // a soloed track means some track is soloed
            rows.push([muted, solo, anySolo, effectiveGain({ muted, solo, volume: 0.7 }, anySolo)]);
        }
        console.log(JSON.stringify(rows));
        """
    )
    assert table == [
        [False, False, False, 0.7],  # plain: its volume
        [False, False, True, 0],  # another track is soloed
        [False, True, True, 0.7],  # soloed itself
        [True, False, False, 0],  # muted
        [True, False, True, 0],
        [True, True, True, 0],  # mute wins over solo
    ]
