"""One settings object for the whole service, read from the seed's environment variables.

Every replica builds its own ``Settings()`` from the environment it was started with, so a bad
value fails the replica at start-up rather than the first request.
"""

import re
from pathlib import Path
from typing import Annotated

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parent.parent

# Azure's rule: 3-63 characters, lowercase letters, digits and single hyphens, starting and
# ending with a letter or digit.
_CONTAINER_NAME = re.compile(r"^(?=.{3,63}$)[a-z0-9]+(-[a-z0-9]+)*$")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    # --- the seed's variables ---------------------------------------------------------------
    mock_generation: bool = Field(
        default=True, description="true: every stem comes from the procedural engine (no models)."
    )
    use_gpu: bool = Field(default=False, description="Let model engines use a GPU when one is assigned.")
    workers: int = Field(default=1, ge=1, le=64, description="Ingress replicas (HTTP workers).")
    blob_container_name: str = Field(default="audio-files", description="Blob container / top folder.")
    azure_storage_connection_string: str | None = None
    azure_storage_account_url: str | None = None

    # --- storage: bounds so an outage ends a job instead of hanging it ----------------------
    storage_timeout_seconds: float = Field(
        default=20.0, gt=0, le=600, description="Connect and read timeout of one storage call."
    )
    storage_max_retries: int = Field(default=2, ge=0, le=10)
    storage_retry_backoff_seconds: float = Field(default=0.5, ge=0, le=60)
    azure_sas_expiry_seconds: int = Field(
        default=0,
        ge=0,
        le=7 * 24 * 3600,
        description="> 0: callback blob URLs carry a read-only SAS valid this long.",
    )

    # --- our own ------------------------------------------------------------------------------
    local_blob_url_expiry_seconds: int = Field(
        default=7 * 24 * 3600,
        ge=60,
        le=365 * 24 * 3600,
        description="With API_KEY and local storage: how long a callback's signed blob URL is valid.",
    )
    local_storage_dir: Path = Field(
        default=REPO_ROOT / "data" / "blobs",
        description="Root folder of the local-disk storage backend.",
    )
    public_base_url: str = Field(
        default="http://localhost:8080",
        description="Base URL clients use to reach this service; local-disk blob URLs start with it.",
    )
    max_duration_seconds: float = Field(default=300.0, gt=0, le=3600)
    stem_routing_file: Path = Field(default=REPO_ROOT / "configs" / "routing.yaml")
    # --- callbacks ----------------------------------------------------------------------------
    callback_timeout_seconds: float = Field(default=10.0, gt=0, le=300)
    callback_retry_schedule: Annotated[list[float], NoDecode] = Field(
        # Standard Webhooks' schedule: at once, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h.
        default=[0, 5, 300, 1800, 7200, 18000, 36000, 36000],
        description="Delay before each callback attempt, in seconds (comma-separated).",
    )
    callback_inline_retry_max_seconds: float = Field(
        default=10.0,
        ge=0,
        description="Retries due sooner than this wait in place; later ones are scheduled.",
    )
    callback_signing_secret: SecretStr | None = Field(
        default=None,
        description="Standard Webhooks secret(s), whsec_<base64>; several (space-separated) during rotation.",
    )
    callback_allowed_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Callback hosts exempt from the public-address rule (comma-separated), e.g. localhost.",
    )

    # --- access and limits -----------------------------------------------------------------------
    api_key: SecretStr | None = Field(default=None, description="When set, /generate needs it.")
    max_request_bytes: int = Field(default=64 * 1024, ge=1024, le=16 * 1024 * 1024)
    max_active_jobs: int = Field(default=64, ge=1, le=100_000, description="Per ingress replica.")

    # --- reference audio and MIDI (fetched and analysed before the 202) ------------------------
    reference_max_bytes: int = Field(
        default=50 * 1024 * 1024, ge=1024, le=1024**3, description="Largest reference file fetched."
    )
    # A 300 s track takes about 9 s to analyse on two cores: the time limit leaves room for it.
    reference_max_seconds: float = Field(
        default=300.0, gt=0, le=3600, description="Longest reference audio or MIDI accepted."
    )
    reference_timeout_seconds: float = Field(
        default=30.0, gt=0, le=600, description="Fetch, decode and analysis of a reference, together."
    )
    reference_allow_http: bool = Field(
        default=False,
        description="Accept plain-http reference URLs (https only when false; hosts listed in "
        "CALLBACK_ALLOWED_HOSTS may always use http).",
    )

    # --- durable jobs ----------------------------------------------------------------------------
    job_heartbeat_seconds: float = Field(default=10.0, gt=0)
    job_lease_seconds: float = Field(
        default=60.0, gt=0, description="A running job silent this long is taken over (resumed or failed)."
    )
    janitor_interval_seconds: float = Field(default=15.0, gt=0)
    max_job_attempts: int = Field(default=2, ge=1, le=10, description="Runs of one job (first + resumes).")
    engine_max_attempts: int = Field(
        default=2, ge=1, le=10, description="Calls per engine when its replica dies mid-job."
    )
    engine_stall_seconds: float = Field(
        default=1800.0,
        gt=0,
        le=86400,
        description="An engine silent this long (no progress, no result) is taken for lost.",
    )
    idempotency_window_seconds: float = Field(
        default=7 * 24 * 3600, gt=0, description="How long a generation_request_id stays bound to its job."
    )

    musicgen_model: str = Field(
        default="facebook/musicgen-small",
        description="MusicGen checkpoint: a Hugging Face model id (resolved from the cache) or a folder.",
    )
    stable_audio_model: str = Field(
        default="stabilityai/stable-audio-open-1.0",
        description="Stable Audio Open checkpoint (a diffusers pipeline): a Hugging Face model id "
        "(resolved from the cache) or a folder.",
    )
    audioldm2_model: str = Field(
        default="cvssp/audioldm2-music",
        description="AudioLDM 2 checkpoint (a diffusers pipeline): a model id (from the cache) or a folder.",
    )
    riffusion_model: str = Field(
        default="riffusion/riffusion-model-v1",
        description="Riffusion checkpoint (a Stable Diffusion pipeline): a model id (from the cache) or "
        "a folder.",
    )
    # Quality analysis (callback "quality", "warnings", "mix_url"): bounds of the warnings and the
    # mix's gain staging (docs/quality.md).
    quality_analysis: bool = Field(
        default=True, description="Measure every stem and the mix; false: no quality, warnings or mix."
    )
    quality_tempo_tolerance_percent: float = Field(default=2.0, gt=0, le=50)
    quality_min_tempo_confidence: float = Field(default=0.15, ge=0, le=1)
    quality_max_grid_offset_ms: float = Field(default=75.0, gt=0, le=1000)
    quality_min_grid_coherence: float = Field(default=0.3, ge=0, le=1)
    quality_min_chord_adherence: float = Field(default=0.25, ge=0, le=1)
    quality_min_loudness_lufs: float = Field(default=-30.0, ge=-70, le=0)
    quality_max_loudness_lufs: float = Field(default=-8.0, ge=-70, le=0)
    quality_max_true_peak_dbtp: float = Field(default=-0.9, ge=-20, le=6)
    quality_max_clipped_samples: int = Field(default=0, ge=0)
    quality_max_silence_share: float = Field(default=0.5, ge=0, le=1)
    quality_max_dc_offset: float = Field(default=0.01, ge=0, le=1)
    quality_max_sub_20hz_share: float = Field(default=0.05, ge=0, le=1)
    quality_min_clap_similarity: float | None = Field(default=None, ge=-1, le=1)
    mix_stem_lufs: float = Field(
        default=-20.0, ge=-60, le=0, description="Loudness of a mixed stem that has no engine-provided gain."
    )
    mix_true_peak_dbtp: float = Field(default=-1.0, ge=-20, le=0, description="True-peak ceiling of the mix.")
    clap_model: str | None = Field(
        default=None,
        description="CLAP checkpoint (a folder or a cached model id, loaded offline) for text-audio "
        "similarity; unset: not measured.",
    )
    wav_subtype: str = Field(default="PCM_16", description="soundfile subtype of stored WAVs.")

    @field_validator("stem_routing_file")
    @classmethod
    def _routing_file_from_repo_root(cls, value: Path) -> Path:
        # Replicas do not run in the directory `serve run` was started from: a relative path
        # (STEM_ROUTING_FILE=configs/routing.musicgen.yaml) means the repository's.
        return value if value.is_absolute() else REPO_ROOT / value

    @field_validator("blob_container_name")
    @classmethod
    def _container_name_is_valid(cls, value: str) -> str:
        if not _CONTAINER_NAME.match(value):
            raise ValueError(
                "BLOB_CONTAINER_NAME must be 3-63 characters of lowercase letters, digits and single "
                f"hyphens, starting and ending with a letter or digit; got {value!r}"
            )
        return value

    @field_validator("public_base_url")
    @classmethod
    def _base_url_is_http(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"PUBLIC_BASE_URL must start with http:// or https://; got {value!r}")
        return value.rstrip("/")

    @field_validator("callback_retry_schedule", "callback_allowed_hosts", mode="before")
    @classmethod
    def _split_commas(cls, value: object) -> object:
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

    @field_validator("callback_retry_schedule")
    @classmethod
    def _schedule_is_sane(cls, value: list[float]) -> list[float]:
        if not value or any(delay < 0 for delay in value):
            raise ValueError(f"CALLBACK_RETRY_SCHEDULE needs at least one delay, none negative; got {value}")
        return value

    @field_validator("callback_allowed_hosts")
    @classmethod
    def _hosts_lower(cls, value: list[str]) -> list[str]:
        return [host.lower().strip("[]") for host in value]

    @field_validator("wav_subtype")
    @classmethod
    def _subtype_is_known(cls, value: str) -> str:
        allowed = {"PCM_16", "PCM_24", "FLOAT"}
        if value not in allowed:
            raise ValueError(f"WAV_SUBTYPE must be one of {sorted(allowed)}; got {value!r}")
        return value

    @model_validator(mode="after")
    def _one_azure_credential_style(self) -> "Settings":
        if self.azure_storage_connection_string and self.azure_storage_account_url:
            raise ValueError("set AZURE_STORAGE_CONNECTION_STRING or AZURE_STORAGE_ACCOUNT_URL, not both")
        return self

    @model_validator(mode="after")
    def _heartbeat_within_lease(self) -> "Settings":
        if self.job_heartbeat_seconds * 2 > self.job_lease_seconds:
            raise ValueError(
                "JOB_HEARTBEAT_SECONDS must be at most half of JOB_LEASE_SECONDS, or live jobs look abandoned"
            )
        return self

    @property
    def mode(self) -> str:
        """The seed's name for what generates the stems: ``mock`` (procedural) or ``ai`` (models)."""
        return "mock" if self.mock_generation else "ai"
