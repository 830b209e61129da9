#!/usr/bin/env python3
"""mlpkg benchmarks, side by side with the tools people use today, on models generated at run time.

The model (nothing big is committed): an MLP of 8 blocks, each a MatMul by a [1024, 4096] and a [4096, 1024] float32
weight — 256 MiB of weights embedded in the protobuf.

- import: `mlpkg inspect` (parse + validate + summarise) vs `onnx.load`;
- fp16: `mlpkg convert --weights fp16` vs onnxconverter_common's `convert_float_to_float16(keep_io_types=True)`
  followed by `onnx.save` (what people run today to halve an ONNX file); `cp` of the input is the floor.
- int8: `mlpkg convert --weights int8` (per-channel symmetric) vs onnxruntime's
  `quantize_dynamic(weight_type=QuantType.QInt8, per_channel=True)`;
- int4: `mlpkg convert --weights int4` (blocks of 32, symmetric) vs onnxruntime's
  `MatMulNBitsQuantizer(block_size=32, is_symmetric=True, bits=4).process()` and save.
  For both, the weight SNR 10·log10(Σw² / Σ(w − ŵ)²) over all quantized weights together is recomputed here from
  each tool's output (the package read with tests/oracle/mlpkg_reader.py; the peers' stored integers, scales and zero
  points dequantized per their operators' definitions) against the original float weights; mlpkg's report.json
  figure (weightedMeanSNRDB) is shown beside it. A tool that fails is reported in the table, not fatal.

Each command runs in its own process, so its peak RSS (from wait4's rusage) is its own; times are wall-clock, best
and median of several warm runs (the file is in the page cache after the first).

Usage: bench/bench.py --mlpkg .build/release/mlpkg --out bench/out [--sections import,fp16,int8,int4]
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


def try_measure(argv: list[str]) -> tuple[float, int] | str:
    """Like measure(), but returns the failure (exit status and last stderr line) instead of exiting."""
    start = time.perf_counter()
    try:
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    except OSError as e:
        return f"cannot run: {e}"
    # drain stderr while waiting (a chatty tool must not block on a full pipe)
    err = proc.stderr.read().decode(errors="replace")
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    proc.stderr.close()
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        lines = [ln for ln in err.strip().splitlines() if ln.strip()]
        return f"exit {code}: {lines[-1][:160] if lines else '(no stderr)'}"
    return elapsed, usage.ru_maxrss * 1024


def try_tool(name: str, argv: list[str], runs: int, warmup: bool = True) -> dict:
    """run_tool that records a failure in the result ("error") instead of exiting."""
    result: dict = {"tool": name, "runs": runs}
    if warmup:
        first = try_measure(argv)
        if isinstance(first, str):
            return {**result, "error": first}
    samples = []
    for _ in range(runs):
        m = try_measure(argv)
        if isinstance(m, str):
            return {**result, "error": m}
        samples.append(m)
    times = [t for t, _ in samples]
    return {**result, "best_s": min(times), "median_s": statistics.median(times),
            "peak_rss_bytes": max(r for _, r in samples)}


def output_bytes(path: Path) -> int | None:
    if path.is_dir():
        return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    if path.is_file():
        extra = path.with_name(path.name + ".data")  # external data written beside the model
        return path.stat().st_size + (extra.stat().st_size if extra.is_file() else 0)
    return None


# ---------------------------------------------------------------------------------------------------------------------
# weight SNR of each tool's output against the original float weights (run in a child: it needs the weights in memory)


def _original_weights(model_path: Path) -> dict:
    model = onnx.load(str(model_path))
    return {t.name: numpy_helper.to_array(t) for t in model.graph.initializer if t.data_type == TensorProto.FLOAT}


class _SNRSum:
    def __init__(self):
        self.signal = 0.0
        self.noise = 0.0
        self.elements = 0
        self.tensors = 0
        self.weighted = 0.0  # Σ n_i · SNR_i, for the per-tensor weighted mean

    def add(self, w: np.ndarray, w_hat: np.ndarray) -> None:
        w = w.astype(np.float64)
        if w_hat.shape != w.shape:
            raise ValueError(f"dequantized shape {list(w_hat.shape)} != original {list(w.shape)}")
        e = float(np.sum((w - w_hat.astype(np.float64)) ** 2))
        s = float(np.sum(w * w))
        self.signal += s
        self.noise += e
        self.elements += w.size
        self.tensors += 1
        self.weighted += w.size * (10 * np.log10(s / e) if e > 0 else float("inf"))

    def result(self) -> dict:
        if not self.tensors:
            raise ValueError("no quantized weight found in the output")
        return {"snr_db": 10 * np.log10(self.signal / self.noise) if self.noise > 0 else float("inf"),
                "weighted_mean_snr_db": self.weighted / self.elements,
                "tensors": self.tensors, "elements": self.elements}


def snr_mlpkg(original: Path, package: Path) -> dict:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "oracle"))
    from mlpkg_reader import Package  # the oracle tests' independent reader
    weights = _original_weights(original)
    pkg = Package(package)
    acc = _SNRSum()
    for name, q in sorted(pkg.linear_tensors().items()):
        acc.add(weights[name], q.dequantize())
    out = acc.result()
    conv = (pkg.report or {}).get("conversion") or {}
    out["report_weighted_mean_snr_db"] = (conv.get("totals") or {}).get("weightedMeanSNRDB")
    return out


def _int_array(t) -> np.ndarray:
    return numpy_helper.to_array(t).astype(np.int32)


def snr_quantize_dynamic(original: Path, output: Path) -> dict:
    """quantize_dynamic's MatMul pattern: DynamicQuantizeLinear(x) -> MatMulInteger(x_q, W_quantized, x_zp, W_zp)
    -> Cast -> Mul by (x_scale * W_scale); W ≈ W_scale * (W_quantized - W_zp), scale/zp per column (last axis) when
    per_channel, else scalars. DequantizeLinear-fed weights (QDQ form) are read too."""
    weights = _original_weights(original)
    model = onnx.load(str(output))
    g = model.graph
    inits = {t.name: t for t in g.initializer}
    producer = {o: n for n in g.node for o in n.output}
    acc = _SNRSum()

    def original_name(qname: str) -> str:
        return qname[:-len("_quantized")] if qname.endswith("_quantized") else qname

    for n in g.node:
        if n.op_type == "MatMulInteger" and len(n.input) > 1 and n.input[1] in inits:
            q = _int_array(inits[n.input[1]])
            zp = _int_array(inits[n.input[3]]) if len(n.input) > 3 and n.input[3] in inits else np.zeros(1, np.int32)
            # the weight scale: the initializer multiplied with the activation scale of input 0
            scale = None
            dql = producer.get(n.input[0])
            x_scale = dql.output[1] if dql is not None and dql.op_type == "DynamicQuantizeLinear" else None
            for m in g.node:
                if m.op_type == "Mul" and x_scale in m.input:
                    other = [i for i in m.input if i != x_scale]
                    if other and other[0] in inits:
                        scale = numpy_helper.to_array(inits[other[0]]).astype(np.float32)
            base = original_name(n.input[1])
            if scale is None and base + "_scale" in inits:
                scale = numpy_helper.to_array(inits[base + "_scale"]).astype(np.float32)
            if scale is None:
                raise ValueError(f"no weight scale found for {n.input[1]}")
            w_hat = scale * (q - zp).astype(np.float32)  # scale/zp of shape [N] broadcast along the last axis
            acc.add(weights[base], w_hat)
        elif n.op_type == "DequantizeLinear" and n.input[0] in inits and \
                inits[n.input[0]].data_type in (TensorProto.INT8, TensorProto.UINT8):
            q = _int_array(inits[n.input[0]])
            scale = numpy_helper.to_array(inits[n.input[1]]).astype(np.float32)
            zp = _int_array(inits[n.input[2]]) if len(n.input) > 2 and n.input[2] in inits else np.zeros(1, np.int32)
            axis = next((a.i for a in n.attribute if a.name == "axis"), 1)
            if scale.ndim == 1 and scale.size > 1:
                shape = [1] * q.ndim
                shape[axis] = -1
                scale, zp = scale.reshape(shape), zp.reshape(shape)
            acc.add(weights[original_name(n.input[0])], scale * (q - zp).astype(np.float32))
    return acc.result()


def snr_matmul_nbits(original: Path, output: Path) -> dict:
    """com.microsoft MatMulNBits(A, B, scales, zero_points?) with attributes K, N, bits, block_size: B is uint8
    [N, n_blocks, block_size * bits / 8], column n's K values in blocks, packed LSB first (element 2i in the low
    nibble); scales [N, n_blocks] (or flattened); zero_points absent = 2^(bits-1), else uint8 [N, ceil(n_blocks *
    bits / 8)] packed the same way (for 8 bits one per byte). B_original[k, n] ≈ scales[n, k // block_size] *
    (q[n, k] - zp[n, k // block_size]). The original weight is the input 1 of the MatMul with the same output."""
    weights = _original_weights(original)
    orig_model = onnx.load(str(original), load_external_data=False)
    orig_b = {n.output[0]: n.input[1] for n in orig_model.graph.node if n.op_type == "MatMul"}
    model = onnx.load(str(output))
    g = model.graph
    inits = {t.name: t for t in g.initializer}
    acc = _SNRSum()

    def unpack(a: np.ndarray, bits: int, count: int) -> np.ndarray:
        a = a.astype(np.uint8).reshape(a.shape[0], -1)
        if bits == 8:
            return a[:, :count].astype(np.int32)
        per = 8 // bits
        mask = (1 << bits) - 1
        parts = [(a >> (bits * j)) & mask for j in range(per)]
        out = np.stack(parts, axis=-1).reshape(a.shape[0], -1)  # element per*i + j from bits j*bits..
        return out[:, :count].astype(np.int32)

    for n in g.node:
        if n.op_type != "MatMulNBits" or n.domain != "com.microsoft":
            continue
        at = {a.name: a.i for a in n.attribute}
        K, N, bits, bs = at["K"], at["N"], at.get("bits", 4), at["block_size"]
        nb = (K + bs - 1) // bs
        b = numpy_helper.to_array(inits[n.input[1]]).reshape(N, nb, -1)
        q = unpack(b.reshape(N * nb, -1), bits, bs).reshape(N, nb * bs)[:, :K]  # [N, K]
        scales = numpy_helper.to_array(inits[n.input[2]]).astype(np.float32).reshape(N, nb)
        if len(n.input) > 3 and n.input[3]:
            zp = unpack(numpy_helper.to_array(inits[n.input[3]]).reshape(N, -1), bits, nb)  # [N, nb]
        else:
            zp = np.full((N, nb), 1 << (bits - 1), np.int32)
        blk = np.arange(K) // bs
        w_hat_t = scales[:, blk] * (q - zp[:, blk]).astype(np.float32)  # [N, K]
        name = orig_b.get(n.output[0])
        if name is None:
            name = n.input[1].rsplit("_Q", 1)[0]
        acc.add(weights[name], w_hat_t.T)
    return acc.result()


SNR_JOBS = {"mlpkg": snr_mlpkg, "quantize_dynamic": snr_quantize_dynamic, "matmul_nbits": snr_matmul_nbits}


def weight_snr(kind: str, original: Path, output: Path) -> dict:
    """Runs the SNR computation in a child process (keeps this process, whose RSS children inherit, small)."""
    proc = subprocess.run([sys.executable, __file__, "--weight-snr", kind, str(original), str(output)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
        return {"error": lines[-1][:200] if lines else f"exit {proc.returncode}"}
    return json.loads(proc.stdout)


# ---------------------------------------------------------------------------------------------------------------------
# int8 / int4 sections

PEER_INT8 = ("import sys; from onnxruntime.quantization import quantize_dynamic, QuantType; "
             "quantize_dynamic(sys.argv[1], sys.argv[2], weight_type=QuantType.QInt8, per_channel=True)")
PEER_INT4 = ("import sys; from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer; "
             "q = MatMulNBitsQuantizer(sys.argv[1], block_size=32, is_symmetric=True, bits=4); q.process(); "
             "q.model.save_model_to_file(sys.argv[2])")


def quant_section(args, model: Path, out: Path, bits: int) -> list[dict]:
    kind = f"int{bits}"
    pkg = out / f"mlp256.{kind}.mlpkg"
    if bits == 8:
        peer_name, peer_code, peer_out, peer_snr = ("onnxruntime quantize_dynamic (QInt8, per_channel)", PEER_INT8,
                                                    out / "mlp256.qdyn-int8.onnx", "quantize_dynamic")
    else:
        peer_name, peer_code, peer_out, peer_snr = ("onnxruntime MatMulNBitsQuantizer (4 bit, block 32, sym)",
                                                    PEER_INT4, out / "mlp256.nbits-int4.onnx", "matmul_nbits")
    peer_runs = max(1, min(2, args.runs // 2))
    results = []
    tools = [
        (f"mlpkg convert --weights {kind}",
         [args.mlpkg, "convert", str(model), "-o", str(pkg), "--weights", kind, "--quiet"], args.runs, True, pkg,
         "mlpkg"),
        # the model is in the page cache already; a slow peer gets no warm-up run
        (peer_name, [sys.executable, "-c", peer_code, str(model), str(peer_out)], peer_runs, False, peer_out,
         peer_snr)]
    if bits == 4:
        # The peer's 5 bits per weight (block 32, fp32 scales) spent as blocks of 16 with fp16 scales.
        equal = out / "mlp256.int4-b16-fp16.mlpkg"
        tools.append(("mlpkg convert --weights int4 --block-size 16 --scale-type fp16 (equal size)",
                      [args.mlpkg, "convert", str(model), "-o", str(equal), "--weights", kind, "--block-size", "16",
                       "--scale-type", "fp16", "--quiet"], args.runs, True, equal, "mlpkg"))
    for name, argv, runs, warm, path, snr_kind in tools:
        if path.exists() and path.is_file():
            path.unlink()  # a stale output must not be measured as this run's
        print(f"  {kind}: {name} ...", flush=True)
        r = try_tool(name, argv, runs, warm)
        if "error" not in r:
            r["output_bytes"] = output_bytes(path)
            r.update({f"snr_{k}": v for k, v in weight_snr(snr_kind, model, path).items()})
        results.append(r)
    return results


def quant_lines(title: str, results: list[dict], size: int, snr_margin_db: float) -> list[str]:
    lines = [f"## {title}", "",
             "| tool | best (s) | median (s) | peak RSS (MiB) | RSS / file | output (MiB) | weight SNR (dB) "
             "| reported SNR (dB) |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        if "error" in r:
            lines.append(f"| {r['tool']} | failed: {r['error'].replace('|', '/')} | | | | | | |")
            continue
        snr = (f"{r['snr_snr_db']:.2f}" if "snr_snr_db" in r
               else f"error: {r.get('snr_error', '?')}".replace("|", "/"))
        rep = r.get("snr_report_weighted_mean_snr_db")
        out_b = r.get("output_bytes")
        lines.append(f"| {r['tool']} | {r['best_s']:.3f} | {r['median_s']:.3f} | "
                     f"{r['peak_rss_bytes'] / 2**20:.0f} | {r['peak_rss_bytes'] / size:.2f} | "
                     f"{f'{out_b / 2**20:.1f}' if out_b else '(none)'} | {snr} | "
                     f"{'' if rep is None else f'{rep:.2f}'} |")
    lines.append("")
    ours, peer = results[0], results[1]
    checks = []
    if "error" in ours or "error" in peer:
        checks.append("targets not evaluated: " + "; ".join(f"{r['tool']} failed" for r in results if "error" in r))
    else:
        speed = peer["best_s"] / ours["best_s"]
        checks.append(f"speed {speed:.1f}x the peer, best times (target >= 10x: {'met' if speed >= 10 else 'NOT met'})")
        if ours.get("output_bytes") and peer.get("output_bytes"):
            ratio = ours["output_bytes"] / peer["output_bytes"]
            checks.append(f"output {ours['output_bytes']:,} B = {ratio:.4f}x the peer's {peer['output_bytes']:,} B "
                          f"(target <= 1: {'met' if ratio <= 1 else 'NOT met'})")
        if "snr_snr_db" in ours and "snr_snr_db" in peer:
            gain = ours["snr_snr_db"] - peer["snr_snr_db"]  # met within 1e-6 dB: summation round-off on a tie
            checks.append(f"weight SNR {ours['snr_snr_db']:.4f} vs {peer['snr_snr_db']:.4f} dB = {gain:+.4f} dB "
                          f"(target >= {snr_margin_db:+.0f} dB: {'met' if gain >= snr_margin_db - 1e-6 else 'NOT met'})")
        rep = ours.get("snr_report_weighted_mean_snr_db")
        if rep is not None and "snr_weighted_mean_snr_db" in ours:
            checks.append(f"report.json weightedMeanSNRDB {rep:.3f} vs recomputed per-tensor weighted mean "
                          f"{ours['snr_weighted_mean_snr_db']:.3f} dB")
    lines += [f"{title}: " + "; ".join(checks) + ".", ""]
    for extra in results[2:]:
        if "error" in extra or "error" in peer or "snr_snr_db" not in extra or "snr_snr_db" not in peer:
            continue
        ratio = extra["output_bytes"] / peer["output_bytes"]
        gain = extra["snr_snr_db"] - peer["snr_snr_db"]
        lines += [f"{extra['tool']}: speed {peer['best_s'] / extra['best_s']:.1f}x the peer; output "
                  f"{extra['output_bytes']:,} B = {ratio:.4f}x the peer's; weight SNR {gain:+.4f} dB over the peer "
                  f"(target at equal size >= {snr_margin_db:+.0f} dB: {'met' if gain >= snr_margin_db else 'NOT met'}).",
                  ""]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mlpkg", default=".build/release/mlpkg")
    parser.add_argument("--out", default="bench/out")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--sections", default="import,fp16,int8,int4",
                        help="comma-separated subset of import,fp16,int8,int4")
    parser.add_argument("--generate", help=argparse.SUPPRESS)
    parser.add_argument("--weight-snr", nargs=3, metavar=("KIND", "ORIGINAL", "OUTPUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.generate:
        make_mlp(Path(args.generate))
        return
    if args.weight_snr:
        kind, original, output = args.weight_snr
        print(json.dumps(SNR_JOBS[kind](Path(original), Path(output))))
        return
    wanted = {x.strip() for x in args.sections.split(",") if x.strip()}

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
    sections: dict[str, list[dict]] = {}
    if "import" in wanted:
        sections["import"] = [
            run_tool("mlpkg inspect", [args.mlpkg, "inspect", str(model), "--json"], args.runs),
            run_tool("python onnx.load", [sys.executable, "-c", loader, str(model)], args.runs),
            # The interpreter and onnx import alone, so onnx.load's own cost can be read off.
            run_tool("python + import onnx (baseline)", [sys.executable, "-c", "import onnx"], args.runs),
        ]
    sizes = {}
    if "fp16" in wanted:
        sections["fp16"] = [
            run_tool("mlpkg convert --weights fp16",
                     [args.mlpkg, "convert", str(model), "-o", str(pkg), "--weights", "fp16", "--quiet"], args.runs),
            run_tool("onnxconverter_common float16 (keep_io_types) + onnx.save",
                     [sys.executable, "-c", peer_fp16, str(model), str(peer_out)], max(1, args.runs // 2)),
            run_tool("cp (floor)", ["cp", str(model), str(out / "copy.onnx")], args.runs),
        ]
        sizes = {"mlpkg convert --weights fp16": sum(f.stat().st_size for f in pkg.iterdir()),
                 "onnxconverter_common float16 (keep_io_types) + onnx.save": peer_out.stat().st_size,
                 "cp (floor)": size}
    quant = {}
    for bits in (8, 4):
        if f"int{bits}" in wanted:
            quant[f"int{bits}"] = quant_section(args, model, out, bits)

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
    if "import" in sections:
        imp = sections["import"][0]
        lines.append(f"Import: {imp['best_s']:.3f} s (target < 0.5 s), peak RSS {imp['peak_rss_bytes'] / size:.2f}x "
                     f"the file (target <= 2.2x).")
    if "fp16" in sections:
        fp16 = sections["fp16"]
        lines.append(f"fp16: mlpkg is {fp16[1]['best_s'] / fp16[0]['best_s']:.1f}x faster than onnxconverter_common "
                     f"(target >= 10x), with {fp16[0]['peak_rss_bytes'] / fp16[1]['peak_rss_bytes']:.2f}x its peak "
                     f"RSS (target <= 0.5x); {fp16[0]['best_s'] / fp16[2]['best_s']:.1f}x the time of cp.")
    if quant:
        lines.append("")
    for title, results in quant.items():
        lines += quant_lines(title, results, size, 0.0 if title == "int8" else 1.0)
        sections[title] = results
    lines += [
        "",
        "Notes: peak RSS is wait4's ru_maxrss of each command; a child forked from this Python process starts from",
        "its RSS (about 44 MiB), so that is the floor of the column. mlpkg inspect maps the model and parses only its",
        "structure (weights are read when used); convert reads every weight.",
    ]
    if quant:
        lines += [
            "int8/int4: peers run without a warm-up and fewer times than mlpkg (they are slow). Weight SNR is",
            "10·log10(Σw²/Σ(w−ŵ)²) over all quantized weights together, recomputed from each output; \"reported\" is",
            "mlpkg's report.json weightedMeanSNRDB (per-tensor SNRs weighted by element count). Output sizes count the",
            "package folder, or the .onnx file plus any external data file beside it.",
        ]
    table = "\n".join(lines)
    print(table)
    (out / "bench.md").write_text(table + "\n")
    (out / "bench.json").write_text(json.dumps({"model": str(model), "file_bytes": size, "sections": sections},
                                               indent=2) + "\n")


if __name__ == "__main__":
    main()
