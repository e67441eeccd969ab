"""``--help`` explains every command, the list of commands generated from the CLI itself.

The commands are found by walking the click group ``posledger.entrypoints.cli.cli``
(nested groups included, hidden commands left out), so a command added later is covered
without touching this file. Each one's help is read through the installed console script,
as a user would: ``posledger [GROUP...] COMMAND --help`` must exit 0 and show

* a description: a sentence or more of its own, not just the usage line and options;
* an example: a line starting with ``Example`` (``Example:``, ``Examples:``), followed by
  at least one indented command line that runs this very command (``posledger [--db URL]
  [GROUP...] COMMAND ...``). An example of an input line alone (``Example line:`` with a
  JSON object) shows the format, not how to run the command.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import cache

import click
import pytest

from posledger.entrypoints.cli import cli

from .scenario import run

CommandPath = tuple[str, ...]


def walk(group: click.Group, path: CommandPath = ()) -> Iterator[CommandPath]:
    """Every visible command under ``group``, as the words that name it, depth first."""
    ctx = click.Context(group, info_name="posledger")
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        if command is None or command.hidden:
            continue
        yield (*path, name)
        if isinstance(command, click.Group):
            yield from walk(command, (*path, name))


COMMANDS: list[CommandPath] = list(walk(cli))


@cache
def help_text(path: CommandPath) -> str:
    result = run(*path, "--help")
    assert result.returncode == 0, (path, result.returncode, result.stderr[-3000:])
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    assert result.stdout.startswith(f"Usage: posledger {' '.join(path)}".rstrip()), result.stdout
    return result.stdout


def description(text: str) -> str:
    """The help's own prose: between the usage line and the first section (Options,
    Commands, Example...), blank lines and the usage's continuation left out."""
    body = text.split("\n\n", 1)[1] if "\n\n" in text else ""
    prose: list[str] = []
    for line in body.splitlines():
        stripped = line.strip()
        if re.match(r"(Options|Commands|Arguments|Examples?)\b.*:$", stripped):
            break
        if stripped:
            prose.append(stripped)
    return " ".join(prose)


def examples(text: str) -> list[str]:
    """The lines of every ``Example...:`` block (joined across trailing backslashes)."""
    found: list[str] = []
    lines = text.splitlines()
    for number, line in enumerate(lines):
        heading = re.match(r"(\s*)Examples?\b[^:]*:\s*$", line)
        if heading is None:
            continue
        indent = len(heading.group(1))
        pending = ""
        for following in lines[number + 1 :]:
            if not following.strip():
                break
            if len(following) - len(following.lstrip()) <= indent:
                break
            pending += following.strip()
            if pending.endswith("\\"):
                pending = pending[:-1].rstrip() + " "
                continue
            found.append(pending)
            pending = ""
        if pending:
            found.append(pending.strip())
    return found


def runs(line: str, path: CommandPath) -> bool:
    """Whether an example line runs the command ``path``: ``posledger``, global options
    (``--db URL``), then the command's words in order."""
    words = line.split()
    if not words or words[0] != "posledger":
        return False
    rest = words[1:]
    while rest and rest[0].startswith("-"):  # global options and their values
        rest = rest[2:] if "=" not in rest[0] else rest[1:]
    return tuple(rest[: len(path)]) == path


def _ids(path: CommandPath) -> str:
    return " ".join(path)


def test_the_commands_are_found() -> None:
    """The walk finds what ``posledger --help`` lists, so the parametrization below is not
    silently empty or stale."""
    names = {path[0] for path in COMMANDS}
    assert {"ingest", "positions", "verify"} <= names, names
    listed = help_text(())
    section = listed.split("\nCommands:\n", 1)
    assert len(section) == 2, listed
    shown = {  # a name at the indentation of names (a wrapped description is deeper)
        line.split()[0]
        for line in section[1].splitlines()
        if line.startswith("  ") and not line.startswith("   ")
    }
    assert shown == names


def test_the_walk_reaches_nested_groups_and_skips_hidden_commands() -> None:
    @click.group()
    def top() -> None: ...

    @top.group()
    def sub() -> None: ...

    @sub.command()
    def leaf() -> None: ...

    @top.command(hidden=True)
    def secret() -> None: ...

    @top.command()
    def plain() -> None: ...

    assert list(walk(top)) == [("plain",), ("sub",), ("sub", "leaf")]


def test_the_checks_refuse_help_without_description_or_example() -> None:
    """The parsing above tells a command with a description and a runnable example from
    one without (so the tests below can fail)."""
    from click.testing import CliRunner

    @click.group(name="posledger")
    def top() -> None: ...

    @top.command()
    def bare() -> None: ...

    @top.command()
    def format_only() -> None:
        """Read lines and apply them to the ledger.

        \b
        Example line:
          {"type":"fill","exec_id":"x-1"}
        """

    @top.command()
    def good() -> None:
        """Show the good things in the ledger.

        \b
        Example:
          posledger --db sqlite:///my.db good \\
              --json
        """

    def shown(name: str) -> str:
        result = CliRunner().invoke(top, [name, "--help"], prog_name="posledger")
        assert result.exit_code == 0, result.output
        return result.output

    assert description(shown("bare")) == ""
    assert examples(shown("bare")) == []
    assert description(shown("format-only")) == "Read lines and apply them to the ledger."
    assert examples(shown("format-only")) == ['{"type":"fill","exec_id":"x-1"}']
    assert not runs(examples(shown("format-only"))[0], ("format-only",))
    assert examples(shown("good")) == ["posledger --db sqlite:///my.db good --json"]
    assert runs("posledger --db sqlite:///my.db good --json", ("good",))
    assert not runs("posledger --db sqlite:///my.db good --json", ("bad",))
    assert not runs("posledger sub", ("sub", "leaf"))
    assert runs("posledger sub leaf x", ("sub", "leaf"))


def test_top_level_help() -> None:
    text = help_text(())
    assert description(text), text
    for word in ("--db", "POSLEDGER_DB", "--version"):
        assert word in text, word
    assert [line for line in examples(text) if runs(line, ("ingest",))], text


@pytest.mark.parametrize("path", COMMANDS, ids=_ids)
def test_every_command_has_a_description(path: CommandPath) -> None:
    prose = description(help_text(path))
    assert len(prose.split()) >= 4, f"posledger {_ids(path)} --help has no description"


@pytest.mark.parametrize("path", COMMANDS, ids=_ids)
def test_every_command_has_an_example_that_runs_it(path: CommandPath) -> None:
    text = help_text(path)
    found = examples(text)
    assert [line for line in found if runs(line, path)], (
        f"posledger {_ids(path)} --help shows no example running it "
        f"(an 'Example:' block with a 'posledger ... {_ids(path)} ...' line); "
        f"its example lines: {found}"
    )


# What some commands' help must say beyond the generic checks above.
WORDS: dict[CommandPath, list[str]] = {
    ("ingest",): ['"type":"fill"', "stdin", "--batch-size", "Exits 1", "duplicate"],
    ("positions",): ["--all", "--strategy", "--account", "--instrument", "--json"],
    ("trades",): ["--open", "--closed", "--strategy", "--json", "close reason"],
    ("anomalies",): ["EXTERNAL", "exit"],
    ("rejected",): ["reason", "raw"],
    ("verify",): ["journal", "invariants", "Exits 1"],
    ("rebuild",): ["journal", "projection"],
    ("migrate",): ["schema", "upgrade"],
    ("demo",): ["--file", "session", "EXTERNAL", "hedge"],
    ("pnl",): ["--by", "--period", "--tz", "--session-start", "--since", "--until", "--csv"],
    ("stats",): ["win rate", "profit factor", "drawdown", "--since", "--json"],
    ("report",): ["--out", "network", "plotly", "--max-trades"],
}


@pytest.mark.parametrize(("path", "words"), list(WORDS.items()), ids=_ids)
def test_help_says_what_matters(path: CommandPath, words: list[str]) -> None:
    assert path in COMMANDS, f"{_ids(path)} is no longer a command: update WORDS"
    text = help_text(path)
    missing = [word for word in words if word not in text]
    assert not missing, (path, missing)


# -- the one-line summaries in the list of commands --------------------------------------------

SUMMARY_LIMIT = 45
"""At 80 columns Click has room for at least this many characters of a summary."""


def listed(path: CommandPath) -> dict[str, str]:
    """The commands a group's ``--help`` lists (at 80 columns), each with its summary."""
    text = help_text(path)
    section = text.split("\nCommands:\n", 1)[1]
    shown: dict[str, str] = {}
    name = ""
    for line in section.splitlines():
        if line.startswith("  ") and not line.startswith("   "):
            name, _, summary = line.strip().partition(" ")
            shown[name] = summary.strip()
        elif line.startswith("   ") and name:  # a summary wrapped onto the next line
            shown[name] += " " + line.strip()
    return shown


GROUPS: list[CommandPath] = [()] + [
    path
    for path in COMMANDS
    if isinstance(cli.get_command(click.Context(cli), path[0]), click.Group) and len(path) == 1
]


@pytest.mark.parametrize("group", GROUPS, ids=lambda path: " ".join(path) or "posledger")
def test_every_summary_is_whole(group: CommandPath) -> None:
    """Each command's line in its group's list is its whole summary, not cut with '...'
    (Click cuts a first sentence that does not fit)."""
    shown = listed(group)
    assert shown, group
    for name, summary in shown.items():
        assert summary, (group, name)
        assert not summary.endswith("..."), f"posledger {' '.join(group)} --help cuts {name}"
        assert len(summary) <= SUMMARY_LIMIT, (name, summary)
        words = " ".join((*group, name)).split()
        command: click.Command | None = cli
        for word in words:
            assert isinstance(command, click.Group)
            command = command.get_command(click.Context(command), word)
        assert command is not None
        assert summary == command.get_short_help_str(limit=1000), (name, summary)


def test_the_summary_test_sees_a_cut_summary() -> None:
    from click.testing import CliRunner

    @click.group(name="posledger")
    def top() -> None: ...

    @top.command()
    def long() -> None:
        """This first sentence goes on and on far beyond what the list of commands shows."""

    result = CliRunner().invoke(top, ["--help"], prog_name="posledger", terminal_width=80)
    line = next(x for x in result.output.splitlines() if x.strip().startswith("long"))
    assert line.rstrip().endswith("...")
