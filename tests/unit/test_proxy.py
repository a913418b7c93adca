"""The port relay's pure parts: the request it writes, redirects kept under the proxy, cookies kept from the lab."""

import asyncio

import pytest

from opslabs.web import proxy


def test_the_request_drops_hop_by_hop_headers_and_closes_the_connection():
    wire = proxy.request_bytes("POST", "/login?x=1", [("Connection", "keep-alive"), ("Upgrade", "h2c"), ("Host", "evil"),
                                                    ("Content-Length", "999"), ("Accept", "text/html")], b"a=b", host="lb")
    head, _, body = wire.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    assert lines[0] == b"POST /login?x=1 HTTP/1.1"
    assert sorted(lines[1:]) == sorted([b"Host: lb", b"Accept: text/html", b"Content-Length: 3", b"Connection: close"])
    assert body == b"a=b"


def test_a_target_that_is_not_a_path_is_refused():
    with pytest.raises(proxy.RelayError) as err:
        proxy.request_bytes("GET", "http://elsewhere/", [], b"", host="lb")
    assert err.value.status == 400 and "starting with /" in str(err.value)


def test_a_port_out_of_range_is_refused_before_any_exec():
    with pytest.raises(proxy.RelayError, match="expected a port from 1 to 65535, got 70000"):
        asyncio.run(proxy.relay(None, "c", 70000, "GET", "/", []))


@pytest.mark.parametrize("location, expected", [
    ("/login", "/labs/x/lb/80/login"),
    ("http://lb/admin?a=1", "/labs/x/lb/80/admin?a=1"),
    ("http://localhost:80/", "/labs/x/lb/80/"),
    ("http://127.0.0.1/", "/labs/x/lb/80/"),
    ("https://example.org/", "https://example.org/"),  # outside the lab: left alone
    ("//cdn.example.org/a.js", "//cdn.example.org/a.js"),
    ("http://lb:3000/", "http://lb:3000/"),  # another port of the host is another proxy path
])
def test_redirects_inside_the_lab_host_stay_under_the_proxy(location, expected):
    assert proxy.rewrite_location(location, "/labs/x/lb/80/", "lb", 80) == expected


def test_the_workshops_own_cookies_never_reach_the_lab_host():
    kept = proxy._without_cookies("opslabs_session=SECRET; grafana_session=abc;theme=dark", frozenset({"opslabs_session"}))
    assert kept == "grafana_session=abc; theme=dark"
    assert proxy._without_cookies("opslabs_session=SECRET", frozenset({"opslabs_session"})) == ""
