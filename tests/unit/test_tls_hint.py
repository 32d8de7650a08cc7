"""The log's advice for a private CA that Python 3.13's strict verification refuses,
checked against the error that Python's ssl module really raises."""

from __future__ import annotations

import socket
import ssl
import sys
import threading
from pathlib import Path

import pytest

from lag_exporter.kafka.collector import _STRICT_X509_HINT, _hint
from lag_exporter.model import ErrorKind

from ..certs import authority


def handshake_error(tmp_path: Path, key_identifiers: bool) -> str | None:
    """Connect to a local TLS server whose certificate comes from a CA made with or
    without key identifiers; the client's verification error, or None."""
    ca = authority(tmp_path, f"ki{int(key_identifiers)}", key_identifiers=key_identifiers)
    server_cert = ca.issue("server", server=True)
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(server_cert.cert, server_cert.key)
    client_ctx = ssl.create_default_context(cafile=str(ca.cert))
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]

        def serve() -> None:
            conn, _ = listener.accept()
            try:
                with server_ctx.wrap_socket(conn, server_side=True):
                    pass
            except (ssl.SSLError, OSError):
                pass

        thread = threading.Thread(target=serve)
        thread.start()
        try:
            with (
                socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
                client_ctx.wrap_socket(raw, server_hostname="localhost"),
            ):
                return None
        except ssl.SSLError as exc:
            return str(exc)
        finally:
            thread.join(5)


def test_well_made_certificates_verify(tmp_path: Path) -> None:
    assert handshake_error(tmp_path, key_identifiers=True) is None


@pytest.mark.skipif(
    sys.version_info < (3, 13), reason="only Python 3.13 and later verify strictly by default"
)
def test_strict_verification_failure_gets_its_own_advice(tmp_path: Path) -> None:
    error = handshake_error(tmp_path, key_identifiers=False)
    assert error is not None and "CERTIFICATE_VERIFY_FAILED" in error
    assert _hint(ErrorKind.TLS, error) == _STRICT_X509_HINT


def test_other_tls_failures_keep_the_general_advice() -> None:
    text = "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: unable to get local issuer"
    assert _hint(ErrorKind.TLS, text) != _STRICT_X509_HINT
    assert "ssl.ca.location" in _hint(ErrorKind.TLS, text)
