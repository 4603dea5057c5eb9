"""espeak-ng as the singer's mouth: words to phonemes, phonemes to syllables, a syllable to speech.

espeak-ng runs as a subprocess (the Debian package ``espeak-ng``). Phonemes are its ASCII
mnemonics (``-x``: ``h@l'oU``), which it also reads back between ``[[`` and ``]]``, so a
syllable cut out of a word is spoken exactly as the word's phonemes say. The voice is ours: a
variant file written to a private folder and loaded with ``--load``, monotone and without the
stock variants' echo, flutter and roughness, so that WORLD analyses it cleanly.
"""

import atexit
import functools
import io
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

# The first letter of every English vowel mnemonic of espeak-ng ("@L" is a syllabic l).
_VOWEL_START = frozenset("aeiouAEIOUV03@")
_DIPHTHONGS = frozenset({"aI", "aU", "eI", "oU", "OI", "e@", "i@", "U@", "aI@", "aU@", "o@", "A@", "O@"})
# Consonant clusters that may begin an English syllable (maximal onset).
_ONSETS = frozenset(
    {
        ("p", "l"), ("p", "r"), ("b", "l"), ("b", "r"), ("t", "r"), ("d", "r"), ("k", "l"), ("k", "r"),
        ("g", "l"), ("g", "r"), ("f", "l"), ("f", "r"), ("T", "r"), ("S", "r"), ("s", "p"), ("s", "t"),
        ("s", "k"), ("s", "m"), ("s", "n"), ("s", "l"), ("s", "w"), ("t", "w"), ("d", "w"), ("k", "w"),
        ("g", "w"), ("p", "j"), ("b", "j"), ("t", "j"), ("d", "j"), ("k", "j"), ("m", "j"), ("n", "j"),
        ("f", "j"), ("v", "j"), ("h", "j"), ("l", "j"), ("s", "p", "r"), ("s", "t", "r"), ("s", "k", "r"),
        ("s", "p", "l"), ("s", "k", "w"),
    }
)  # fmt: skip
ESPEAK_RATE = 22_050  # espeak-ng always speaks at this rate
_SPEED_WPM = 110  # slow speech: long vowels give WORLD a steady stretch to hold
_TIMEOUT_S = 20.0


@dataclass(frozen=True)
class Voice:
    """A singer: an espeak-ng voice variant (formant scaling per formant, percent)."""

    name: str
    formants: tuple[tuple[int, int, int, int], ...]  # (formant, frequency %, strength %, width %)
    pitch_hz: int = 210

    def variant_file(self) -> str:
        lines = [
            "language en-us",
            f"name {self.name}",
            "gender female",
            f"pitch {self.pitch_hz} {self.pitch_hz}",
        ]
        lines += [f"formant {f} {freq} {strength} {width}" for f, freq, strength, width in self.formants]
        return "\n".join(lines) + "\n"


# Two female timbres (one a touch brighter), after espeak-ng's f3 and f4 variants.
VOICES = (
    Voice(
        "stemforge-singer-a",
        ((0, 105, 80, 150), (1, 120, 75, 150), (2, 135, 70, 150), (3, 125, 80, 150), (4, 125, 80, 150),
         (5, 125, 80, 150), (6, 120, 70, 150), (7, 110, 70, 150), (8, 110, 70, 150)),
    ),
    Voice(
        "stemforge-singer-b",
        ((0, 115, 80, 150), (1, 115, 80, 160), (2, 128, 75, 150), (3, 123, 75, 150), (4, 125, 80, 150),
         (5, 125, 80, 150), (6, 110, 80, 150), (7, 110, 75, 150), (8, 110, 75, 150)),
    ),
)  # fmt: skip


class EspeakError(RuntimeError):
    pass


def espeak_binary() -> str | None:
    return shutil.which("espeak-ng")


@functools.lru_cache(maxsize=1)
def _voice_dir() -> Path:
    """A private folder holding the singer variants; espeak-ng's ``--load`` reads the working
    directory."""
    folder = Path(tempfile.mkdtemp(prefix="stemforge-voices-"))
    atexit.register(shutil.rmtree, folder, True)
    for voice in VOICES:
        (folder / voice.name).write_text(voice.variant_file())
    return folder


def _run(args: list[str], cwd: Path | None = None) -> bytes:
    binary = espeak_binary()
    if binary is None:
        raise EspeakError("espeak-ng is not installed (apt-get install espeak-ng)")
    try:
        done = subprocess.run([binary, *args], cwd=cwd, capture_output=True, timeout=_TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise EspeakError(f"espeak-ng failed: {exc}") from exc
    if done.returncode != 0 or done.stdout.startswith(b"Error"):
        message = (done.stderr or done.stdout).decode(errors="replace").strip()[:200]
        raise EspeakError(f"espeak-ng failed ({done.returncode}): {message}")
    return done.stdout


def is_vowel(phoneme: str) -> bool:
    return bool(phoneme) and phoneme[0] in _VOWEL_START


def is_diphthong(phoneme: str) -> bool:
    return phoneme in _DIPHTHONGS


@functools.lru_cache(maxsize=4096)
def word_phonemes(word: str) -> tuple[str, ...]:
    """The phonemes of one word (American English), stress marks removed. Numbers come back
    spelled out ("42" is "forty two")."""
    out = _run(["-q", "-x", "--sep=_", "-v", "en-us", word]).decode(errors="replace")
    phonemes: list[str] = []
    for group in out.split():
        for token in group.split("_"):
            token = token.lstrip("',%=")
            if token and (token[0].isalnum() or token[0] == "@"):
                phonemes.append(token)
    return tuple(phonemes)


def syllabify(phonemes: tuple[str, ...]) -> list[tuple[tuple[str, ...], str, tuple[str, ...]]]:
    """A word's phonemes as ``(onset, nucleus, coda)`` syllables, one per vowel: consonants
    between vowels start the next syllable as far as English allows (maximal onset), and a word
    without a vowel ("hmm", "shh") is sung on a schwa."""
    vowels = [i for i, p in enumerate(phonemes) if is_vowel(p)]
    if not vowels:
        return [(phonemes, "@", ())] if phonemes else []
    syllables: list[tuple[tuple[str, ...], str, tuple[str, ...]]] = []
    onset = phonemes[: vowels[0]]
    for k, v in enumerate(vowels):
        following = phonemes[v + 1 : vowels[k + 1]] if k + 1 < len(vowels) else phonemes[v + 1 :]
        if k + 1 == len(vowels):
            syllables.append((onset, phonemes[v], following))
            break
        split = len(following)  # how many of the consonants stay as this syllable's coda
        for size in range(len(following), 0, -1):
            cluster = tuple(p.rstrip("#0123456789") for p in following[len(following) - size :])
            if (size == 1 and cluster[0] != "N") or (size > 1 and cluster in _ONSETS):
                split = len(following) - size
                break
        syllables.append((onset, phonemes[v], following[:split]))
        onset = following[split:]
    return syllables


@functools.lru_cache(maxsize=1024)
def speak(phonemes: str, voice_name: str) -> np.ndarray:
    """``phonemes`` (espeak-ng mnemonics, one syllable) spoken by the singer: float64 mono at
    ``ESPEAK_RATE``. Deterministic: espeak-ng draws no random numbers."""
    if voice_name not in {v.name for v in VOICES}:
        raise ValueError(f"unknown voice {voice_name!r}")
    wav = _run(
        ["--load", "-v", voice_name, "-s", str(_SPEED_WPM), "-z", "--stdout", f"[[{phonemes}]]"],
        cwd=_voice_dir(),
    )
    audio, rate = sf.read(io.BytesIO(wav), dtype="float64", always_2d=False)
    if rate != ESPEAK_RATE or audio.ndim != 1 or audio.size == 0:
        raise EspeakError(f"espeak-ng gave unexpected audio ({rate} Hz, shape {audio.shape})")
    audio.setflags(write=False)
    return audio
