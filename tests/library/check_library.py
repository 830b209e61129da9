"""The library as an app uses it: a package outside the repository depends on mlpkg by path.

- `ReadOnly` depends on the format-only product `MLPkgFormat` (`import MLPackage`); building it must not compile the
  ONNX importer or its protobuf code, nor link libprotobuf-c.
- `GettingStarted` depends on `MLPkgKit` (`import MLPkgKit`); its main.swift is the Swift code of the DocC article
  Sources/MLPkgKit/MLPkgKit.docc/GettingStarted.md, so the article's code compiles and runs, step by step.
The package GettingStarted writes is then read back by ReadOnly. Run by `make library` (part of `make test`).
"""

from __future__ import annotations

import re
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
    (pkg / "Sources" / "GettingStarted").mkdir(parents=True, exist_ok=True)
    (pkg / "Sources" / "ReadOnly").mkdir(parents=True, exist_ok=True)
    (pkg / "Package.swift").write_text(f"""// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "LibraryCheck",
    platforms: [.macOS(.v13)],
    dependencies: [.package(path: "{REPO}")],
    targets: [
        .executableTarget(name: "GettingStarted", dependencies: [.product(name: "MLPkgKit", package: "{identity}")]),
        .executableTarget(name: "ReadOnly", dependencies: [.product(name: "MLPkgFormat", package: "{identity}")]),
    ]
)
""")
    article = (REPO / "Sources" / "MLPkgKit" / "MLPkgKit.docc" / "GettingStarted.md").read_text()
    blocks = re.findall(r"```swift\n(.*?)```", article, re.S)
    assert len(blocks) >= 5, "the article lost its code"
    (pkg / "Sources" / "GettingStarted" / "main.swift").write_text("\n".join(blocks))
    (pkg / "Sources" / "ReadOnly" / "main.swift").write_text("""import Foundation
import MLPackage

// Reads and verifies a package with the format-only product: no importer, no libprotobuf-c.
let path = CommandLine.arguments[1]
let package = try PackageReader.load(path: path, checksums: true)
let result = PackageVerifier.verify(path: path)
print("read-only: \\(package.manifest.tensors.count) blobs, format \\(package.manifest.formatVersion), sound: \\(result.ok)")
exit(result.ok ? 0 : 1)
""")
    scratch = WORK / "build"
    # The format-only product first, in a scratch folder where nothing else was built yet.
    shutil.rmtree(scratch / "debug" / "ReadOnly", ignore_errors=True)
    sh(["swift", "build", "--scratch-path", str(scratch), "--product", "ReadOnly"], pkg)
    # SwiftPM lays out a folder per target of the graph; what was compiled is what has object files.
    built = {p.name for p in (scratch / "debug").glob("*.build") if any(p.rglob("*.o"))}
    if not (WORK / "full-build-done").exists():
        for module in ("ONNXProto.build", "ONNXImport.build", "CoreMLProto.build", "Passes.build", "Audit.build"):
            assert module not in built, f"building MLPkgFormat compiled {module}"
    assert "MLPackage.build" in built, built
    ldd = sh(["ldd", str(scratch / "debug" / "ReadOnly")], pkg)
    assert "protobuf-c" not in ldd, ldd
    print("MLPkgFormat: built without the importer, protobuf code or libprotobuf-c")

    sh(["swift", "build", "--scratch-path", str(scratch), "--product", "GettingStarted"], pkg)
    (WORK / "full-build-done").write_text("")
    out = WORK / "cnn.mlpkg"
    shutil.rmtree(out, ignore_errors=True)
    shutil.rmtree(str(out) + ".one.mlpkg", ignore_errors=True)
    text = sh([str(scratch / "debug" / "GettingStarted"), str(REPO / "fixtures" / "cnn.onnx"), str(out)], pkg)
    print(text)
    assert "sound: true" in text and "neural-engine coverage" in text, text
    text = sh([str(scratch / "debug" / "ReadOnly"), str(out)], pkg)
    print(text)
    assert "sound: true" in text
    print("library check passed")


if __name__ == "__main__":
    main()
