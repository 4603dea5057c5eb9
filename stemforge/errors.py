"""Our exception tree. Each error knows its HTTP status; ``api/errors.py`` maps them in one place."""

from typing import Any


class StemforgeError(Exception):
    """Base of every error this service raises on purpose."""

    status_code: int = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ConfigurationError(StemforgeError):
    """Settings or deployment configuration that cannot work; raised at start-up."""

    status_code = 500


class InvalidRequest(StemforgeError):
    """Input that passed the schema but breaks a rule of this deployment (a limit, a routing)."""

    status_code = 422

    def __init__(self, field: str, message: str, *more: tuple[str, str]) -> None:
        problems = [(field, message), *more]
        super().__init__("; ".join(f"{name}: {text}" for name, text in problems))
        self.field = field
        self.problems = problems  # every (field, message) this request breaks

    def __reduce__(self) -> tuple[Any, ...]:
        # Raised in one replica, answered by another: it crosses Ray pickled, and the default
        # (the class called with ``args``, the joined message) does not fit this signature.
        return (_rebuild_invalid_request, (type(self), self.problems))


def _rebuild_invalid_request(cls: type[InvalidRequest], problems: list[tuple[str, str]]) -> InvalidRequest:
    error = cls.__new__(cls)
    (field, message), *more = problems
    InvalidRequest.__init__(error, field, message, *more)
    return error


class JobNotFound(StemforgeError):
    status_code = 404


class StorageError(StemforgeError):
    """The storage backend refused or did not answer in time."""

    status_code = 503


class BlobNotFound(StorageError):
    status_code = 404


class Unauthorized(StemforgeError):
    status_code = 401


class JobConflict(StemforgeError):
    """The same generation_request_id was sent with a different body."""

    status_code = 409


class Overloaded(StemforgeError):
    """Too many jobs in progress; the client should retry later (503 with Retry-After)."""

    status_code = 503


class EngineLost(StemforgeError):
    """An engine replica died or became unreachable while rendering: worth another replica."""

    status_code = 503


class ResultsLost(EngineLost):
    """An engine finished, but its results were lost before the uploader read them (the replica
    that held them died)."""


class GenerationFailed(StemforgeError):
    """An engine could not render a request (non-finite output, a plan it cannot make): the job
    fails with this reason; another replica would fail the same way."""

    status_code = 500


class JobCancelled(StemforgeError):
    """The client cancelled the job (DELETE /generate/{id}): engines stop at their next chunk."""

    status_code = 409


class StreamUnavailable(StemforgeError):
    """Streaming (or cancelling) needs the StreamRelay deployment, which this graph lacks."""

    status_code = 503
