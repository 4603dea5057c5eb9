"""Render a few songs to listen to: every stem as WAV and MIDI, a mix, and the song plan.

    .venv/bin/python bench/render_examples.py [--out examples] [--seconds 30] [--styles rock,jazz]

Writes ``examples/<style>/{stem}.wav``, ``{stem}.mid``, ``mix.wav`` and ``song_plan.json``.
"""

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from stemforge.dsp.loudness import integrated_lufs, true_peak_dbfs
from stemforge.engines.procedural import ProceduralEngine
from stemforge.music.spec import SAMPLE_RATE, STEM_TYPES, MusicSpec
from stemforge.settings import Settings

# (style, bpm, prompt, chord progression): one song per style, each a different case.
EXAMPLES: tuple[tuple[str, float, str | None, tuple[str, ...] | None], ...] = (
    ("pop", 118.0, "bright and upbeat", None),
    ("rock", 132.0, "energetic, distorted guitars", ("E", "C#m", "A", "B")),
    ("metal", 170.0, None, None),
    ("hip-hop", 88.0, "laid back with rhodes", None),
    ("house", 124.0, None, ("Am7", "Fmaj7", "Dm7", "E7sus4")),
    ("funk", 104.0, "tight and groovy", None),
    ("jazz", 140.0, None, ("Dm9", "G13", "Cmaj7", "A7b9")),
    ("reggae", 76.0, None, None),
    ("lo-fi", 78.0, "mellow, sparse", None),
    ("ballad", 66.0, "gentle, with strings", ("C", "G/B", "Am", "Am/G", "F", "C/E", "Dm7", "Gsus4")),
    ("edm", 128.0, "energetic", None),
    ("disco", 118.0, None, None),
    ("blues", 96.0, None, None),
)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=Path("examples"))
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--styles", default=",".join(e[0] for e in EXAMPLES))
    parser.add_argument("--seed", type=int, default=2024)
    args = parser.parse_args()

    engine = ProceduralEngine(Settings())
    print(f"renderer: {engine.renderer}")
    wanted = set(args.styles.split(","))
    for style, bpm, prompt, progression in EXAMPLES:
        if style not in wanted:
            continue
        spec = MusicSpec(
            bpm=bpm,
            duration_seconds=args.seconds,
            seed=args.seed,
            temperature=1.0,
            style=style,
            prompt=prompt,
            chord_progression=progression,
        )
        started = time.perf_counter()
        result = engine.generate(spec, list(STEM_TYPES))
        folder = args.out / style
        folder.mkdir(parents=True, exist_ok=True)
        for stem in result.stems:
            sf.write(folder / f"{stem.stem_type}.wav", stem.audio, SAMPLE_RATE, subtype="PCM_16")
            for attachment in stem.attachments:
                (folder / f"{stem.stem_type}.{attachment.extension}").write_bytes(attachment.data)
        for attachment in result.attachments:
            (folder / f"{attachment.kind}.{attachment.extension}").write_bytes(attachment.data)
        # The stems come at their level in the band: the mix is their sum at unity (each stem's
        # mix_gain_db is 0 unless the engine is configured with stem_levels: normalized).
        mix = np.sum([s.audio * 10 ** ((s.mix_gain_db or 0.0) / 20) for s in result.stems], axis=0)
        sf.write(folder / "mix.wav", mix.astype(np.float32), SAMPLE_RATE, subtype="PCM_16")
        chords = " ".join(result.applied["chord_progression"])
        print(
            f"{folder}: {bpm:.0f} BPM, {result.applied['key']}, {chords}, mix "
            f"{integrated_lufs(mix, SAMPLE_RATE):.1f} LUFS / {true_peak_dbfs(mix):.1f} dBTP "
            f"({time.perf_counter() - started:.1f} s)"
        )


if __name__ == "__main__":
    main()
