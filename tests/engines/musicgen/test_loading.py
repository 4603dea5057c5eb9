"""Finding and loading checkpoints: folders, the Hugging Face cache, and clear failures."""

import shutil
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from stemforge.engines.musicgen import MusicGenEngine
from stemforge.engines.musicgen.loading import resolve_checkpoint
from stemforge.engines.registry import create_engine
from stemforge.engines.torch_runtime import pick_device
from stemforge.errors import ConfigurationError
from stemforge.settings import Settings

COMMIT = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture
def empty_hub_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    from huggingface_hub import constants

    cache = tmp_path / "hub"
    cache.mkdir()
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    return cache


def test_model_id_is_resolved_from_the_hugging_face_cache(
    tiny_checkpoints: dict[str, Path], empty_hub_cache: Path
) -> None:
    # The cache's layout: models--{org}--{name}/refs/main names a snapshot folder of files.
    repo = empty_hub_cache / "models--acme--tiny-musicgen"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(COMMIT)
    shutil.copytree(tiny_checkpoints["musicgen"], repo / "snapshots" / COMMIT)

    engine = MusicGenEngine(Settings(musicgen_model="acme/tiny-musicgen"))
    assert engine.loaded.path == repo / "snapshots" / COMMIT
    assert engine.loaded.device.type == "cpu"


def test_missing_model_id_says_where_it_looked_and_how_to_provide_it(empty_hub_cache: Path) -> None:
    with pytest.raises(ConfigurationError) as failure:
        MusicGenEngine(Settings(musicgen_model="facebook/musicgen-small"))
    message = str(failure.value)
    assert "facebook/musicgen-small" in message
    assert str(empty_hub_cache) in message
    assert "hf download facebook/musicgen-small" in message
    assert "MUSICGEN_MODEL" in message


def test_missing_folder_fails_clearly(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="no such folder"):
        resolve_checkpoint(str(tmp_path / "nowhere"))
    with pytest.raises(ConfigurationError, match=r"without config\.json"):
        resolve_checkpoint(str(tmp_path))


def test_a_checkpoint_of_another_architecture_is_refused(tmp_path: Path) -> None:
    from transformers import T5Config

    T5Config(d_model=8, d_ff=8, num_layers=1, num_heads=1, d_kv=8).save_pretrained(tmp_path)
    with pytest.raises(ConfigurationError, match="'t5' checkpoint"):
        MusicGenEngine(Settings(musicgen_model=str(tmp_path)))


def test_registry_builds_the_engine(tiny_checkpoints: dict[str, Path]) -> None:
    engine = create_engine("musicgen", Settings(musicgen_model=str(tiny_checkpoints["melody"])))
    assert engine.name == "musicgen"
    assert engine.status().summary == "available"
    assert isinstance(engine, MusicGenEngine) and engine.loaded.is_melody


def test_missing_packages_name_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "soxr", None)  # makes `import soxr` fail
    with pytest.raises(ConfigurationError, match=r"stemforge\[musicgen\]"):
        MusicGenEngine(Settings(musicgen_model="anything"))


def test_gpu_requested_without_cuda_falls_back_to_cpu() -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    assert pick_device(use_gpu=True).type == "cpu"
    assert pick_device(use_gpu=False).type == "cpu"


def test_cpu_int8_switch_reloads_the_decoder(tiny_checkpoints: dict[str, Path]) -> None:
    import torch

    engine = MusicGenEngine(Settings(musicgen_model=str(tiny_checkpoints["musicgen"])))
    linear_types = {type(m) for m in engine.loaded.model.decoder.modules() if "Linear" in type(m).__name__}
    assert engine.loaded.quantized and torch.nn.Linear not in linear_types
    engine.reconfigure({"cpu_int8": False})
    assert not engine.loaded.quantized
    assert any(type(m) is torch.nn.Linear for m in engine.loaded.model.decoder.modules())
