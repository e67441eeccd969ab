"""``posledger import csv``: a broker's CSV export through a column mapping
(docs/venues/csv.md)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from . import cli as shell

__all__ = ["register"]

EXIT_PROBLEM = 1


@click.group(name="import", short_help="Bring in a broker's CSV export.")
def import_group() -> None:
    """Bring in what another system holds: a broker's CSV export of executions, read
    through a column mapping (docs/venues/csv.md).

    \b
    Example:
      posledger import csv trades.csv --mapping ibkr.toml --dry-run
    """


@import_group.command(name="csv", short_help="A CSV export of executions, as fills.")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--mapping",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The TOML mapping: which column is which fill field (docs/venues/csv.md).",
)
@click.option("--dry-run", is_flag=True, help="Show what would be applied; apply nothing.")
@click.option(
    "--limit",
    default=10,
    show_default=True,
    type=click.IntRange(0, 10_000),
    help="Records a dry run shows.",
)
@click.option(
    "--batch-size",
    default=500,
    show_default=True,
    type=click.IntRange(1, 10_000),
    help="Fills per transaction.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def import_csv(
    ctx: click.Context,
    file: Path,
    mapping: Path,
    dry_run: bool,
    limit: int,
    batch_size: int,
    as_json: bool,
) -> None:
    """Read FILE, a broker's CSV export of executions, through the column mapping, and
    apply its rows as fills: each once, however often the file is imported. A row that
    cannot be a fill is refused with its row number and kept (`posledger rejected`);
    the others are still applied. --dry-run reads the file and shows the first records
    and every refused row, applying nothing: it checks the file against the mapping,
    not against the books (an unknown account shows only when applied). Exits 1 when a
    row was refused.

    \b
    Example:
      posledger import csv trades.csv --mapping ibkr.toml --dry-run
      posledger import csv trades.csv --mapping ibkr.toml
    """
    from ..venues.csvmap import MappingError, load_mapping, parse_csv, preview

    try:
        chosen = load_mapping(mapping.read_text(encoding="utf-8"))
    except (MappingError, UnicodeDecodeError) as exc:
        raise click.UsageError(f"{mapping}: {exc}") from None
    data = file.read_bytes()
    if dry_run and chosen.symbols_venue is None:  # the file against the mapping alone
        _dry(ctx, preview(data, chosen, limit=limit).as_dict(), as_json)
        return
    with shell._ledger(ctx, create=not dry_run) as ledger:
        symbols = None
        if chosen.symbols_venue is not None:
            symbols = ledger.symbol_map(chosen.symbols_venue)
        if dry_run:
            _dry(ctx, preview(data, chosen, symbols=symbols, limit=limit).as_dict(), as_json)
            return
        parsed = parse_csv(data, chosen, symbols=symbols)
        source = f"csv {file}"
        report = ledger.ingest(
            [json.dumps(record) for record in parsed.fills],
            source=source,
            batch_size=batch_size,
        )
        for rejection in parsed.rejections:
            ledger.reject(rejection.raw, rejection.reason, source)
    done: dict[str, Any] = {
        "file": str(file),
        "rows": parsed.extra.get("rows", 0),
        "skipped": parsed.extra.get("skipped", 0),
        "applied": report.applied,
        "duplicate": report.duplicate,
        "rejected": report.rejected + len(parsed.rejections),
        "rejections": [r.reason for r in parsed.rejections]
        + [f"fill {n}: {why}" for n, why in report.rejections],
    }
    if as_json:
        shell._json(done)
    else:
        click.echo(
            f"{file}: {done['rows']} rows: {done['applied']} applied, {done['duplicate']} "
            f"duplicate, {done['rejected']} rejected, {done['skipped']} skipped"
        )
        for reason in done["rejections"]:
            click.echo(f"  {reason}", err=True)
    if done["rejected"]:
        ctx.exit(EXIT_PROBLEM)


def _dry(ctx: click.Context, shown: dict[str, Any], as_json: bool) -> None:
    if as_json:
        shell._json(shown)
    else:
        click.echo(
            f"dry run: {shown['rows']} rows: {shown['fills']} fills, {shown['rejected']} "
            f"refused, {shown['skipped']} skipped; nothing applied"
        )
        for record in shown["records"]:
            click.echo(json.dumps(record))
        for rejection in shown["rejections"]:
            click.echo(f"  {rejection['reason']}", err=True)
    if shown["rejected"]:
        ctx.exit(EXIT_PROBLEM)


def register(group: click.Group) -> None:
    group.add_command(import_group)
