"""What the journal records a decision did: plain JSON-able dicts.

The journal keeps, beside each accepted input, the effects it had. Replay re-decides the
input and compares its effects with these, so they are written by one function only.
A leg's quantity is ``|delta|`` and its price the fill's, so neither is repeated.
"""

from __future__ import annotations

from typing import Any

from ..domain.events import FillDecision, MarkDecision
from ..domain.numbers import fmt, fmt_opt

__all__ = ["fill_effects", "mark_effects"]


def fill_effects(decision: FillDecision) -> dict[str, Any]:
    effects: dict[str, Any] = {
        "strategy": decision.strategy,
        "position_side": decision.position_side,
        "intent": None if decision.intent is None else decision.intent,
        "legs": [
            {
                "strategy": leg.key.strategy,
                "position_side": leg.key.position_side,
                "trade_id": leg.trade_id,
                "role": leg.role,
                "delta": fmt(leg.delta),
                "commission": fmt(leg.commission),
                "commission_currency": leg.commission_currency,
                "realized": fmt(leg.realized),
                **({"adjustment": True} if leg.adjustment else {}),
            }
            for leg in decision.legs
        ],
        "opened": list(decision.opened),
        "closed": [
            {"trade_id": t.trade_id, "close_reason": t.close_reason}
            for t in decision.trades
            if not t.is_open
        ],
    }
    if decision.anomalies:
        effects["anomalies"] = [
            {
                "kind": a.kind,
                "strategy": a.key.strategy,
                "position_side": a.key.position_side,
                "quantity": fmt(a.quantity),
                "detail": a.detail,
            }
            for a in decision.anomalies
        ]
    return effects


def mark_effects(decision: MarkDecision) -> dict[str, Any]:
    return {
        "trades": [
            {
                "trade_id": t.trade_id,
                "mae": fmt_opt(t.mae),
                "mfe": fmt_opt(t.mfe),
                "mae_price": fmt_opt(t.mae_price),
                "mfe_price": fmt_opt(t.mfe_price),
            }
            for t in decision.trades
        ]
    }
