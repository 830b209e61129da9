"""`mlpkg inspect` on malformed files: exit 1, one `error:` line naming the culprit."""

from __future__ import annotations

import pytest

from conftest import MALFORMED, REPO_ROOT, run


def load_expected() -> list[tuple[str, str]]:
    rows = []
    for line in (MALFORMED / "EXPECTED.tsv").read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        name, culprit = line.split("\t")
        rows.append((name, culprit))
    return rows


CASES = load_expected()


def test_expected_covers_every_malformed_file():
    files = {p.name for p in MALFORMED.glob("*.onnx")}
    listed = {name for name, _ in CASES}
    assert files == listed, (f"not in EXPECTED.tsv: {sorted(files - listed)}; "
                             f"listed but missing: {sorted(listed - files)}")


@pytest.mark.parametrize("name,culprit", CASES, ids=[c[0] for c in CASES])
def test_malformed_is_rejected(mlpkg, name, culprit):
    arg = f"fixtures/malformed/{name}"
    proc = run([str(mlpkg), "inspect", arg], cwd=REPO_ROOT)
    rc = proc.returncode
    assert rc >= 0, f"mlpkg inspect {arg} was killed by signal {-rc} (crash)"
    assert rc == 1, f"mlpkg inspect {arg}: exit code {rc}, expected 1; stderr: {proc.stderr!r}"
    assert proc.stdout == "", f"stdout must be empty, got {proc.stdout!r}"
    err = proc.stderr
    body = err[:-1] if err.endswith("\n") else err
    assert body and "\n" not in body, f"stderr must be exactly one line, got {err!r}"
    assert body.startswith("error:"), f"stderr must start with 'error:', got {body!r}"
    assert name in body, f"stderr must name the file {name!r}, got {body!r}"
    assert culprit in body, f"stderr must contain the culprit {culprit!r}, got {body!r}"
