"""Variants derive from serve_config.yaml; an overlay may change only what differs per machine."""

import copy
from typing import Any

import pytest
import yaml

from stemforge.errors import ConfigurationError
from stemforge.launch.generate import embed_in_rayservice
from stemforge.launch.variants import derive, merge

ENGINES = {"procedural": "ProceduralEngine", "musicgen": "MusicGenEngine"}
BASE: dict[str, Any] = {
    "proxy_location": "EveryNode",
    "applications": [
        {
            "name": "stemforge",
            "route_prefix": "/",
            "import_path": "deployments.app:build_app",
            "runtime_env": {"env_vars": {"MOCK_GENERATION": "false", "USE_GPU": "true"}},
            "args": {"engines": ["procedural", "musicgen"]},
            "deployments": [
                {
                    "name": "Ingress",
                    "autoscaling_config": {"min_replicas": 1},
                    "ray_actor_options": {"num_cpus": 0.5},
                },
                {"name": "ProceduralEngine", "ray_actor_options": {"num_cpus": 1}},
                {
                    "name": "MusicGenEngine",
                    "ray_actor_options": {
                        "num_cpus": 2,
                        "num_gpus": 0.5,
                        "runtime_env": {"env_vars": {"X": "1"}},
                    },
                    "user_config": {"max_batch_size": 8, "top_k": 250},
                },
            ],
        }
    ],
}


def _derive(overlay: dict[str, Any]) -> dict[str, Any]:
    base = copy.deepcopy(BASE)
    config = derive(base, overlay, ENGINES, variant="test.yaml")
    assert base == BASE  # the base is never changed in place
    return dict(config["applications"][0])


def _deployment(app: dict[str, Any], name: str) -> dict[str, Any]:
    return next(d for d in app["deployments"] if d["name"] == name)


def test_merge_is_key_by_key_and_null_removes() -> None:
    assert merge({"a": {"b": 1, "c": 2}, "d": 3}, {"a": {"b": 5, "c": None}, "d": None, "e": [1]}) == {
        "a": {"b": 5},
        "e": [1],
    }


def test_no_overlay_is_the_base_itself() -> None:
    assert derive(BASE, {}, ENGINES, "same.yaml") == BASE


def test_resources_merge_and_the_rest_is_inherited() -> None:
    app = _derive(
        {
            "proxy_location": "HeadOnly",
            "env_vars": {"USE_GPU": None, "MOCK_GENERATION": "false"},
            "deployments": {
                "MusicGenEngine": {
                    "num_replicas": 1,
                    "ray_actor_options": {"num_cpus": 1.5, "num_gpus": None},
                    "user_config": {"num_threads": 2},
                }
            },
        }
    )
    musicgen = _deployment(app, "MusicGenEngine")
    assert musicgen["ray_actor_options"] == {"num_cpus": 1.5, "runtime_env": {"env_vars": {"X": "1"}}}
    assert musicgen["user_config"] == {"max_batch_size": 8, "top_k": 250, "num_threads": 2}
    assert musicgen["num_replicas"] == 1
    assert app["runtime_env"] == {"env_vars": {"MOCK_GENERATION": "false"}}
    assert (app["name"], app["route_prefix"], app["import_path"]) == (
        "stemforge",
        "/",
        "deployments.app:build_app",
    )


def test_omitting_an_engine_deployment_drops_it_from_args_engines() -> None:
    app = _derive({"omit": ["MusicGenEngine"]})
    assert [d["name"] for d in app["deployments"]] == ["Ingress", "ProceduralEngine"]
    assert app["args"]["engines"] == ["procedural"]


@pytest.mark.parametrize(
    ("overlay", "complaint"),
    [
        ({"import_path": "elsewhere:app"}, "may not set ['import_path']"),
        ({"deployments": {"StableAudioEngine": {"num_replicas": 1}}}, "a variant cannot add one"),
        ({"omit": ["Ingress"]}, "'Ingress' is not an engine deployment"),
        ({"omit": ["MusicGenEngine"], "deployments": {"MusicGenEngine": {"num_replicas": 1}}}, "cannot add"),
        ({"deployments": {"Ingress": {"name": "Front"}}}, "may not set ['name']"),
        ({"deployments": {"MusicGenEngine": {"user_config": {"top_k": 50}}}}, "['top_k'] must be the same"),
    ],
)
def test_an_overlay_that_would_drift_is_refused(overlay: dict[str, Any], complaint: str) -> None:
    with pytest.raises(ConfigurationError) as refused:
        _derive(overlay)
    assert complaint in str(refused.value)
    assert "test.yaml" in str(refused.value)


MANIFEST = """kind: RayService
spec:
  serveConfigV2: |
    old: config
    applications:
      - name: x

  rayClusterConfig:
    rayVersion: "2.60.0"
"""


def test_the_rayservice_block_is_replaced_and_the_rest_kept() -> None:
    text = embed_in_rayservice(MANIFEST, "applications:\n  - name: stemforge\n", "cluster/rs.yaml")
    assert text == (
        "kind: RayService\nspec:\n  serveConfigV2: |\n    applications:\n      - name: stemforge\n"
        '  rayClusterConfig:\n    rayVersion: "2.60.0"\n'
    )
    embedded = yaml.safe_load(yaml.safe_load(text)["spec"]["serveConfigV2"])
    assert embedded == {"applications": [{"name": "stemforge"}]}
    with pytest.raises(ConfigurationError, match="no 'serveConfigV2"):
        embed_in_rayservice("kind: RayService\n", "x: 1\n", "cluster/rs.yaml")
