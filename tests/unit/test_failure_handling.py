"""Pure pieces of failure handling: retry backoff, error kinds, secret masking."""

from __future__ import annotations

import logging
import ssl
import sys

import kafka.errors as Errors
import pytest

from lag_exporter.daemon import retry_cap, retry_delay
from lag_exporter.kafka.collector import _error_kind
from lag_exporter.kafka.connection import BootstrapError
from lag_exporter.model import ErrorKind
from lag_exporter.redact import MASK, RedactingFilter, redact, remember


def test_retry_delay_doubles_up_to_the_cap() -> None:
    assert [retry_delay(1.0, n) for n in range(6)] == [1, 1, 2, 4, 8, 8]
    assert [retry_delay(15.0, n) for n in range(5)] == [15, 15, 30, 60, 60]
    assert retry_delay(120.0, 5) == 120  # never less often than polled
    assert retry_cap(0.5) == 4.0
    assert retry_delay(1.0, 10_000) == 8  # no overflow however long it stays down


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (
            BootstrapError("x", Errors.SaslAuthenticationFailedError("invalid credentials")),
            ErrorKind.AUTHENTICATION,
        ),
        (
            BootstrapError(
                "x",
                Errors.KafkaConnectionError(
                    "Handshake failed: [SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed"
                ),
            ),
            ErrorKind.TLS,
        ),
        (BootstrapError("x", Errors.RequestTimedOutError("after 1500 ms")), ErrorKind.TIMEOUT),
        (BootstrapError("x", None), ErrorKind.CONNECTION),
        (ssl.SSLError("bad record"), ErrorKind.TLS),
        (Errors.KafkaConnectionError("111 ECONNREFUSED"), ErrorKind.CONNECTION),
        (Errors.GroupAuthorizationFailedError(), ErrorKind.AUTHORIZATION),
    ],
)
def test_error_kinds(exc: BaseException, kind: ErrorKind) -> None:
    assert _error_kind(exc, ErrorKind.METADATA) == kind


def test_secrets_are_masked_in_text_and_log_records() -> None:
    remember("hunter2-unit-secret")
    remember("")  # nothing to mask
    assert redact("password=hunter2-unit-secret;") == f"password={MASK};"
    record = logging.LogRecord(
        "kafka.admin.client",
        logging.DEBUG,
        __file__,
        1,
        "config: %s",
        ({"pw": "hunter2-unit-secret"},),
        None,
    )
    try:
        raise ValueError("hunter2-unit-secret")
    except ValueError:
        record.exc_info = sys.exc_info()
    formatter = logging.Formatter("%(message)s")
    assert RedactingFilter(formatter).filter(record)
    text = formatter.format(record)
    assert "hunter2-unit-secret" not in text and MASK in text
