"""The SSRF guard: callbacks reach public addresses only, unless a host is allowed explicitly."""

import ipaddress

import pytest

from stemforge.jobs.ssrf import CallbackURLRefused, check_callback_url, embedded_ipv4, is_public


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/cb",
        "http://0.0.0.0/cb",
        "http://[::1]/cb",
        "http://[::ffff:127.0.0.1]/cb",
        "http://169.254.169.254/latest/meta-data",
        "http://10.0.0.8/cb",
        "http://172.16.5.4/cb",
        "http://172.31.255.255/cb",
        "http://192.168.1.1/cb",
        "http://100.64.0.1/cb",
        "http://[fd00::1]/cb",
        "http://[fe80::1]/cb",
        "http://[64:ff9b::a00:1]/cb",  # NAT64 of 10.0.0.1
        "http://2130706433/cb",  # 127.0.0.1 as a decimal
        "http://0x7f000001/cb",  # 127.0.0.1 in hex
        "http://017700000001/cb",  # 127.0.0.1 in octal
        "http://localhost:8080/cb",  # a name that resolves to a private address
        "http://224.0.0.1/cb",
    ],
)
def test_private_and_special_addresses_are_refused(url: str) -> None:
    with pytest.raises(CallbackURLRefused) as info:
        check_callback_url(url, allowed_hosts=[])

    assert info.value.field == "callback_url"


def test_an_unresolvable_host_is_refused() -> None:
    with pytest.raises(CallbackURLRefused, match="does not resolve"):
        check_callback_url("http://no-such-host.invalid/cb", allowed_hosts=[])


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1"])
def test_allowed_hosts_are_exempt(host: str) -> None:
    check_callback_url(f"http://{host}:9000/cb", allowed_hosts=["localhost", "127.0.0.1"])


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("8.8.8.8", True),
        ("2001:4860:4860::8888", True),
        ("64:ff9b::808:808", True),  # NAT64 of a public address
        ("::ffff:8.8.8.8", True),
        ("::ffff:10.0.0.1", False),
        ("::10.0.0.1", False),  # IPv4-compatible
        ("::127.0.0.1", False),
        ("::169.254.169.254", False),
        ("::ffff:0:10.0.0.1", False),  # IPv4-translated
        ("::ffff:0:8.8.8.8", True),
        ("::1", False),
        ("::", False),
        ("2002:c0a8:101::1", False),  # 6to4 of 192.168.1.1
        ("198.18.0.1", False),  # benchmarking range
        ("192.0.2.1", False),  # documentation range
    ],
)
def test_public_means_globally_routable_after_unwrapping(address: str, public: bool) -> None:
    assert is_public(ipaddress.ip_address(address)) is public


def test_embedded_ipv4_forms() -> None:
    assert embedded_ipv4(ipaddress.ip_address("::ffff:1.2.3.4")) == ipaddress.IPv4Address("1.2.3.4")
    assert embedded_ipv4(ipaddress.ip_address("64:ff9b::102:304")) == ipaddress.IPv4Address("1.2.3.4")
    assert embedded_ipv4(ipaddress.ip_address("1.2.3.4")) is None


@pytest.mark.parametrize(
    ("url", "message"),
    [
        (
            "http://xn--n3h.localhost:9100/ok",
            "callback_url: host 'xn--n3h.localhost'",
        ),  # as pydantic passes it
        ("http://\u2603.localhost:9100/ok", "callback_url: not a valid URL"),
    ],
)
def test_an_international_name_that_is_not_valid_idna_is_refused_not_a_crash(url: str, message: str) -> None:
    with pytest.raises(CallbackURLRefused, match=message):
        check_callback_url(url, allowed_hosts=[])
