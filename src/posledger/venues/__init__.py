"""Brokers in (docs/venues/): for each venue a pure parser from the venue's own messages
to the ledger's input records (docs/format.md), tested on recorded payloads."""
