"""Compiled modules that never outlive their source.

posledger's domain and write path are compiled with mypyc when it is installed (see
``setup.py``); the build records each compiled module's source hash in ``compiled.json``.
When ``posledger`` is imported, :func:`guard` checks those hashes against the sources
beside the compiled modules. If any source changed since the build (an edit in a
development checkout), or ``POSLEDGER_PURE=1`` is set, every compiled module is imported
from its Python source instead: all of them or none, since compiled modules call each
other directly. Without a record (a pure-Python install) nothing changes.

This module is never compiled.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections.abc import Sequence
from importlib.abc import MetaPathFinder
from importlib.machinery import EXTENSION_SUFFIXES, ModuleSpec
from importlib.util import spec_from_file_location
from pathlib import Path
from types import ModuleType

__all__ = ["MANIFEST", "FromSource", "compiled_modules", "guard", "plan", "stale"]

MANIFEST = Path(__file__).with_name("compiled.json")
"""Module name -> SHA-256 of the source it was compiled from (written by the build)."""
ROOT = Path(__file__).parent.parent


def source_of(module: str, root: Path = ROOT) -> Path:
    return root.joinpath(*module.split(".")).with_suffix(".py")


def stale(recorded: dict[str, str], root: Path = ROOT) -> list[str]:
    """The compiled modules whose source differs from the one they were built from."""
    changed = []
    for module, digest in recorded.items():
        path = source_of(module, root)
        try:
            current = hashlib.sha256(path.read_bytes()).hexdigest()
        except OSError:
            current = None
        if current != digest:
            changed.append(module)
    return changed


def compiled_modules(root: Path = ROOT) -> set[str]:
    """The posledger modules that have a compiled file beside their source."""
    found = set()
    for suffix in EXTENSION_SUFFIXES:
        for path in (root / "posledger").rglob(f"*{suffix}"):
            if path.with_name(path.name.removesuffix(suffix) + ".py").exists():
                parts = path.relative_to(root).with_name(path.name.removesuffix(suffix)).parts
                found.add(".".join(parts))
    return found


class FromSource(MetaPathFinder):
    """Finds the compiled modules' Python sources, ahead of the compiled files."""

    def __init__(self, modules: set[str], root: Path) -> None:
        self.modules = modules
        self.root = root

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None = None,
        target: ModuleType | None = None,
    ) -> ModuleSpec | None:
        if fullname not in self.modules:
            return None
        return spec_from_file_location(fullname, source_of(fullname, self.root))


def plan(root: Path, recorded: dict[str, str], pure: bool) -> tuple[bool, set[str]]:
    """(whether the compiled modules are used, the modules to import from source). A
    compiled file the build did not record (a build that failed half-way) counts as
    stale; one stale module sends every compiled module to its source."""
    compiled = compiled_modules(root)
    if not compiled:
        return False, set()
    if not pure and compiled <= set(recorded) and not stale(recorded, root):
        return True, set()
    return False, compiled | set(recorded)


def guard() -> bool:
    """Whether the compiled modules are in use (see the module's docstring)."""
    try:
        recorded: dict[str, str] = json.loads(MANIFEST.read_text())
    except (OSError, ValueError):
        recorded = {}
    used, from_source = plan(ROOT, recorded, os.environ.get("POSLEDGER_PURE") == "1")
    if from_source:
        sys.meta_path.insert(0, FromSource(from_source, ROOT))
    return used
