"""Tiny random MusicGen and MusicGen-melody checkpoints, saved like real ones.

They have the real architectures and the production timing layout (32 kHz codec, 50 frames per
second, 4 codebooks, mono) so duration maths, delay patterns and loading paths are exercised
exactly as in production, in about a second and a megabyte. Weights are random: the audio is noise.

The tokenizer is a T5 (Unigram) tokenizer built without sentencepiece or any download: every
character is a piece, plus a few whole words, which is enough to tokenize any prompt.

``musicgen_small_configs`` gives the full-size musicgen-small architecture for the benchmark.
"""

import string
from pathlib import Path
from typing import Any

SAMPLE_RATE = 32_000
FRAME_RATE = 50
_WORDS = ("solo", "piano", "drums", "bass", "guitar", "synth", "vocals", "bpm", "major", "minor", "chords")


def build_tokenizer() -> Any:
    from transformers import T5Tokenizer

    specials = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0)]
    # Whole words score higher than their spelling so the Unigram model prefers them.
    words = [(f"\u2581{word}", -2.0) for word in _WORDS]
    chars = [(char, -5.0) for char in string.ascii_letters + string.digits + string.punctuation]
    chars += [("\u2581", -3.0), *[(f"\u2581{char}", -4.0) for char in string.ascii_letters + string.digits]]
    return T5Tokenizer(vocab=specials + words + chars, extra_ids=0)


def _codec_config(codebook_size: int, tiny: bool) -> Any:
    from transformers import EncodecConfig

    # 8*5*4*4 = 640 samples per frame at 32 kHz: 50 frames per second, as in the real codec.
    # num_quantizers = 1000 * bandwidth // (frame_rate * log2(codebook_size)) = 4.
    nbits = codebook_size.bit_length() - 1
    bandwidth = 4 * FRAME_RATE * nbits / 1000
    return EncodecConfig(
        sampling_rate=SAMPLE_RATE,
        audio_channels=1,
        normalize=False,
        chunk_length_s=None,
        overlap=None,
        hidden_size=16 if tiny else 128,
        num_filters=4 if tiny else 64,
        num_residual_layers=1,
        upsampling_ratios=[8, 5, 4, 4],
        norm_type="weight_norm",
        kernel_size=7,
        last_kernel_size=7,
        residual_kernel_size=3,
        dilation_growth_rate=2,
        use_causal_conv=False,
        pad_mode="reflect",
        compress=2,
        num_lstm_layers=1 if tiny else 2,
        trim_right_ratio=1.0,
        codebook_size=codebook_size,
        codebook_dim=16 if tiny else 128,
        use_conv_shortcut=False,
        target_bandwidths=[bandwidth],
    )


def _text_config(vocab_size: int, tiny: bool) -> Any:
    from transformers import T5Config

    if not tiny:  # t5-base, the text encoder of every MusicGen checkpoint
        return T5Config(vocab_size=32128, d_model=768, d_kv=64, d_ff=3072, num_layers=12, num_heads=12)
    return T5Config(vocab_size=vocab_size, d_model=32, d_kv=8, d_ff=64, num_layers=1, num_heads=2)


def _decoder_kwargs(codebook_size: int, tiny: bool) -> dict[str, Any]:
    common = {
        "vocab_size": codebook_size,
        "pad_token_id": codebook_size,
        "bos_token_id": codebook_size,
        "num_codebooks": 4,
        "audio_channels": 1,
    }
    if not tiny:
        return common  # the decoder defaults are musicgen-small's
    return {
        **common,
        "hidden_size": 32,
        "ffn_dim": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "max_position_embeddings": 2048,
    }


def musicgen_small_configs(melody: bool = False) -> Any:
    """The full-size musicgen-small architecture as a config (``melody``: with the melody
    decoder, at small size); for benchmarks: it builds 590M random parameters."""
    return _config(melody=melody, tiny=False, vocab_size=32128)


def _config(melody: bool, tiny: bool, vocab_size: int) -> Any:
    codebook_size = 64 if tiny else 2048
    text = _text_config(vocab_size, tiny)
    codec = _codec_config(codebook_size, tiny)
    if melody:
        from transformers import MusicgenMelodyConfig, MusicgenMelodyDecoderConfig

        decoder = MusicgenMelodyDecoderConfig(**_decoder_kwargs(codebook_size, tiny))
        return MusicgenMelodyConfig(
            text_encoder=text, audio_encoder=codec, decoder=decoder, num_chroma=12, chroma_length=235
        )
    from transformers import MusicgenConfig, MusicgenDecoderConfig

    decoder = MusicgenDecoderConfig(**_decoder_kwargs(codebook_size, tiny))
    return MusicgenConfig(text_encoder=text, audio_encoder=codec, decoder=decoder)


def build_model(config: Any, seed: int = 0) -> Any:
    import torch
    from transformers import MusicgenForConditionalGeneration, MusicgenMelodyForConditionalGeneration

    torch.manual_seed(seed)
    cls = (
        MusicgenMelodyForConditionalGeneration
        if config.model_type == "musicgen_melody"
        else MusicgenForConditionalGeneration
    )
    model = cls(config).eval()
    # Random init leaves the codec's codebooks at zero, which would decode every token to the same
    # sound; give each code its own vector so different tokens make different audio.
    with torch.no_grad():
        for layer in model.audio_encoder.quantizer.layers:
            codebook = layer.codebook
            codebook.embed.normal_()
            codebook.embed_avg.copy_(codebook.embed)
            codebook.cluster_size.fill_(1.0)
            codebook.inited.fill_(True)
    # Generation defaults as in the real checkpoints' generation_config.json.
    model.generation_config.decoder_start_token_id = config.decoder.bos_token_id
    model.generation_config.pad_token_id = config.decoder.pad_token_id
    model.generation_config.bos_token_id = config.decoder.bos_token_id
    return model


def save_tiny_musicgen(folder: Path, melody: bool = False, seed: int = 0) -> Path:
    """Save a tiny random checkpoint (model, generation config, tokenizer) to ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tokenizer()
    model = build_model(_config(melody=melody, tiny=True, vocab_size=len(tokenizer)), seed=seed)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder
