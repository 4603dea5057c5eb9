"""Azurite, the Azure Storage emulator, as a real process for tests: launcher and pytest fixtures.

Load it as a plugin (``pytest_plugins = ["tests.support.azurite"]`` or ``pytest -p
tests.support.azurite``). Azurite comes from ``node_modules`` (``npm ci``, which ``make test``
runs); node itself is started, not ``npx`` or a shell, so the PID we hold is the server's and we
stop exactly that process. It listens on a port the kernel picks on 127.0.0.1 and reports it in
its own start-up line, so parallel sessions never race for a port.
"""

from __future__ import annotations

import base64
import contextlib
import ctypes
import ipaddress
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from azure.core.credentials import AccessToken
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from stemforge.settings import Settings

REPO_ROOT = Path(__file__).resolve().parents[2]
AZURITE_BLOB_MAIN = REPO_ROOT / "node_modules" / "azurite" / "dist" / "src" / "blob" / "main.js"

# Azurite's built-in development account, published in Microsoft's Azurite documentation.
DEV_ACCOUNT_NAME = "devstoreaccount1"
DEV_ACCOUNT_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="

_LISTENING = re.compile(r"successfully listens on https?://[^:\s]+:(\d+)")
_START_TIMEOUT_SECONDS = 30.0
_STOP_GRACE_SECONDS = 5.0
_PR_SET_PDEATHSIG = 1


def _load_prctl() -> Any:
    with contextlib.suppress(OSError, AttributeError):
        return ctypes.CDLL(None, use_errno=True).prctl
    return None


# Resolved here, in the parent: the child between fork and exec must not load libraries, since
# another thread of ours (Ray's, say) may have held a loader lock at the fork.
_PRCTL = _load_prctl()


def _die_with_parent() -> None:
    """Runs in the child before exec: if the test process dies hard, the kernel kills Azurite too.
    Linux only, and tied to the thread that starts Azurite: start it from one that outlives it."""
    if _PRCTL is not None:
        _PRCTL(_PR_SET_PDEATHSIG, signal.SIGKILL)


class AzuriteError(RuntimeError):
    pass


class Azurite:
    """One Azurite blob service process, in memory, on loopback.

    With ``tls=(cert, key)`` it serves HTTPS; with ``oauth=True`` as well it accepts Entra ID
    bearer tokens, checking their claims but not their signature (Azurite's "basic" OAuth).
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        extent_memory_limit_mb: int = 512,
        *,
        tls: tuple[Path, Path] | None = None,
        oauth: bool = False,
    ) -> None:
        if oauth and tls is None:
            raise AzuriteError("Azurite accepts bearer tokens over HTTPS only: pass tls=(cert, key)")
        self.host = host
        self.port = 0  # 0 until started: the kernel picks a free port on first start
        self._extent_memory_limit_mb = extent_memory_limit_mb
        self._tls = tls
        self._oauth = oauth
        self._process: subprocess.Popen[bytes] | None = None
        self._workdir = Path(tempfile.mkdtemp(prefix="azurite-"))
        self._log_path = self._workdir / "azurite.log"

    # --- what clients need -------------------------------------------------------------------
    @property
    def scheme(self) -> str:
        return "https" if self._tls else "http"

    @property
    def blob_endpoint(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}/{DEV_ACCOUNT_NAME}"

    @property
    def connection_string(self) -> str:
        return self.connection_string_with_key(DEV_ACCOUNT_KEY)

    def connection_string_with_key(self, account_key: str) -> str:
        return (
            f"DefaultEndpointsProtocol={self.scheme};AccountName={DEV_ACCOUNT_NAME};"
            f"AccountKey={account_key};BlobEndpoint={self.blob_endpoint};"
        )

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def log_text(self) -> str:
        try:
            return self._log_path.read_text(errors="replace")
        except OSError:
            return ""

    # --- life cycle --------------------------------------------------------------------------
    def start(self) -> Azurite:
        """Start (or restart, on the same port) and return once Azurite says it is listening."""
        if self.running:
            return self
        node = shutil.which("node")
        if node is None:
            raise AzuriteError("node is not on PATH; install Node.js 20 and run `npm ci`")
        if not AZURITE_BLOB_MAIN.is_file():
            raise AzuriteError(f"{AZURITE_BLOB_MAIN} is missing; run `npm ci` in {REPO_ROOT}")
        command = [
            node,
            str(AZURITE_BLOB_MAIN),
            "--blobHost", self.host,
            "--blobPort", str(self.port),
            "--inMemoryPersistence",
            "--extentMemoryLimit", str(self._extent_memory_limit_mb),
            "--disableTelemetry",
            # The newest SDK sends API versions this Azurite does not know yet.
            "--skipApiVersionCheck",
            "--silent",
        ]  # fmt: skip
        if self._tls:
            command += ["--cert", str(self._tls[0]), "--key", str(self._tls[1])]
        if self._oauth:
            command += ["--oauth", "basic"]
        # A log file, not a pipe: nobody has to keep draining it for Azurite to keep running.
        with self._log_path.open("wb") as log:
            self._process = subprocess.Popen(
                command,
                cwd=self._workdir,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent,
            )
        self._wait_until_listening()
        return self

    def _wait_until_listening(self) -> None:
        deadline = time.monotonic() + _START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            match = _LISTENING.search(self.log_text())
            if match:
                self.port = int(match.group(1))
                return
            if not self.running:
                raise AzuriteError(f"Azurite exited at start-up:\n{self.log_text()}")
            time.sleep(0.05)
        self.stop()
        raise AzuriteError(f"Azurite did not listen within {_START_TIMEOUT_SECONDS:g} s:\n{self.log_text()}")

    def stop(self) -> None:
        """Stop the process by its PID: SIGTERM, then SIGKILL if it lingers. Safe to call twice."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signal.SIGCONT)  # a paused process cannot act on SIGTERM
        process.terminate()
        try:
            process.wait(timeout=_STOP_GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=_STOP_GRACE_SECONDS)

    def kill(self) -> None:
        """An abrupt outage: SIGKILL, no goodbye to open connections."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.kill()
            process.wait(timeout=_STOP_GRACE_SECONDS)

    def restart(self) -> Azurite:
        """A fresh, empty Azurite on the same port (data lives in memory and is lost)."""
        self.stop()
        return self.start()

    @property
    def ca_file(self) -> Path | None:
        """The certificate clients must trust to reach an HTTPS Azurite."""
        return self._tls[0] if self._tls else None

    def pause(self) -> None:
        """A hung server: the kernel still accepts connections, nothing ever answers."""
        if self._process is None:
            raise AzuriteError("Azurite is not running")
        os.kill(self._process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        if self._process is not None:
            os.kill(self._process.pid, signal.SIGCONT)

    def ensure_running(self) -> Azurite:
        """For shared instances: bring it back if an earlier test stopped or paused it."""
        self.resume()
        return self.start()

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self._workdir, ignore_errors=True)

    def __enter__(self) -> Azurite:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def self_signed_certificate(folder: Path, host: str = "127.0.0.1") -> tuple[Path, Path]:
    """A certificate and key for ``host``, for an HTTPS Azurite; clients trust the cert file."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(host))]), critical=False
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "azurite-cert.pem", folder / "azurite-key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


class AzuriteBearerToken:
    """A token credential for Azurite's basic OAuth: a JWT with the claims Azurite checks
    (issuer, storage audience, lifetime, tenant and object ids), unsigned, since Azurite does not
    check signatures. It stands in for ``DefaultAzureCredential``, which needs a real tenant."""

    tenant_id = "72f988bf-86f1-41af-91ab-2d7cd011db47"
    object_id = "11059fcc-5514-4800-b5f8-49808b9cfab6"

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        def part(value: dict[str, Any]) -> str:
            return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

        now = int(time.time())
        claims = {
            "aud": "https://storage.azure.com",
            "iss": f"https://sts.windows.net/{self.tenant_id}/",
            "nbf": now - 60,
            "iat": now - 60,
            "exp": now + 3600,
            "oid": self.object_id,
            "tid": self.tenant_id,
        }
        token = f"{part({'alg': 'RS256', 'typ': 'JWT'})}.{part(claims)}.{part({'unsigned': True})}"
        return AccessToken(token, now + 3600)


def unique_container_name(prefix: str = "t") -> str:
    """A valid container name no other test uses, so tests sharing one Azurite never collide."""
    return f"{prefix}-{uuid.uuid4().hex[:16]}"


def _running(server: Azurite) -> Iterator[Azurite]:
    """Start ``server`` for a fixture (a start-up failure fails the test clearly), stop it after."""
    try:
        server.start()
    except AzuriteError as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(scope="session")
def azurite() -> Iterator[Azurite]:
    """The session's shared Azurite. A test that stops or pauses it must ``ensure_running()`` after
    (or use ``fresh_azurite``, which is its own process)."""
    yield from _running(Azurite())


@pytest.fixture
def fresh_azurite() -> Iterator[Azurite]:
    """An Azurite of the test's own, for tests that stop, kill or pause it."""
    yield from _running(Azurite())


@pytest.fixture(scope="session")
def entra_azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Azurite]:
    """An HTTPS Azurite that takes bearer tokens: the account-URL (Entra ID) credential style."""
    tls = self_signed_certificate(tmp_path_factory.mktemp("azurite-tls"))
    yield from _running(Azurite(tls=tls, oauth=True))


@pytest.fixture
def azure_container_name() -> str:
    return unique_container_name()


def azure_settings(server: Azurite, container: str, **overrides: Any) -> Settings:
    """Settings for the Azure backend on ``server``, with bounds short enough for tests."""
    values: dict[str, Any] = {
        "azure_storage_connection_string": server.connection_string,
        "azure_storage_account_url": None,
        "blob_container_name": container,
        "storage_timeout_seconds": 1.0,
        "storage_max_retries": 1,
        "storage_retry_backoff_seconds": 0.1,
        "azure_sas_expiry_seconds": 0,
    }
    values.update(overrides)
    # No .env file: a developer's local settings must not leak into tests.
    values["_env_file"] = None
    return Settings(**values)
