"""The decoding loop against transformers' own ``generate``, on tiny real-architecture models."""

from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from stemforge.engines.musicgen.attention import register  # noqa: E402
from stemforge.engines.musicgen.chroma import chroma_one_hot  # noqa: E402
from stemforge.engines.musicgen.conditioning import (  # noqa: E402
    CrossAttentionConditioning,
    PrefixConditioning,
    encode_text,
)
from stemforge.engines.musicgen.decoding import decode_window  # noqa: E402
from stemforge.engines.musicgen.sampling import RowSampler  # noqa: E402
from stemforge.engines.musicgen.windows import codebook_delays  # noqa: E402

PROMPTS = ["solo piano, jazz ballad. bpm: 90", "drums"]
FRAMES = 40


def _load(path: Path) -> tuple[Any, Any]:
    config = transformers.AutoConfig.from_pretrained(path)
    cls = (
        transformers.MusicgenMelodyForConditionalGeneration
        if config.model_type == "musicgen_melody"
        else transformers.MusicgenForConditionalGeneration
    )
    return cls.from_pretrained(path).eval(), transformers.AutoTokenizer.from_pretrained(path)


def _ours(model: Any, conditioning: Any, prompt: "torch.Tensor", rows: int, kv_cache: str) -> "torch.Tensor":
    codes = decode_window(
        model.decoder,
        conditioning,
        prompt,
        [FRAMES] * rows,
        delays=codebook_delays(4, 1),
        start_token=model.generation_config.decoder_start_token_id,
        sampler=RowSampler(list(range(rows)), [0.0] * rows, 250, 0.0, torch.device("cpu")),
        rows=list(range(rows)),
        guidance_scale=3.0,
        kv_cache=kv_cache,
    )
    assert codes.shape == (rows, 4, prompt.shape[-1] + FRAMES)
    return codes


def _audio(model: Any, codes: "torch.Tensor") -> "torch.Tensor":
    return model.audio_encoder.decode(codes[None], audio_scales=[None] * codes.shape[0]).audio_values


@pytest.mark.parametrize(
    ("kv_cache", "attention"),
    [("preallocated", "sdpa"), ("dynamic", "sdpa"), ("preallocated", "stemforge")],
)
def test_greedy_decoding_matches_transformers_generate(
    tiny_checkpoints: dict[str, Path], kv_cache: str, attention: str
) -> None:
    model, tokenizer = _load(tiny_checkpoints["musicgen"])
    with torch.inference_mode():
        inputs = tokenizer(PROMPTS, padding=True, return_tensors="pt")
        reference = model.generate(**inputs, max_new_tokens=FRAMES + 3, do_sample=False, guidance_scale=3.0)
        if attention == "stemforge":
            model.decoder.set_attn_implementation(register())
        text = encode_text(model, tokenizer, PROMPTS, 64, torch.float32)
        conditioning = CrossAttentionConditioning(text, [0, 1], guidance=True)
        codes = _ours(model, conditioning, torch.zeros((2, 4, 0), dtype=torch.long), 2, kv_cache)
        assert codes.unique().numel() > 8, "degenerate model output would make this test vacuous"
        assert torch.equal(_audio(model, codes), reference)


def test_continuation_matches_transformers_generate_with_an_audio_prompt(
    tiny_checkpoints: dict[str, Path],
) -> None:
    model, tokenizer = _load(tiny_checkpoints["musicgen"])
    prompt = torch.randint(0, 64, (1, 4, 25), generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        inputs = tokenizer(PROMPTS[:1], return_tensors="pt")
        reference = model.generate(
            **inputs,
            decoder_input_ids=prompt.reshape(4, 25),
            max_new_tokens=FRAMES + 3,
            do_sample=False,
            guidance_scale=3.0,
        )
        text = encode_text(model, tokenizer, PROMPTS[:1], 64, torch.float32)
        codes = _ours(model, CrossAttentionConditioning(text, [0], guidance=True), prompt, 1, "preallocated")
        assert torch.equal(codes[:, :, :25], prompt)
        assert torch.equal(_audio(model, codes), reference)


def test_melody_decoding_with_chroma_matches_transformers_generate(tiny_checkpoints: dict[str, Path]) -> None:
    model, tokenizer = _load(tiny_checkpoints["melody"])
    # A C major arpeggio, as chroma: the condition the melody model follows.
    t = torch.arange(32_000 * 2) / 32_000
    audio = sum(
        torch.sin(2 * torch.pi * f * t) * ((t * 2).floor() % 3 == i)
        for i, f in enumerate((261.6, 329.6, 392.0))
    )
    chroma = chroma_one_hot(audio.numpy(), 32_000)
    with torch.inference_mode():
        inputs = tokenizer(PROMPTS[:1], return_tensors="pt")
        reference = model.generate(
            **inputs,
            input_features=chroma[None],
            max_new_tokens=FRAMES + 3,
            do_sample=False,
            guidance_scale=3.0,
        )
        text = encode_text(model, tokenizer, PROMPTS[:1], 64, torch.float32)
        conditioning = PrefixConditioning(model, text, [0], [chroma], guidance=True)
        assert conditioning.prefix == model.config.chroma_length + text.hidden.shape[1]
        codes = _ours(model, conditioning, torch.zeros((1, 4, 0), dtype=torch.long), 1, "preallocated")
        assert torch.equal(_audio(model, codes), reference)
        # and the chroma reaches the decoder: another chroma changes what it computes
        silent = PrefixConditioning(model, text, [0], [torch.eye(12)[:1]], guidance=True)
        start = torch.full((8, 1), model.generation_config.decoder_start_token_id)
        hidden = [
            model.decoder.model(input_ids=start, **c.first()).last_hidden_state
            for c in (conditioning, silent)
        ]
        assert not torch.allclose(hidden[0][:1], hidden[1][:1])
        assert torch.allclose(hidden[0][1:], hidden[1][1:])  # the unconditional row has no melody either way


def test_chroma_one_hot_names_the_sounding_pitch_class() -> None:
    t = torch.arange(32_000) / 32_000
    a440 = torch.sin(2 * torch.pi * 440.0 * t).numpy()
    chroma = chroma_one_hot(a440, 32_000)
    assert chroma.shape == (32_000 // 4096 + 1, 12)
    assert torch.equal(chroma.sum(dim=1), torch.ones(chroma.shape[0]))
    # transformers' chroma bank starts at C: A is pitch class 9.
    assert (chroma.argmax(dim=1) == 9).float().mean() > 0.8
