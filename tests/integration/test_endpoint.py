"""The real exporter process behind `--web.config.file`: HTTPS, basic auth, reloaded on SIGHUP."""

from __future__ import annotations

import base64
import signal
import ssl
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

import bcrypt

from ..certs import authority
from .conftest import Exporter, wait_until


def _web_config(path: Path, cert: Path, key: Path, user: str, password: str) -> None:
    hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(4)).decode()
    path.write_text(
        f"tls_server_config:\n  cert_file: {cert}\n  key_file: {key}\n"
        f"basic_auth_users:\n  {user}: {hashed}\n"
    )


def test_https_with_basic_auth_reloaded_on_sighup(
    tmp_path: Path, start_exporter: Callable[..., Exporter]
) -> None:
    ca = authority(tmp_path, "endpoint")
    server = ca.issue("exporter", server=True)
    web = tmp_path / "web.yml"
    _web_config(web, server.cert, server.key, "prom", "first-password")
    exporter = start_exporter(wait_ready=False, args=("--web.config.file", str(web)))
    context = ssl.create_default_context(cafile=str(ca.cert))

    def get(path: str, user: str | None = None, password: str = "") -> int:
        headers = {}
        if user is not None:
            token = base64.b64encode(f"{user}:{password}".encode()).decode()
            headers["Authorization"] = f"Basic {token}"
        request = urllib.request.Request(
            f"https://127.0.0.1:{exporter.port}{path}", headers=headers
        )
        try:
            with urllib.request.urlopen(request, timeout=10, context=context) as response:
                return int(response.status)
        except urllib.error.HTTPError as exc:
            return exc.code

    wait_until(lambda: get("/readyz", "prom", "first-password") == 200, 60, what="ready over https")
    assert get("/metrics") == 401
    assert get("/metrics", "prom", "wrong") == 401
    assert get("/healthz") == 200
    assert "(https, basic auth)" in exporter.log()

    _web_config(web, server.cert, server.key, "scraper", "second-password")
    exporter.process.send_signal(signal.SIGHUP)
    wait_until(lambda: "configuration reloaded" in exporter.log(), what="reload")
    assert get("/metrics", "scraper", "second-password") == 200
    assert get("/metrics", "prom", "first-password") == 401

    # A broken web config is refused as a whole; the running one stays.
    web.write_text("basic_auth_users:\n  scraper: not-a-hash\n")
    exporter.process.send_signal(signal.SIGHUP)
    wait_until(lambda: "configuration reload failed" in exporter.log(), what="refused reload")
    assert get("/metrics", "scraper", "second-password") == 200
    assert "not-a-hash" not in exporter.log()
