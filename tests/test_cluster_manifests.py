"""cluster/: the KubeRay RayService and the Ray cluster launcher YAML, checked without a cluster.

- Each against its schema: the launcher YAML against Ray's own (ray/autoscaler/ray-schema.json,
  and Ray's validate_config after filling in the provider defaults); the RayService against
  tests/schemas/rayservice-v1.json, written from KubeRay's v1 API reference (no registry package
  ships KubeRay's CRD), whose pod templates and other Kubernetes types are the Kubernetes schemas
  kubernetes-validate ships, strict (unknown fields fail).
- Each holds the Serve graph of serve_config.yaml: every replica, at min_replicas and at
  max_replicas, is placed on the head and worker groups (minimum and maximum sizes) by CPUs and
  GPUs, as Ray schedules them.
- The autoscaler is on, storage credentials come from a Secret, and the Ray, Python and package
  versions, extras and system packages are the ones the rest of the repository uses.
"""

import functools
import json
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from stemforge.launch.resources import DEFAULT_NUM_CPUS, demands
from stemforge.launch.serveconfig import deployments, read_serve_config, the_application
from tests.support.build_files import (
    ROOT,
    apt_installed,
    makefile_extras,
    makefile_runtime_packages,
    pins,
    pip_extras,
)

RAYSERVICE = ROOT / "cluster" / "rayservice.yaml"
LAUNCHER = ROOT / "cluster" / "ray-cluster.yaml"
RAYSERVICE_SCHEMA = Path(__file__).parent / "schemas" / "rayservice-v1.json"
K8S_DEFINITIONS_ID = "https://kubernetes.io/api/_definitions.json"


def _yaml(path: Path) -> dict[str, Any]:
    loaded = yaml.safe_load(path.read_text())
    assert isinstance(loaded, dict)
    return loaded


# --- where replicas go -------------------------------------------------------------------------


@dataclass
class Node:
    name: str
    cpus: float
    gpus: float


@dataclass(frozen=True)
class Replica:
    deployment: str
    cpus: float
    gpus: float


def replicas(application: Mapping[str, Any], at: str) -> list[Replica]:
    """Every replica of the application at ``min_replicas`` (what Serve starts) or at
    ``max_replicas`` (the most Serve's autoscaling asks for)."""
    found = []
    if at == "min":
        for demand in demands(application):
            found += [Replica(demand.deployment, demand.num_cpus, demand.num_gpus)] * demand.replicas
        return found
    for name, deployment in deployments(application).items():
        options = deployment.get("ray_actor_options") or {}
        autoscaling = deployment.get("autoscaling_config") or {}
        count = int(autoscaling.get("max_replicas") or deployment.get("num_replicas") or 1)
        cpus = float(options.get("num_cpus", DEFAULT_NUM_CPUS))
        found += [Replica(name, cpus, float(options.get("num_gpus", 0.0)))] * count
    return found


def unplaced(wanted: list[Replica], nodes: list[Node]) -> list[Replica]:
    """What does not fit after placing ``wanted`` first-fit, largest GPU share (then CPU share)
    first. Each node has at most one GPU here, so a fractional share never spans two devices."""
    assert all(n.gpus <= 1 for n in nodes), "a node with several GPUs needs per-device packing"
    free = [Node(n.name, n.cpus, n.gpus) for n in nodes]
    left = []
    for replica in sorted(wanted, key=lambda r: (r.gpus, r.cpus), reverse=True):
        node = next(
            (n for n in free if n.cpus >= replica.cpus - 1e-9 and n.gpus >= replica.gpus - 1e-9), None
        )
        if node is None:
            left.append(replica)
            continue
        node.cpus -= replica.cpus
        node.gpus -= replica.gpus
    return left


def _quantity_cpus(value: str | float) -> float:
    text = str(value)
    return float(text[:-1]) / 1000 if text.endswith("m") else float(text)


def kuberay_node(name: str, group: Mapping[str, Any]) -> Node:
    """What Ray on a KubeRay pod offers: num-cpus / num-gpus from rayStartParams, else the
    container's CPU limit and nvidia.com/gpu limit (KubeRay's rule)."""
    params = group.get("rayStartParams") or {}
    container = group["template"]["spec"]["containers"][0]
    limits = (container.get("resources") or {}).get("limits") or {}
    cpus = float(params["num-cpus"]) if "num-cpus" in params else math.floor(_quantity_cpus(limits["cpu"]))
    gpus = float(params.get("num-gpus", limits.get("nvidia.com/gpu", 0)))
    return Node(name, cpus, gpus)


def kuberay_nodes(manifest: Mapping[str, Any], size: str) -> list[Node]:
    cluster = manifest["spec"]["rayClusterConfig"]
    nodes = [kuberay_node("head", cluster["headGroupSpec"])]
    for group in cluster.get("workerGroupSpecs") or []:
        count = int(group.get("minReplicas", 0) if size == "min" else group["maxReplicas"])
        nodes += [kuberay_node(group["groupName"], group) for _ in range(count)]
    return nodes


def launcher_nodes(config: Mapping[str, Any], size: str) -> list[Node]:
    nodes = []
    for name, node_type in config["available_node_types"].items():
        resources = node_type.get("resources") or {}
        if name == config["head_node_type"]:
            count = 1
        else:
            count = int(node_type.get("min_workers", 0) if size == "min" else node_type["max_workers"])
        nodes += [Node(name, float(resources.get("CPU", 0)), float(resources.get("GPU", 0)))] * count
    return [Node(n.name, n.cpus, n.gpus) for n in nodes]


def production_application() -> dict[str, Any]:
    return the_application(read_serve_config(ROOT / "serve_config.yaml"))


def test_the_rayservice_embeds_the_production_graph() -> None:
    # The block itself is generated (tests/test_serve_configs.py holds it to `make configs`); it
    # is the production graph, the one the resources below are sized for.
    assert the_application(read_serve_config(RAYSERVICE)) == production_application()


@pytest.mark.parametrize("size", ["min", "max"])
def test_the_rayservice_groups_hold_every_replica(size: str) -> None:
    application = production_application()
    wanted = replicas(application, size)
    nodes = kuberay_nodes(_yaml(RAYSERVICE), size)
    gpus_wanted = sum(r.gpus for r in wanted)
    gpus_there = sum(n.gpus for n in nodes)
    assert gpus_wanted <= gpus_there, f"at {size}_replicas the graph needs {gpus_wanted:g} GPUs"
    left = unplaced(wanted, nodes)
    assert not left, f"at {size}_replicas these replicas fit no node: {left}"


@pytest.mark.parametrize("size", ["min", "max"])
def test_the_launcher_node_types_hold_every_replica(size: str) -> None:
    wanted = replicas(production_application(), size)
    left = unplaced(wanted, launcher_nodes(_yaml(LAUNCHER), size))
    assert not left, f"at {size}_replicas these replicas fit no node: {left}"


def test_the_placement_check_fails_when_the_gpu_group_is_too_small() -> None:
    # The check above is not vacuous: the production graph's 1.5 GPUs at min_replicas do not fit
    # one 1-GPU worker.
    wanted = replicas(production_application(), "min")
    assert math.isclose(sum(r.gpus for r in wanted), 1.5)
    assert unplaced(wanted, [Node("head", 0, 0), Node("cpu", 4, 0), Node("gpu", 8, 1)])


# --- the RayService ----------------------------------------------------------------------------


def _kubernetes_definitions() -> tuple[dict[str, Any], str]:
    kubernetes_validate = pytest.importorskip(
        "kubernetes_validate.utils", reason="kubernetes-validate (the dev extra: make install)"
    )
    version = kubernetes_validate.latest_version()
    definitions = kubernetes_validate.schema_contents(
        f"kubernetes-json-schema/v{version}-local-strict/_definitions.json", version
    )
    return definitions, version


@functools.cache
def rayservice_validator() -> jsonschema.protocols.Validator:
    from referencing import Registry, Resource

    definitions, _ = _kubernetes_definitions()
    assert definitions["$id"] == K8S_DEFINITIONS_ID
    schema = json.loads(RAYSERVICE_SCHEMA.read_text())
    registry = Registry().with_resources(
        [
            (K8S_DEFINITIONS_ID, Resource.from_contents(definitions)),
            (schema["$id"], Resource.from_contents(schema)),
        ]
    )
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema, registry=registry)


def test_the_rayservice_is_valid_against_the_rayservice_and_kubernetes_schemas() -> None:
    errors = [
        f"{'.'.join(map(str, e.absolute_path))}: {e.message}"
        for e in rayservice_validator().iter_errors(_yaml(RAYSERVICE))
    ]
    assert not errors, errors


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("spec", "rayClusterConfig", "enableInTreeAutoscalling"), True),  # a typo of KubeRay's field
        (
            (
                "spec",
                "rayClusterConfig",
                "workerGroupSpecs",
                0,
                "template",
                "spec",
                "containers",
                0,
                "resource",
            ),
            {},
        ),
        (("spec", "rayClusterConfig", "headGroupSpec", "rayStartParams", "num-cpus"), 0),  # not a string
    ],
    ids=["kuberay-field", "kubernetes-field", "kuberay-type"],
)
def test_the_rayservice_schema_refuses_what_kuberay_or_kubernetes_would(path: tuple, value: Any) -> None:
    manifest = _yaml(RAYSERVICE)
    target: Any = manifest
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    assert list(rayservice_validator().iter_errors(manifest))


def _containers(manifest: Mapping[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    cluster = manifest["spec"]["rayClusterConfig"]
    groups = [("head", cluster["headGroupSpec"])] + [(g["groupName"], g) for g in cluster["workerGroupSpecs"]]
    for name, group in groups:
        for container in group["template"]["spec"]["containers"]:
            yield name, container


def test_the_rayservice_autoscales_with_gpu_workers_and_one_image() -> None:
    manifest = _yaml(RAYSERVICE)
    cluster = manifest["spec"]["rayClusterConfig"]
    assert cluster["enableInTreeAutoscaling"] is True
    assert cluster["rayVersion"] == pins()["ray"]
    gpu_groups = [g for g in cluster["workerGroupSpecs"] if kuberay_node(g["groupName"], g).gpus > 0]
    assert gpu_groups and all(g["maxReplicas"] > g["minReplicas"] for g in gpu_groups)
    assert kuberay_node("head", cluster["headGroupSpec"]).gpus == 0
    # One image everywhere: Ray refuses a node whose Ray or Python differs from the head's.
    assert len({c["image"] for _, c in _containers(manifest)}) == 1
    for name, container in _containers(manifest):
        limits = container["resources"]["limits"]
        requests = container["resources"].get("requests") or {}
        assert _quantity_cpus(requests.get("cpu", limits["cpu"])) <= _quantity_cpus(limits["cpu"]), name


def test_the_rayservice_takes_storage_credentials_from_a_secret() -> None:
    for name, container in _containers(_yaml(RAYSERVICE)):
        env = {e["name"]: e for e in container.get("env") or []}
        connection = env.get("AZURE_STORAGE_CONNECTION_STRING")
        assert connection is not None, f"{name}: no AZURE_STORAGE_CONNECTION_STRING"
        assert "value" not in connection, f"{name}: a credential written into the manifest"
        assert set(connection["valueFrom"]["secretKeyRef"]) == {"name", "key"}


def test_the_model_engines_find_the_weights_offline() -> None:
    manifest = _yaml(RAYSERVICE)
    env_vars = the_application(read_serve_config(RAYSERVICE))["runtime_env"]["env_vars"]
    assert env_vars["HF_HUB_OFFLINE"] == "1"
    for name, group in [
        (g["groupName"], g) for g in manifest["spec"]["rayClusterConfig"]["workerGroupSpecs"]
    ]:
        if kuberay_node(name, group).gpus:
            mounts = {m["mountPath"] for m in group["template"]["spec"]["containers"][0]["volumeMounts"]}
            assert "/models" in mounts, f"{name}: the Hugging Face cache (HF_HOME=/models) is not mounted"


# --- the Ray cluster launcher --------------------------------------------------------------------


def test_the_launcher_yaml_is_valid_against_rays_schema() -> None:
    import ray.autoscaler
    from ray.autoscaler._private.util import prepare_config, validate_config

    schema = json.loads((Path(ray.autoscaler.__file__).parent / "ray-schema.json").read_text())
    config = _yaml(LAUNCHER)
    jsonschema.validate(config, schema)
    # What `ray up` itself checks, after it fills in the provider's defaults.
    validate_config(prepare_config(config))


def test_the_launcher_yaml_refuses_a_misspelt_field() -> None:
    import ray.autoscaler

    schema = json.loads((Path(ray.autoscaler.__file__).parent / "ray-schema.json").read_text())
    config = _yaml(LAUNCHER)
    config["available_node_types"]["gpu"]["min_worker"] = 2
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(config, schema)


def test_the_launcher_installs_what_make_install_does_and_deploys_the_graph() -> None:
    config = _yaml(LAUNCHER)
    image = config["docker"]["image"]
    assert image.startswith(f"rayproject/ray:{pins()['ray']}-py311-")
    setup = config["setup_commands"]
    assert set().union(*(apt_installed(c) for c in setup)) == makefile_runtime_packages()
    extras = [e for c in setup for e in pip_extras(c)]
    assert extras == [makefile_extras()]
    assert any(f"torch=={pins()['torch']}" in c and "download.pytorch.org/whl/cu130" in c for c in setup)
    assert config["file_mounts"] == {"/home/ray/stemforge": "."}
    assert any("serve deploy serve_config.yaml" in c for c in config["head_start_ray_commands"])
    assert not any("AZURE_STORAGE_CONNECTION_STRING=" in str(v) for v in config["docker"]["run_options"])
    assert config["max_workers"] >= sum(
        t.get("max_workers", 0)
        for n, t in config["available_node_types"].items()
        if n != config["head_node_type"]
    )
