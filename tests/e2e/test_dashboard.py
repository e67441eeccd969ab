"""The dashboard of ``posledger serve`` (docs/service.md, Dashboard), driven in headless
Chromium (the system's, through Playwright) as a user would: a real server process on
loopback, a key given once, then fills posted through the API by another client.

It must load with no console error; a fill posted through the API must appear in the
open-slot table without a reload (the page follows ``/v1/stream``; it does not poll), and
a closed trade in the trades table and the equity chart. How long the fill took to show
is written beside the screenshots (``test-artifacts/dashboard-*.png``, and
``dashboard.txt``): measured, not asserted, since a shared test machine can be slow.
The page must fit 1280×800 and a phone's 390×844 without a sideways scroll."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx

from .test_report import ARTIFACTS, CHROMIUM_ARGS, chromium
from .test_serve import Server, _fill
from .test_serve import started as serving


def _post(server: Server, key: str, line: str) -> None:
    answer = httpx.post(
        f"{server.base}/v1/ingest",
        content=line,
        headers={"Authorization": f"Bearer {key}"},
        timeout=60,
    )
    assert answer.status_code == 200 and answer.json()["applied"] == 1, answer.text


def test_the_dashboard_follows_the_ledger_live(tmp_path: Path, servers: list[Server]) -> None:
    browser_path = chromium()
    from playwright.sync_api import Route, sync_playwright

    server, _, key = serving(tmp_path, servers)

    errors: list[str] = []
    outside: list[str] = []
    loads: list[str] = []

    def guard(route: Route) -> None:
        if route.request.url.startswith(server.base):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=browser_path, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.route("**/*", guard)
            page.on(
                "console",
                lambda message: errors.append(message.text) if message.type == "error" else None,
            )
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.on("load", lambda _: loads.append(page.url))
            # First visit: the page asks for a key.
            page.goto(server.base + "/", wait_until="load")
            page.wait_for_selector("#login:not([hidden])")
            page.fill("#key", key)
            page.click("#login button[type=submit]")
            page.wait_for_selector("#live.on", timeout=120_000)
            page.wait_for_selector("#slots tbody tr.empty")
            assert page.text_content("#who") == "admin"

            started = time.perf_counter()
            _post(server, key, _fill("d1", "alpha", 1))
            page.wait_for_function(
                "Array.from(document.querySelectorAll('#slots tbody tr'))"
                ".some(r => r.cells[0].textContent === 'alpha' && r.cells[4].textContent === '1')",
                timeout=120_000,
            )
            shown_after = time.perf_counter() - started
            assert loads == [server.base + "/"]  # no reload: the stream brought it

            closing = json.loads(_fill("d2", "alpha", 2))
            closing |= {"side": "SELL", "price": "103"}
            _post(server, key, json.dumps(closing))
            page.wait_for_function(
                "Array.from(document.querySelectorAll('#trades tbody tr'))"
                ".some(r => r.cells[4].textContent === 'closed')",
                timeout=120_000,
            )
            trade = page.eval_on_selector_all(
                "#trades tbody tr", "rows => rows.map(r => [...r.cells].map(c => c.textContent))"
            )
            # bought 1 at 100, sold 1 at 103 (multiplier 5, 0.5 a fill): 15 - 1 = 14
            assert trade == [
                ["1", "alpha", "FUT", "LONG", "closed", "1", "14", "exit", "2026-03-02 10:02:00"]
            ], trade
            page.wait_for_selector("#equity svg polyline[data-strategy=alpha]")
            page.wait_for_selector("#slots tbody tr.empty")
            assert loads == [server.base + "/"]
            page.screenshot(path=str(ARTIFACTS / "dashboard-1280x800.png"), full_page=True)
            width = page.evaluate("document.documentElement.scrollWidth")
            assert width <= 1280, width

            page.set_viewport_size({"width": 390, "height": 844})
            width = page.evaluate("document.documentElement.scrollWidth")
            assert width <= 390, width
            page.screenshot(path=str(ARTIFACTS / "dashboard-390x844.png"), full_page=True)

            # A second visit remembers the key.
            page.reload(wait_until="load")
            page.wait_for_selector("#live.on", timeout=120_000)
            assert page.is_hidden("#login")
        finally:
            browser.close()
    server.stop()
    assert errors == [], errors
    assert outside == [], outside
    (ARTIFACTS / "dashboard.txt").write_text(
        f"a fill posted through the API showed in the open-slot table {shown_after:.3f} s "
        "later (no reload)\n"
    )
