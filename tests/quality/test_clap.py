"""Text-audio similarity with a tiny random CLAP built from configs (no downloads): the scorer
loads it like a real checkpoint and adds a similarity to stems that have a prompt."""

import json
from pathlib import Path

import numpy as np
import pytest

from stemforge.engines.base import RenderedStem
from stemforge.quality.report import StemQuality
from tests.quality.signals import SR, sine, stereo


def _save_tiny_clap(folder: Path) -> Path:
    transformers = pytest.importorskip("transformers")
    pytest.importorskip("torch")
    words = ["solo", "piano", "drums", "bass", "at", "bpm", "in", "major"]
    vocab = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3, "<mask>": 4}
    for char in "abcdefghijklmnopqrstuvwxyz0123456789":
        vocab.setdefault(char, len(vocab))
    for word in words:
        vocab.setdefault("\u0120" + word, len(vocab))
    folder.mkdir(parents=True)
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    tokenizer = transformers.RobertaTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"))
    extractor = transformers.ClapFeatureExtractor(
        feature_size=16,
        sampling_rate=16_000,
        hop_length=160,
        max_length_s=2,
        fft_window_size=400,
        truncation="rand_trunc",  # as the unfused checkpoints (laion/clap-htsat-unfused)
    )
    config = transformers.ClapConfig(
        text_config={
            "vocab_size": len(vocab) + 2,
            "hidden_size": 16,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "intermediate_size": 32,
            "max_position_embeddings": 64,
            "projection_hidden_act": "relu",
        },
        audio_config={
            "num_mel_bins": 16,
            "spec_size": 64,  # 64 / 16 mel bins: 4 crops of 256 frames, room for 2 s at 100 frames/s
            "patch_size": 4,
            "patch_stride": [4, 4],
            "patch_embeds_hidden_size": 8,
            "hidden_size": 16,
            "depths": [1, 1],
            "num_attention_heads": [2, 2],
            "window_size": 2,
            "enable_fusion": False,
        },
        projection_dim=8,
    )
    model = transformers.ClapModel(config).eval()
    model.save_pretrained(folder)
    transformers.ClapProcessor(feature_extractor=extractor, tokenizer=tokenizer).save_pretrained(folder)
    return folder


def test_a_stem_with_a_prompt_gets_a_similarity_in_range(tmp_path: Path) -> None:
    from stemforge.quality.clap import ClapScorer

    scorer = ClapScorer.load(str(_save_tiny_clap(tmp_path / "clap")))
    audio = stereo(sine(440.0, 5.0, 0.3))  # longer than the model's 2 s: the middle 2 s are scored
    with_prompt = StemQuality("piano")
    without = StemQuality("drums")

    scorer(with_prompt, RenderedStem("piano", audio, "musicgen", prompt="solo piano at 120 bpm"))
    scorer(without, RenderedStem("drums", audio, "procedural"))

    similarity = with_prompt.metrics["clap_similarity"]
    assert -1.0 <= similarity <= 1.0
    assert "clap_similarity" not in without.metrics
    # Same input, same number; another prompt, another number (the model is random, not blind).
    again = scorer.similarity(audio, SR, "solo piano at 120 bpm")
    assert again == pytest.approx(similarity, abs=1e-4)
    assert scorer.similarity(audio, SR, "drums in major") != pytest.approx(similarity, abs=1e-6)
    assert np.isfinite(scorer.similarity(np.zeros((SR, 2), np.float32), SR, "bass"))
