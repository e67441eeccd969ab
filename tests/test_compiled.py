"""The domain and write path run compiled where they were built so (setup.py), never from a
compiled file older than its source, and as pure Python whenever asked or needed."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from importlib.machinery import EXTENSION_SUFFIXES
from pathlib import Path

import pytest

import posledger
from posledger import _native

PROBE = (
    "import json, posledger, posledger.domain.booking as b, posledger.service.handlers as h;"
    "print(json.dumps([posledger.COMPILED, b.__file__, h.__file__]))"
)


def _probe(**env: str) -> tuple[bool, str, str]:
    result = subprocess.run(
        [sys.executable, "-c", PROBE],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        check=True,
    )
    compiled, booking, handlers = json.loads(result.stdout)
    return compiled, booking, handlers


def test_what_the_build_compiled_is_what_runs() -> None:
    """`make test` sets POSLEDGER_EXPECT_COMPILED=1: the suite runs on compiled modules."""
    if os.environ.get("POSLEDGER_EXPECT_COMPILED") != "1":
        pytest.skip("the build is not expected to be compiled (POSLEDGER_EXPECT_COMPILED)")
    if os.environ.get("POSLEDGER_PURE") == "1":
        pytest.skip("POSLEDGER_PURE=1: pure Python asked for")
    assert posledger.COMPILED
    compiled, booking, handlers = _probe()
    assert compiled
    assert booking.endswith(tuple(EXTENSION_SUFFIXES)), booking
    assert handlers.endswith(tuple(EXTENSION_SUFFIXES)), handlers


def test_pure_python_is_used_when_asked_for() -> None:
    compiled, booking, handlers = _probe(POSLEDGER_PURE="1")
    assert not compiled
    assert booking.endswith("booking.py") and handlers.endswith("handlers.py")


def _package(tmp_path: Path, modules: dict[str, str]) -> Path:
    for name, text in modules.items():
        path = tmp_path.joinpath(*name.split(".")).with_suffix(".py")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp_path


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def test_a_changed_source_is_stale(tmp_path: Path) -> None:
    root = _package(tmp_path, {"posledger.domain.a": "A = 1\n", "posledger.domain.b": "B = 1\n"})
    recorded = {"posledger.domain.a": _digest("A = 1\n"), "posledger.domain.b": _digest("B = 1\n")}
    assert _native.stale(recorded, root) == []
    (root / "posledger" / "domain" / "b.py").write_text("B = 2\n")
    assert _native.stale(recorded, root) == ["posledger.domain.b"]
    (root / "posledger" / "domain" / "a.py").unlink()
    assert _native.stale(recorded, root) == ["posledger.domain.a", "posledger.domain.b"]


def test_compiled_files_are_found_beside_their_sources(tmp_path: Path) -> None:
    root = _package(tmp_path, {"posledger.domain.a": "A = 1\n", "posledger.x": "X = 1\n"})
    suffix = EXTENSION_SUFFIXES[0]
    (root / "posledger" / "domain" / f"a{suffix}").write_bytes(b"")
    (root / "posledger" / f"orphan{suffix}").write_bytes(b"")  # no source: not ours
    assert _native.compiled_modules(root) == {"posledger.domain.a"}


def test_a_stale_or_unrecorded_compiled_module_sends_every_one_to_its_source(
    tmp_path: Path,
) -> None:
    sources = {"posledger.domain.a": "A = 1\n", "posledger.domain.b": "B = 1\n"}
    root = _package(tmp_path, sources)
    suffix = EXTENSION_SUFFIXES[0]
    for name in ("a", "b"):
        (root / "posledger" / "domain" / f"{name}{suffix}").write_bytes(b"not a library")
    recorded = {name: _digest(text) for name, text in sources.items()}
    everything = set(sources)
    assert _native.plan(root, recorded, pure=False) == (True, set())
    assert _native.plan(root, recorded, pure=True) == (False, everything)
    assert _native.plan(root, {}, pure=False) == (False, everything)  # no record of a build
    (root / "posledger" / "domain" / "b.py").write_text("B = 2\n")  # edited after the build
    assert _native.plan(root, recorded, pure=False) == (False, everything)
    # and the finder then hands out the sources, never the compiled files
    spec = _native.FromSource(everything, root).find_spec("posledger.domain.a")
    assert spec is not None and spec.origin == str(root / "posledger" / "domain" / "a.py")
    assert _native.FromSource(everything, root).find_spec("posledger.other") is None
