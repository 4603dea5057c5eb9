"""A job's events from successive looks at its status: what changed, once, in order."""

from stemforge.streaming.events import JobEvents


def _status(stage: str, fraction: float, status: str = "processing", stems: list[dict] | None = None) -> dict:
    return {
        "generation_request_id": "g",
        "status": status,
        "stage": stage,
        "attempt": 1,
        "progress": {"fraction": fraction},
        "generated_stems": stems or [],
        "parameters": {},
    }


def test_each_change_is_one_event_and_the_payload_comes_last() -> None:
    events = JobEvents()
    stems = [
        {"stem_type": "bass", "blob_url": "u/bass.wav"},
        {"stem_type": "drums", "blob_url": "u/drums.wav"},
    ]
    looks = [
        _status("accepted", 0.0),
        _status("generating", 0.0),
        _status("generating", 0.0),  # nothing new
        _status("generating", 0.5),
        _status("calling back", 1.0, "completed", stems),
        _status("completed", 1.0, "completed", stems),  # after the end: nothing
    ]

    seen = [event for look in looks for event in events.update(look)]

    assert [name for name, _ in seen] == [
        "stage",
        "progress",
        "stage",
        "progress",
        "stage",
        "progress",
        "stem",
        "stem",
        "callback",
    ]
    assert [data["stage"] for name, data in seen if name == "stage"] == [
        "accepted",
        "generating",
        "calling back",
    ]
    assert [data["stem_type"] for name, data in seen if name == "stem"] == ["bass", "drums"]
    payload = seen[-1][1]
    assert payload["status"] == "completed" and payload["generated_stems"] == stems
    assert "stage" not in payload and "progress" not in payload
    assert events.done


def test_a_failed_job_ends_with_its_payload_and_no_stems() -> None:
    events = JobEvents()
    seen = events.update(_status("failed", 0.3, "failed"))

    assert [name for name, _ in seen] == ["stage", "progress", "callback"]
    assert seen[-1][1]["status"] == "failed"
