import gzip
import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import replace

import pytest

from lag_exporter.api import render_groups
from lag_exporter.daemon import LazyDocument, Published
from lag_exporter.metrics import render
from lag_exporter.server import HttpServer
from lag_exporter.ui.documents import Overview
from lag_exporter.ui.snapshot import cluster_ui

from .factories import group, poll, view_of

T0 = 1_700_000_000.0


@pytest.fixture
def server() -> Iterator[tuple[str, list[Published]]]:
    view = view_of(
        poll(
            T0,
            topics={"t": 1},
            ends={("t", 0): (0, 9)},
            groups=[group("g")],
            committed={"g": {("t", 0): 4}},
        )
    )
    document = LazyDocument(lambda: render_groups([view]))
    current = [Published((view,), render([view]), document, ready=False)]
    srv = HttpServer("127.0.0.1", 0, lambda: current[0])
    srv.start()
    try:
        yield f"http://127.0.0.1:{srv.port}", current
    finally:
        srv.stop()


def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def test_metrics_plain_and_gzip(server: tuple[str, list[Published]]) -> None:
    base, _ = server
    status, headers, body = get(base + "/metrics")
    assert status == 200 and b'kafka_consumergroup_lag{cluster="c1"' in body
    assert headers["Content-Type"].startswith("text/plain")
    status, headers, zipped = get(base + "/metrics", {"Accept-Encoding": "gzip, deflate"})
    assert headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(zipped) == body


def test_readyz_follows_published_state(server: tuple[str, list[Published]]) -> None:
    base, current = server
    assert get(base + "/readyz")[0] == 503
    p = current[0]
    current[0] = Published(p.views, p.exposition, p.groups_json, ready=True)
    assert get(base + "/readyz")[0] == 200
    assert get(base + "/healthz")[0] == 200


def test_groups_api_and_landing_page(server: tuple[str, list[Published]]) -> None:
    base, _ = server
    status, _, body = get(base + "/api/v1/groups")
    doc = json.loads(body)
    (cluster,) = doc["clusters"]
    (g,) = cluster["groups"]
    assert g["group"] == "g" and g["partitions"][0]["lag"] == 5
    status, _, page = get(base + "/")
    assert status == 200 and b'href="/metrics"' in page and b"/api/v1/groups" in page


def test_unknown_path_is_404_json(server: tuple[str, list[Published]]) -> None:
    base, _ = server
    status, _, body = get(base + "/nope")
    assert status == 404 and json.loads(body)["error"] == "not found"


def test_lazy_document_is_made_once() -> None:
    calls: list[int] = []

    def make() -> bytes:
        calls.append(1)
        return b"{}"

    document = LazyDocument(make)
    assert calls == []
    assert document.get() == b"{}" and document.get() == b"{}"
    assert calls == [1]
    assert LazyDocument(b"ready").get() == b"ready"


def test_published_serves_a_plain_document_too() -> None:
    p = Published((), render(()), b'{"clusters":[]}', ready=True)
    assert p.groups_document() == b'{"clusters":[]}'


def test_web_ui_pages_and_their_json(server: tuple[str, list[Published]]) -> None:
    base, current = server
    p = current[0]
    overview = Overview.build([cluster_ui(p.views[0], None, poll_interval=5.0)], None)
    current[0] = replace(p, overview=overview)
    status, headers, page = get(base + "/")
    assert status == 200 and headers["Content-Type"] == "text/html; charset=utf-8"
    assert b'href="/group?cluster=c1&amp;group=g"' in page
    assert headers["Cache-Control"] == "no-store"
    status, _, page = get(base + "/group?cluster=c1&group=g")
    assert status == 200 and b"messages behind" in page
    status, _, body = get(base + "/api/v1/group?cluster=c1&group=g")
    assert status == 200 and json.loads(body)["total_lag"] == 5
    status, _, body = get(base + "/api/v1/overview?group=g")
    assert status == 200 and [g["group"] for g in json.loads(body)["groups"]] == ["g"]
    status, headers, _ = get(base + "/static/ui.js")
    assert status == 200 and headers["Content-Type"].startswith("text/javascript")
    assert get(base + "/group?cluster=c1&group=gone")[0] == 404
