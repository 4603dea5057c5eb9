"""Never lose a request, never let anyone in: idempotency, durable jobs, auth, limits, faults."""

import base64
import concurrent.futures
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
import ray
from standardwebhooks import Webhook

from stemforge.jobs.records import JobRecord, fingerprint
from stemforge.jobs.store import JobStore
from stemforge.jobs.ticket import JobTicket
from stemforge.music.spec import MusicSpec
from stemforge.routing import RoutingTable
from stemforge.settings import Settings
from stemforge.storage.local import LocalDiskStorage
from tests.integration.conftest import Service
from tests.support.callback_receiver import CallbackReceiver

pytestmark = pytest.mark.integration

SLOW = "tests.support.engines:SlowEngine"
PICKY = "tests.support.engines:PickyEngine"
SECRET = "whsec_" + base64.b64encode(b"a signing secret of 32 bytes!!!!").decode()


def _body(gen_id: str, callback_url: str | None = None, **parameters: object) -> dict:
    body: dict = {
        "generation_request_id": gen_id,
        "audio_file_id": "aud-r",
        "target_stems": ["drums", "bass"],
        "parameters": {"target_bpm": 100, "duration_seconds": 2.0, "random_seed": 1, **parameters},
    }
    if callback_url:
        body["callback_url"] = callback_url
    return body


def _slow_routing() -> RoutingTable:
    return RoutingTable.from_mapping({"mock": {"default": SLOW}, "ai": {"default": SLOW}})


def test_fifty_concurrent_duplicates_make_one_job_and_one_callback(
    service: Service, callback_receiver: CallbackReceiver
) -> None:
    body = _body("dup-50", callback_receiver.url)

    with concurrent.futures.ThreadPoolExecutor(max_workers=50) as pool:
        answers = list(
            pool.map(lambda _: httpx.post(f"{service.base_url}/generate", json=body, timeout=30), range(50))
        )

    assert {a.status_code for a in answers} <= {200, 202}
    assert all(a.json()["generation_request_id"] == "dup-50" for a in answers)
    callback_receiver.wait_for("dup-50")
    time.sleep(1.0)
    assert callback_receiver.count("dup-50") == 1
    repeat = service.generate(body)
    assert repeat.status_code == 200
    assert repeat.json()["status"] == "completed"


def test_the_same_id_with_another_body_is_a_409(
    service: Service, callback_receiver: CallbackReceiver
) -> None:
    assert service.generate(_body("conflict-1", callback_receiver.url)).status_code == 202

    response = service.generate(_body("conflict-1", callback_receiver.url, target_bpm=140))

    assert response.status_code == 409
    assert "different request body" in response.json()["message"]


def test_job_status_is_readable_and_ends_as_the_callback_payload(
    service: Service, callback_receiver: CallbackReceiver
) -> None:
    assert service.generate(_body("status-1", callback_receiver.url)).status_code == 202

    callback = callback_receiver.wait_for("status-1")
    time.sleep(0.3)  # the record notes the delivery right after the callback
    status = service.client.get(f"{service.base_url}/generate/status-1")

    assert status.status_code == 200
    view = status.json()
    assert {k: view[k] for k in callback} == callback
    assert view["stage"] == "completed" and view["attempt"] == 1
    assert view["progress"]["fraction"] == 1.0
    assert {entry["state"] for entry in view["progress"]["stems"].values()} == {"done"}
    assert view["callback"]["delivered"] is True
    assert service.client.get(f"{service.base_url}/generate/unknown-job").status_code == 404


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data",
        "http://[::10.0.0.1]/cb",  # IPv4-compatible
        "http://[::127.0.0.1]/cb",
        "http://[::169.254.169.254]/cb",
        "http://[::ffff:0:10.0.0.1]/cb",  # IPv4-translated
        "http://☃.localhost:9100/ok",  # not valid IDNA 2008: used to be a 500
    ],
)
def test_a_private_callback_url_is_refused_at_submission(service: Service, url: str) -> None:
    response = service.generate(_body("ssrf-1", url))

    assert response.status_code == 422
    assert response.json()["message"].startswith("callback_url: host ")
    assert "non-public" in response.json()["message"] or "does not resolve" in response.json()["message"]


def test_oversized_bodies_are_refused_with_413(service: Service) -> None:
    body = _body("big-1")
    body["parameters"]["prompt"] = "x" * (service.settings.max_request_bytes + 1)

    declared = service.generate(body)
    streamed = service.client.post(
        f"{service.base_url}/generate",
        content=iter([b'{"generation_request_id": "big-2", "pad": "', b"x" * 70_000, b'"}']),
        headers={"content-type": "application/json"},
    )

    assert declared.status_code == 413
    assert "MAX_REQUEST_BYTES" in declared.json()["message"]
    assert streamed.status_code == 413


@pytest.fixture(scope="module")
def auth_service(start_service: Callable[..., Service], tmp_path_factory: pytest.TempPathFactory) -> Service:
    return start_service(
        Settings(local_storage_dir=tmp_path_factory.mktemp("auth"), api_key="s3cret"), name="auth"
    )


KEY = {"x-api-key": "s3cret"}


def test_an_api_key_guards_generate_but_not_health(auth_service: Service) -> None:
    svc = auth_service
    url = f"{svc.base_url}/generate"

    assert httpx.post(url, json=_body("auth-0")).status_code == 401
    assert httpx.post(url, json=_body("auth-0"), headers={"authorization": "Bearer wrong"}).status_code == 401
    assert httpx.post(f"{url}?api_key=s3cret", json=_body("auth-0")).status_code == 401
    assert (
        httpx.post(url, json=_body("auth-1"), headers={"authorization": "Bearer s3cret"}).status_code == 202
    )
    assert httpx.post(url, json=_body("auth-2"), headers={"x-api-key": "s3cret"}).status_code == 202
    assert httpx.get(f"{url}/auth-1").status_code == 401
    assert httpx.get(f"{url}/auth-1", headers={"x-api-key": "s3cret"}).status_code == 200
    assert httpx.get(f"{svc.base_url}/health").status_code == 200


def test_without_the_key_a_bad_body_is_a_401_not_a_422(auth_service: Service) -> None:
    url = f"{auth_service.base_url}/generate"
    assert httpx.post(url, json={"target_stems": "nonsense"}).status_code == 401
    assert (
        httpx.post(url, content=b"{not json", headers={"content-type": "application/json"}).status_code == 401
    )
    assert httpx.post(url, json={"target_stems": "nonsense"}, headers=KEY).status_code == 422


def test_with_a_key_blobs_are_read_by_signed_url_or_with_the_key_only(
    auth_service: Service, callback_receiver: CallbackReceiver
) -> None:
    url = f"{auth_service.base_url}/generate"
    assert httpx.post(url, json=_body("auth-blobs", callback_receiver.url), headers=KEY).status_code == 202
    blob_url = callback_receiver.wait_for("auth-blobs")["generated_stems"][0]["blob_url"]
    plain, _, query = blob_url.partition("?")
    assert "sig=" in query and "se=" in query

    assert httpx.get(blob_url).status_code == 200
    assert httpx.get(plain).status_code == 401, "a guessed path is not enough"
    assert httpx.get(plain, headers=KEY).status_code == 200
    assert httpx.get(f"{plain}?{query.replace('sig=', 'sig=x')}").status_code == 401
    other_stem = plain.replace("/drums.wav", "/bass.wav")
    assert httpx.get(f"{other_stem}?{query}").status_code == 401, "a signature is for its own path"


@pytest.mark.parametrize(
    "path",
    [
        "_jobs/records/auth-1.json",
        "%2e/_jobs/records/auth-1.json",
        "aud-r/%2E%2E/_jobs/records/auth-1.json",
        ".%2f_jobs/records/auth-1.json",
        "x/y/%2e%2e/%2e%2e/_jobs/records/auth-1.json",
        "aud-r/auth-1/drums%00.wav",
    ],
)
def test_job_records_are_never_served_as_blobs_even_with_the_key(auth_service: Service, path: str) -> None:
    httpx.post(f"{auth_service.base_url}/generate", json=_body("auth-1"), headers=KEY)
    response = httpx.get(f"{auth_service.base_url}/blobs/audio-files/{path}", headers=KEY)
    assert response.status_code == 404, response.text
    assert "fingerprint" not in response.text


def test_a_nul_in_a_job_id_is_a_404_not_a_500(auth_service: Service) -> None:
    assert httpx.get(f"{auth_service.base_url}/generate/gen%00x", headers=KEY).status_code == 404


def test_signed_callbacks_verify_with_a_standard_webhooks_library(
    start_service: Callable[..., Service], callback_receiver: CallbackReceiver, tmp_path: Path
) -> None:
    svc = start_service(Settings(local_storage_dir=tmp_path, callback_signing_secret=SECRET), name="signed")

    assert svc.generate(_body("signed-1", callback_receiver.url)).status_code == 202

    callback_receiver.wait_for("signed-1")
    received = callback_receiver.received[0]
    assert Webhook(SECRET).verify(received.body, received.headers)["status"] == "completed"


def test_beyond_the_job_bound_the_answer_is_503_with_retry_after(
    start_service: Callable[..., Service], callback_receiver: CallbackReceiver, tmp_path: Path
) -> None:
    svc = start_service(
        Settings(local_storage_dir=tmp_path, max_active_jobs=1), name="overload", routing=_slow_routing()
    )

    first = svc.generate(_body("busy-1", callback_receiver.url, duration_seconds=4))
    second = svc.generate(_body("busy-2", callback_receiver.url, duration_seconds=4))

    assert first.status_code == 202
    assert second.status_code == 503
    assert "MAX_ACTIVE_JOBS" in second.json()["message"]
    assert int(second.headers["retry-after"]) > 0
    assert callback_receiver.wait_for("busy-1", timeout=60)["status"] == "completed"


@pytest.fixture(scope="module")
def slow_service(start_service: Callable[..., Service], tmp_path_factory: pytest.TempPathFactory) -> Service:
    """The graph with every stem routed to SlowEngine (one second per second of audio)."""
    return start_service(
        Settings(local_storage_dir=tmp_path_factory.mktemp("slow")), name="faults", routing=_slow_routing()
    )


def test_a_client_polling_a_long_job_sees_the_stages_in_order_and_progress_rise(
    slow_service: Service, callback_receiver: CallbackReceiver
) -> None:
    assert (
        slow_service.generate(_body("polled-1", callback_receiver.url, duration_seconds=6)).status_code == 202
    )
    seen: list[dict] = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        view = slow_service.client.get(f"{slow_service.base_url}/generate/polled-1").json()
        seen.append(view)
        if view["stage"] in ("completed", "failed"):
            break
        time.sleep(0.2)

    stages = [view["stage"] for view in seen]
    distinct = [stage for i, stage in enumerate(stages) if i == 0 or stages[i - 1] != stage]
    order = ["accepted", "generating", "storing", "calling back", "completed"]
    assert distinct == [stage for stage in order if stage in distinct], distinct
    assert "generating" in distinct and distinct[-1] == "completed"
    fractions = [view["progress"]["fraction"] for view in seen if view["stage"] == "generating"]
    assert fractions == sorted(fractions), "progress never goes back"
    assert len({f for f in fractions if 0 < f < 1}) >= 3, f"progress rose in steps: {fractions}"
    generating = next(
        view for view in seen if view["stage"] == "generating" and view["progress"]["fraction"] > 0.2
    )
    assert generating["progress"]["eta_seconds"] is not None
    assert {entry["engine"] for entry in generating["progress"]["stems"].values()} == {SLOW}
    assert callback_receiver.wait_for("polled-1")["status"] == "completed"


def test_an_engine_s_own_limit_is_a_422_before_anything_is_accepted(slow_service: Service) -> None:
    body = _body("too-long", duration_seconds=61)
    body["target_stems"] = ["drums", "bass", "piano", "synth"]

    response = slow_service.generate(body)

    assert response.status_code == 422
    fields = [d["field"] for d in response.json()["detail"]]
    assert fields == ["target_stems", "parameters.duration_seconds"]
    assert (
        "at most 3 stems" in response.json()["message"] and "at most 60 seconds" in response.json()["message"]
    )
    assert slow_service.client.get(f"{slow_service.base_url}/generate/too-long").status_code == 404


def test_a_killed_engine_replica_is_retried_on_a_healthy_one(
    slow_service: Service, callback_receiver: CallbackReceiver
) -> None:
    svc = slow_service

    assert svc.generate(_body("killed-1", callback_receiver.url, duration_seconds=6)).status_code == 202
    time.sleep(2)  # the engine is now busy with the job
    actors = [a for a in ray.util.list_named_actors(all_namespaces=True) if "faults#SlowEngine" in a["name"]]
    assert actors, "the engine replica was not found"
    ray.kill(ray.get_actor(actors[0]["name"], namespace=actors[0]["namespace"]), no_restart=True)

    callback = callback_receiver.wait_for("killed-1", timeout=120)
    assert callback["status"] == "completed"
    assert [s["calls"] for s in callback["generated_stems"]] == [1, 1]  # the new replica's first call


def test_a_request_that_fails_in_a_merged_batch_fails_alone(
    start_service: Callable[..., Service], callback_receiver: CallbackReceiver, tmp_path: Path
) -> None:
    routing = RoutingTable.from_mapping({"mock": {"default": PICKY}, "ai": {"default": PICKY}})
    merging = {"max_batch_size": 4, "batch_wait_timeout_s": 2.0}
    svc = start_service(
        Settings(local_storage_dir=tmp_path), name="picky", routing=routing, engine_configs={PICKY: merging}
    )
    bodies = [
        _body("healthy", callback_receiver.url),
        _body("poisoned", callback_receiver.url, prompt="poison"),
    ]
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        assert [r.status_code for r in pool.map(svc.generate, bodies)] == [202, 202]

    healthy = callback_receiver.wait_for("healthy", timeout=60)
    poisoned = callback_receiver.wait_for("poisoned", timeout=60)
    assert healthy["status"] == "completed", healthy
    assert healthy["generated_stems"][0]["batches"][0] == 2, "the two requests were first merged"
    assert poisoned["status"] == "failed"
    assert "poison" in poisoned["error"]


def test_unfinished_jobs_are_resumed_or_failed_after_a_restart(
    start_service: Callable[..., Service], callback_receiver: CallbackReceiver, tmp_path: Path
) -> None:
    # Two jobs left "processing" by a service that died: one to resume, one out of attempts.
    store = JobStore(LocalDiskStorage(tmp_path, "audio-files", "http://unused"))
    for gen_id, attempt in (("orphan-resume", 1), ("orphan-exhausted", 2)):
        ticket = JobTicket(
            generation_request_id=gen_id,
            audio_file_id="aud-r",
            callback_url=callback_receiver.url,
            accepted_at=time.time() - 600,
            stems=("drums",),
            routes={"procedural": ("drums",)},
            spec=MusicSpec(bpm=100, duration_seconds=2.0, seed=9),
            parameters={"random_seed": 9},
            attempt=attempt,
        )
        record = JobRecord.for_ticket(ticket, fingerprint("{}"))
        record.attempt = attempt
        store.create(record)
        store.beat(ticket, at=time.time() - 600)

    start_service(
        Settings(
            local_storage_dir=tmp_path,
            job_lease_seconds=4,
            job_heartbeat_seconds=1,
            janitor_interval_seconds=1,
        ),
        name="restarted",
    )

    resumed = callback_receiver.wait_for("orphan-resume", timeout=60)
    exhausted = callback_receiver.wait_for("orphan-exhausted", timeout=60)
    assert resumed["status"] == "completed"
    assert exhausted["status"] == "failed"
    assert "abandoned" in exhausted["error"]
    record = store.get("orphan-resume")
    assert record is not None and record.attempt == 2
    time.sleep(2)
    assert store.open_markers() == []


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"generation_request_id": "gen-x\n"}, "generation_request_id"),  # used to become a folder name
        ({"parameters": {"duration_seconds": True}}, "parameters.duration_seconds"),
        ({"parameters": {"target_bpm": "120"}}, "parameters.target_bpm"),
        ({"parameters": {"duration_seconds": 1e-9}}, "parameters.duration_seconds"),
    ],
)
def test_loose_input_is_a_422_naming_the_field(service: Service, changes: dict, field: str) -> None:
    body = {**_body("strict-1"), **changes}
    response = service.generate(body)
    assert response.status_code == 422
    assert [d["field"] for d in response.json()["detail"]] == [field]
    assert response.json()["message"].startswith(f"{field}: ")


def test_a_json_syntax_error_names_the_body_and_where(service: Service) -> None:
    response = service.client.post(
        f"{service.base_url}/generate",
        content=b'{"generation_request_id": ',
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 422
    assert [d["field"] for d in response.json()["detail"]] == ["body"]
    assert "at character" in response.json()["message"]


@pytest.mark.parametrize(
    ("content", "headers"),
    [
        (b'{"generation_request_id": "\xff\xfe"}', {"content-type": "application/json"}),
        (b"\x1f\x8b\x08\x00garbage", {"content-type": "application/json", "content-encoding": "gzip"}),
    ],
)
def test_a_body_that_cannot_be_parsed_answers_with_a_message(
    service: Service, content: bytes, headers: dict[str, str]
) -> None:
    response = service.client.post(f"{service.base_url}/generate", content=content, headers=headers)
    assert 400 <= response.status_code < 500
    assert response.json()["message"], response.text
