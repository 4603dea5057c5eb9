"""The storage contract every backend (local disk, Azure Blob) fulfils.

Methods are synchronous and may block on I/O: callers in an event loop run them in a thread.
A blob is written whole or not at all, so a reader never sees half a file.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol, runtime_checkable


@dataclass(frozen=True)
class StoredBlob:
    path: str  # e.g. "aud-1/gen-1/drums.wav", relative to the container
    url: str  # what a client GETs to download it
    size_bytes: int


@runtime_checkable
class Storage(Protocol):
    name: str  # "local", "azure"

    def put(
        self,
        path: str,
        data: bytes,
        *,
        content_type: str,
        metadata: Mapping[str, str] | None = None,
    ) -> StoredBlob:
        """Write ``data`` at ``path``, replacing what was there. Raises ``StorageError``."""
        ...

    def create(self, path: str, data: bytes, *, content_type: str) -> bool:
        """Write ``data`` at ``path`` only if nothing is there; ``False`` if something was.
        Atomic across processes and nodes: of concurrent creators exactly one wins."""
        ...

    def delete(self, path: str) -> None:
        """Remove a blob; no error if it is already gone."""
        ...

    def list(self, prefix: str) -> list[str]:
        """Paths of the blobs whose path starts with ``prefix``."""
        ...

    def get(self, path: str) -> bytes:
        """Read a whole blob. Raises ``BlobNotFound`` or ``StorageError``."""
        ...

    def check(self) -> str:
        """``"connected"``, or a short reason why the backend cannot be used now."""
        ...


def blob_path(audio_file_id: str, generation_request_id: str, filename: str) -> str:
    """The seed's layout: ``{audio_file_id}/{generation_request_id}/{stem_type}.wav``."""
    return f"{audio_file_id}/{generation_request_id}/{filename}"
