import pytest
from pydantic import ValidationError

from stemforge.settings import Settings


def test_the_seed_variables_are_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOCK_GENERATION", "false")
    monkeypatch.setenv("USE_GPU", "true")
    monkeypatch.setenv("WORKERS", "3")
    monkeypatch.setenv("BLOB_CONTAINER_NAME", "stems-01")

    settings = Settings()

    assert (settings.mock_generation, settings.use_gpu, settings.workers) == (False, True, 3)
    assert settings.blob_container_name == "stems-01"
    assert settings.mode == "ai"


def test_defaults_are_the_embedded_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("MOCK_GENERATION", "BLOB_CONTAINER_NAME", "AZURE_STORAGE_CONNECTION_STRING"):
        monkeypatch.delenv(name, raising=False)

    settings = Settings(_env_file=None)  # type: ignore[call-arg]

    assert settings.mode == "mock"
    assert settings.blob_container_name == "audio-files"
    assert settings.azure_storage_connection_string is None


@pytest.mark.parametrize("name", ["ab", "Audio", "audio_files", "-audio", "audio--files", "a" * 64])
def test_a_bad_container_name_fails_at_start_up(name: str) -> None:
    with pytest.raises(ValidationError, match="BLOB_CONTAINER_NAME"):
        Settings(blob_container_name=name)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("workers", 0),
        ("max_duration_seconds", 0),
        ("callback_retry_schedule", []),
        ("public_base_url", "localhost:8080"),
    ],
)
def test_nonsense_values_fail_at_start_up(field: str, value: object) -> None:
    with pytest.raises(ValidationError):
        Settings(**{field: value})


def test_both_azure_credential_styles_at_once_is_refused() -> None:
    with pytest.raises(ValidationError, match="not both"):
        Settings(
            azure_storage_connection_string="UseDevelopmentStorage=true",
            azure_storage_account_url="https://a",
        )


def test_lists_are_read_as_comma_separated_values(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CALLBACK_RETRY_SCHEDULE", "0, 5,300")
    monkeypatch.setenv("CALLBACK_ALLOWED_HOSTS", "LocalHost,[::1]")

    settings = Settings()

    assert settings.callback_retry_schedule == [0, 5, 300]
    assert settings.callback_allowed_hosts == ["localhost", "::1"]


@pytest.mark.parametrize("schedule", ["", "0,-5"])
def test_a_retry_schedule_must_be_non_empty_and_non_negative(schedule: str) -> None:
    with pytest.raises(ValidationError, match="CALLBACK_RETRY_SCHEDULE"):
        Settings(callback_retry_schedule=schedule)


def test_a_heartbeat_slower_than_half_the_lease_is_refused() -> None:
    with pytest.raises(ValidationError, match="JOB_HEARTBEAT_SECONDS"):
        Settings(job_heartbeat_seconds=40, job_lease_seconds=60)
