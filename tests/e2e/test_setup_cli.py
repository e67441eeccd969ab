"""Setting up from the command line: registering reference data, the configuration file,
the URL a database is named by, and how options are spelt."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from .scenario import SCRIPT, clean_env, journal, run, sql, url, write

# -- account, instrument, strategy add / list ---------------------------------------------

ACCOUNT = ["NET-1", "--venue", "CME", "--mode", "LIVE", "--position-mode", "netting"]
INSTRUMENT = [
    "MESH6.CME",
    "--kind",
    "future",
    "--multiplier",
    "5",
    "--quote-currency",
    "USD",
    "--settlement-currency",
    "USD",
    "--tick-size",
    "0.25",
    "--lot-size",
    "1",
]


def test_registering_from_the_command_line_journals_what_the_jsonl_line_would(
    tmp_path: Path,
) -> None:
    """The same account, instrument and strategy registered by `add` and by an ingested
    line make the same journal (inputs and effects) and the same rows."""
    by_hand = tmp_path / "hand.db"
    for args in (
        ["account", "add", *ACCOUNT, "--lot-method", "FIFO", "--reconcile-policy", "halt"],
        ["instrument", "add", *INSTRUMENT],
        [
            "strategy",
            "add",
            "orb",
            "--adopt-orphans",
            "--max-open-slots",
            "2",
            "--take-profit",
            "20 ticks",
            "--stop-loss",
            "0.5%",
        ],
    ):
        result = run(*args, db=by_hand)
        assert result.returncode == 0, (args, result.stdout, result.stderr)
        assert result.stdout.startswith("applied "), result.stdout
    records = [
        {
            "type": "account",
            "account": "NET-1",
            "venue": "CME",
            "mode": "LIVE",
            "position_mode": "netting",
            "lot_method": "fifo",
            "reconcile_policy": "halt",
        },
        {
            "type": "instrument",
            "instrument": "MESH6.CME",
            "kind": "future",
            "multiplier": "5",
            "quote_currency": "USD",
            "settlement_currency": "USD",
            "tick_size": "0.25",
            "lot_size": "1",
        },
        {
            "type": "strategy",
            "strategy": "orb",
            "adopt_orphans": True,
            "max_open_slots": 2,
            "take_profit": "20 ticks",
            "stop_loss": "0.5%",
        },
    ]
    by_file = tmp_path / "file.db"
    assert run("ingest", str(write(tmp_path / "ref.jsonl", records)), db=by_file).returncode == 0
    assert journal(by_hand) == journal(by_file)
    for table in ("accounts", "instruments", "strategies"):
        assert sql(by_hand, f"SELECT * FROM {table}") == sql(by_file, f"SELECT * FROM {table}")


def test_add_again_is_a_duplicate_and_a_conflict_is_rejected_whole(tmp_path: Path) -> None:
    db = tmp_path / "ledger.db"
    assert run("account", "add", *ACCOUNT, db=db).returncode == 0
    again = run("account", "add", *ACCOUNT, db=db)
    assert again.returncode == 0 and again.stdout.startswith("duplicate account NET-1")
    other = run("account", "add", *ACCOUNT[:4], "SIM", *ACCOUNT[5:], db=db)
    assert other.returncode == 1
    assert "rejected account NET-1" in other.stdout and "mode LIVE != SIM" in other.stdout
    rows = json.loads(run("account", "list", "--json", db=db).stdout)
    assert [(r["account"], r["mode"]) for r in rows] == [("NET-1", "LIVE")]


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (
            [
                "instrument",
                "add",
                "X",
                "--kind",
                "future",
                "--multiplier",
                "1e3",
                "--quote-currency",
                "USD",
                "--settlement-currency",
                "USD",
            ],
            "multiplier: '1e3' is not a decimal number in plain notation",
        ),
        (
            [
                "instrument",
                "add",
                "X",
                "--kind",
                "spot",
                "--multiplier",
                "1",
                "--quote-currency",
                "USD",
                "--settlement-currency",
                "USD",
            ],
            "base_currency",
        ),
        (["strategy", "add", "s", "--max-open-slots", "0"], "max_open_slots must be at least 1"),
        (
            [
                "account",
                "add",
                " padded",
                "--venue",
                "CME",
                "--mode",
                "SIM",
                "--position-mode",
                "netting",
            ],
            "surrounding spaces",
        ),
    ],
)
def test_bad_input_is_rejected_with_the_reason_and_nothing_applied(
    tmp_path: Path, args: list[str], words: str
) -> None:
    db = tmp_path / "ledger.db"
    result = run(*args, db=db)
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stdout.startswith(f"rejected {args[0]} ")
    assert words in result.stdout, result.stdout
    assert sql(db, "SELECT count(*) FROM journal") == [(0,)]
    kept = sql(db, "SELECT source, reason FROM rejected_inputs")
    assert len(kept) == 1 and kept[0][0] == "command line" and words in kept[0][1]


def test_usage_errors_of_add(tmp_path: Path) -> None:
    db = tmp_path / "ledger.db"
    missing = run("account", "add", "NET-1", "--venue", "CME", db=db)
    assert missing.returncode == 2 and "--mode" in missing.stderr
    bad = run("account", "add", *ACCOUNT[:4], "REAL", *ACCOUNT[5:], db=db)
    assert bad.returncode == 2 and "'REAL' is not one of" in bad.stderr
    assert not db.exists()


def test_lists_show_what_was_registered(tmp_path: Path) -> None:
    db = tmp_path / "ledger.db"
    run("account", "add", *ACCOUNT, db=db)
    run(
        "account",
        "add",
        "BIN-1",
        "--venue",
        "BINANCE",
        "--mode",
        "paper",
        "--position-mode",
        "HEDGE",
        db=db,
    )
    run("instrument", "add", *INSTRUMENT, db=db)
    run("strategy", "add", "orb", db=db)
    accounts = json.loads(run("account", "list", "--json", db=db).stdout)
    assert [(a["account"], a["mode"], a["position_mode"], a["lot_method"]) for a in accounts] == [
        ("BIN-1", "PAPER", "hedge", "average"),
        ("NET-1", "LIVE", "netting", "average"),
    ]
    [instrument] = json.loads(run("instrument", "list", "--json", db=db).stdout)
    assert instrument["multiplier"] == "5" and instrument["tick_size"] == "0.25"
    assert instrument["allow_negative_prices"] is True
    [strategy] = json.loads(run("strategy", "list", "--json", db=db).stdout)
    assert strategy["strategy"] == "orb" and strategy["adopt_orphans"] is False
    table = run("instrument", "list", db=db, env=clean_env(COLUMNS="80")).stdout
    assert "MESH6.CME" in table and "future" in table
    assert max(len(line.rstrip()) for line in table.splitlines()) <= 80


# -- enumerated options: any case -----------------------------------------------------------


def test_enumerated_options_take_any_case(tmp_path: Path) -> None:
    db = tmp_path / "ledger.db"
    run("account", "add", *ACCOUNT, db=db)
    for args in (
        ["positions", "--mode", "live"],
        ["trades", "--mode", "Live"],
        ["commands", "--status", "ALL"],
        ["exits", "--policy", "FLATTEN"],
    ):
        result = run(*args, "--json", db=db)
        assert result.returncode == 0, (args, result.stderr)


# -- the configuration file -----------------------------------------------------------------


def _session_db(tmp_path: Path, name: str, strategy: str) -> Path:
    db = tmp_path / name
    assert run("strategy", "add", strategy, db=db).returncode == 0
    return db


def _strategies(result: object) -> list[str]:
    return [row["strategy"] for row in json.loads(result.stdout)]  # type: ignore[attr-defined]


def test_which_database_flag_then_environment_then_config_then_default(tmp_path: Path) -> None:
    from_flag = _session_db(tmp_path, "flag.db", "from-flag")
    from_env = _session_db(tmp_path, "env.db", "from-env")
    from_config = _session_db(tmp_path, "config.db", "from-config")
    _session_db(tmp_path, "posledger.db", "from-default")
    work = tmp_path
    home = tmp_path / "xdg"
    (home / "posledger").mkdir(parents=True)
    (home / "posledger" / "posledger.toml").write_text(f'db = "{url(from_config)}"\n')
    env = clean_env(XDG_CONFIG_HOME=str(home))
    with_env = clean_env(XDG_CONFIG_HOME=str(home), POSLEDGER_DB=url(from_env))

    def strategies(*args: str, env: dict[str, str]) -> list[str]:
        result = run("strategy", "list", "--json", *args, cwd=work, env=env)
        assert result.returncode == 0, result.stderr
        return _strategies(result)

    assert strategies("--db", url(from_flag), env=with_env) == ["from-flag"]
    assert strategies(env=with_env) == ["from-env"]
    assert strategies(env=env) == ["from-config"]
    assert strategies(env=clean_env()) == ["from-default"]  # sqlite:///posledger.db
    # A posledger.toml in the working directory comes before the user's.
    (work / "posledger.toml").write_text(f'db = "{url(from_flag)}"\n')
    assert strategies(env=env) == ["from-flag"]


def test_config_display_wide(tmp_path: Path) -> None:
    db = _session_db(tmp_path, "ledger.db", "orb")
    run("account", "add", *ACCOUNT, db=db)
    narrow = run("account", "list", db=db, cwd=tmp_path, env=clean_env(COLUMNS="40"))
    assert "not shown" in narrow.stdout
    (tmp_path / "posledger.toml").write_text("[display]\nwide = true\n")
    wide = run("account", "list", db=db, cwd=tmp_path, env=clean_env(COLUMNS="40"))
    assert "not shown" not in wide.stdout and "reconcile_policy" in wide.stdout


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ('dbb = "sqlite:///x.db"\n', "unknown key 'dbb'"),
        ("[display]\nwide = 'yes'\n", "display.wide must be true or false"),
        ("[display]\nnarrow = true\n", "unknown key 'display.narrow'"),
        ("db = 5\n", "db must be a string"),
        ("db = \n", "not valid TOML"),
    ],
)
def test_a_bad_config_file_names_the_file_and_the_key(
    tmp_path: Path, text: str, words: str
) -> None:
    config = tmp_path / "posledger.toml"
    config.write_text(text)
    result = run("positions", cwd=tmp_path)
    assert result.returncode == 2, result.stdout
    assert str(config) in result.stderr and words in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


# -- database URLs ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "hint"),
    [
        ("postgres://ledger@127.0.0.1/test", "postgresql+psycopg://"),
        ("postgresql+psycopg2://ledger@127.0.0.1/test", "postgresql+psycopg://"),
        ("mysql://root@127.0.0.1/test", "mysql+pymysql://"),
        ("mariadb://root@127.0.0.1/test", "mysql+pymysql://"),
    ],
)
def test_a_url_scheme_no_driver_takes_gets_a_hint(given: str, hint: str) -> None:
    result = run("positions", db=given)
    assert result.returncode == 3
    assert hint in result.stderr, result.stderr


# -- help ----------------------------------------------------------------------------------


def test_shell_completion_script() -> None:
    import subprocess

    result = subprocess.run(
        [str(SCRIPT)],
        env=clean_env(_POSLEDGER_COMPLETE="bash_source"),
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "_POSLEDGER_COMPLETE" in result.stdout and "complete " in result.stdout
    assert re.search(r"posledger", result.stdout)
