"""What the repository's build files say, read the way their tools read them: the Makefile's
install line and system packages, pyproject.toml's pins, a Dockerfile's instructions, a
.dockerignore. Used by tests/test_images.py and tests/test_cluster_manifests.py to hold the image,
the cluster manifests and `make install` to the same packages."""

import fnmatch
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent

# Test-only system packages: the browser tests' Chromium, Compose for `docker compose config`.
TEST_ONLY_SYSTEM_PACKAGES = frozenset({"chromium", "docker-compose"})


def pins() -> dict[str, str]:
    """name -> version of pyproject.toml's ``name==version`` requirements (ray, torch)."""
    text = (ROOT / "pyproject.toml").read_text()
    pattern = r'"(?P<name>[A-Za-z0-9_.-]+)(?:\[[^\]]*\])?==(?P<version>[^";]+)"'
    return {m["name"]: m["version"] for m in re.finditer(pattern, text)}


def makefile_extras() -> set[str]:
    """The extras `make install` installs, less dev (the test tools)."""
    found = re.search(r'pip install [^\n]*-e "\.\[(?P<extras>[^\]]+)\]"', (ROOT / "Makefile").read_text())
    assert found, "the Makefile's `pip install -e .[...]` line"
    return {e.strip() for e in found["extras"].split(",")} - {"dev"}


def makefile_runtime_packages() -> set[str]:
    """The Makefile's SYSTEM_PACKAGES less those only the tests use."""
    text = (ROOT / "Makefile").read_text()
    found = re.search(r"^SYSTEM_PACKAGES\s*:?=\s*(?P<packages>.+)$", text, re.MULTILINE)
    assert found, "the Makefile's SYSTEM_PACKAGES"
    return set(found["packages"].split()) - TEST_ONLY_SYSTEM_PACKAGES


def apt_installed(command: str) -> set[str]:
    """Packages an ``apt-get install`` in a shell command names (its options left out)."""
    packages: set[str] = set()
    for part in re.split(r"&&|;|\|", command):
        words = shlex.split(part)
        if "apt-get" in words and "install" in words[words.index("apt-get") :]:
            after = words[words.index("install", words.index("apt-get")) + 1 :]
            packages |= {w for w in after if not w.startswith("-")}
    return packages


def pip_extras(command: str) -> list[set[str]]:
    """The extras of each ``name[a,b]`` / ``.[a,b]`` / ``path[a,b]`` requirement in a command."""
    return [{e.strip() for e in m.split(",")} for m in re.findall(r"[\w./~-]*\[([a-z0-9,-]+)\]", command)]


@dataclass(frozen=True)
class Instruction:
    line: int
    keyword: str  # upper case: FROM, RUN, COPY, ...
    arguments: str  # continuation lines joined, comments inside dropped


def dockerfile(path: Path) -> list[Instruction]:
    """The instructions of a Dockerfile (line continuations joined, comment lines dropped)."""
    instructions: list[Instruction] = []
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(path.read_text().splitlines(), start=1):
        stripped = raw.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if pending and stripped.startswith("#"):
            continue  # a comment inside a continued instruction
        if not pending:
            start = number
        continued = stripped.endswith("\\")
        pending.append(stripped[:-1].strip() if continued else stripped)
        if not continued:
            text = " ".join(part for part in pending if part)
            keyword, _, arguments = text.partition(" ")
            instructions.append(Instruction(start, keyword.upper(), arguments.strip()))
            pending = []
    return instructions


def stages(instructions: list[Instruction]) -> list[list[Instruction]]:
    """Instructions split at each FROM (the FROM first in its stage); ARGs before the first FROM
    are left out."""
    found: list[list[Instruction]] = []
    for instruction in instructions:
        if instruction.keyword == "FROM":
            found.append([instruction])
        elif found:
            found[-1].append(instruction)
    return found


def copy_sources(instruction: Instruction) -> tuple[list[str], dict[str, str]]:
    """A COPY's sources (relative to the build context) and its --flags."""
    words = shlex.split(instruction.arguments)
    flags = {w[2:].partition("=")[0]: w[2:].partition("=")[2] for w in words if w.startswith("--")}
    paths = [w for w in words if not w.startswith("--")]
    return paths[:-1], flags


def dockerignore_patterns(path: Path) -> list[str]:
    lines = [line.strip() for line in path.read_text().splitlines()] if path.is_file() else []
    return [line for line in lines if line and not line.startswith("#")]


def _match(path: tuple[str, ...], pattern: tuple[str, ...]) -> bool:
    if not pattern:
        return not path
    if pattern[0] == "**":
        return any(_match(path[i:], pattern[1:]) for i in range(len(path) + 1))
    return bool(path) and fnmatch.fnmatchcase(path[0], pattern[0]) and _match(path[1:], pattern[1:])


def excluded(relative: str, patterns: list[str]) -> bool:
    """Whether .dockerignore ``patterns`` keep ``relative`` (a path in the build context) out, as
    Docker reads them: a pattern matches the path or a folder above it, segment by segment
    (``*`` within a segment, ``**`` any number of them); a later ``!pattern`` takes a path back."""
    parts = Path(relative).parts
    result = False
    for pattern in patterns:
        negated = pattern.startswith("!")
        segments = tuple(Path(pattern.removeprefix("!").strip("/")).parts)
        if any(_match(parts[: i + 1], segments) for i in range(len(parts))):
            result = not negated
    return result
