#!/usr/bin/env python3
"""Import benchmark: how fast and how lean `mlpkg inspect` reads a large ONNX model, next to `onnx.load`.

Generates its model at run time (nothing big is committed): an MLP of 8 blocks, each a MatMul by a [1024, 4096] and a
[4096, 1024] float32 weight (~256 MiB of weights embedded in the protobuf). Each tool runs in its own process so its
peak RSS (from wait4's rusage) is its own; times are wall-clock, best and median of several warm runs (the file is
in the page cache after the first run).

Usage: bench/import_bench.py --mlpkg .build/release/mlpkg --out bench/out
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

BLOCKS = 8
HIDDEN = 1024
INNER = 4096


def make_mlp(path: Path) -> None:
    rng = np.random.default_rng(0)
    nodes, inits = [], []
    x = "x"
    for b in range(BLOCKS):
        w1 = f"block{b}.w1"
        w2 = f"block{b}.w2"
        inits.append(numpy_helper.from_array(rng.standard_normal((HIDDEN, INNER), dtype=np.float32) * 0.02, w1))
        inits.append(numpy_helper.from_array(rng.standard_normal((INNER, HIDDEN), dtype=np.float32) * 0.02, w2))
        h = f"block{b}.h"
        nodes.append(helper.make_node("MatMul", [x, w1], [h], name=f"block{b}.mm1"))
        nodes.append(helper.make_node("Relu", [h], [h + ".relu"], name=f"block{b}.relu"))
        nodes.append(helper.make_node("MatMul", [h + ".relu", w2], [f"block{b}.y"], name=f"block{b}.mm2"))
        x = f"block{b}.y"
    graph = helper.make_graph(
        nodes, "mlp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", HIDDEN])],
        [helper.make_tensor_value_info(x, TensorProto.FLOAT, ["batch", HIDDEN])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 10
    onnx.save_model(model, str(path))


def measure(argv: list[str]) -> tuple[float, int]:
    """Wall time (s) and peak RSS (bytes) of one run of argv in a child process."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    err = proc.stderr.read().decode()
    proc.stderr.close()
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"benchmark command failed: {' '.join(argv)}\n{err}")
    return elapsed, usage.ru_maxrss * 1024  # ru_maxrss is in KiB on Linux


def run_tool(name: str, argv: list[str], runs: int) -> dict:
    measure(argv)  # warm-up: page cache, dynamic loader
    samples = [measure(argv) for _ in range(runs)]
    times = [t for t, _ in samples]
    return {
        "tool": name,
        "best_s": min(times),
        "median_s": statistics.median(times),
        "peak_rss_bytes": max(r for _, r in samples),
        "runs": runs,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mlpkg", default=".build/release/mlpkg")
    parser.add_argument("--out", default="bench/out")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--generate", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.generate:
        make_mlp(Path(args.generate))
        return

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    model = out / "mlp256.onnx"
    if not model.exists():
        # In a child process: a forked child's peak RSS starts from its parent's, so the measuring process stays small.
        print(f"generating {model} ...", flush=True)
        subprocess.run([sys.executable, __file__, "--generate", str(model)], check=True)
    size = model.stat().st_size

    loader = ("import onnx, sys; m = onnx.load(sys.argv[1]); "
              "print(sum(1 for _ in m.graph.initializer))")
    results = [
        run_tool("mlpkg inspect", [args.mlpkg, "inspect", str(model), "--json"], args.runs),
        run_tool("python onnx.load", [sys.executable, "-c", loader, str(model)], args.runs),
    ]
    # The interpreter and onnx import alone, so onnx.load's own cost can be read off.
    results.append(run_tool("python + import onnx (baseline)", [sys.executable, "-c", "import onnx"], args.runs))

    lines = [
        f"# Import benchmark: {model.name}, {size / 2**20:.1f} MiB ({BLOCKS} x [{HIDDEN}x{INNER}, {INNER}x{HIDDEN}] float32)",
        "",
        "| tool | best (s) | median (s) | peak RSS (MiB) | RSS / file |",
        "|---|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(f"| {r['tool']} | {r['best_s']:.3f} | {r['median_s']:.3f} | "
                     f"{r['peak_rss_bytes'] / 2**20:.0f} | {r['peak_rss_bytes'] / size:.2f} |")
    mine = results[0]
    lines += ["", f"Targets: import < 0.5 s warm (mlpkg best {mine['best_s']:.3f} s), "
                  f"peak RSS <= 2.2x the file (mlpkg {mine['peak_rss_bytes'] / size:.2f}x)."]
    table = "\n".join(lines)
    print(table)
    (out / "import_bench.md").write_text(table + "\n")
    (out / "import_bench.json").write_text(json.dumps({"model": str(model), "file_bytes": size, "results": results},
                                                      indent=2) + "\n")


if __name__ == "__main__":
    main()
