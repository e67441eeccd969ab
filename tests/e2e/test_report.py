"""``posledger report``: the HTML page opened in headless Chromium (the system's
``/usr/bin/chromium``, driven by Playwright) with every network request blocked.

The page must load with nothing but itself: no request other than the file (and ``data:``
or ``blob:`` URLs it makes itself) may even be attempted, the console must stay free of
errors, and every chart must be drawn with its traces. A screenshot is kept in
``test-artifacts/report.png`` at the repository's root (not versioned).

Without a Chromium the test is skipped with the reason; under ``CI=true`` that is a
failure, as a missing database server is (tests/databases.py).
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.pnl_session import RECORDS

from .scenario import run, write

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
EVIL = "<script>alert('x')</script>&"
"""A strategy name that must come out as text."""


def chromium() -> str:
    """The system Chromium, or skip (fail under CI=true) saying why."""
    found = os.environ.get("POSLEDGER_TEST_CHROMIUM") or shutil.which("chromium")
    found = found or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
    reason = None
    if found is None:
        reason = "no chromium found (apt-get install chromium, or POSLEDGER_TEST_CHROMIUM)"
    else:
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            reason = "playwright is not installed (pip install -e '.[dev]')"
    if reason is not None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true and {reason}")
        pytest.skip(reason)
    assert found is not None
    return found


def _session(tmp_path: Path) -> Path:
    """The hand-checked session plus a strategy whose name is HTML, with a winning trade."""
    evil = [
        {"type": "strategy", "strategy": EVIL},
        {"type": "fill", "exec_id": "v1", "account": "F-1", "instrument": "ESM6",
         "strategy": EVIL, "side": "SELL", "quantity": "1", "price": "5020",
         "ts": "2026-03-03T22:00:00Z"},
        {"type": "mark", "instrument": "ESM6", "price": "5016", "ts": "2026-03-03T22:30:00Z"},
        {"type": "fill", "exec_id": "v2", "account": "F-1", "instrument": "ESM6",
         "strategy": EVIL, "side": "BUY", "quantity": "1", "price": "5012",
         "ts": "2026-03-03T23:00:00Z"},
    ]  # fmt: skip
    db = tmp_path / "report.db"
    result = run("ingest", str(write(tmp_path / "s.jsonl", RECORDS + evil)), db=db)
    assert result.returncode == 0, result.stdout + result.stderr
    return db


def test_the_report_opens_offline_in_chromium(tmp_path: Path) -> None:
    browser_path = chromium()
    from playwright.sync_api import Route, sync_playwright

    db = _session(tmp_path)
    out = tmp_path / "report.html"
    result = run(
        "report", "--out", str(out), "--tz", "America/Chicago", "--session-start", "17:00", db=db
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"wrote {out}: 3 closed trades, 2 strategies"), result.stdout
    page_text = out.read_text(encoding="utf-8")
    # No external script, style or CDN: plotly's JavaScript is inside the page, and outside
    # the scripts' bodies the markup names no URL at all. (plotly.js itself holds URLs for
    # map tiles and icons, used by map charts only: the browser run below proves none is
    # fetched.)
    markup = re.sub(r"<script\b[^>]*>.*?</script>", "<script></script>", page_text, flags=re.S)
    assert "<script src" not in page_text and "<link" not in markup
    assert "http:" not in markup and "https:" not in markup and "//" not in markup
    assert page_text.count("<script") > 1
    # Text is escaped: the HTML strategy name never becomes markup.
    assert EVIL not in page_text
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;&amp;" in page_text

    attempted: list[str] = []
    blocked: list[str] = []
    errors: list[str] = []

    def guard(route: Route) -> None:
        url = route.request.url
        if url.startswith(("file:", "data:", "blob:", "about:")):
            route.continue_()
        else:
            blocked.append(url)
            route.abort()

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=browser_path, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.route("**/*", guard)
            page.on("request", lambda request: attempted.append(request.url))
            page.on(
                "console",
                lambda message: errors.append(message.text) if message.type == "error" else None,
            )
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(out.as_uri(), wait_until="load")
            # Three charts per currency (equity with drawdown, P&L by day, MAE/MFE) for
            # BNB, USD and USDT: wait until plotly has drawn all nine.
            page.wait_for_function(
                "document.querySelectorAll('.js-plotly-plot .main-svg').length >= 9 * 2"
                " && document.querySelectorAll('.js-plotly-plot').length === 9",
                timeout=60_000,
            )
            charts: list[dict[str, Any]] = page.evaluate(
                """() => Array.from(document.querySelectorAll('.js-plotly-plot')).map(d => ({
                    id: d.id,
                    traces: d.data.length,
                    svg: d.querySelectorAll('.main-svg').length,
                    points: d.querySelectorAll('.point').length,
                    bars: d.querySelectorAll('.bars .point').length,
                }))"""
            )
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "report.png"), full_page=True)
            tables = page.evaluate("document.querySelectorAll('table').length")
            cell = page.evaluate(
                "Array.from(document.querySelectorAll('td')).some(td => td.textContent === "
                + repr(EVIL)
                + ")"
            )
        finally:
            browser.close()

    assert blocked == [], blocked
    assert [url for url in attempted if not url.startswith(("file:", "data:", "blob:"))] == []
    assert errors == [], errors
    by_id = {chart["id"].split("-", 2)[2]: chart for chart in charts}
    assert sorted(by_id) == sorted(
        f"{kind}-{ccy}" for kind in ("equity", "daily", "maemfe") for ccy in ("BNB", "USD", "USDT")
    )
    assert all(chart["svg"] >= 1 for chart in charts), charts
    # Equity: a curve and a drawdown per strategy with closed trades in the currency.
    assert by_id["equity-USD"]["traces"] == 4  # alpha and the HTML-named strategy
    assert by_id["equity-USDT"]["traces"] == 2  # alpha (beta's trade is still open)
    assert by_id["equity-BNB"]["traces"] == 0  # no trade settles in BNB
    # P&L by day: a bar trace per strategy with P&L in the currency.
    assert by_id["daily-USD"]["traces"] == 3  # alpha, beta, the HTML-named one
    # alpha Mon and Tue, beta Tue, the HTML-named one Wed (its close at 17:00 CST)
    assert by_id["daily-USD"]["bars"] == 4
    assert by_id["daily-BNB"]["traces"] == 1
    # MAE/MFE: a marker trace per strategy with such closed trades.
    assert by_id["maemfe-USD"]["traces"] == 2
    assert by_id["maemfe-USDT"]["traces"] == 1
    assert tables == 2  # statistics and trades
    assert cell, "the HTML-named strategy is shown as text in a table cell"
    assert (ARTIFACTS / "report.png").stat().st_size > 10_000


def test_report_of_an_empty_ledger_and_the_trade_cap(tmp_path: Path) -> None:
    empty = tmp_path / "empty.db"
    assert run("migrate", db=empty).returncode == 0
    out = tmp_path / "empty.html"
    result = run("report", "--out", str(out), db=empty)
    assert result.returncode == 0, result.stderr
    assert "Nothing to show" in out.read_text(encoding="utf-8")
    db = _session(tmp_path)
    capped = tmp_path / "capped.html"
    assert run("report", "--out", str(capped), "--max-trades", "1", db=db).returncode == 0
    text = capped.read_text(encoding="utf-8")
    assert "The latest 1 of 3 closed trades" in text
