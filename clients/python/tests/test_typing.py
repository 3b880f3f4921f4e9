"""The package is typed (py.typed) and mypy --strict clean; the examples (user code) type-check against it with
mypy's defaults."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_mypy_strict_is_clean() -> None:
    proc = subprocess.run([sys.executable, "-m", "mypy", "herald"], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_examples_type_check() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", "/dev/null", "--ignore-missing-imports", "examples"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_py_typed_ships() -> None:
    assert (ROOT / "herald" / "py.typed").exists()
