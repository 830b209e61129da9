"""Every public declaration of the library (all modules but the command line and the fuzz targets) has a `///`
doc comment directly above it (attributes may sit between): what adopters of `import MLPkgKit` read."""

from __future__ import annotations

import re

from conftest import REPO_ROOT

DECLARATION = re.compile(
    r"(@\w+(\([^)]*\))?\s+)*public\s+(private\(set\)\s+|internal\(set\)\s+)?"
    r"(static\s+|final\s+|mutating\s+|nonisolated\s+|indirect\s+)*"
    r"(func|var|let|struct|enum|class|init|typealias|protocol|subscript|case)\b")


def test_every_public_declaration_is_documented():
    missing, total = [], 0
    for path in sorted((REPO_ROOT / "Sources").rglob("*.swift")):
        rel = path.relative_to(REPO_ROOT)
        if rel.parts[1] in ("mlpkg", "FuzzImport", "FuzzPackage", "FuzzCoreML", "FuzzSupport"):
            continue
        lines = path.read_text(encoding="utf-8").split("\n")
        for i, line in enumerate(lines):
            text = line.strip()
            if not DECLARATION.match(text):
                continue
            total += 1
            j = i - 1
            while j >= 0 and lines[j].strip().startswith("@"):
                j -= 1
            if j < 0 or not (lines[j].strip().startswith("///") or lines[j].strip().endswith("*/")):
                missing.append(f"{rel}:{i + 1}: {text[:90]}")
    assert total > 1500
    assert not missing, f"{len(missing)} public declarations without a doc comment:\n" + "\n".join(missing[:40])
