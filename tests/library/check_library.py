"""The format-only product as an app uses it: a package outside the repository depends on mlpkg by path.

`ReadOnly` depends on the format-only product `MLPkgFormat` (`import MLPackage`); building it must not compile the
ONNX importer or its protobuf code, nor link libprotobuf-c. It then reads and verifies a package the mlpkg binary
(MLPKG, default .build/debug/mlpkg) wrote. Run by `make library` (part of `make test`).

The umbrella product's side (the DocC article's code, `import MLPkgKit`) is compiled and run by the unit tests
(Tests/MLPkgKitTests/GettingStartedTests.swift), against the same sources, without a second build of everything.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
WORK = REPO / ".build-library"


def sh(argv: list[str], cwd: Path) -> str:
    print("$", " ".join(map(str, argv)), flush=True)
    proc = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=1800)
    if proc.returncode != 0:
        sys.exit(f"failed ({proc.returncode}): {' '.join(map(str, argv))}\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
    return proc.stdout


def main() -> None:
    identity = REPO.name.lower()
    pkg = WORK / "app"
    if pkg.exists():
        shutil.rmtree(pkg / "Sources", ignore_errors=True)
    (pkg / "Sources" / "ReadOnly").mkdir(parents=True, exist_ok=True)
    (pkg / "Package.swift").write_text(f"""// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "LibraryCheck",
    platforms: [.macOS(.v13)],
    dependencies: [.package(path: "{REPO}")],
    targets: [
        .executableTarget(name: "ReadOnly", dependencies: [.product(name: "MLPkgFormat", package: "{identity}")]),
    ]
)
""")
    (pkg / "Sources" / "ReadOnly" / "main.swift").write_text("""import Foundation
import MLPackage

// Reads and verifies a package with the format-only product: no importer, no libprotobuf-c.
let path = CommandLine.arguments[1]
let package = try PackageReader.load(path: path, checksums: true)
let result = PackageVerifier.verify(path: path)
print("read-only: \\(package.manifest.tensors.count) blobs, format \\(package.manifest.formatVersion), sound: \\(result.ok)")
exit(result.ok ? 0 : 1)
""")
    # A scratch folder where nothing but the format-only product is ever built.
    scratch = WORK / "format-only"
    shutil.rmtree(scratch / "debug" / "ReadOnly", ignore_errors=True)
    sh(["swift", "build", "--scratch-path", str(scratch), "--product", "ReadOnly"], pkg)
    # SwiftPM lays out a folder per target of the graph; what was compiled is what has object files.
    built = {p.name for p in (scratch / "debug").glob("*.build") if any(p.rglob("*.o"))}
    for module in ("ONNXProto.build", "ONNXImport.build", "CoreMLProto.build", "Passes.build", "Audit.build"):
        assert module not in built, f"building MLPkgFormat compiled {module}"
    assert "MLPackage.build" in built, built
    ldd = sh(["ldd", str(scratch / "debug" / "ReadOnly")], pkg)
    assert "protobuf-c" not in ldd, ldd
    print("MLPkgFormat: built without the importer, protobuf code or libprotobuf-c")

    mlpkg = os.environ.get("MLPKG", str(REPO / ".build" / "debug" / "mlpkg"))
    out = WORK / "cnn.mlpkg"
    shutil.rmtree(out, ignore_errors=True)
    sh([mlpkg, "convert", str(REPO / "fixtures" / "cnn.onnx"), "-o", str(out), "--weights", "int8"], pkg)
    text = sh([str(scratch / "debug" / "ReadOnly"), str(out)], pkg)
    print(text)
    assert "sound: true" in text
    print("library check passed")


if __name__ == "__main__":
    main()
