"""Which UI path answers what: pages, their JSON, and the static files. Pure.

server.py asks `answer` for every path it does not know itself, after the
same basic-auth check as /metrics, and serves the bytes.
"""

from __future__ import annotations

import json
import time
from importlib import resources
from typing import NamedTuple
from urllib.parse import parse_qs

from .documents import Overview, Query, group_page_document, overview_document
from .pages import group_page, not_found_page, overview_page

HTML = "text/html; charset=utf-8"
JSON = "application/json"


class Answer(NamedTuple):
    status: int
    body: bytes
    content_type: str
    cache: str = "no-store"  # pages and documents change every poll


def _static(name: str, content_type: str) -> Answer:
    body = resources.files(__package__).joinpath("static", name).read_bytes()
    # Shipped with the package: the same for the life of the process.
    return Answer(200, body, content_type, "max-age=3600")


_STATIC = {
    "/static/ui.css": _static("ui.css", "text/css; charset=utf-8"),
    "/static/ui.js": _static("ui.js", "text/javascript; charset=utf-8"),
}


def _encode(document: object) -> bytes:
    return json.dumps(document, separators=(",", ":"), allow_nan=False).encode()


def _cluster_group(query: str) -> tuple[str, str]:
    values = parse_qs(query, keep_blank_values=True)
    return values.get("cluster", [""])[0], values.get("group", [""])[0]


def answer(path: str, query: str, overview: Overview) -> Answer | None:
    """The answer for a UI path, or None when the path is not the UI's."""
    if path == "/":
        return Answer(200, overview_page(overview, Query.parse(query)), HTML)
    static = _STATIC.get(path)
    if static is not None:
        return static
    if path == "/api/v1/overview":
        document = overview_document(overview, Query.parse(query), time.time())
        return Answer(200, _encode(document), JSON)
    if path in ("/group", "/api/v1/group"):
        cluster, group = _cluster_group(query)
        found = overview.find(cluster, group)
        if path == "/group":
            if found is None:
                return Answer(404, not_found_page(cluster, group), HTML)
            return Answer(200, group_page(overview, *found), HTML)
        if found is None:
            body = {"error": "no such group", "cluster": cluster[:200], "group": group[:200]}
            return Answer(404, _encode(body), JSON)
        return Answer(200, _encode(group_page_document(overview, *found, time.time())), JSON)
    return None
