"""The README's shell sessions and Python example are run, and must print what it shows."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
BLOCK = re.compile(r"```(\w+)\n(.*?)```", re.S)


def _blocks(kind: str) -> list[str]:
    return [body for lang, body in BLOCK.findall(README) if lang == kind]


def _sessions() -> list[tuple[str, list[str]]]:
    """(command, expected output lines) for every ``$ `` line of the console blocks."""
    steps: list[tuple[str, list[str]]] = []
    for body in _blocks("console"):
        for line in body.splitlines():
            if line.startswith("$ "):
                steps.append((line[2:], []))
            elif steps:
                steps[-1][1].append(line.rstrip())
    return steps


def _clean(text: str) -> list[str]:
    return [line.rstrip() for line in text.rstrip("\n").splitlines()]


def test_readme_starts_with_the_two_commands() -> None:
    first = _blocks("console")[0].splitlines()
    assert [line.split("#")[0].strip() for line in first] == ["make demo", "make test"]


def test_readme_sessions_print_what_the_readme_shows(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    env.pop("POSLEDGER_DB", None)
    env["XDG_CONFIG_HOME"] = str(tmp_path / "no-config")  # no user configuration file
    env.pop("COLUMNS", None)  # output to a pipe: tables 80 columns wide, as shown
    if env.get("PYTHONPATH"):  # the same modules from the sessions' working directory
        env["PYTHONPATH"] = os.pathsep.join(
            os.path.abspath(part) for part in env["PYTHONPATH"].split(os.pathsep) if part
        )
    steps = _sessions()
    assert len(steps) >= 6
    for command, expected in steps:
        assert command.startswith("posledger "), command
        result = subprocess.run(
            shlex.split(command), cwd=tmp_path, env=env, capture_output=True, text=True
        )
        assert _clean(result.stdout) == expected, f"$ {command}\n{result.stderr}"


@pytest.mark.parametrize("index", [0])
def test_readme_python_example_prints_what_the_readme_shows(tmp_path: Path, index: int) -> None:
    code = _blocks("python")[index]
    expected = _blocks("text")[index]
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert _clean(result.stdout) == _clean(expected)
