"""What the journal records a decision did: plain JSON-able dicts.

The journal keeps, beside each accepted input, the effects it had. Replay re-decides the
input and compares its effects with these, so they are written by one function only.
A leg's quantity is ``|delta|`` and its price the fill's, so neither is repeated.
"""

from __future__ import annotations

from typing import Any

from ..domain.decisions import (
    FillDecision,
    Leg,
    MarkDecision,
    ReconcileDecision,
    TransferDecision,
)
from ..domain.numbers import fmt, fmt_opt
from ..domain.positions import Trade

__all__ = ["fill_effects", "mark_effects", "reconcile_effects", "transfer_effects"]


def _legs(legs: tuple[Leg, ...], with_source: bool = False) -> list[dict[str, Any]]:
    return [
        {
            "strategy": leg.key.strategy,
            "position_side": leg.key.position_side,
            "trade_id": leg.trade_id,
            "role": leg.role,
            "delta": fmt(leg.delta),
            **({"price": fmt(leg.price), "source": leg.source} if with_source else {}),
            "commission": fmt(leg.commission),
            "commission_currency": leg.commission_currency,
            "realized": fmt(leg.realized),
            **({"adjustment": True} if leg.adjustment else {}),
        }
        for leg in legs
    ]


def _closed(trades: tuple[Trade, ...]) -> list[dict[str, Any]]:
    return [
        {"trade_id": t.trade_id, "close_reason": t.close_reason} for t in trades if not t.is_open
    ]


def fill_effects(decision: FillDecision) -> dict[str, Any]:
    effects: dict[str, Any] = {
        "strategy": decision.strategy,
        "position_side": decision.position_side,
        "intent": None if decision.intent is None else decision.intent,
        "legs": _legs(decision.legs),
        "opened": list(decision.opened),
        "closed": _closed(decision.trades),
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


MAE_RULE = 2
"""How MAE/MFE are valued (docs/accounting.md, Trades): 2 counts every price a trade saw,
its fills' included, at its peak quantity. Mark entries journaled before rule 2 carry no
``mae_rule``: replay values them by the current rule and does not compare their effects."""


def mark_effects(decision: MarkDecision) -> dict[str, Any]:
    return {
        "mae_rule": MAE_RULE,
        "trades": [
            {
                "trade_id": t.trade_id,
                "mae": fmt_opt(t.mae),
                "mfe": fmt_opt(t.mfe),
                "mae_price": fmt_opt(t.mae_price),
                "mfe_price": fmt_opt(t.mfe_price),
            }
            for t in decision.trades
        ],
    }


def transfer_effects(decision: TransferDecision) -> dict[str, Any]:
    return {
        "position_side": decision.position_side,
        "price": fmt(decision.price),
        "legs": _legs(decision.legs),
        "opened": list(decision.opened),
        "closed": _closed(decision.trades),
    }


def reconcile_effects(decision: ReconcileDecision) -> dict[str, Any]:
    check = decision.check
    effects: dict[str, Any] = {
        "kind": check.kind,
        "ledger_quantity": fmt(check.ledger_quantity),
        "ledger_avg_price": fmt_opt(check.ledger_avg_price),
        "holders": {strategy: fmt(quantity) for strategy, quantity in check.holders},
        "action": check.action,
        "detail": check.detail,
    }
    if decision.halt:
        effects["halt"] = True
    if decision.orphan is not None:
        orphan = decision.orphan
        effects["orphan"] = {
            "quantity": fmt(orphan.quantity),
            "strategy": orphan.strategy,
            "price": fmt_opt(orphan.price),
            "detail": orphan.detail,
        }
    if decision.legs:
        effects["legs"] = _legs(decision.legs, with_source=True)
        effects["opened"] = list(decision.opened)
        effects["closed"] = _closed(decision.trades)
    return effects
