"""A hand-checked multi-day, multi-strategy, three-currency session for ``pnl`` and
``stats`` (docs/pnl.md), with every expected number worked out by hand below.

Times: America/Chicago is on CST (UTC-6) from 2026-03-02 to 2026-03-04. With
``--session-start 17:00`` a trading day D runs from 17:00 on D-1 to 17:00 on D, Chicago
wall clock.

Futures account F-1 (LIVE), ESM6 (multiplier 50, USD):
  e1  alpha BUY  2 @ 5000  Mon 09:00 CST (15:00Z)  comm 2.50 USD   day Mon 03-02
  e2  alpha SELL 1 @ 5010  Mon 16:30 CST (22:30Z)  comm 1.25 USD   day Mon 03-02
      realizes (5010 - 5000) x 1 x 50 = +500
  e3  alpha SELL 1 @ 4990  Mon 17:30 CST (23:30Z)  comm 1.25 USD   day Tue 03-03 (after 17:00)
      realizes (4990 - 5000) x 1 x 50 = -500; alpha's trade closes: net 500 - 500 - 5 = -5
  e4  beta  BUY  1 @ 5005  Tue 10:00 CST (16:00Z)  comm 1.25 USD   day Tue 03-03, stays open
  (mark ESM6 5004 at Mon 16:00Z while alpha is long: only MAE/MFE, the later mark wins)
  mark ESM6 5015           Tue 15:00 CST (21:00Z)                  day Tue 03-03
      beta unrealized (5015 - 5005) x 1 x 50 = +500

Crypto account C-1 (PAPER), BTCUSDT.P (perpetual, multiplier 1, USDT):
  c1  alpha BUY  1   @ 60500  Mon 11:00 CST (17:00Z)  comm 2 USDT     day Mon 03-02
  c2  alpha SELL 1   @ 60400  Mon 16:59 CST (22:59Z)  comm 0.01 BNB   day Mon 03-02
      realizes (60400 - 60500) x 1 = -100; trade net -100 - 2 = -102 USDT (BNB kept apart)
  b1  beta  BUY  0.5 @ 60000  Mon 12:00 CST (18:00Z)  comm 3 USDT     day Mon 03-02
  b2  beta  SELL 0.2 @ 61000  Tue 18:00 CST (Wed 00:00Z) comm 1.2 USDT  day Wed 03-04
      realizes (61000 - 60000) x 0.2 = +200; 0.3 stays open
  (mark BTCUSDT.P 60450 at Mon 17:30Z while alpha is long: only MAE/MFE)
  mark BTCUSDT.P 59000     Wed 08:00 CST (14:00Z)                  day Wed 03-04
      beta unrealized (59000 - 60000) x 0.3 = -300
"""

from __future__ import annotations

import json
from typing import Any

RECORDS: list[dict[str, Any]] = [
    {"type": "account", "account": "F-1", "venue": "CME", "mode": "LIVE",
     "position_mode": "netting"},
    {"type": "account", "account": "C-1", "venue": "BINANCE", "mode": "PAPER",
     "position_mode": "netting"},
    {"type": "instrument", "instrument": "ESM6", "kind": "future", "multiplier": "50",
     "quote_currency": "USD", "settlement_currency": "USD"},
    {"type": "instrument", "instrument": "BTCUSDT.P", "kind": "perpetual", "multiplier": "1",
     "quote_currency": "USDT", "settlement_currency": "USDT"},
    {"type": "strategy", "strategy": "alpha"},
    {"type": "strategy", "strategy": "beta"},
]  # fmt: skip


def _fill(
    exec_id: str, account: str, instrument: str, strategy: str, side: str, qty: str,
    price: str, ts: str, commission: str, currency: str | None = None,
) -> dict[str, Any]:  # fmt: skip
    record = {
        "type": "fill",
        "exec_id": exec_id,
        "account": account,
        "instrument": instrument,
        "strategy": strategy,
        "side": side,
        "quantity": qty,
        "price": price,
        "ts": ts,
        "commission": commission,
    }
    if currency is not None:
        record["commission_currency"] = currency
    return record


RECORDS += [
    _fill("e1", "F-1", "ESM6", "alpha", "BUY", "2", "5000", "2026-03-02T15:00:00Z", "2.50"),
    # marks while alpha's trades are open (MAE/MFE); later marks replace them
    {"type": "mark", "instrument": "ESM6", "price": "5004", "ts": "2026-03-02T16:00:00Z"},
    _fill("c1", "C-1", "BTCUSDT.P", "alpha", "BUY", "1", "60500", "2026-03-02T17:00:00Z", "2"),
    {"type": "mark", "instrument": "BTCUSDT.P", "price": "60450", "ts": "2026-03-02T17:30:00Z"},
    _fill("b1", "C-1", "BTCUSDT.P", "beta", "BUY", "0.5", "60000", "2026-03-02T18:00:00Z", "3"),
    _fill("e2", "F-1", "ESM6", "alpha", "SELL", "1", "5010", "2026-03-02T22:30:00Z", "1.25"),
    _fill(
        "c2", "C-1", "BTCUSDT.P", "alpha", "SELL", "1", "60400", "2026-03-02T22:59:00Z", "0.01",
        "BNB",
    ),
    _fill("e3", "F-1", "ESM6", "alpha", "SELL", "1", "4990", "2026-03-02T23:30:00Z", "1.25"),
    _fill("e4", "F-1", "ESM6", "beta", "BUY", "1", "5005", "2026-03-03T16:00:00Z", "1.25"),
    {"type": "mark", "instrument": "ESM6", "price": "5015", "ts": "2026-03-03T21:00:00Z"},
    _fill("b2", "C-1", "BTCUSDT.P", "beta", "SELL", "0.2", "61000", "2026-03-04T00:00:00Z", "1.2"),
    {"type": "mark", "instrument": "BTCUSDT.P", "price": "59000", "ts": "2026-03-04T14:00:00Z"},
]  # fmt: skip

LINES = [json.dumps(record) for record in RECORDS]

CHICAGO = {"tz": "America/Chicago", "session_start": "17:00"}


def row(
    strategy: str, currency: str, period: str, gross: str, commissions: str, realized: str,
    unrealized: str, total: str, cumulative: str,
) -> dict[str, str]:  # fmt: skip
    return {
        "strategy": strategy,
        "currency": currency,
        "period": period,
        "period_start": period,
        "gross_realized": gross,
        "commissions": commissions,
        "realized": realized,
        "unrealized": unrealized,
        "cash_flows": "0",
        "total": total,
        "cumulative": cumulative,
    }


# --by strategy --period day --tz America/Chicago --session-start 17:00. Rows by currency,
# then strategy, then day.
DAILY_CHICAGO = [
    # BNB: c2's commission, paid Mon 16:59 CST (day Mon): -0.01.
    row("alpha", "BNB", "2026-03-02", "0", "0.01", "-0.01", "0", "-0.01", "-0.01"),
    # USD alpha Mon: e2 +500 gross; commissions e1 2.50 + e2 1.25 = 3.75; 500 - 3.75 = 496.25.
    row("alpha", "USD", "2026-03-02", "500", "3.75", "496.25", "0", "496.25", "496.25"),
    # USD alpha Tue: e3 at 17:30 Mon CST is Tue's: -500 - 1.25 = -501.25; cumulative
    # 496.25 - 501.25 = -5 (the trade's net).
    row("alpha", "USD", "2026-03-03", "-500", "1.25", "-501.25", "0", "-501.25", "-5"),
    # USD beta Tue: e4's commission -1.25, unrealized +500 at Tue's mark: 498.75.
    row("beta", "USD", "2026-03-03", "0", "1.25", "-1.25", "500", "498.75", "498.75"),
    # USDT alpha Mon: c1 and c2: -100 gross, c1's 2 USDT commission: -102.
    row("alpha", "USDT", "2026-03-02", "-100", "2", "-102", "0", "-102", "-102"),
    # USDT beta Mon: b1's commission: -3.
    row("beta", "USDT", "2026-03-02", "0", "3", "-3", "0", "-3", "-3"),
    # USDT beta Wed: b2 (Tue 18:00 CST is Wed's) +200 - 1.2 = 198.8; unrealized -300 at
    # Wed's mark: 198.8 - 300 = -101.2; cumulative -3 - 101.2 = -104.2.
    row("beta", "USDT", "2026-03-04", "200", "1.2", "198.8", "-300", "-101.2", "-104.2"),
]

# The same in UTC days (session start 00:00): e3 (23:30Z Mon) is Monday's, so alpha's USD
# Monday is 500 - 500 - 2.50 - 1.25 - 1.25 = -5; b2 (00:00Z Wed) is Wednesday's.
DAILY_UTC_USD = [
    row("alpha", "USD", "2026-03-02", "0", "5", "-5", "0", "-5", "-5"),
    row("beta", "USD", "2026-03-03", "0", "1.25", "-1.25", "500", "498.75", "498.75"),
]


def whole(rows: list[dict[str, str]]) -> list[dict[str, str]]:
    """Rows without a period, as ``pnl`` gives with no --period."""
    return [{k: v for k, v in item.items() if k not in ("period", "period_start")} for item in rows]


# No --period: one row per strategy and currency, the days' sums.
TOTALS = whole(
    [
        row("alpha", "BNB", "", "0", "0.01", "-0.01", "0", "-0.01", "-0.01"),
        # alpha USD: 496.25 - 501.25 = -5
        row("alpha", "USD", "", "0", "5", "-5", "0", "-5", "-5"),
        row("beta", "USD", "", "0", "1.25", "-1.25", "500", "498.75", "498.75"),
        row("alpha", "USDT", "", "-100", "2", "-102", "0", "-102", "-102"),
        # beta USDT: -3 + (-101.2) = -104.2
        row("beta", "USDT", "", "200", "4.2", "195.8", "-300", "-104.2", "-104.2"),
    ]
)
