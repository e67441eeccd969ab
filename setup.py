"""Build: posledger's domain and write path compiled with mypyc (metadata: pyproject.toml).

The modules in COMPILED are compiled to C extensions, beside their sources; the source
hash of each is written to ``src/posledger/compiled.json``, so that a compiled module
whose source has changed since is never used (``src/posledger/_native.py``). Without a C
compiler, or with ``POSLEDGER_PURE=1`` at build time, the build is pure Python: every
module is importable as Python either way.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build_ext import build_ext

HERE = Path(__file__).parent
MANIFEST = HERE / "src" / "posledger" / "compiled.json"

COMPILED = [
    "src/posledger/domain/numbers.py",
    "src/posledger/domain/enums.py",
    "src/posledger/domain/errors.py",
    "src/posledger/domain/timestamps.py",
    "src/posledger/domain/refdata.py",
    "src/posledger/domain/inputs.py",
    "src/posledger/domain/positions.py",
    "src/posledger/domain/exits.py",
    "src/posledger/domain/brackets.py",
    "src/posledger/domain/decisions.py",
    "src/posledger/domain/book.py",
    "src/posledger/domain/booking.py",
    "src/posledger/domain/attribution.py",
    "src/posledger/domain/decide.py",
    "src/posledger/domain/guards.py",
    "src/posledger/domain/reconcile.py",
    "src/posledger/domain/invariants.py",
    "src/posledger/domain/writeset.py",
    "src/posledger/service/writesets.py",
    "src/posledger/service/effects.py",
    "src/posledger/service/handlers.py",
    "src/posledger/store/codec.py",
    "src/posledger/store/projections.py",
]
"""The domain and the write path: what every input goes through."""


def _module(path: str) -> str:
    return path.removeprefix("src/").removesuffix(".py").replace("/", ".")


class OptionalBuildExt(build_ext):
    """Compile if the machine can; otherwise (no C compiler) install pure Python."""

    def run(self) -> None:
        try:
            super().run()
        except Exception as exc:  # a missing or failing C compiler: stay pure Python
            MANIFEST.unlink(missing_ok=True)
            print(f"posledger: not compiled ({exc}); installing pure Python", file=sys.stderr)


def ext_modules() -> list[object]:
    MANIFEST.unlink(missing_ok=True)
    if os.environ.get("POSLEDGER_PURE") == "1":
        return []
    try:
        from mypyc.build import mypycify
    except ImportError:
        return []
    sources = {
        _module(path): hashlib.sha256((HERE / path).read_bytes()).hexdigest() for path in COMPILED
    }
    MANIFEST.write_text(json.dumps(sources, indent=1, sort_keys=True) + "\n")
    # The compiled modules import nothing outside the standard library and posledger;
    # the package's own mypy settings (every module, strict) are for `make lint`.
    options = ["--config-file", os.devnull, "--ignore-missing-imports", "--follow-imports=silent"]
    return list(
        mypycify([*options, *COMPILED], opt_level="3", debug_level="0", group_name="posledger")
    )


setup(ext_modules=ext_modules(), cmdclass={"build_ext": OptionalBuildExt})
