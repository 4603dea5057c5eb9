"""Azure Blob storage figures against a local Azurite: upload throughput, and how long an outage
takes to become a ``StorageError`` with the default bounds (what a failed callback waits for).

    .venv/bin/python -m bench.storage_bench [--sizes-mb 5 30] [--repeats 5] [--skip-hung] [--sdk-defaults]

Prints figures; asserts nothing. Needs ``npm ci`` (Azurite in node_modules).
"""

import argparse
import os
import statistics
import time
from collections.abc import Callable
from typing import Any

from azure.storage.blob import BlobServiceClient

from stemforge.errors import StorageError
from stemforge.settings import Settings
from stemforge.storage.azure_blob import AzureBlobStorage
from tests.support.azurite import Azurite, unique_container_name

MB = 1_000_000


def default_settings(server: Azurite, container: str) -> Settings:
    # Only the account and container are set: every bound is the shipped default.
    values: dict[str, Any] = {
        "azure_storage_connection_string": server.connection_string,
        "azure_storage_account_url": None,
        "blob_container_name": container,
        "_env_file": None,
    }
    return Settings(**values)


def upload_throughput(storage: AzureBlobStorage, size_mb: float, repeats: int) -> None:
    data = os.urandom(int(size_mb * MB))
    metadata = {"generation_request_id": "bench", "stem_type": "mix", "engine": "bench", "seed": "0"}
    storage.put("bench/warm-up.wav", data[: MB // 10], content_type="audio/wav", metadata=metadata)
    rates = []
    for attempt in range(repeats):
        started = time.perf_counter()
        storage.put(
            f"bench/run/{size_mb:g}mb-{attempt}.wav", data, content_type="audio/wav", metadata=metadata
        )
        rates.append(len(data) / MB / (time.perf_counter() - started))
    print(
        f"upload {size_mb:g} MB x{repeats}: median {statistics.median(rates):.1f} MB/s "
        f"(min {min(rates):.1f}, max {max(rates):.1f})"
    )


def time_to_error(label: str, call: Callable[[], object], bound: float | None) -> None:
    started = time.monotonic()
    try:
        call()
        outcome = "no error (!)"
    except StorageError as exc:
        outcome = f"StorageError: {exc.message[:160]}"
    except Exception as exc:
        outcome = f"{type(exc).__name__}: {str(exc).splitlines()[0][:160]}"
    elapsed = time.monotonic() - started
    bound_text = f" (bound {bound:g} s)" if bound is not None else ""
    print(f"{label}: {elapsed:.2f} s{bound_text} -> {outcome}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes-mb", type=float, nargs="+", default=[5.0, 30.0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--skip-hung", action="store_true", help="skip the ~60 s hung-endpoint run")
    parser.add_argument("--sdk-defaults", action="store_true", help="also time the bare SDK (~85 s)")
    args = parser.parse_args()

    with Azurite() as server:
        storage = AzureBlobStorage.from_settings(default_settings(server, unique_container_name("bench")))
        print(
            f"Azurite pid {server.pid} on port {server.port}; bounds: {storage.deadline_seconds:g} s deadline"
        )
        for size in args.sizes_mb:
            upload_throughput(storage, size, args.repeats)

        payload = os.urandom(5 * MB)

        def put() -> object:
            return storage.put("bench/outage.wav", payload, content_type="audio/wav")

        if not args.skip_hung:
            server.pause()
            time_to_error("hung endpoint (Azurite paused), default settings", put, storage.deadline_seconds)
            server.resume()
        server.kill()
        time_to_error("dead endpoint (Azurite killed), default settings", put, storage.deadline_seconds)
        if args.sdk_defaults:
            bare = BlobServiceClient.from_connection_string(server.connection_string)
            blob = bare.get_blob_client(unique_container_name("bench"), "outage.wav")
            time_to_error(
                "dead endpoint, bare SDK defaults", lambda: blob.upload_blob(payload, overwrite=True), None
            )


if __name__ == "__main__":
    main()
