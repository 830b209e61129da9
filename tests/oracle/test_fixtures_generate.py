"""The committed fixtures are exactly what fixtures/generate.py produces."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from conftest import FIXTURES, REPO_ROOT


def _tree(root: Path) -> dict[str, bytes | str]:
    out: dict[str, bytes | str] = {}
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root).as_posix()
        if p.is_symlink():
            out[rel] = "symlink -> " + os.readlink(p)
        elif p.is_file():
            out[rel] = p.read_bytes()
    return out


def test_generate_is_deterministic_and_committed(tmp_path):
    """Regenerate into a temp folder (with --verify: onnx.checker and
    onnxruntime must accept the valid fixtures, except the documented ones)
    and compare byte for byte with the committed files."""
    proc = subprocess.run(
        [sys.executable, str(FIXTURES / "generate.py"), "--out", str(tmp_path), "--verify"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"generate.py --verify failed:\n{proc.stdout}\n{proc.stderr}"
    fresh = _tree(tmp_path)
    committed = {k: v for k, v in _tree(FIXTURES).items()
                 if k in fresh or k.endswith((".onnx", ".bin", ".tsv"))}
    assert sorted(fresh) == sorted(committed), (
        f"file sets differ: only generated {sorted(set(fresh) - set(committed))}, "
        f"only committed {sorted(set(committed) - set(fresh))}")
    stale = [k for k in fresh if fresh[k] != committed[k]]
    assert not stale, f"committed fixtures differ from generate.py output: {stale}"


def test_fixture_sizes():
    for p in FIXTURES.glob("*.onnx"):
        assert p.stat().st_size < 300 * 1024, f"{p.name} is {p.stat().st_size} bytes"
