"""The launcher as a user runs it: options, and a failing preflight within seconds."""

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from stemforge.errors import ConfigurationError
from stemforge.launch.cli import startup_timeout, with_port

ROOT = Path(__file__).resolve().parents[2]


def test_startup_timeout() -> None:
    assert startup_timeout({}) == 300
    assert startup_timeout({"STARTUP_TIMEOUT_SECONDS": "42.5"}) == 42.5
    for bad in ("0", "-3", "soon"):
        with pytest.raises(ConfigurationError, match="STARTUP_TIMEOUT_SECONDS"):
            startup_timeout({"STARTUP_TIMEOUT_SECONDS": bad})


def test_port_override() -> None:
    config: dict[str, Any] = {"http_options": {"host": "0.0.0.0", "port": 8080}, "applications": []}
    assert with_port(config, None) == (config, 8080)
    changed, port = with_port(config, "8091")
    assert port == 8091 and changed["http_options"] == {"host": "0.0.0.0", "port": 8091}
    assert config["http_options"]["port"] == 8080  # the loaded config is left alone
    assert with_port({"applications": []}, None)[1] == 8000  # Serve's default
    with pytest.raises(ConfigurationError, match="PORT"):
        with_port(config, "80a")


def _launch(*args: str, **env: str) -> tuple[subprocess.CompletedProcess[str], float]:
    environ = {
        k: v for k, v in os.environ.items() if k not in ("MOCK_GENERATION", "MUSICGEN_MODEL", "SERVE_CONFIG")
    }
    began = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "stemforge.launch", *args],
        cwd=ROOT,
        env={**environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return done, time.monotonic() - began


def test_musicgen_without_a_checkpoint_fails_within_seconds_and_starts_nothing(tmp_path: Path) -> None:
    missing = tmp_path / "nonexistent"
    done, seconds = _launch(MOCK_GENERATION="false", MUSICGEN_MODEL=str(missing))
    assert done.returncode == 2, done.stderr
    assert seconds < 20
    assert f"MUSICGEN_MODEL={str(missing)!r}: no such folder" in done.stderr
    assert "nothing was started" in done.stderr
    assert "Running config file" not in done.stderr + done.stdout  # serve run never began


def test_the_default_choice_passes_its_checks() -> None:
    done, _ = _launch("--check")
    assert done.returncode == 0, done.stderr
    assert "serve config configs/serve.cpu.yaml: MOCK_GENERATION=true" in done.stderr
    assert "checks passed" in done.stderr


def test_an_explicit_config_is_used_as_given() -> None:
    done, _ = _launch("--check", MOCK_GENERATION="false", SERVE_CONFIG="configs/serve.cpu.yaml")
    assert done.returncode == 0, done.stderr
    assert "given explicitly" in done.stderr
    assert "overriding MOCK_GENERATION=false from the environment" in done.stderr
