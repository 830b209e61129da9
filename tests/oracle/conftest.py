"""Shared fixtures for the Python cross-check tests of mlpkg."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
FIXTURES = REPO_ROOT / "fixtures"
MALFORMED = FIXTURES / "malformed"
RUN_TIMEOUT = 120  # seconds for one mlpkg run


def mlpkg_path() -> Path:
    """$MLPKG, else .build/debug/mlpkg under the repo root (always absolute)."""
    env = os.environ.get("MLPKG")
    if env:
        p = Path(env)
        return p if p.is_absolute() else (Path.cwd() / p).resolve()
    return REPO_ROOT / ".build" / "debug" / "mlpkg"


@pytest.fixture(scope="session")
def mlpkg() -> Path:
    p = mlpkg_path()
    if not p.is_file() or not os.access(p, os.X_OK):
        pytest.fail(f"mlpkg binary not found or not executable at {p} "
                    "(build it with `swift build` or set MLPKG)", pytrace=False)
    return p


def run(argv: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(argv, cwd=cwd, capture_output=True, text=True,
                          encoding="utf-8", errors="replace", timeout=RUN_TIMEOUT,
                          stdin=subprocess.DEVNULL)
