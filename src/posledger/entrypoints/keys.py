"""``posledger keys create|list|revoke``: keys of the HTTP API (docs/service.md, Keys)."""

from __future__ import annotations

from typing import Any

import click

from . import cli as shell

__all__ = ["register"]


def _when(ns: Any) -> str:
    from ..domain.timestamps import format_ts

    return "-" if ns is None else format_ts(int(ns))


@click.group(short_help="Keys of the HTTP API: create, list, revoke.")
def keys() -> None:
    """Keys of the HTTP API (`posledger serve`): an admin key, or a strategy's key that
    acts for that strategy alone (docs/service.md, Keys).

    \b
    Example:
      posledger keys create --strategy mes-orb-01 --name orb-host-1
    """


@keys.command(name="create", short_help="Make a key; it is printed once.")
@click.option("--admin", is_flag=True, help="A key that may do everything.")
@click.option("--strategy", help="A key that acts for this registered strategy only.")
@click.option("--name", help="What the key is for (shown by `keys list`).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def create(
    ctx: click.Context, admin: bool, strategy: str | None, name: str | None, as_json: bool
) -> None:
    """Make a key of the HTTP API and print it. It is shown this once: only a hash of it
    is stored. Send it as `Authorization: Bearer KEY`.

    \b
    Example:
      posledger keys create --admin --name ops
      posledger keys create --strategy mes-orb-01
    """
    if admin == (strategy is not None):
        raise click.UsageError("say --admin or --strategy NAME (one of them)")
    with shell._ledger(ctx, create=True) as ledger:
        info, token = ledger.create_key(admin=admin, strategy=strategy, name=name)
    if as_json:
        shell._json({**info, "key": token})
        return
    who = "admin" if admin else f"strategy {strategy}"
    click.echo(f"created key {info['key_id']} ({who}); it is shown this once:")
    click.echo(token)


@keys.command(name="list", short_help="Every key, without its secret.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def list_keys(ctx: click.Context, as_json: bool) -> None:
    """Every key of the HTTP API, revoked ones included, oldest first (never a secret).

    \b
    Example:
      posledger keys list --json
    """
    with shell._ledger(ctx) as ledger:
        rows = ledger.api_keys()
    if as_json:
        shell._json(rows)
        return
    render = shell._render()
    columns = ["key_id", "scope", "strategy", "name", "created", "revoked"]
    cells = [
        [
            row["key_id"],
            row["scope"],
            row["strategy"] or "-",
            row["name"] or "-",
            _when(row["created_at"]),
            _when(row["revoked_at"]),
        ]
        for row in rows
    ]
    table = [render.Column(column, keep=column in columns[:3]) for column in columns]
    wide = shell._wide(ctx)
    render.console(wide=wide).print(render.fit_table("Keys", table, cells, wide=wide))


@keys.command(name="revoke", short_help="Refuse a key from now on.")
@click.argument("key_id")
@click.pass_context
def revoke(ctx: click.Context, key_id: str) -> None:
    """Revoke a key: every request with it is refused from now on. Exits 1 for an
    unknown key id.

    \b
    Example:
      posledger keys revoke 3f9a0c1d2b4e5f60
    """
    with shell._ledger(ctx, create=True) as ledger:
        info = ledger.revoke_key(key_id)
    click.echo(f"revoked key {info['key_id']} at {_when(info['revoked_at'])}")


def register(group: click.Group) -> None:
    group.add_command(keys)
