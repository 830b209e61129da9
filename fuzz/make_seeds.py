#!/usr/bin/env python3
"""Writes the generated fuzz seeds (run again when the generators change; the outputs are committed, each small):

- corpus/coreml/: one ONNX model per Core ML lowering case and per precondition refusal of
  tests/oracle/test_coreml_ops.py (the same generators, so a new lowering's case becomes a seed);
- corpus/package/: the cnn fixture converted by mlpkg to the format 1.2 encodings — linear at the packed widths
  (int2, int3, int5, int6, int7) and lut at every width mlpkg writes (lut1, lut2, lut3, lut6, lut8), per tensor and
  per channel — each as manifest.json, a NUL byte, then the package's own weights.bin (the package target's input
  format for seeds that bring their weights).

Usage: MLPKG=.build/debug/mlpkg python3 fuzz/make_seeds.py
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COREML = ROOT / "fuzz" / "corpus" / "coreml"
PACKAGE = ROOT / "fuzz" / "corpus" / "package"
MAX_SEED_BYTES = 64 * 1024

PACKAGE_SEEDS = [
    ("cnn-int2", ["--weights", "int2"]),
    ("cnn-int3-per-channel", ["--weights", "int3", "--granularity", "per-channel"]),
    ("cnn-int5", ["--weights", "int5"]),
    ("cnn-int6-symmetric", ["--weights", "int6", "--symmetric"]),
    ("cnn-int7-per-tensor", ["--weights", "int7", "--granularity", "per-tensor"]),
    ("cnn-lut1", ["--weights", "lut1"]),
    ("cnn-lut2-per-channel", ["--weights", "lut2", "--granularity", "per-channel", "--block-size", "4"]),
    ("cnn-lut3", ["--weights", "lut3"]),
    ("cnn-lut6-per-channel", ["--weights", "lut6", "--granularity", "per-channel"]),
    ("cnn-lut8", ["--weights", "lut8"]),
]


def coreml_seeds() -> int:
    sys.path.insert(0, str(ROOT / "tests" / "oracle"))
    import onnx
    import test_coreml_ops as ops

    COREML.mkdir(parents=True, exist_ok=True)
    models = [(case.name, case.model()) for case in ops.CASES]
    models += [(f"refusal-{name}", case.model()) for name, case, _ in ops.REFUSALS]
    written = 0
    for name, model in models:
        data = model.SerializeToString()
        if len(data) > MAX_SEED_BYTES:
            print(f"skipped {name}: {len(data)} bytes")
            continue
        (COREML / f"{name}.onnx").write_bytes(data)
        written += 1
    return written


def package_seeds(mlpkg: str) -> int:
    written = 0
    with tempfile.TemporaryDirectory() as tmp:
        for name, options in PACKAGE_SEEDS:
            out = Path(tmp) / f"{name}.mlpkg"
            subprocess.run([mlpkg, "convert", str(ROOT / "fixtures" / "cnn.onnx"), "-o", str(out), "--min-elements", "1",
                            "--quiet", *options], check=True)
            seed = (out / "manifest.json").read_bytes() + b"\0" + (out / "weights.bin").read_bytes()
            if len(seed) > MAX_SEED_BYTES:
                raise SystemExit(f"{name}: {len(seed)} bytes, over the seed limit")
            (PACKAGE / f"{name}.seed").write_bytes(seed)
            written += 1
    return written


def main() -> None:
    mlpkg = os.environ.get("MLPKG", str(ROOT / ".build" / "debug" / "mlpkg"))
    print(f"{coreml_seeds()} Core ML seeds in {COREML.relative_to(ROOT)}")
    print(f"{package_seeds(mlpkg)} package seeds in {PACKAGE.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
