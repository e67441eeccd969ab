"""The command line's configuration file, ``posledger.toml`` (docs/cli.md#the-configuration-file).

Looked for in the working directory, else in the user's configuration directory
(``$XDG_CONFIG_HOME/posledger/posledger.toml``, by default
``~/.config/posledger/posledger.toml``; the platform's equivalent elsewhere). The first one
found is the only one read. It holds defaults the command line takes when not told
otherwise::

    db = "sqlite:////home/me/books/posledger.db"

    [display]
    wide = false
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from ..errors import UsageError

__all__ = ["FILENAME", "Config", "ConfigError", "config_path", "load_config"]

FILENAME = "posledger.toml"


class ConfigError(UsageError):
    """The configuration file cannot be used: it names the file and the key."""


@dataclass(frozen=True)
class Config:
    path: Path | None = None
    """The file read (None: there is none)."""
    db: str | None = None
    wide: bool = False


_KEYS: dict[str, dict[str, type]] = {"": {"db": str}, "display": {"wide": bool}}
"""The tables of the file (the top level is ``""``), their keys and each key's type."""


def config_path(cwd: Path | None = None) -> Path | None:
    """The configuration file in use: ``./posledger.toml``, else the one in the user's
    configuration directory, else None."""
    here = (cwd or Path.cwd()) / FILENAME
    if here.is_file():
        return here
    user = Path(click.get_app_dir("posledger")) / FILENAME
    if user.is_file():
        return user
    return None


def _type_name(kind: type) -> str:
    return {str: "a string", bool: "true or false"}[kind]


def _check(path: Path, data: dict[str, Any]) -> dict[str, Any]:
    """The values of ``data`` by dotted key, checked against :data:`_KEYS`."""
    values: dict[str, Any] = {}
    for name, value in data.items():
        if isinstance(value, dict) and name in _KEYS and name:
            table = name
            for key, item in value.items():
                values.update(_checked(path, table, key, item))
        else:
            values.update(_checked(path, "", name, value))
    return values


def _checked(path: Path, table: str, key: str, value: Any) -> dict[str, Any]:
    dotted = f"{table}.{key}" if table else key
    known = _KEYS[table]
    if key not in known:
        every = ", ".join(f"{t}.{k}" if t else k for t, keys in _KEYS.items() for k in keys)
        raise ConfigError(f"{path}: unknown key {dotted!r} (the keys are: {every})")
    kind = known[key]
    if type(value) is not kind:
        raise ConfigError(f"{path}: {dotted} must be {_type_name(kind)}, got {value!r}")
    if isinstance(value, str) and not value.strip():
        raise ConfigError(f"{path}: {dotted} must not be empty")
    return {dotted: value}


def load_config(path: Path | None = None) -> Config:
    """The configuration in ``path`` (default: :func:`config_path`); an empty one when
    there is no file. A file that is not TOML, or holds an unknown key or a value of the
    wrong type, raises :class:`ConfigError` naming the file and the key."""
    found = path if path is not None else config_path()
    if found is None:
        return Config()
    try:
        data = tomllib.loads(found.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{found}: cannot be read: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{found}: not valid TOML: {exc}") from None
    values = _check(found, data)
    return Config(path=found, db=values.get("db"), wide=bool(values.get("display.wide", False)))
