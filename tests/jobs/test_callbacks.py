"""Callback delivery against a real HTTP server on loopback."""

import asyncio
import socket

import pytest

from deployments.errors import CallbackDeliveryFailed
from deployments.jobs.callbacks import CallbackSender, raise_if_undelivered
from tests.support.callback_receiver import CallbackReceiver, start_callback_receiver


@pytest.fixture()
def receiver():  # type: ignore[no-untyped-def]
    yield from start_callback_receiver()


def _sender(attempts: int = 3) -> CallbackSender:
    return CallbackSender(timeout_seconds=2, max_attempts=attempts, backoff_seconds=0.01)


def test_a_payload_is_posted_as_json(receiver: CallbackReceiver) -> None:
    report = asyncio.run(_sender().send(receiver.url, b'{"generation_request_id": "g1"}'))

    assert report.delivered
    assert receiver.received[0].headers["content-type"] == "application/json"
    assert receiver.wait_for("g1") == {"generation_request_id": "g1"}


@pytest.mark.parametrize(
    ("answers", "delivered", "attempts"),
    [
        ([500, 503], True, 3),  # transient errors are retried
        ([429], True, 2),  # throttling too
        ([500, 500, 500], False, 3),  # bounded by max_attempts
        ([404], False, 1),  # a client error is final
        ([302], False, 1),  # redirects are not followed
    ],
)
def test_retries_follow_the_status_code(
    receiver: CallbackReceiver, answers: list[int], delivered: bool, attempts: int
) -> None:
    receiver.responses.extend(answers)

    report = asyncio.run(_sender().send(receiver.url, b'{"generation_request_id": "g2"}'))

    assert report.delivered is delivered
    assert len(report.attempts) == attempts
    assert receiver.count("g2") == attempts


def test_an_unreachable_endpoint_ends_with_a_clear_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound but not listening: connections are refused

        report = asyncio.run(_sender(attempts=2).send(f"http://127.0.0.1:{port}/cb", b"{}"))

    assert not report.delivered
    assert [a.status_code for a in report.attempts] == [None, None]
    with pytest.raises(CallbackDeliveryFailed, match="after 2 attempt"):
        raise_if_undelivered(report)
