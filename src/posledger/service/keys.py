"""Keys of the HTTP API (docs/service.md, Keys).

A key is ``plk_<id>_<secret>``: a public id, by which it is found, and 256 random bits.
Only the SHA-256 of the secret is stored, and a presented secret is compared with it in
constant time. A key is an admin key or a strategy's; a strategy key acts for that one
strategy only (docs/service.md, What a strategy key may do).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from ..errors import NotFound, UsageError
from ..ports import KeyRow, Store

__all__ = ["ADMIN", "STRATEGY", "Principal", "authenticate", "create", "revoke", "view"]

ADMIN = "admin"
STRATEGY = "strategy"
PREFIX = "plk"
MAX_TOKEN = 200
"""Longer than any key this makes: a presented token longer than this is no key."""


@dataclass(frozen=True)
class Principal:
    """Who a request acts as: an admin key, or a strategy's key."""

    key_id: str
    name: str | None
    strategy: str | None
    """The strategy a strategy key acts for; None for an admin key."""

    @property
    def admin(self) -> bool:
        return self.strategy is None


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create(
    store: Store, *, admin: bool, strategy: str | None, name: str | None, now: int
) -> tuple[KeyRow, str]:
    """A new key (stored) and its token, which is shown once and never stored."""
    if admin == (strategy is not None):
        raise UsageError("a key is either an admin key or a strategy's: say one of them")
    if name is not None and not (0 < len(name) <= 128):
        raise UsageError("a key's name is 1 to 128 characters")
    key_id, secret = secrets.token_hex(8), secrets.token_urlsafe(32)
    row = KeyRow(
        key_id=key_id,
        name=name,
        scope=ADMIN if admin else STRATEGY,
        strategy=strategy,
        secret_hash=_hash(secret),
        created_at=now,
        revoked_at=None,
    )
    store.add_key(row)
    return row, f"{PREFIX}_{key_id}_{secret}"


def authenticate(store: Store, token: str) -> Principal | None:
    """The key ``token`` is, if it is a key that was made here and is not revoked."""
    if len(token) > MAX_TOKEN:
        return None
    prefix, _, rest = token.partition("_")
    key_id, _, secret = rest.partition("_")
    if prefix != PREFIX or not key_id or not secret:
        return None
    row = store.key(key_id)
    # The hash is compared even for an unknown id, so that timing tells nothing either way.
    stored = row.secret_hash if row is not None else "0" * 64
    if not hmac.compare_digest(_hash(secret), stored) or row is None:
        return None
    if row.revoked_at is not None:
        return None
    return Principal(row.key_id, row.name, row.strategy)


def revoke(store: Store, key_id: str, now: int) -> KeyRow:
    found = store.revoke_key(key_id, now)
    if found is None:
        raise NotFound(f"no key {key_id!r}")
    return found


def view(row: KeyRow) -> dict[str, object]:
    """A key as listed: never its hash."""
    return {
        "key_id": row.key_id,
        "name": row.name,
        "scope": row.scope,
        "strategy": row.strategy,
        "created_at": row.created_at,
        "revoked_at": row.revoked_at,
    }
