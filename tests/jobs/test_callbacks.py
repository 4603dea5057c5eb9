"""Callback attempts against a real HTTP server on loopback; the schedule on a fake clock."""

import asyncio
import base64
import random
import socket

import pytest
from standardwebhooks import Webhook

from stemforge.jobs.callbacks import (
    AttemptOutcome,
    CallbackClient,
    CallbackDelivery,
    next_delay,
    parse_retry_after,
)
from stemforge.jobs.records import CallbackState
from stemforge.jobs.signing import CallbackSigner
from tests.support.callback_receiver import CallbackReceiver, start_callback_receiver

SCHEDULE = [0, 5, 300, 1800, 7200]
SECRET_OLD = "whsec_" + base64.b64encode(b"old secret of 24 bytes!!").decode()
SECRET_NEW = "whsec_" + base64.b64encode(b"new secret of 24 bytes!!").decode()


@pytest.fixture()
def receiver():  # type: ignore[no-untyped-def]
    yield from start_callback_receiver()


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000_000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def _client(signer: CallbackSigner | None = None, timeout: float = 2) -> CallbackClient:
    return CallbackClient(timeout_seconds=timeout, allowed_hosts=["127.0.0.1"], signer=signer)


def _deliver(
    receiver: CallbackReceiver, clock: FakeClock, schedule: list[float] = SCHEDULE, inline: float = 10
) -> CallbackState:
    delivery = CallbackDelivery(_client(timeout=1), schedule, inline, clock=clock, sleep=clock.sleep)
    state = delivery.new_state(receiver.url, "msg_1")

    async def persist(_: CallbackState) -> None:
        pass

    return asyncio.run(delivery.run(state, b'{"generation_request_id": "g"}', persist))


def test_a_delivered_callback_is_one_attempt(receiver: CallbackReceiver) -> None:
    state = _deliver(receiver, FakeClock())

    assert state.delivered and not state.gave_up
    assert [a.status_code for a in state.attempts] == [200]
    assert receiver.received[0].headers["content-type"] == "application/json"


def test_5xx_is_retried_after_the_schedule_s_next_delay(receiver: CallbackReceiver) -> None:
    receiver.responses.extend([500])
    clock = FakeClock()

    state = _deliver(receiver, clock)

    assert state.delivered
    assert [a.status_code for a in state.attempts] == [500, 200]
    assert 4.5 <= clock.slept[0] <= 5.5  # 5 s +-10% jitter


def test_a_retry_due_later_than_the_inline_window_is_scheduled_not_awaited(
    receiver: CallbackReceiver,
) -> None:
    receiver.responses.extend([500, 503])
    clock = FakeClock()

    state = _deliver(receiver, clock)

    assert not state.finished
    assert len(state.attempts) == 2
    assert state.next_attempt_at is not None
    assert 270 <= state.next_attempt_at - clock.now <= 330  # the third delay: 5 min


def test_retry_after_is_honoured_when_longer_than_the_schedule(receiver: CallbackReceiver) -> None:
    receiver.responses.append((503, {"Retry-After": "120"}))
    clock = FakeClock()

    state = _deliver(receiver, clock, inline=0)

    assert state.next_attempt_at == pytest.approx(clock.now + 120)


@pytest.mark.parametrize("answer", [410, 404, 302])
def test_gone_client_errors_and_redirects_stop_at_once(receiver: CallbackReceiver, answer: int) -> None:
    receiver.responses.append((answer, {"Location": "http://127.0.0.1:1/elsewhere"}))

    state = _deliver(receiver, FakeClock())

    assert state.gave_up and not state.delivered
    assert len(state.attempts) == 1
    assert len(receiver.received) == 1  # the redirect was not followed


def test_the_schedule_bounds_the_attempts(receiver: CallbackReceiver) -> None:
    receiver.responses.extend([500, 502, 503, 504])

    state = _deliver(receiver, FakeClock(), schedule=[0, 1, 1])

    assert state.gave_up
    assert [a.status_code for a in state.attempts] == [500, 502, 503]


def test_a_timeout_is_recorded_and_retried(receiver: CallbackReceiver) -> None:
    receiver.responses.append(("stall", 2.0))

    state = _deliver(receiver, FakeClock())

    assert state.delivered
    assert state.attempts[0].status_code is None
    assert "Timeout" in (state.attempts[0].error or "")


def test_a_refused_connection_is_retried_then_given_up() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, not listening: connections are refused
        clock = FakeClock()
        delivery = CallbackDelivery(_client(), [0, 1], 10, clock=clock, sleep=clock.sleep)
        state = delivery.new_state(f"http://127.0.0.1:{port}/cb", "msg_2")

        async def persist(_: CallbackState) -> None:
            pass

        asyncio.run(delivery.run(state, b"{}", persist))

    assert state.gave_up
    assert [a.status_code for a in state.attempts] == [None, None]


def test_a_name_resolving_to_a_private_address_is_refused_at_connection_time(
    receiver: CallbackReceiver,
) -> None:
    url = receiver.url.replace("127.0.0.1", "localhost")  # only 127.0.0.1 is allowed

    outcome = asyncio.run(_client().attempt(url, "msg_3", b"{}"))

    assert outcome.status_code is None
    assert "non-public" in (outcome.error or "")
    assert receiver.received == []


@pytest.mark.parametrize("secret_the_receiver_knows", [SECRET_OLD, SECRET_NEW])
def test_signed_callbacks_verify_with_either_secret_during_rotation(
    receiver: CallbackReceiver, secret_the_receiver_knows: str
) -> None:
    signer = CallbackSigner(f"{SECRET_OLD} {SECRET_NEW}")
    body = b'{"generation_request_id": "g-signed", "status": "completed"}'

    asyncio.run(_client(signer).attempt(receiver.url, "msg_signed", body))

    received = receiver.received[0]
    assert received.headers["webhook-id"] == "msg_signed"
    payload = Webhook(secret_the_receiver_knows).verify(received.body, received.headers)
    assert payload["generation_request_id"] == "g-signed"


def test_a_tampered_body_fails_verification(receiver: CallbackReceiver) -> None:
    asyncio.run(
        _client(CallbackSigner(SECRET_NEW)).attempt(receiver.url, "msg_t", b'{"status": "completed"}')
    )

    received = receiver.received[0]
    with pytest.raises(Exception, match=r"(?i)signature"):
        Webhook(SECRET_NEW).verify(b'{"status": "failed"}', received.headers)


def test_the_webhook_id_stays_the_same_across_retries(receiver: CallbackReceiver) -> None:
    receiver.responses.append(500)
    delivery = CallbackDelivery(_client(CallbackSigner(SECRET_NEW)), [0, 0], 10)
    state = delivery.new_state(receiver.url, "msg_same")

    async def persist(_: CallbackState) -> None:
        pass

    asyncio.run(delivery.run(state, b"{}", persist))

    assert [r.headers["webhook-id"] for r in receiver.received] == ["msg_same", "msg_same"]


@pytest.mark.parametrize(
    ("attempts", "retry_after", "low", "high"),
    [(1, None, 4.5, 5.5), (2, None, 270, 330), (1, 60.0, 60, 60), (1, 1.0, 4.5, 5.5)],
)
def test_next_delay_follows_the_schedule_with_jitter(
    attempts: int, retry_after: float | None, low: float, high: float
) -> None:
    delays = [next_delay(SCHEDULE, attempts, retry_after, random.Random(seed)) for seed in range(50)]

    assert all(d is not None and low <= d <= high for d in delays)


def test_next_delay_is_none_when_the_schedule_is_used_up() -> None:
    assert next_delay(SCHEDULE, len(SCHEDULE), None) is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [("120", 120.0), (None, None), ("soon", None), ("Thu, 01 Jan 1970 00:02:00 GMT", 60.0)],
)
def test_retry_after_parsing(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value, now=60.0) == expected


@pytest.mark.parametrize(
    ("status", "delivered", "retryable"),
    [(200, True, False), (503, False, True), (429, False, True), (410, False, False)],
)
def test_outcome_classification(status: int, delivered: bool, retryable: bool) -> None:
    outcome = AttemptOutcome(status, None)

    assert (outcome.delivered, outcome.retryable and not outcome.delivered) == (delivered, retryable)


def test_concurrent_attempts_share_one_client_without_breaking_each_other(receiver: CallbackReceiver) -> None:
    # Each attempt used to open and close its own client over one shared transport: closing it
    # broke the attempts still in flight (ReadError) although the receiver got every POST.
    receiver.default = ("slow", 0.5)
    client = _client(timeout=5)

    async def one(i: int) -> AttemptOutcome:
        await asyncio.sleep(i * 0.05)  # staggered, so some finish while others are in flight
        return await client.attempt(receiver.url, f"msg_{i}", b'{"generation_request_id": "g"}')

    async def burst() -> list[AttemptOutcome]:
        return await asyncio.gather(*(one(i) for i in range(30)))

    outcomes = asyncio.run(burst())
    assert [o.status_code for o in outcomes] == [200] * 30, [o.error for o in outcomes if o.error]
    assert len(receiver.received) == 30
    # The same client keeps working in a later event loop (a pool is bound to its loop).
    assert asyncio.run(client.attempt(receiver.url, "msg_again", b"{}")).delivered
