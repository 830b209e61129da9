#!/usr/bin/env python3
"""mlpkg benchmarks, side by side with the tools people use today, on models generated at run time.

The model (nothing big is committed): an MLP of 8 blocks, each a MatMul by a [1024, 4096] and a [4096, 1024] float32
weight — 256 MiB of weights embedded in the protobuf.

- import: `mlpkg inspect` (parse + validate + summarise) vs `onnx.load`;
- fp16: `mlpkg convert --weights fp16` vs onnxconverter_common's `convert_float_to_float16(keep_io_types=True)`
  followed by `onnx.save` (what people run today to halve an ONNX file); `cp` of the input is the floor.

Each command runs in its own process, so its peak RSS (from wait4's rusage) is its own; times are wall-clock, best
and median of several warm runs (the file is in the page cache after the first).

Usage: bench/bench.py --mlpkg .build/release/mlpkg --out bench/out
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
    peer_fp16 = ("import onnx, sys; from onnxconverter_common import float16; "
                 "m = onnx.load(sys.argv[1]); "
                 "m = float16.convert_float_to_float16(m, keep_io_types=True); onnx.save(m, sys.argv[2])")
    pkg = out / "mlp256.mlpkg"
    peer_out = out / "mlp256.fp16.onnx"
    sections = {
        "import": [
            run_tool("mlpkg inspect", [args.mlpkg, "inspect", str(model), "--json"], args.runs),
            run_tool("python onnx.load", [sys.executable, "-c", loader, str(model)], args.runs),
            # The interpreter and onnx import alone, so onnx.load's own cost can be read off.
            run_tool("python + import onnx (baseline)", [sys.executable, "-c", "import onnx"], args.runs),
        ],
        "fp16": [
            run_tool("mlpkg convert --weights fp16",
                     [args.mlpkg, "convert", str(model), "-o", str(pkg), "--weights", "fp16", "--quiet"], args.runs),
            run_tool("onnxconverter_common float16 (keep_io_types) + onnx.save",
                     [sys.executable, "-c", peer_fp16, str(model), str(peer_out)], max(1, args.runs // 2)),
            run_tool("cp (floor)", ["cp", str(model), str(out / "copy.onnx")], args.runs),
        ],
    }
    sizes = {"mlpkg convert --weights fp16": sum(f.stat().st_size for f in pkg.iterdir()),
             "onnxconverter_common float16 (keep_io_types) + onnx.save": peer_out.stat().st_size,
             "cp (floor)": size}

    lines = [f"# Benchmarks: {model.name}, {size / 2**20:.1f} MiB "
             f"({BLOCKS} x [{HIDDEN}x{INNER}, {INNER}x{HIDDEN}] float32 MatMul weights)", ""]
    for title, results in sections.items():
        lines += [f"## {title}", "", "| tool | best (s) | median (s) | peak RSS (MiB) | RSS / file | output (MiB) |",
                  "|---|---:|---:|---:|---:|---:|"]
        for r in results:
            r["output_bytes"] = sizes.get(r["tool"])
            output = f"{r['output_bytes'] / 2**20:.1f}" if r["output_bytes"] else ""
            lines.append(f"| {r['tool']} | {r['best_s']:.3f} | {r['median_s']:.3f} | "
                         f"{r['peak_rss_bytes'] / 2**20:.0f} | {r['peak_rss_bytes'] / size:.2f} | {output} |")
        lines.append("")
    imp, fp16 = sections["import"][0], sections["fp16"]
    lines += [
        f"Import: {imp['best_s']:.3f} s (target < 0.5 s), peak RSS {imp['peak_rss_bytes'] / size:.2f}x the file "
        f"(target <= 2.2x).",
        f"fp16: mlpkg is {fp16[1]['best_s'] / fp16[0]['best_s']:.1f}x faster than onnxconverter_common (target >= 10x), "
        f"with {fp16[0]['peak_rss_bytes'] / fp16[1]['peak_rss_bytes']:.2f}x its peak RSS (target <= 0.5x); "
        f"{fp16[0]['best_s'] / fp16[2]['best_s']:.1f}x the time of cp.",
    ]
    lines += [
        "",
        "Notes: peak RSS is wait4's ru_maxrss of each command; a child forked from this Python process starts from",
        "its RSS (about 44 MiB), so that is the floor of the column. mlpkg inspect maps the model and parses only its",
        "structure (weights are read when used); convert reads every weight.",
    ]
    table = "\n".join(lines)
    print(table)
    (out / "bench.md").write_text(table + "\n")
    (out / "bench.json").write_text(json.dumps({"model": str(model), "file_bytes": size, "sections": sections},
                                               indent=2) + "\n")


if __name__ == "__main__":
    main()
