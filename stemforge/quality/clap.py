"""Text-audio agreement: cosine similarity between a stem and its built prompt in a CLAP
model's joint embedding space (transformers ``ClapModel`` / ``ClapProcessor``, loaded offline
from a folder or the local cache, on CPU). Optional: only with ``CLAP_MODEL`` set."""

import threading
from typing import Any

import numpy as np

from stemforge.engines.base import RenderedStem
from stemforge.music.spec import SAMPLE_RATE
from stemforge.quality.report import StemQuality


class ClapScorer:
    def __init__(self, model: Any, processor: Any) -> None:
        self._model = model
        self._processor = processor
        self._lock = threading.Lock()  # one forward pass at a time: the uploader's threads share it

    @classmethod
    def load(cls, name: str) -> "ClapScorer":
        from transformers import ClapModel, ClapProcessor

        model = ClapModel.from_pretrained(name, local_files_only=True).eval()
        return cls(model, ClapProcessor.from_pretrained(name, local_files_only=True))

    @property
    def sample_rate(self) -> int:
        return int(self._processor.feature_extractor.sampling_rate)

    def similarity(self, audio: np.ndarray, sample_rate: int, text: str) -> float:
        import soxr
        import torch

        mono = (audio.mean(axis=1) if audio.ndim == 2 else audio).astype(np.float32)
        mono = np.asarray(soxr.resample(mono, sample_rate, self.sample_rate), dtype=np.float32)
        # The model hears at most max_length_s (10 s for LAION's); its extractor would crop at
        # random. The middle of the stem, so the same stem always scores the same.
        window = int(self._processor.feature_extractor.max_length_s * self.sample_rate)
        if len(mono) > window:
            start = (len(mono) - window) // 2
            mono = mono[start : start + window]
        with self._lock, torch.inference_mode():
            text_inputs = self._processor.tokenizer([text], return_tensors="pt", padding=True)
            audio_inputs = self._processor.feature_extractor(
                [mono], sampling_rate=self.sample_rate, return_tensors="pt"
            )
            text_embedding = self._model.get_text_features(**text_inputs)
            audio_embedding = self._model.get_audio_features(**audio_inputs)
        text_vector = _vector(text_embedding)
        audio_vector = _vector(audio_embedding)
        return float(
            text_vector @ audio_vector / (np.linalg.norm(text_vector) * np.linalg.norm(audio_vector))
        )

    def __call__(self, quality: StemQuality, stem: RenderedStem) -> None:
        """The publisher's scorer: adds ``clap_similarity`` to stems that have a prompt."""
        if stem.prompt:
            similarity = self.similarity(stem.audio, SAMPLE_RATE, stem.prompt)
            quality.metrics["clap_similarity"] = round(similarity, 4)


def _vector(output: Any) -> np.ndarray:
    # transformers 5 may return a model output rather than a bare tensor.
    tensor = output if hasattr(output, "detach") else output.pooler_output
    return tensor.detach().float().numpy().reshape(-1)
