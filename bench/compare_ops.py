#!/usr/bin/env python3
"""Op counts of the ML Programs mlpkg and onnx2coreml (pip, a peer built on coremltools' MIL builder and pass
pipeline) write from the same ONNX file: non-const ops, and the same count without casts (the two tools place
precision casts differently). Both at fp32 compute and the same deployment target, dynamic dims pinned alike.

    python3 bench/compare_ops.py --mlpkg .build/debug/mlpkg MODEL.onnx[:NAME=D0,D1,…[:…]] …

Benchmark-only: onnx2coreml is never needed by mlpkg or its tests (pip install onnx2coreml --no-deps)."""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import onnx

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "oracle"))
from mil_reference import load_program  # noqa: E402


def counts(ops) -> tuple[int, int]:
    kinds = [op.type for op in ops if op.type != "const"]
    return len(kinds), sum(1 for k in kinds if k != "cast")


def pinned(path: Path, pins: dict[str, list[int]]) -> onnx.ModelProto:
    model = onnx.load(str(path))
    for value in model.graph.input:
        if value.name in pins:
            dims = value.type.tensor_type.shape.dim
            for d, size in zip(dims, pins[value.name]):
                d.ClearField("dim_param")
                d.dim_value = size
    return model


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mlpkg", required=True)
    ap.add_argument("--target", default="iOS17")
    ap.add_argument("models", nargs="+")
    args = ap.parse_args()
    import onnx2coreml
    print("| model | mlpkg ops (without casts) | onnx2coreml ops (without casts) |")
    print("|---|---:|---:|")
    for spec in args.models:
        path, *pin_args = spec.split(":")
        pins = {k: [int(x) for x in v.split(",")] for k, v in (p.split("=") for p in pin_args)}
        with tempfile.TemporaryDirectory() as tmp:
            ours = Path(tmp) / "mlpkg.mlpackage"
            argv = [args.mlpkg, "convert", path, "-o", str(ours), "--weights", "fp32", "--compute-precision", "fp32",
                    "--deployment-target", args.target, "--quiet"]
            for k, v in pins.items():
                argv += ["--input-shape", f"{k}={','.join(map(str, v))}"]
            r = subprocess.run(argv, capture_output=True, text=True)
            mine = counts(load_program(ours).operations) if r.returncode == 0 else None
            try:
                theirs_path = Path(tmp) / "o2c.mlpackage"
                onnx2coreml.convert(pinned(Path(path), pins), minimum_deployment_target=args.target,
                                    compute_precision="fp32").save(str(theirs_path))
                theirs = counts(load_program(theirs_path).operations)
            except Exception as e:  # a peer's failure is a result, not an error of this script
                theirs = f"fails: {type(e).__name__}: {' '.join(str(e).split())[:160]}"
            fmt = lambda c: c if isinstance(c, str) else (f"{c[0]} ({c[1]})" if c else "fails")
            print(f"| {Path(path).stem} | {fmt(mine) if mine else 'fails: ' + r.stderr.strip()[:80]} | {fmt(theirs)} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
