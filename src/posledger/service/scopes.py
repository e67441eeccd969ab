"""What a strategy key may do (docs/service.md, What a strategy key may do).

A strategy key acts for one strategy: it registers and cancels that strategy's orders,
sends fills that belong to it (by its registered order, or, for a fill without a
registered order, by naming it), sets its brackets, and settles its commands. Everything
that moves or checks another strategy's position, or the books as a whole (transfers,
reconciliation, halts, reference data, marks, sweeps), is an admin key's. An admin key
may do everything.
"""

from __future__ import annotations

from collections.abc import Callable

from ..domain.inputs import Cancel, CommandAck, CommandFailed, Fill, Input, SetBracket
from ..domain.refdata import Order
from .keys import Principal

__all__ = ["refusal"]

Owner = Callable[[str], str | None]
"""The strategy that owns an order (by client order id) or a command (by id), if known."""


def refusal(
    principal: Principal,
    item: Input,
    *,
    order_owner: Owner,
    command_owner: Owner,
    registered: dict[str, str] | None = None,
) -> str | None:
    """Why ``principal`` may not send ``item``; None when it may. ``registered``: the
    orders registered earlier in the same request (client order id -> strategy), which
    the ledger does not know yet."""
    own = principal.strategy
    if own is None:
        return None
    earlier = registered if registered is not None else {}

    def owner(client_order_id: str) -> str | None:
        found = earlier.get(client_order_id)
        return found if found is not None else order_owner(client_order_id)

    if isinstance(item, Order):
        if item.strategy != own:
            return f"a key of strategy {own} registers orders for {own} only, not {item.strategy}"
        found = order_owner(item.client_order_id)
        if found is not None and found != own:
            return f"order {item.client_order_id} is strategy {found}'s"
        earlier[item.client_order_id] = own
        return None
    if isinstance(item, Cancel):
        found = owner(item.client_order_id)
        if found != own:
            whose = "not registered" if found is None else f"strategy {found}'s"
            return f"order {item.client_order_id} is {whose}: a key of {own} cancels {own}'s"
        return None
    if isinstance(item, Fill):
        if item.client_order_id is not None:
            found = owner(item.client_order_id)
            if found is not None:
                if found == own:
                    return None
                return f"order {item.client_order_id} is strategy {found}'s: its fills are too"
        if item.strategy == own:
            return None
        return (
            f"a key of strategy {own} sends {own}'s fills only: a fill names {own}'s "
            "registered order or its strategy"
        )
    if isinstance(item, SetBracket):
        if item.strategy != own:
            return f"a key of strategy {own} sets {own}'s brackets only, not {item.strategy}'s"
        return None
    if isinstance(item, CommandAck | CommandFailed):
        found = command_owner(item.command_id)
        if found != own:
            whose = "unknown" if found is None else f"strategy {found}'s"
            return f"command {item.command_id} is {whose}: a key of {own} settles {own}'s"
        return None
    kind = type(item).__name__.lower()
    return f"only an admin key may send a {kind}: this key acts for strategy {own}"
