"""The seed's shape of ``POST /generate``, as the baseline of the 202 comparison in
``bench/service_bench.py``: one FastAPI app under uvicorn, no Ray, that validates the same
``GenerateRequest`` and writes one job record to local disk the way ``JobStore`` does (a JSON
blob, written beside its target and renamed into place), then answers ``202``.

Run by the benchmark as ``python -m uvicorn bench.bare_accept:app`` with ``BARE_STORAGE_DIR`` set.
"""

import json
import os
import tempfile
import time
from pathlib import Path

from fastapi import FastAPI

from stemforge.api.schemas import GenerateAccepted, GenerateRequest
from stemforge.jobs.store import JobStore
from stemforge.storage.local import LocalDiskStorage

_storage = LocalDiskStorage(
    Path(os.environ.get("BARE_STORAGE_DIR") or tempfile.mkdtemp(prefix="stemforge-bare-")),
    "audio-files",
    "http://127.0.0.1",
)
app = FastAPI(title="bare accept")


@app.get("/health")
async def health() -> dict[str, str]:
    return {"status": "healthy"}


@app.post("/generate", status_code=202, response_model=GenerateAccepted)
async def generate(body: GenerateRequest) -> GenerateAccepted:
    now = time.time()
    record = {
        "generation_request_id": body.generation_request_id,
        "audio_file_id": body.audio_file_id,
        "status": "processing",
        "created_at": now,
        "updated_at": now,
        "request": body.model_dump(mode="json"),
    }
    _storage.put(
        JobStore.record_path(body.generation_request_id),
        json.dumps(record).encode(),
        content_type="application/json",
    )
    return GenerateAccepted(generation_request_id=body.generation_request_id)
