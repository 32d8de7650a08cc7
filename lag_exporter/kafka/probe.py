"""A quick look at a bootstrap address before a full client is built.

kafka-python retries a refused or silent address until its bootstrap timeout
runs out, then says only that it could not bootstrap. `lag-exporter check` is
run by people at a terminal and by scripts: both want "connection refused" or
"not a Kafka broker" in a second, not a timeout after thirty.

The probe opens a TCP connection and, on a plaintext listener, sends one
ApiVersions v0 request, which every Kafka broker answers before any
authentication. A reply of the right shape (the size, then our correlation
id) is a Kafka broker; anything else (an HTTP server's "HTTP/1.1 400", a
closed connection) is not. On TLS listeners only the TCP connection is
tried: the handshake belongs to the real client, which reports its errors
itself.
"""

from __future__ import annotations

import errno
import socket
import struct
import time
from collections.abc import Sequence
from dataclasses import dataclass

from ..config import ClusterConfig

_API_VERSIONS = 18
_CORRELATION_ID = 0x4C414721  # arbitrary; echoed back by a broker
_CLIENT_ID = b"lag-exporter-probe"


@dataclass(frozen=True, slots=True)
class ProbeResult:
    address: str
    ok: bool
    reason: str  # in words, for a person: "connection refused", "not a Kafka broker", ...


def _api_versions_request() -> bytes:
    # Request header v1: api_key, api_version, correlation_id, client_id; v0 has no body.
    body = struct.pack(">hhih", _API_VERSIONS, 0, _CORRELATION_ID, len(_CLIENT_ID)) + _CLIENT_ID
    return struct.pack(">i", len(body)) + body


def _read_exactly(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            break
        data += chunk
    return data


def looks_like_kafka(reply: bytes) -> bool:
    """The first 8 bytes of a reply: a sane size, then our correlation id."""
    if len(reply) < 8:
        return False
    size, correlation_id = struct.unpack(">ii", reply[:8])
    return bool(4 <= size <= 1 << 20 and correlation_id == _CORRELATION_ID)


def split_address(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host.strip("[]"), int(port)


def probe(address: str, timeout: float, speak_kafka: bool = True) -> ProbeResult:
    """Connect to one 'host:port'; with `speak_kafka`, ask it for its API versions."""
    host, port = split_address(address)
    try:
        sock = socket.create_connection((host, port), timeout=timeout)
    except socket.gaierror:
        return ProbeResult(address, False, f"host name {host!r} does not resolve")
    except TimeoutError:
        return ProbeResult(address, False, f"no answer to a TCP connection within {timeout:g}s")
    except OSError as exc:
        if exc.errno == errno.ECONNREFUSED:
            return ProbeResult(address, False, "connection refused (nothing listens there)")
        return ProbeResult(address, False, f"cannot connect: {exc.strerror or exc}")
    with sock:
        if not speak_kafka:
            return ProbeResult(address, True, "accepts connections")
        try:
            sock.settimeout(timeout)
            sock.sendall(_api_versions_request())
            reply = _read_exactly(sock, 8)
        except TimeoutError:
            return ProbeResult(
                address,
                False,
                f"not a Kafka broker (accepts connections but sent no Kafka reply "
                f"within {timeout:g}s)",
            )
        except OSError as exc:
            return ProbeResult(
                address, False, f"not a Kafka broker (connection failed: {exc.strerror or exc})"
            )
    if looks_like_kafka(reply):
        return ProbeResult(address, True, "a Kafka broker")
    shown = reply[:16].decode("ascii", "replace").strip() or "nothing"
    return ProbeResult(address, False, f"not a Kafka broker (it answered {shown!r})")


def probe_cluster(cluster: ClusterConfig, timeout: float) -> Sequence[ProbeResult]:
    """Probe every bootstrap address of a cluster, stopping at the first that works."""
    protocol = str(cluster.kafka.get("security.protocol", "PLAINTEXT")).upper()
    speak_kafka = protocol in ("PLAINTEXT", "SASL_PLAINTEXT")
    deadline = time.monotonic() + timeout
    results: list[ProbeResult] = []
    for address in cluster.bootstrap_servers.split(","):
        remaining = max(0.5, deadline - time.monotonic())
        result = probe(address, remaining, speak_kafka)
        results.append(result)
        if result.ok:
            break
    return results
