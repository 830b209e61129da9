#!/usr/bin/env python3
"""`mlpkg convert` under every address-space limit (`ulimit -v`) from --from to --to MiB in steps of --step: each run
must exit 0 with a package that verifies, or exit 1 with exactly one `error:` line and nothing else on stderr — never
a crash report, a runtime message or a leftover temporary (docs/HARDENING.md, issue 28).

The model (an MLP of 8 × [1024×4096, 4096×1024] float32 weights, 256 MiB, as bench/bench.py's mlp256) is generated
in --work; nothing big is committed. Slow (a few seconds a limit): not part of `make test`;
tests/oracle/test_hostile.py::test_address_space_limits_fail_with_one_line runs a small sample of limits.

Usage: MLPKG=.build/debug/mlpkg python3 tests/sweep_ulimit.py [--from 300 --to 3000 --step 10] [--weights fp16]
       [--coreml] [--blocks 8] [--work DIR] [--json OUT.json]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def make_mlp(path: Path, blocks: int = 8, hidden: int = 1024, inner: int = 4096) -> None:
    """blocks × [hidden×inner, inner×hidden] float32 MatMul weights (256 MiB with the defaults)."""
    rng = np.random.default_rng(0)
    nodes, inits, x = [], [], "x"
    for b in range(blocks):
        inits.append(numpy_helper.from_array(rng.standard_normal((hidden, inner), dtype=np.float32) * 0.02, f"b{b}.w1"))
        inits.append(numpy_helper.from_array(rng.standard_normal((inner, hidden), dtype=np.float32) * 0.02, f"b{b}.w2"))
        nodes += [helper.make_node("MatMul", [x, f"b{b}.w1"], [f"b{b}.h"], name=f"b{b}.mm1"),
                  helper.make_node("Relu", [f"b{b}.h"], [f"b{b}.r"], name=f"b{b}.relu"),
                  helper.make_node("MatMul", [f"b{b}.r", f"b{b}.w2"], [f"b{b}.y"], name=f"b{b}.mm2")]
        x = f"b{b}.y"
    graph = helper.make_graph(nodes, "mlp", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, hidden])],
                              [helper.make_tensor_value_info(x, TensorProto.FLOAT, [1, hidden])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 10
    onnx.save_model(model, str(path))


def run_limited(mlpkg: str, model: Path, out_dir: Path, limit_mib: int, extra: list[str], coreml: bool = False) -> dict:
    """One convert under RLIMIT_AS = limit_mib MiB (to a Core ML .mlpackage with `coreml`); the outcome and whether
    it keeps the contract."""
    target = out_dir / ("M.mlpackage" if coreml else "m.mlpkg")
    if target.exists():
        shutil.rmtree(target)
    limit = limit_mib << 20

    def limited():
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    start = time.perf_counter()
    proc = subprocess.run([mlpkg, "convert", str(model), "-o", str(target), "--quiet", *extra], cwd=out_dir,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
                          errors="replace", preexec_fn=limited)
    seconds = time.perf_counter() - start
    lines = proc.stderr.splitlines()
    leftovers = sorted(p.name for p in out_dir.iterdir() if ".partial-" in p.name)
    result = {"limit_mib": limit_mib, "exit": proc.returncode, "seconds": round(seconds, 2), "stderr": proc.stderr,
              "leftovers": leftovers}
    problems = []
    if proc.returncode == 0:
        if proc.stderr:
            problems.append("exit 0 with stderr output")
        if coreml:
            if not (target / "Data/com.apple.CoreML/weights/weight.bin").is_file():
                problems.append("exit 0 without a complete .mlpackage")
        else:
            verify = subprocess.run([mlpkg, "verify", str(target), "--quiet"], capture_output=True, text=True)
            if verify.returncode != 0:
                problems.append("the package fails verify: " + verify.stderr.strip())
        result["kind"] = "ok"
    elif proc.returncode == 1:
        if len(lines) != 1 or not lines[0].startswith("error: "):
            problems.append(f"exit 1 with {len(lines)} stderr lines")
        if target.exists():
            problems.append("exit 1 but a package is at the output path")
        result["kind"] = error_kind(lines[-1] if lines else "")
    else:
        problems.append(f"exit status {proc.returncode}")
        result["kind"] = "crash"
    if leftovers:
        problems.append(f"temporaries left: {leftovers}")
    result["problems"] = problems
    for name in leftovers:  # so the next limit starts clean
        path = out_dir / name
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    return result


def error_kind(line: str) -> str:
    """A short class of an error line, for the summary."""
    if "mlpkg stopped" in line:
        return "stopped (runtime allocation failure)"
    if "cannot be mapped" in line:
        return "input cannot be mapped"
    if "Cannot allocate memory" in line or "out of memory" in line:
        return "error naming ENOMEM"
    return "error: " + line[7:70]


def summarize(results: list[dict]) -> list[str]:
    """Consecutive limits with the same outcome, as ranges."""
    rows, start = [], 0
    for i in range(1, len(results) + 1):
        if i == len(results) or results[i]["kind"] != results[start]["kind"] or bool(results[i]["problems"]) != bool(results[start]["problems"]):
            first, last = results[start]["limit_mib"], results[i - 1]["limit_mib"]
            bad = sum(1 for r in results[start:i] if r["problems"])
            span = f"{first}" if first == last else f"{first}–{last}"
            rows.append(f"{span} MiB: {results[start]['kind']} ({i - start} runs" + (f", {bad} breaking the contract)" if bad else ")"))
            start = i
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mlpkg", default=os.environ.get("MLPKG", ".build/debug/mlpkg"))
    parser.add_argument("--from", dest="low", type=int, default=300, help="lowest limit, MiB")
    parser.add_argument("--to", dest="high", type=int, default=3000, help="highest limit, MiB")
    parser.add_argument("--step", type=int, default=10, help="MiB")
    parser.add_argument("--weights", default="fp16")
    parser.add_argument("--coreml", action="store_true", help="convert to a Core ML .mlpackage (--input-shape x=1,1024)")
    parser.add_argument("--work", type=Path, help="folder for the model and the outputs (default: a temporary one)")
    parser.add_argument("--json", type=Path, help="write every run's result here")
    parser.add_argument("--blocks", type=int, default=8,
                        help="MLP blocks of 32 MiB each (8: 256 MiB; 9 or more passes the 256 MiB above which a one-step "
                             "Core ML conversion streams its weights through a scratch package)")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="mlpkg-sweep-"))
    work.mkdir(parents=True, exist_ok=True)
    model = work / f"mlp{32 * args.blocks}.onnx"
    if not model.exists():
        make_mlp(model, blocks=args.blocks)
    out_dir = work / "out"
    out_dir.mkdir(exist_ok=True)
    mlpkg = str(Path(args.mlpkg).resolve())
    results = []
    for limit in range(args.low, args.high + 1, args.step):
        extra = ["--weights", args.weights] + (["--input-shape", "x=1,1024"] if args.coreml else [])
        r = run_limited(mlpkg, model, out_dir, limit, extra, coreml=args.coreml)
        results.append(r)
        flag = "  BREAKS: " + "; ".join(r["problems"]) if r["problems"] else ""
        print(f"{limit:5d} MiB  exit {r['exit']}  {r['seconds']:6.2f} s  {r['kind']}{flag}", flush=True)
    print("\nsummary (" + args.weights + (", Core ML" if args.coreml else "") + "):")
    for row in summarize(results):
        print("  " + row)
    broken = [r for r in results if r["problems"]]
    print(f"{len(results)} limits, {len(broken)} breaking the contract")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
