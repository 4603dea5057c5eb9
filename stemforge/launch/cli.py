"""``python -m stemforge.launch [CONFIG]``: choose, check, then ``serve run`` and watch.

Exit status: 0 after a normal stop (Ctrl-C), 2 when a check fails before anything starts, 3 when
the application does not become RUNNING (DEPLOY_FAILED, unschedulable, or STARTUP_TIMEOUT_SECONDS).
"""

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from stemforge.errors import ConfigurationError
from stemforge.launch import machine as machines
from stemforge.launch.choice import choose_config
from stemforge.launch.preflight import check, hugging_face_env
from stemforge.launch.serveconfig import read_serve_config, the_application
from stemforge.launch.watch import say
from stemforge.settings import Settings

PREFLIGHT_FAILED = 2
DEFAULT_STARTUP_TIMEOUT_S = 300.0
DEFAULT_PORT = 8000  # Serve's, when a config has no http_options.port


def startup_timeout(environ: Mapping[str, str]) -> float:
    raw = environ.get("STARTUP_TIMEOUT_SECONDS", "")
    try:
        value = float(raw) if raw else DEFAULT_STARTUP_TIMEOUT_S
    except ValueError:
        value = -1.0
    if value <= 0:
        raise ConfigurationError(f"STARTUP_TIMEOUT_SECONDS must be a positive number of seconds; got {raw!r}")
    return value


def with_port(config: Mapping[str, Any], port: str | None) -> tuple[dict[str, Any], int]:
    """The config with ``PORT`` as its HTTP port (the Makefile's PORT, so a taken 8080 can be
    avoided without editing a generated file)."""
    result = dict(config)
    http = dict(result.get("http_options") or {})
    if port:
        if not port.isdigit() or not 0 < int(port) < 65536:
            raise ConfigurationError(f"PORT must be a TCP port number; got {port!r}")
        http["port"] = int(port)
        result["http_options"] = http
    return result, int(http.get("port", DEFAULT_PORT))


def _shown(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stemforge.launch", description=__doc__)
    parser.add_argument("config", nargs="?", help="serve config (default: SERVE_CONFIG, else chosen)")
    parser.add_argument("--check", action="store_true", help="choose and check only; start nothing")
    args = parser.parse_args(argv)
    began = time.monotonic()
    try:
        return _launch(args.config or os.environ.get("SERVE_CONFIG") or None, args.check, began)
    except (ConfigurationError, ValidationError) as exc:
        say(f"cannot start: {getattr(exc, 'message', exc)}")
        return PREFLIGHT_FAILED


def _launch(explicit: str | None, check_only: bool, began: float) -> int:
    timeout = startup_timeout(os.environ)
    machine = machines.detect()
    choice = choose_config(explicit, Settings().mock_generation, machine.gpus)
    say(f"serve config {_shown(choice.path)}: {choice.reason}")
    config, port = with_port(read_serve_config(choice.path), os.environ.get("PORT"))
    application = the_application(config, choice.path)
    if "huggingface_hub" not in sys.modules:  # it reads HF_* once, when first imported
        os.environ.update(hugging_face_env(application))
    report = check(_shown(choice.path), application, machine)
    for note in [f"this machine: {machine.describe()}", *report.notes]:
        say(note)
    if report.problems:
        for problem in report.problems:
            say(f"cannot start: {problem}")
        say(f"checked in {time.monotonic() - began:.1f} s; nothing was started")
        return PREFLIGHT_FAILED
    say(f"checks passed in {time.monotonic() - began:.1f} s")
    if check_only:
        return 0
    # Local blob URLs start with PUBLIC_BASE_URL: follow a PORT override unless it is set.
    os.environ.setdefault("PUBLIC_BASE_URL", f"http://localhost:{port}")
    from stemforge.launch.serving import serve_run

    hint = f"try: curl http://localhost:{port}/health"
    with tempfile.TemporaryDirectory(prefix="stemforge-launch-") as folder:
        # `serve run` reads a file: the chosen one, with the port applied.
        path = Path(folder) / choice.path.name
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        return serve_run(path, str(application["name"]), timeout, hint)
