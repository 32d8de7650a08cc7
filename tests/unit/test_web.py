"""Web config: TLS and basic auth on the HTTP server, in the exporter-toolkit's file format."""

from __future__ import annotations

import base64
import socket
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import bcrypt
import pytest

from lag_exporter.api import render_groups
from lag_exporter.config import ConfigError
from lag_exporter.daemon import Published
from lag_exporter.metrics import render
from lag_exporter.server import HttpServer
from lag_exporter.web import BasicAuth, load_web_config, parse_web_config

from ..certs import Authority, Issued, authority

EMPTY = Published((), render(()), render_groups(()), ready=True)
PASSWORD = "correct horse battery staple"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Authority, Issued, Authority]:
    directory = tmp_path_factory.mktemp("pki")
    ca = authority(directory, "web")
    server = ca.issue("exporter", server=True)
    clients = authority(directory, "clients")
    return directory, ca, server, clients


def _hash(password: str) -> str:
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(4)).decode()


def _basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def _get(
    url: str, headers: dict[str, str] | None = None, context: ssl.SSLContext | None = None
) -> int:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=5, context=context) as response:
            response.read()
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def test_parse_full_config_relative_paths(tmp_path: Path) -> None:
    path = tmp_path / "web.yml"
    path.write_text(
        "tls_server_config:\n  cert_file: s.crt\n  key_file: s.key\n"
        "basic_auth_users:\n  prom: " + _hash("x") + "\n"
    )
    with pytest.raises(ConfigError, match=r"cannot load cert_file .*s\.crt"):
        load_web_config(path)  # relative to the file, and missing there
    doc = {"basic_auth_users": {"prom": _hash("x")}}
    assert set(parse_web_config(doc, tmp_path).users) == {"prom"}


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"tls_server_config": {"cert_file": "a"}}, "key_file: required"),
        (
            {
                "tls_server_config": {
                    "cert_file": "a",
                    "key_file": "b",
                    "client_auth_type": "RequestClientCert",
                }
            },
            "not supported",
        ),
        (
            {"tls_server_config": {"cert_file": "a", "key_file": "b", "client_ca_file": "c"}},
            "without a client_auth_type",
        ),
        (
            {
                "tls_server_config": {
                    "cert_file": "a",
                    "key_file": "b",
                    "client_auth_type": "RequireAndVerifyClientCert",
                }
            },
            "client_ca_file: required",
        ),
        (
            {"tls_server_config": {"cert_file": "a", "key_file": "b", "min_version": "SSL3"}},
            "min_version",
        ),
        ({"basic_auth_users": {"prom": "plain-text-password"}}, "expected a bcrypt hash"),
        ({"basic_auth_users": ["prom"]}, "expected a mapping"),
        ({"http_server_config": {"http2": True}}, "unknown or unsupported key"),
    ],
)
def test_invalid_web_configs_name_the_key(doc: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as raised:
        parse_web_config(doc, Path("/nonexistent"))
    assert "plain-text-password" not in str(raised.value)


def test_basic_auth_checks_and_caches() -> None:
    auth = BasicAuth({"prom": _hash(PASSWORD).encode()})
    good = _basic("prom", PASSWORD)["Authorization"]
    assert auth.check(good)
    started = time.perf_counter()
    assert auth.check(good)  # cached: no bcrypt round
    assert time.perf_counter() - started < 0.002
    assert not auth.check(_basic("prom", "wrong")["Authorization"])
    assert not auth.check(_basic("nobody", PASSWORD)["Authorization"])
    assert not auth.check(_basic("prom", "x" * 100)["Authorization"])  # beyond bcrypt's 72 bytes
    for header in (
        None,
        "",
        "Bearer abc",
        "Basic !!!",
        "Basic " + base64.b64encode(b"nocolon").decode(),
    ):
        assert not auth.check(header)


@pytest.fixture
def tls_server(
    pki: tuple[Path, Authority, Issued, Authority],
) -> Iterator[tuple[int, ssl.SSLContext]]:
    directory, ca, server_cert, clients = pki
    web = parse_web_config(
        {
            "tls_server_config": {
                "cert_file": str(server_cert.cert),
                "key_file": str(server_cert.key),
                "client_ca_file": str(clients.cert),
                "client_auth_type": "VerifyClientCertIfGiven",
            },
            "basic_auth_users": {"prom": _hash(PASSWORD)},
        },
        directory,
    )
    server = HttpServer("127.0.0.1", 0, lambda: EMPTY, web, request_timeout=1.0)
    server.start()
    context = ssl.create_default_context(cafile=str(ca.cert))
    try:
        yield server.port, context
    finally:
        server.stop()


def test_tls_and_basic_auth(tls_server: tuple[int, ssl.SSLContext]) -> None:
    port, context = tls_server
    url = f"https://127.0.0.1:{port}"
    assert _get(url + "/metrics", _basic("prom", PASSWORD), context) == 200
    assert _get(url + "/metrics", None, context) == 401
    assert _get(url + "/api/v1/groups", _basic("prom", "nope"), context) == 401
    assert _get(url + "/", None, context) == 401
    assert _get(url + "/healthz", None, context) == 200  # liveness stays open
    # Plain HTTP to the TLS port gets nowhere, and does no harm.
    with pytest.raises((urllib.error.URLError, ConnectionError, OSError)):
        _get(f"http://127.0.0.1:{port}/metrics")
    # A client that connects and never starts its handshake holds only its own thread.
    with socket.create_connection(("127.0.0.1", port)):
        assert _get(url + "/healthz", None, context) == 200
    # Nor does a client that does not trust the server's CA get anything.
    with pytest.raises(urllib.error.URLError):
        _get(url + "/healthz", None, ssl.create_default_context())
    assert _get(url + "/healthz", None, context) == 200


def test_client_certificates(
    pki: tuple[Path, Authority, Issued, Authority], tls_server: tuple[int, ssl.SSLContext]
) -> None:
    _, ca, _, clients = pki
    port, _ = tls_server
    trusted = clients.issue("prometheus")
    rogue = authority(pki[0], "rogue").issue("prometheus")
    url = f"https://127.0.0.1:{port}/metrics"
    ok = ssl.create_default_context(cafile=str(ca.cert))
    ok.load_cert_chain(trusted.cert, trusted.key)
    assert _get(url, _basic("prom", PASSWORD), ok) == 200
    bad = ssl.create_default_context(cafile=str(ca.cert))
    bad.load_cert_chain(rogue.cert, rogue.key)
    with pytest.raises((urllib.error.URLError, ConnectionError, ssl.SSLError)):
        _get(url, _basic("prom", PASSWORD), bad)


def test_web_config_swapped_at_runtime(pki: tuple[Path, Authority, Issued, Authority]) -> None:
    server = HttpServer("127.0.0.1", 0, lambda: EMPTY)
    server.start()
    try:
        url = f"http://127.0.0.1:{server.port}/metrics"
        assert _get(url) == 200
        server.set_web_config(
            parse_web_config({"basic_auth_users": {"prom": _hash(PASSWORD)}}, pki[0])
        )
        assert _get(url) == 401
        assert _get(url, _basic("prom", PASSWORD)) == 200
    finally:
        server.stop()
