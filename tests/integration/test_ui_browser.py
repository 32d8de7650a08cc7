"""The web UI in a real browser: Debian's chromium, headless, driven by Playwright,
against the real exporter on the real broker.

A group stops on one partition while its producer goes on: the overview must
list it first with its status and a sparkline with points, refresh itself
from /api/v1/overview without a console error, filter by group; the group
page must say why the partition stopped; under basic auth the browser is
asked for credentials. Screenshots of both pages, desktop and phone width,
go to $LAG_EXPORTER_SCREENSHOTS (the README's docs/ images: run the test with
LAG_EXPORTER_SCREENSHOTS=docs) or the test's temporary directory.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import bcrypt
import pytest
from kafka import KafkaProducer
from playwright.sync_api import Error as PlaywrightError

from .conftest import ROOT, Exporter, Kafka, wait_until
from .test_timelag import PausableConsumer

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# The machine's network is closed: without these, chromium stalls on its own traffic.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DESKTOP = {"width": 1280, "height": 860}
PHONE = {"width": 390, "height": 844}

pytestmark = pytest.mark.skipif(
    not os.path.exists(CHROMIUM), reason="chromium is not installed (make test installs it)"
)


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Callable[..., Any]]:
    """Opens a headless chromium with a fresh profile; `open(**context options)` -> a context."""
    from playwright.sync_api import sync_playwright

    contexts: list[Any] = []
    with sync_playwright() as p:

        def open_context(**options: Any) -> Any:
            profile = tmp_path / f"profile-{len(contexts)}"
            context = p.chromium.launch_persistent_context(
                str(profile),
                executable_path=CHROMIUM,
                headless=True,
                args=CHROMIUM_ARGS,
                **options,
            )
            contexts.append(context)
            return context

        yield open_context
        for context in contexts:
            context.close()


def _screenshots(tmp_path: Path) -> Path:
    target = os.environ.get("LAG_EXPORTER_SCREENSHOTS")
    out = (ROOT / target if not os.path.isabs(target) else Path(target)) if target else tmp_path
    out.mkdir(parents=True, exist_ok=True)
    return out


class Producer:
    """Writes to one partition of a topic, a few messages per 100 ms, until stopped."""

    def __init__(self, bootstrap: str, topic: str, partition: int) -> None:
        self._producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(topic, partition), name="ui-producer", daemon=True
        )

    def _run(self, topic: str, partition: int) -> None:
        while not self._stop.wait(0.1):
            for _ in range(3):
                self._producer.send(topic, b"order", partition=partition)
            self._producer.flush(10)

    def __enter__(self) -> Producer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(15)
        self._producer.close()


def _console_errors(page: Any) -> list[str]:
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    return errors


def _points(page: Any, selector: str) -> int:
    value = page.locator(selector).first.get_attribute("points") or ""
    return len(value.split())


def test_overview_and_group_page_in_a_real_browser(
    kafka: Kafka,
    start_exporter: Callable[..., Exporter],
    unique: Callable[[str], str],
    browser: Callable[..., Any],
    tmp_path: Path,
) -> None:
    # Short names, as a reader of the screenshots would meet them.
    token = unique("").rsplit("-", 1)[1]
    topic = kafka.create_topic(f"orders-{token}", partitions=3)
    slow, fine = f"billing-{token}", f"shipping-{token}"
    kafka.produce(topic, 40, partition=0)
    kafka.produce(topic, 20, partition=1)
    kafka.produce(topic, 20, partition=2)
    # `slow` stopped at 5 on partition 0; `fine` is at the end of the partitions
    # that get no more messages.
    kafka.commit(slow, {(topic, 0): 5, (topic, 1): 20, (topic, 2): 20})
    kafka.commit(fine, {(topic, 1): 20, (topic, 2): 20})
    worker = f"shipping-worker-{token}"
    with (
        Producer(kafka.bootstrap, topic, 0),
        # `fine` has a live member that keeps up: its owner shows on its page.
        PausableConsumer(kafka.consumer(fine, topic, client_id=worker)),
    ):
        exporter = start_exporter(
            groups={"allow": [f"^({re.escape(slow)}|{re.escape(fine)})$"]},
            status={"stop_after": "3s", "window": "60s"},
        )

        seen: list[Any] = []

        def slow_is_stopped_with_a_trend() -> bool:
            status, body = exporter.get("/api/v1/overview?group=" + slow)
            groups = json.loads(body)["groups"] if status == 200 else []
            seen[:] = groups
            return bool(
                groups
                and groups[0]["status"] == "ERR"
                and groups[0]["trend"]
                and len(groups[0]["trend"]["times"]) >= 2
            )

        try:
            wait_until(slow_is_stopped_with_a_trend, 60, what=f"{slow} ERR with a trend")
        except AssertionError:
            raise AssertionError(f"last seen: {seen}\n{exporter.log()[-3000:]}") from None

        context = browser(viewport=DESKTOP)
        page = context.new_page()
        errors = _console_errors(page)
        response = page.goto(exporter.url + "/")
        assert response is not None and response.status == 200
        first = page.locator("#groups tbody tr").first
        assert first.locator("td.name a").inner_text() == slow
        assert first.locator(".badge").first.inner_text() == "ERR"
        assert _points(page, "#groups tbody tr:first-child svg.spark.lag polyline") >= 2
        assert page.locator('[data-k="ERR"]').inner_text() == "1"
        # The script refreshes the page from /api/v1/overview, in place.
        page.wait_for_function(
            "document.getElementById('live').textContent.includes('updated')", timeout=20_000
        )
        assert page.locator("#groups tbody tr").first.locator("td.name a").inner_text() == slow
        assert _points(page, "#groups tbody tr:first-child svg.spark.lag polyline") >= 2
        out = _screenshots(tmp_path)
        page.screenshot(path=str(out / "ui-overview.png"), full_page=True)

        # Filter by group: only the matching group is left.
        page.fill('input[name="group"]', fine)
        page.click('form#filter button[type="submit"]')
        page.wait_for_url(re.compile(r"group="))
        names = page.locator("#groups tbody td.name a").all_inner_texts()
        assert names == [fine]

        # The group page says why partition 0 stopped, in words.
        page.goto(exporter.url + "/")
        page.locator(f'#groups a:text-is("{slow}")').click()
        page.wait_for_url(re.compile(r"/group\?"))
        row = page.locator("#partitions tbody tr").first
        cells = row.locator("td").all_inner_texts()
        assert cells[0] == topic and cells[1] == "0" and "STOP" in cells[6]
        assert re.fullmatch(r"no commit for .+ while [\d,]+ behind; no member owns it", cells[7])
        assert _points(page, "svg.chart polyline.lag") >= 2
        page.wait_for_function(
            "document.getElementById('live').textContent.includes('updated')", timeout=20_000
        )
        assert "no commit for" in page.locator("#partitions tbody tr td.reason").first.inner_text()
        # The refresh keeps the page consistent: the topic's lag is the group's lag.
        page.wait_for_function(
            "document.querySelector('#topics tbody tr').children[1].textContent"
            " === document.querySelector('[data-k=total_lag]').textContent",
            timeout=10_000,
        )
        page.screenshot(path=str(out / "ui-group.png"), full_page=True)
        slow_page = page.url

        # Each partition of the live group shows its owner: client id, host, member id.
        page.goto(exporter.url + f"/group?cluster=test&group={fine}")
        wait_until(
            lambda: (
                page.reload()
                and all(
                    worker in owner
                    for owner in page.locator(
                        "#partitions tbody tr td:last-child"
                    ).all_inner_texts()
                )
            ),
            30,
            what=f"{fine}'s partitions owned by {worker}",
        )
        owner = page.locator("#partitions tbody tr td:last-child").first.inner_text()
        assert "127.0.0.1" in owner and worker + "-" in owner  # host and member id

        # Without JavaScript the page shows the values of its load.
        static = browser(java_script_enabled=False).new_page()
        static.goto(exporter.url + "/?status=ERR")
        assert static.locator("#groups tbody td.name a").all_inner_texts() == [slow]
        assert _points(static, "#groups tbody tr:first-child svg.spark.secs polyline") >= 2
        assert static.locator("#live").inner_text() == ""

        phone = browser(viewport=PHONE, is_mobile=True, color_scheme="dark")
        small = phone.new_page()
        errors += _console_errors(small)
        small.goto(exporter.url + "/")
        assert small.locator("#groups tbody tr").first.locator("td.name a").inner_text() == slow
        small.screenshot(path=str(out / "ui-overview-phone.png"), full_page=True)
        small.goto(slow_page)
        # On a phone the reason is under the status, its own column hidden.
        assert "no commit for" in small.locator("#partitions .why-s").first.inner_text()
        assert not small.locator("#partitions td.reason").first.is_visible()
        small.screenshot(path=str(out / "ui-group-phone.png"), full_page=True)
        assert errors == []


def test_the_ui_under_basic_auth_asks_for_credentials(
    start_exporter: Callable[..., Exporter],
    browser: Callable[..., Any],
    tmp_path: Path,
) -> None:
    web = tmp_path / "web.yml"
    hashed = bcrypt.hashpw(b"s3cret", bcrypt.gensalt(4)).decode()
    web.write_text(f"basic_auth_users:\n  sre: {hashed}\n")
    exporter = start_exporter(wait_ready=False, args=("--web.config.file", str(web)))
    wait_until(lambda: exporter.get("/healthz")[0] == 200, 60, what="exporter listening")

    # Without credentials the browser gets the basic-auth challenge (a headless
    # browser cannot show its dialog, so the navigation ends there).
    anonymous = browser().new_page()
    answers: list[Any] = []
    anonymous.on("response", lambda r: answers.append(r))
    with pytest.raises(PlaywrightError, match="ERR_INVALID_AUTH_CREDENTIALS"):
        anonymous.goto(exporter.url + "/")
    assert [a.status for a in answers] == [401]
    assert answers[0].headers["www-authenticate"] == 'Basic realm="lag-exporter"'
    wrong = browser(http_credentials={"username": "sre", "password": "wrong"}).new_page()
    refused = wrong.goto(exporter.url + "/static/ui.js")
    assert refused is not None and refused.status == 401

    context = browser(http_credentials={"username": "sre", "password": "s3cret"})
    page = context.new_page()
    errors = _console_errors(page)
    response = page.goto(exporter.url + "/")
    assert response is not None and response.status == 200
    assert page.locator("#clusters tbody tr td").first.inner_text() == "test"
    # The refresh's own requests carry the credentials too.
    page.wait_for_function(
        "document.getElementById('live').textContent.includes('updated')", timeout=20_000
    )
    assert errors == []
