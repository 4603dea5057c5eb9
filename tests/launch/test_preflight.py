"""The checks that run before anything starts: settings, routes, resources, the checkpoint."""

import copy
from pathlib import Path
from typing import Any

import pytest

from stemforge.launch.machine import Machine
from stemforge.launch.preflight import check, hugging_face_env

TWO_CORES = Machine(cpus=2, gpus=0)


def _app(
    env: dict[str, str], *deployments: str, musicgen_env: dict[str, str] | None = None
) -> dict[str, Any]:
    shares = {
        "Ingress": 0.1,
        "ProceduralEngine": 0.2,
        "MusicGenEngine": 1.5,
        "StableAudioEngine": 0.2,
        "Uploader": 0.2,
    }
    listed: list[dict[str, Any]] = [
        {"name": name, "num_replicas": 1, "ray_actor_options": {"num_cpus": shares[name]}}
        for name in deployments
    ]
    for deployment in listed:
        if deployment["name"] == "MusicGenEngine" and musicgen_env:
            deployment["ray_actor_options"]["runtime_env"] = {"env_vars": dict(musicgen_env)}
    env = dict(env)
    if "MusicGenEngine" in deployments and "StableAudioEngine" not in deployments:
        env.setdefault("STEM_ROUTING_FILE", "configs/routing.musicgen.yaml")  # as the CPU variant
    return {"name": "stemforge", "runtime_env": {"env_vars": env}, "deployments": listed}


@pytest.fixture(autouse=True)
def _plain_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "MOCK_GENERATION",
        "MUSICGEN_MODEL",
        "STABLE_AUDIO_MODEL",
        "WORKERS",
        "BLOB_CONTAINER_NAME",
        "STEM_ROUTING_FILE",
    ):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def empty_hub_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    from huggingface_hub import constants

    cache = tmp_path / "hub"
    cache.mkdir()
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    return cache


CPU = ("Ingress", "ProceduralEngine", "Uploader")
CPU_MUSICGEN = ("Ingress", "ProceduralEngine", "MusicGenEngine", "Uploader")
MODELS = ("Ingress", "ProceduralEngine", "MusicGenEngine", "StableAudioEngine", "Uploader")


def test_the_mock_graph_passes() -> None:
    report = check("cpu.yaml", _app({"MOCK_GENERATION": "true"}, *CPU), TWO_CORES)
    assert report.problems == []
    assert "mode mock (MOCK_GENERATION=true): stems go to procedural" in report.notes


def test_the_procedural_graph_while_the_mode_routes_to_musicgen_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MOCK_GENERATION", "false")
    report = check("configs/serve.cpu.yaml", _app({}, *CPU), TWO_CORES)
    (problem,) = report.problems
    assert "configs/serve.cpu.yaml has no deployment for musicgen (MusicGenEngine)" in problem
    assert "mode ai (MOCK_GENERATION=false)" in problem


def test_the_config_s_env_vars_win_and_the_launcher_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOCK_GENERATION", "false")
    report = check("configs/serve.cpu.yaml", _app({"MOCK_GENERATION": "true"}, *CPU), TWO_CORES)
    assert report.problems == []
    assert any("overriding MOCK_GENERATION=false from the environment" in note for note in report.notes)


def test_a_missing_checkpoint_folder_says_where_it_looked(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-checkpoint"
    app = _app({"MOCK_GENERATION": "false", "MUSICGEN_MODEL": str(missing)}, *CPU_MUSICGEN)
    (problem,) = check("cpu-musicgen.yaml", app, TWO_CORES).problems
    assert f"MUSICGEN_MODEL={str(missing)!r}: no such folder" in problem
    assert "hf download facebook/musicgen-small" in problem


def test_a_model_id_missing_from_the_cache_names_the_cache(
    empty_hub_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MUSICGEN_MODEL", "facebook/musicgen-small")
    (problem,) = check(
        "cpu-musicgen.yaml", _app({"MOCK_GENERATION": "false"}, *CPU_MUSICGEN), TWO_CORES
    ).problems
    assert "'facebook/musicgen-small' is not a folder and is not in the Hugging Face cache" in problem
    assert str(empty_hub_cache) in problem


def test_the_musicgen_deployment_s_own_env_vars_count(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{}")
    app = _app({"MOCK_GENERATION": "false"}, *CPU_MUSICGEN, musicgen_env={"MUSICGEN_MODEL": str(tmp_path)})
    report = check("cpu-musicgen.yaml", app, TWO_CORES)
    assert report.problems == []
    assert f"MUSICGEN_MODEL={tmp_path}: checkpoint in {tmp_path}" in report.notes


def test_a_deployed_musicgen_is_checked_even_in_mock_mode(tmp_path: Path) -> None:
    # The replica loads its checkpoint whether or not the mode routes stems to it.
    app = _app({"MOCK_GENERATION": "true", "MUSICGEN_MODEL": str(tmp_path / "nope")}, *CPU_MUSICGEN)
    (problem,) = check("x.yaml", app, TWO_CORES).problems
    assert "no such folder" in problem


def test_resources_and_checkpoint_are_both_reported(tmp_path: Path) -> None:
    app = _app({"MOCK_GENERATION": "false", "MUSICGEN_MODEL": str(tmp_path / "nope")}, *CPU_MUSICGEN)
    problems = check("x.yaml", app, Machine(cpus=1, gpus=0)).problems
    assert len(problems) == 2
    assert "cannot start on this machine (1 CPUs and 0 GPUs)" in problems[0]
    assert "MusicGenEngine: 1 replica x 1.5 CPU = 1.5 CPU" in problems[0]
    assert "no such folder" in problems[1]


def test_settings_the_replicas_would_refuse_fail_before_anything_starts() -> None:
    report = check("x.yaml", _app({"BLOB_CONTAINER_NAME": "Not_Valid"}, *CPU), TWO_CORES)
    (problem,) = report.problems
    assert "BLOB_CONTAINER_NAME must be 3-63 characters" in problem


def test_workers_count_as_ingress_replicas(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORKERS", "20")
    app = _app({"MOCK_GENERATION": "true"}, *CPU)
    del app["deployments"][0]["num_replicas"]  # the ingress' replicas come from WORKERS
    (problem,) = check("x.yaml", app, TWO_CORES).problems
    assert "Ingress: 20 replicas x 0.1 CPU = 2 CPU" in problem


def test_hugging_face_variables_come_from_the_musicgen_replica_s_env() -> None:
    app = _app({"HF_HUB_OFFLINE": "1", "OTHER": "x"}, *CPU_MUSICGEN, musicgen_env={"HF_HOME": "/models"})
    assert hugging_face_env(copy.deepcopy(app)) == {"HF_HUB_OFFLINE": "1", "HF_HOME": "/models"}


def test_a_deployed_stable_audio_engine_s_checkpoint_is_checked_too(tmp_path: Path) -> None:
    musicgen = tmp_path / "musicgen"
    musicgen.mkdir()
    (musicgen / "config.json").write_text("{}")
    not_a_pipeline = tmp_path / "sao"
    not_a_pipeline.mkdir()
    env = {
        "MOCK_GENERATION": "false",
        "MUSICGEN_MODEL": str(musicgen),
        "STABLE_AUDIO_MODEL": str(not_a_pipeline),
    }
    (problem,) = check("models.yaml", _app(env, *MODELS), Machine(cpus=4, gpus=0)).problems
    assert f"STABLE_AUDIO_MODEL={str(not_a_pipeline)!r} is a folder without model_index.json" in problem
    assert "hf download stabilityai/stable-audio-open-1.0" in problem

    (not_a_pipeline / "model_index.json").write_text("{}")
    report = check("models.yaml", _app(env, *MODELS), Machine(cpus=4, gpus=0))
    assert report.problems == []
    assert f"STABLE_AUDIO_MODEL={not_a_pipeline}: checkpoint in {not_a_pipeline}" in report.notes


def test_production_routing_needs_stable_audio_deployed(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{}")
    app = _app(
        {
            "MOCK_GENERATION": "false",
            "MUSICGEN_MODEL": str(tmp_path),
            "STEM_ROUTING_FILE": "configs/routing.yaml",
        },
        *CPU_MUSICGEN,
    )
    (problem,) = check("x.yaml", app, TWO_CORES).problems
    assert "x.yaml has no deployment for stable_audio (StableAudioEngine)" in problem
