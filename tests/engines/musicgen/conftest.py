"""Tiny random MusicGen checkpoints (real architectures, saved like real ones) for the engine tests.

Tests that need torch/transformers skip when the ``musicgen`` extra is not installed; the pure
tests (prompts, windows, config) run everywhere.
"""

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

# Nothing here may reach the network: the checkpoints are local folders or a local cache.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")


@pytest.fixture(scope="session")
def tiny_checkpoints(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from tests.support.tiny_musicgen import save_tiny_musicgen

    root = tmp_path_factory.mktemp("musicgen")
    return {
        "musicgen": save_tiny_musicgen(root / "tiny-musicgen"),
        "melody": save_tiny_musicgen(root / "tiny-musicgen-melody", melody=True),
    }


# user_config for engine tests: tempo measurement (librosa beat tracking) is tested once, not
# in every test.
FAST = {"measure_tempo": False}


def _engine(path: Path) -> object:
    from stemforge.engines.musicgen import MusicGenEngine
    from stemforge.settings import Settings

    engine = MusicGenEngine(Settings(musicgen_model=str(path)))
    engine.reconfigure(FAST)
    return engine


@pytest.fixture(scope="module")
def musicgen_engine(tiny_checkpoints: dict[str, Path]) -> Iterator[object]:
    engine = _engine(tiny_checkpoints["musicgen"])
    yield engine


@pytest.fixture(scope="module")
def melody_engine(tiny_checkpoints: dict[str, Path]) -> Iterator[object]:
    yield _engine(tiny_checkpoints["melody"])


def chroma_fed(monkeypatch: pytest.MonkeyPatch, run: Callable[[], Any]) -> tuple[Any, Any]:
    """The melody condition the first window of ``run()`` was given (chroma, frames x 12) and
    what ``run()`` returned."""
    from stemforge.engines.musicgen import conditioning

    seen: list[Any] = []

    class Recording(conditioning.PrefixConditioning):
        def __init__(self, model: Any, text: Any, rows: Any, chroma: Any, guidance: bool) -> None:
            seen.extend(chroma)
            super().__init__(model, text, rows, chroma, guidance)

    monkeypatch.setattr(conditioning, "PrefixConditioning", Recording)
    result = run()
    return seen[0].numpy(), result
