"""Fuzz the OpenAPI schema (schemathesis): whatever a client sends, no answer is a 5xx."""

from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

from stemforge.settings import Settings
from tests.integration.conftest import Service

pytestmark = pytest.mark.integration

EXAMPLES_PER_OPERATION_AND_MODE = 120


def test_fuzzed_requests_never_get_a_server_error(
    start_service: Callable[..., Service], tmp_path: Path
) -> None:
    # Short stems keep the jobs the valid cases start cheap.
    svc = start_service(Settings(local_storage_dir=tmp_path, max_duration_seconds=1), name="fuzz")
    schema = schemathesis.openapi.from_url(f"{svc.base_url}/openapi.json")
    statuses: Counter[int] = Counter()
    server_errors: list[str] = []

    for result in schema.get_all_operations():
        operation = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @settings(
                max_examples=EXAMPLES_PER_OPERATION_AND_MODE,
                deadline=None,
                database=None,
                suppress_health_check=list(HealthCheck),
            )
            @given(case=operation.as_strategy(generation_mode=mode))
            def call(case: schemathesis.Case) -> None:
                response = case.call(base_url=svc.base_url, timeout=30)
                statuses[response.status_code] += 1
                if response.status_code >= 500:
                    server_errors.append(
                        f"{case.method} {case.formatted_path} -> {response.status_code}: {case.body!r}"
                    )

            try:
                call()
            except Unsatisfiable:
                continue  # e.g. no invalid input exists for GET /health

    print(f"fuzzed {sum(statuses.values())} requests: {dict(sorted(statuses.items()))}")
    assert sum(statuses.values()) >= 200
    assert server_errors == []
