import pytest
from pydantic import ValidationError

from deployments.settings import Settings


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
        ("callback_max_attempts", 0),
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
