"""The paper venue: a simulated broker that fills orders against a price stream.

:mod:`posledger.paper.prices` reads ticks and bars from CSV or JSONL files, and
:mod:`posledger.paper.engine` holds the open orders of a :class:`~posledger.paper.engine.Venue`
and matches them against each price event by documented, deterministic rules, producing
executions with exact Decimal prices and commissions. The venue keeps its own positions, as a
broker would, and its whole state round-trips through JSON so that a restarted venue never
fills one order twice.
"""
