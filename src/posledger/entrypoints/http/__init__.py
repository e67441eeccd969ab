"""``posledger serve``: the ledger as an HTTP service (docs/service.md)."""
