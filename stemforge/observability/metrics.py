"""Application metrics through Ray's metrics API: exported on every node's Prometheus endpoint
(``--metrics-export-port``) with Ray's ``ray_`` prefix, e.g. ``ray_stemforge_jobs_finished_total``.
Built inside a replica (Ray must be initialised); see docs/observability.md for each metric."""

from collections.abc import Sequence
from typing import Any

from stemforge.jobs.ticket import JobTicket
from stemforge.music.spec import MusicSpec
from stemforge.observability.events import engines_of, failure_reason

# Seconds: from a 2-stem procedural render (~0.1 s) to a long CPU diffusion stem (~1 h).
SECONDS_BUCKETS = [0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600]
STORAGE_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30]
STAGES = ("accepted", "generating", "storing", "calling back")


class RayMetrics:
    def __init__(self) -> None:
        from ray.util.metrics import Counter, Gauge, Histogram

        self._accepted = Counter(
            "stemforge_jobs_accepted_total",
            "Jobs accepted, by the engines of their stems.",
            tag_keys=("engine",),
        )
        self._finished = Counter(
            "stemforge_jobs_finished_total",
            "Jobs with a known outcome, by status (completed, failed), engines and failure reason.",
            tag_keys=("status", "engine", "reason"),
        )
        self._job_seconds = Histogram(
            "stemforge_job_seconds",
            "Seconds from acceptance to a known outcome, by status.",
            boundaries=SECONDS_BUCKETS,
            tag_keys=("status",),
        )
        self._generation = Histogram(
            "stemforge_generation_seconds",
            "Seconds an engine took for its stems of one job (queueing in the engine included).",
            boundaries=SECONDS_BUCKETS,
            tag_keys=("engine",),
        )
        self._audio = Counter(
            "stemforge_audio_seconds_total",
            "Seconds of stem audio generated, by engine.",
            tag_keys=("engine",),
        )
        self._stems = Counter("stemforge_stems_total", "Stems generated, by engine.", tag_keys=("engine",))
        self._jobs = Gauge(
            "stemforge_jobs_in_stage",
            "This ingress replica's jobs per stage: accepted (queued), generating, storing, calling back.",
            tag_keys=("stage",),
        )
        self._callbacks = Counter(
            "stemforge_callback_attempts_total",
            "Callback attempts by outcome: delivered, retry (scheduled again), gave_up.",
            tag_keys=("outcome",),
        )

    def accepted(self, ticket: JobTicket) -> None:
        self._accepted.inc(1, tags={"engine": engines_of(ticket)})

    def stage(self, ticket: JobTicket, stage: str, seconds_in_previous: float) -> None:
        pass  # the per-stage gauge is set from the lifecycle's counts

    def generated(self, ticket: JobTicket, engine: str, stems: Sequence[str], seconds: float) -> None:
        self._generation.observe(seconds, tags={"engine": engine})
        self._stems.inc(len(stems), tags={"engine": engine})
        self._audio.inc(audio_seconds(ticket.spec, stems), tags={"engine": engine})

    def finished(self, ticket: JobTicket, status: str, reason: str | None, seconds: float) -> None:
        tags = {"status": status, "engine": engines_of(ticket), "reason": failure_reason(reason) or "none"}
        self._finished.inc(1, tags=tags)
        self._job_seconds.observe(seconds, tags={"status": status})

    def callback_attempt(self, outcome: str) -> None:
        self._callbacks.inc(1, tags={"outcome": outcome})

    def jobs_in_stages(self, counts: dict[str, int]) -> None:
        for stage in STAGES:
            self._jobs.set(counts.get(stage, 0), tags={"stage": stage})


def audio_seconds(spec: MusicSpec, stems: Sequence[str]) -> float:
    return spec.duration_seconds * len(stems)


class StorageMetrics:
    """Latency of storage calls, by operation and backend."""

    def __init__(self) -> None:
        from ray.util.metrics import Histogram

        self._seconds = Histogram(
            "stemforge_storage_seconds",
            "Seconds per storage call, by operation (put, get, create, delete, list, check) and backend.",
            boundaries=STORAGE_BUCKETS,
            tag_keys=("operation", "backend"),
        )

    def observe(self, operation: str, backend: str, seconds: float) -> None:
        self._seconds.observe(seconds, tags={"operation": operation, "backend": backend})


def maybe(factory: Any) -> Any:
    """``factory()`` where Ray is initialised (a replica), else None (unit tests, scripts)."""
    try:
        import ray

        if not ray.is_initialized():
            return None
    except ModuleNotFoundError:  # pragma: no cover - ray is a core dependency
        return None
    return factory()
