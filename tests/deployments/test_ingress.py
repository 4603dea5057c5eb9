"""Ingress helpers that need no Ray cluster."""

import socket

import pytest

from deployments.ingress import _needs_lookup
from stemforge.jobs.ssrf import CallbackURLRefused, check_callback_url

ALLOWED = ["localhost", "127.0.0.1"]


@pytest.mark.parametrize(
    ("url", "lookup"),
    [
        ("http://localhost:9000/cb", False),  # exempt
        ("http://LOCALHOST/cb", False),
        ("http://127.0.0.1:9/cb", False),  # exempt, and an IP literal
        ("https://203.0.113.7/cb", False),
        ("http://[2001:db8::1]:8080/cb", False),
        ("http://10.0.0.1/cb", False),  # refused without a lookup
        ("https://receiver.example/cb", True),
        ("https://xn--n3h.example/cb", True),
        ("http://2130706433/cb", True),  # a decimal spelling: the resolver decides
    ],
)
def test_only_a_name_to_resolve_needs_a_lookup(url: str, lookup: bool) -> None:
    assert _needs_lookup(url, ALLOWED) is lookup


@pytest.mark.parametrize(
    "url", ["http://localhost:9000/cb", "https://203.0.113.7/cb", "http://10.0.0.1/cb", "http://[::1]/cb"]
)
def test_a_url_that_needs_no_lookup_is_checked_without_dns(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    real = socket.getaddrinfo

    def numeric_only(host: str, *args: object, **kwargs: object) -> object:
        kwargs["flags"] = socket.AI_NUMERICHOST  # a name would fail here: no DNS asked
        return real(host, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(socket, "getaddrinfo", numeric_only)
    assert not _needs_lookup(url, ALLOWED)
    try:
        check_callback_url(url, ALLOWED)
    except CallbackURLRefused as exc:
        assert "non-public" in str(exc)  # refused for the address, not for a failed lookup
