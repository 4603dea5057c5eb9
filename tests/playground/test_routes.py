"""The playground's routes: the page and its files, served offline, outside the API key guard."""

import re
import tomllib
from fnmatch import fnmatch
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import SecretStr

from stemforge.music.spec import STEM_TYPES
from stemforge.playground import STATIC_DIR, include_playground, static_files

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture()
def client() -> TestClient:
    app = FastAPI()
    include_playground(app)
    return TestClient(app)


def test_the_page_and_every_file_it_loads_are_served(client: TestClient) -> None:
    page = client.get("/playground")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["referrer-policy"] == "no-referrer"
    # Everything the page links and the modules import, by relative URL from /playground.
    wanted = set(re.findall(r'(?:href|src)="playground/([^"]+)"', page.text))
    for module in STATIC_DIR.glob("*.js"):
        wanted |= set(re.findall(r'from "\./([^"]+)"', module.read_text()))
    assert {"app.js", "style.css", "zip.js", "mixer.js"} <= wanted
    for name in wanted:
        answer = client.get(f"/playground/{name}")
        assert answer.status_code == 200, name
        kind = "text/javascript" if name.endswith(".js") else "text/css"
        assert answer.headers["content-type"].startswith(kind), name


def test_the_page_needs_nothing_from_another_origin() -> None:
    for path in STATIC_DIR.iterdir():
        text = path.read_text()
        assert not re.search(r"""(?:src|href|from|import|url)\s*[=(]?\s*["']?(?:https?:)?//""", text), (
            path.name
        )


def test_only_the_shipped_files_are_served(client: TestClient) -> None:
    assert set(static_files()) == {
        "app.js",
        "api.js",
        "mixer.js",
        "request.js",
        "style.css",
        "waveform.js",
        "wav.js",
        "zip.js",
    }
    for name in ("..%2F__init__.py", "package.json", "index.html", "nope.js", "%2Fetc%2Fpasswd"):
        assert client.get(f"/playground/{name}").status_code == 404, name
    assert client.get("/playground/../__init__.py").status_code == 404


def test_a_trailing_slash_redirects_to_the_page_under_any_prefix(client: TestClient) -> None:
    answer = client.get("/playground/", follow_redirects=False)
    assert answer.status_code == 308 and answer.headers["location"] == "../playground"


def test_the_config_names_the_contract_s_choices(client: TestClient) -> None:
    config = client.get("/playground/config.json").json()
    assert config["stems"] == list(STEM_TYPES)
    assert "rock" in config["styles"] and config["bpm"]["min"] == 40 and config["bpm"]["max"] == 240


def test_in_the_service_the_page_is_open_while_generate_needs_the_key() -> None:
    from deployments.ingress import app

    previous = app.state.api_key
    app.state.api_key = SecretStr("k")
    try:
        with TestClient(app) as client:
            assert client.get("/playground").status_code == 200
            assert client.get("/playground/app.js").status_code == 200
            assert client.get("/generate/x").status_code == 401
    finally:
        app.state.api_key = previous


def test_the_installed_package_ships_every_static_file() -> None:
    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    patterns = pyproject["tool"]["setuptools"]["package-data"]["stemforge.playground"]
    shipped = ["index.html", *static_files()]
    for name in shipped:
        assert any(fnmatch(f"static/{name}", pattern) for pattern in patterns), name
