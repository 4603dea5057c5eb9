"""Local-disk storage: the embedded default. Blobs are files under a root folder and the service
itself serves them over HTTP (``GET /blobs/{path}``), so clients download them as they would
download Azure blobs."""

import os
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

from stemforge.errors import BlobNotFound, StorageError
from stemforge.storage.base import StoredBlob
from stemforge.storage.url_signing import BlobUrlSigner

_MAX_NAME_BYTES = 255  # NAME_MAX of the usual file systems (ext4, xfs, APFS, NTFS)

BLOB_ROUTE = "/blobs"
_FILE_MODE = 0o644  # mkstemp creates 0600 files; blobs are meant to be served
_PART_SUFFIX = ".part"
# The health probe writes this much: a disk that cannot take it cannot take a stem either (an
# access() check says "writable" on a full disk).
PROBE_BYTES = 1024 * 1024


class LocalDiskStorage:
    name = "local"

    def __init__(
        self, root: Path, container: str, public_base_url: str, signer: BlobUrlSigner | None = None
    ) -> None:
        self._signer = signer  # set: blob URLs are signed and expire (API_KEY deployments)
        self._container_root = (Path(root) / container).resolve()
        self._container = container
        self._base_url = public_base_url.rstrip("/")
        try:
            self._container_root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageError(f"cannot create local storage folder {self._container_root}: {exc}") from exc

    def resolve(self, path: str) -> Path:
        """The file behind ``path``; refuses any path that leaves the container folder."""
        try:
            target = (self._container_root / path).resolve()
        except (ValueError, OSError):  # an embedded NUL, a name too long
            raise BlobNotFound(f"no blob at {path!r}") from None
        # resolve() does not read the names: one longer than the file system allows (255 bytes
        # each, an id of 128 four-byte characters) cannot exist, and is no storage failure.
        if any(len(part.encode("utf-8", "surrogateescape")) > _MAX_NAME_BYTES for part in target.parts):
            raise BlobNotFound(f"no blob at {path!r}")
        if not target.is_relative_to(self._container_root) or target == self._container_root:
            raise BlobNotFound(f"no blob at {path!r}")
        return target

    def public_file(self, path: str, hidden_prefixes: tuple[str, ...]) -> Path:
        """The file to serve for ``path``, checked on the resolved path (``./``, ``x/../``, any
        encoding): nothing under ``hidden_prefixes`` (job records) and no staging files."""
        target = self.resolve(path)
        relative = target.relative_to(self._container_root)
        if relative.parts[0] in hidden_prefixes or target.name.endswith(_PART_SUFFIX) or not target.is_file():
            raise BlobNotFound(f"no blob at {path!r}")
        return target

    def signed_for(self, path: str, params: Mapping[str, str]) -> bool:
        """Whether ``params`` (a URL's query) carry a valid, unexpired signature for the blob
        ``path`` names (checked on the resolved path, as the URL was signed)."""
        if self._signer is None:
            return False
        try:
            relative = self.resolve(path).relative_to(self._container_root).as_posix()
        except BlobNotFound:
            return False
        return self._signer.verify(relative, params)

    def url_for(self, path: str) -> str:
        url = f"{self._base_url}{BLOB_ROUTE}/{self._container}/{quote(path)}"
        return f"{url}?{self._signer.query(path)}" if self._signer is not None else url

    def put(
        self,
        path: str,
        data: bytes,
        *,
        content_type: str,
        metadata: Mapping[str, str] | None = None,
    ) -> StoredBlob:
        target = self.resolve(path)
        try:
            # Write beside the target, then rename: readers see the old blob or the whole new one.
            with self._staged(target, data) as staged:
                os.replace(staged, target)
        except OSError as exc:
            raise StorageError(f"cannot write {path!r} to local storage: {exc}") from exc
        return StoredBlob(path=path, url=self.url_for(path), size_bytes=len(data))

    def create(self, path: str, data: bytes, *, content_type: str) -> bool:
        target = self.resolve(path)
        try:
            with self._staged(target, data) as staged:
                # link() refuses an existing name: an atomic create-if-absent with the content
                # already in place.
                os.link(staged, target)
        except FileExistsError:
            return False
        except OSError as exc:
            raise StorageError(f"cannot create {path!r} in local storage: {exc}") from exc
        return True

    def delete(self, path: str) -> None:
        try:
            self.resolve(path).unlink(missing_ok=True)
        except OSError as exc:
            raise StorageError(f"cannot delete {path!r} from local storage: {exc}") from exc

    def list(self, prefix: str) -> list[str]:
        # Walk only the deepest folder the prefix names, not the whole container.
        folder = prefix.rpartition("/")[0]
        base = (self._container_root / folder).resolve()
        if not base.is_relative_to(self._container_root) or not base.is_dir():
            return []
        paths = (str(p.relative_to(self._container_root)) for p in base.rglob("*") if p.is_file())
        return sorted(p for p in paths if p.startswith(prefix) and not p.endswith(_PART_SUFFIX))

    @contextmanager
    def _staged(self, target: Path, data: bytes) -> Iterator[str]:
        """A temporary file beside ``target`` holding ``data``; removed afterwards."""
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, temp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=_PART_SUFFIX)
        try:
            os.fchmod(fd, _FILE_MODE)
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            yield temp_name
        finally:
            Path(temp_name).unlink(missing_ok=True)

    def get(self, path: str) -> bytes:
        target = self.resolve(path)
        try:
            return target.read_bytes()
        except FileNotFoundError:
            raise BlobNotFound(f"no blob at {path!r}") from None
        except OSError as exc:
            raise StorageError(f"cannot read {path!r} from local storage: {exc}") from exc

    def check(self) -> str:
        """A real write of ``PROBE_BYTES``, removed at once."""
        probe = self._container_root / f".health-probe{_PART_SUFFIX}"
        try:
            with open(probe, "wb") as handle:
                handle.write(bytes(PROBE_BYTES))
                handle.flush()
                os.fsync(handle.fileno())
        except OSError as exc:
            return f"local storage folder {self._container_root} cannot take a write: {exc.strerror or exc}"
        finally:
            probe.unlink(missing_ok=True)
        return "connected"
