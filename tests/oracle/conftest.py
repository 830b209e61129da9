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


# A child forked from this (large) test process starts with its peak RSS, so memory is measured from a small
# Python process that forks the command itself and reports its child's rusage.
_RSS_WRAPPER = """
import os, sys
pid = os.fork()
if pid == 0:
    fd = os.open(os.devnull, os.O_RDWR)
    os.dup2(fd, 0); os.dup2(fd, 1); os.dup2(fd, 2)
    try:
        os.execv(sys.argv[1], sys.argv[1:])
    finally:
        os._exit(127)
_, status, usage = os.wait4(pid, 0)
print(os.waitstatus_to_exitcode(status), usage.ru_maxrss)
"""


def peak_rss_kib(argv: list[str], cwd: Path) -> tuple[int, int]:
    """Runs argv (output discarded); returns (exit status, its peak RSS in KiB)."""
    import sys
    proc = subprocess.run([sys.executable, "-c", _RSS_WRAPPER, *map(str, argv)], cwd=cwd, capture_output=True,
                          text=True, timeout=600)
    status, rss = proc.stdout.split()
    return int(status), int(rss)
