"""The lean CPU forward pass against transformers' decoder, on tiny real-architecture models."""

from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from stemforge.engines.musicgen.conditioning import CrossAttentionConditioning, encode_text  # noqa: E402
from stemforge.engines.musicgen.decoding import decode_window, make_cache  # noqa: E402
from stemforge.engines.musicgen.lean import LeanDecoder, fuse_linears  # noqa: E402
from stemforge.engines.musicgen.quantization import RowwiseInt8Linear, quantize_linears  # noqa: E402
from stemforge.engines.musicgen.sampling import RowSampler  # noqa: E402
from stemforge.engines.musicgen.windows import codebook_delays  # noqa: E402

PROMPTS = ["solo piano, jazz ballad. bpm: 90", "drums", "warm analog synth bass line, funk"]


def _model(path: Path, int8: bool = False) -> tuple[Any, Any]:
    model = transformers.MusicgenForConditionalGeneration.from_pretrained(path).eval()
    if int8:
        quantize_linears(model.decoder)
    return model, transformers.AutoTokenizer.from_pretrained(path)


def _conditioning(model: Any, tokenizer: Any) -> CrossAttentionConditioning:
    text = encode_text(model, tokenizer, PROMPTS, 32, torch.float32, pad_to_max=True)
    # guidance: the second half of the batch is the unconditional rows, all of their text masked
    return CrossAttentionConditioning(text, list(range(len(PROMPTS))), guidance=True)


def _transformers_logits(model: Any, conditioning: Any, chunks: list["torch.Tensor"]) -> list["torch.Tensor"]:
    """Logits of the last position after each chunk of input ids, through transformers' modules."""
    decoder = model.decoder
    cache = make_cache("dynamic", decoder.config.num_hidden_layers, 0)
    out = []
    for index, ids in enumerate(chunks):
        extra = conditioning.first() if index == 0 else conditioning.later(0)
        hidden = decoder.model(
            input_ids=ids, past_key_values=cache, use_cache=True, **extra
        ).last_hidden_state
        out.append(torch.stack([head(hidden[:, -1]) for head in decoder.lm_heads], dim=1))
    return out


def _chunks(batch: int, prompt: int, steps: int) -> list["torch.Tensor"]:
    generator = torch.Generator().manual_seed(3)
    ids = torch.randint(0, 64, (batch * 4, prompt + steps), generator=generator)
    return [ids[:, :prompt]] + [ids[:, prompt + i : prompt + i + 1] for i in range(steps)]


@pytest.mark.parametrize("int8", [False, True])
def test_lean_logits_match_transformers_for_a_prompt_then_single_steps(
    tiny_checkpoints: dict[str, Path], int8: bool
) -> None:
    model, tokenizer = _model(tiny_checkpoints["musicgen"], int8)
    with torch.inference_mode():
        conditioning = _conditioning(model, tokenizer)
        chunks = _chunks(2 * len(PROMPTS), prompt=7, steps=6)
        expected = _transformers_logits(model, conditioning, chunks)
        lean = LeanDecoder(model.decoder)
        state = lean.start(conditioning.encoder_states, conditioning.encoder_mask, capacity=20)
        got = [lean.forward(state, ids) for ids in chunks]
    assert state.length == 13
    assert state.texted_rows == len(PROMPTS)  # the unconditional rows skip the cross-attention
    for ours, theirs in zip(got, expected, strict=True):
        assert ours.shape == theirs.shape == (2 * len(PROMPTS), 4, 64)
        assert torch.isfinite(ours).all()  # the all-padding unconditional rows included
        assert torch.allclose(ours, theirs, atol=1e-4, rtol=1e-4), (ours - theirs).abs().max()


def test_lean_rows_do_not_depend_on_the_rest_of_the_batch(tiny_checkpoints: dict[str, Path]) -> None:
    model, tokenizer = _model(tiny_checkpoints["musicgen"], int8=True)
    lean = LeanDecoder(model.decoder)
    with torch.inference_mode():
        conditioning = _conditioning(model, tokenizer)
        chunks = _chunks(2 * len(PROMPTS), prompt=5, steps=3)
        state = lean.start(conditioning.encoder_states, conditioning.encoder_mask, capacity=8)
        together = [lean.forward(state, ids) for ids in chunks]
        row = 1
        alone = lean.start(
            conditioning.encoder_states[row : row + 1], conditioning.encoder_mask[row : row + 1], 8
        )
        for ids, batch_logits in zip(chunks, together, strict=True):
            logits = lean.forward(alone, ids.view(-1, 4, ids.shape[-1])[row])
            assert torch.equal(logits[0], batch_logits[row])


def test_greedy_decoding_with_the_lean_decoder_matches_transformers_generate(
    tiny_checkpoints: dict[str, Path],
) -> None:
    model, tokenizer = _model(tiny_checkpoints["musicgen"])
    frames = 30
    with torch.inference_mode():
        inputs = tokenizer(PROMPTS[:2], padding=True, return_tensors="pt")
        reference = model.generate(**inputs, max_new_tokens=frames + 3, do_sample=False, guidance_scale=3.0)
        text = encode_text(model, tokenizer, PROMPTS[:2], 64, torch.float32)
        codes = decode_window(
            model.decoder,
            CrossAttentionConditioning(text, [0, 1], guidance=True),
            torch.zeros((2, 4, 0), dtype=torch.long),
            [frames, frames],
            delays=codebook_delays(4, 1),
            start_token=model.generation_config.decoder_start_token_id,
            sampler=RowSampler([0, 1], [0.0, 0.0], 250, 0.0, torch.device("cpu")),
            rows=[0, 1],
            guidance_scale=3.0,
            kv_cache="preallocated",
            lean=LeanDecoder(model.decoder),
        )
        audio = model.audio_encoder.decode(codes[None], audio_scales=[None, None]).audio_values
    assert codes.unique().numel() > 8, "degenerate model output would make this test vacuous"
    assert torch.equal(audio, reference)


def test_lean_decoder_refuses_a_full_cache_and_melody_decoders(tiny_checkpoints: dict[str, Path]) -> None:
    model, tokenizer = _model(tiny_checkpoints["musicgen"])
    lean = LeanDecoder(model.decoder)
    with torch.inference_mode():
        conditioning = _conditioning(model, tokenizer)
        state = lean.start(conditioning.encoder_states, conditioning.encoder_mask, capacity=4)
        with pytest.raises(RuntimeError, match="cache full"):
            lean.forward(state, torch.zeros((2 * len(PROMPTS) * 4, 5), dtype=torch.long))
    melody = transformers.MusicgenMelodyForConditionalGeneration.from_pretrained(tiny_checkpoints["melody"])
    assert LeanDecoder.supports(model.decoder)
    assert not LeanDecoder.supports(melody.decoder)


@pytest.mark.parametrize("quantized", [False, True])
def test_fused_linears_give_each_layers_outputs_times_its_multiplier(quantized: bool) -> None:
    torch.manual_seed(4)
    layers: list[Any] = [torch.nn.Linear(48, n, bias=n != 16) for n in (16, 24, 8)]
    x = torch.randn(5, 48)
    with torch.inference_mode():
        expected = torch.cat([layer(x) * m for layer, m in zip(layers, (0.25, 1.0, 2.0), strict=True)], dim=1)
        if quantized:
            layers = [RowwiseInt8Linear(layer) for layer in layers]
            expected = torch.cat(
                [layer(x) * m for layer, m in zip(layers, (0.25, 1.0, 2.0), strict=True)], dim=1
            )
        fused = fuse_linears(layers, [0.25, 1.0, 2.0])
        got = fused(x)
    assert got.shape == (5, 48)
    assert torch.allclose(got, expected, atol=1e-5)
    with pytest.raises(TypeError, match="cannot fuse"):
        fuse_linears([torch.nn.Linear(4, 4), RowwiseInt8Linear(torch.nn.Linear(4, 4))])
