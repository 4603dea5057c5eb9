"""A tiny random Stable Audio pipeline (the real architecture, saved like the real checkpoint),
built once per session; engine tests skip when the ``stable-audio`` extra is not installed."""

import os
from pathlib import Path
from typing import Any

import pytest

# Nothing here may reach the network: the pipeline is a local folder.
os.environ.setdefault("HF_HUB_OFFLINE", "1")

# Two denoising steps: the tests check shapes, seeds, batching and windows, not quality.
FAST: dict[str, Any] = {"cpu_num_inference_steps": 2, "measure_tempo": False, "time_stretch_to_bpm": False}


@pytest.fixture(scope="session")
def tiny_stable_audio(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("torch")
    pytest.importorskip("diffusers")
    from tests.support.tiny_stable_audio import build_tiny_stable_audio

    return build_tiny_stable_audio(tmp_path_factory.mktemp("stable-audio") / "tiny-stable-audio")


@pytest.fixture(scope="module")
def stable_audio_engine(tiny_stable_audio: Path) -> Any:
    from stemforge.engines.stable_audio import StableAudioEngine
    from stemforge.settings import Settings

    engine = StableAudioEngine(Settings(stable_audio_model=str(tiny_stable_audio)))
    engine.reconfigure(FAST)
    return engine
