#!/usr/bin/env python3
"""mlpkg benchmarks, side by side with the tools people use today, on models generated at run time (nothing big is
committed; generated models are kept in the output folder and reused by later runs).

Models: mlp256 (an MLP of 8 × [1024×4096, 4096×1024] float32 weights, 256 MiB embedded in the protobuf);
transformer (a [32000×1024] embedding table read by Gather plus 4 attention/MLP layers, about 320 MiB embedded);
mlp1g and mlp4g (MLPs of 1 GiB and 4 GiB with their weights in an external data file); resnet50 (a ResNet-50-sized
CNN, bench_run.py's generator, 98 MiB embedded; Core ML rows only).

Per model: `cp` of the input (the floor); `mlpkg inspect` vs `onnx.load`; and per format
- fp16: `mlpkg convert --weights fp16` vs onnxconverter_common's `convert_float_to_float16(keep_io_types=True)` + save;
- int8: `mlpkg convert --weights int8` (per-channel symmetric) vs onnxruntime's
  `quantize_dynamic(weight_type=QInt8, per_channel=True)`;
- int4: `mlpkg convert --weights int4` (blocks of 32, symmetric) vs onnxruntime's
  `MatMulNBitsQuantizer(block_size=32, is_symmetric=True, bits=4)`.
On mlp4g, `mlpkg verify` and `mlpkg export` of each package are timed too.
Core ML (format `coreml`, on mlp1g and resnet50): the one-step conversion `mlpkg convert MODEL.onnx -o X.mlpackage`,
with the default options (fp16 weights) and with `--weights int8` (mlp1g's dynamic batch pinned: --input-shape
x=1,2048). With --baseline-mlpkg PATH the same commands run with a second binary too (an older build), alternating
run by run with the current one so that a change in the machine's load falls on both, and the report says whether
each is within 1.5× of the baseline's time. Their temporary files go to the scratch folder (TMPDIR), as the outputs do. Peers run only on models up to
--peer-max-bytes (they hold several copies of the weights in memory). Weight SNR 10·log10(Σw²/Σ(w−ŵ)²) over all
quantized weights is recomputed from each tool's output (packages read with tests/oracle/mlpkg_reader.py) for models up
to --snr-max-bytes.

Each command runs in its own process, so its peak RSS (wait4's rusage) is its own; times are wall-clock, best and
median of several warm runs (at most 3 for models over 1 GiB; peers get no warm-up run, and a best of 2 up to 512 MiB,
one run beyond).

Writes bench.md (the table and the targets, met or not), bench.json (every number) and bench.png (time and memory per
tool and format) into --out.

Usage: bench/bench.py --mlpkg .build/release/mlpkg --out DIR [--models mlp256,transformer,mlp1g,mlp4g,resnet50]
       [--baseline-mlpkg OLD/mlpkg]
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


def try_measure(argv: list[str], env: dict | None = None) -> tuple[float, int] | str:
    """Like measure(), but returns the failure (exit status and last stderr line) instead of exiting."""
    start = time.perf_counter()
    try:
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
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


def try_tools_alternating(tools: list[tuple[str, list[str]]], runs: int, env: dict | None = None) -> list[dict]:
    """try_tool for commands to be compared with each other: a warm-up run of each, then the runs taken in turn (A, B,
    A, B, ...), so that a change in the machine's load during the measurement falls on all of them alike."""
    results: list[dict] = [{"tool": name, "runs": runs} for name, _ in tools]
    samples: list[list] = [[] for _ in tools]
    for i in range(-1, runs):  # -1: the warm-up
        for k, (_, argv) in enumerate(tools):
            if "error" in results[k]:
                continue
            m = try_measure(argv, env)
            if isinstance(m, str):
                results[k]["error"] = m
            elif i >= 0:
                samples[k].append(m)
    for result, taken in zip(results, samples):
        if "error" not in result:
            times = [t for t, _ in taken]
            result.update({"best_s": min(times), "median_s": statistics.median(times), "times_s": times,
                           "peak_rss_bytes": max(r for _, r in taken)})
    return results


def output_bytes(path: Path) -> int | None:
    if path.is_dir():
        return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    if path.is_file():
        # external data written beside the model: OUT.data (peers) or OUT.<digest>.data (mlpkg export)
        extra = [path.with_name(path.name + ".data")] + sorted(path.parent.glob(path.name + ".*.data"))
        return path.stat().st_size + sum(p.stat().st_size for p in extra if p.is_file())
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
    for i, t in enumerate(pkg.tensors):  # palettized (lut) tensors, decoded by the same independent reader
        if t["encoding"]["kind"] == "lut":
            acc.add(weights[t["name"]], pkg.decode_palettized(i))
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
# models

def _mlp_graph(blocks: int, hidden: int, inner: int, inits: list) -> onnx.GraphProto:
    nodes, x = [], "x"
    for b in range(blocks):
        h = f"block{b}.h"
        nodes.append(helper.make_node("MatMul", [x, f"block{b}.w1"], [h], name=f"block{b}.mm1"))
        nodes.append(helper.make_node("Relu", [h], [h + ".relu"], name=f"block{b}.relu"))
        nodes.append(helper.make_node("MatMul", [h + ".relu", f"block{b}.w2"], [f"block{b}.y"], name=f"block{b}.mm2"))
        x = f"block{b}.y"
    return helper.make_graph(nodes, "mlp", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", hidden])],
                             [helper.make_tensor_value_info(x, TensorProto.FLOAT, ["batch", hidden])], inits)


def make_mlp_external(path: Path, blocks: int, hidden: int, inner: int) -> None:
    """An MLP whose weights live in one external data file, written tensor by tensor (never all in memory)."""
    rng = np.random.default_rng(1)
    data = path.with_suffix(".data")
    inits, offset = [], 0
    with open(data, "wb") as f:
        for b in range(blocks):
            for name, shape in ((f"block{b}.w1", (hidden, inner)), (f"block{b}.w2", (inner, hidden))):
                w = rng.standard_normal(shape, dtype=np.float32)
                w *= 0.02
                w.tofile(f)
                t = TensorProto(name=name, data_type=TensorProto.FLOAT, dims=list(shape),
                                data_location=TensorProto.EXTERNAL)
                for k, v in (("location", data.name), ("offset", str(offset)), ("length", str(w.nbytes))):
                    e = t.external_data.add()
                    e.key, e.value = k, v
                offset += w.nbytes
                inits.append(t)
    model = helper.make_model(_mlp_graph(blocks, hidden, inner, inits), opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 10
    path.write_bytes(model.SerializeToString())


def make_transformer(path: Path, vocab: int = 32000, dim: int = 1024, layers: int = 4) -> None:
    """A decoder-like stack with a [vocab, dim] embedding table (Gather), attention projections and an MLP per layer,
    LayerNormalization and Softmax; weights embedded (about 320 MiB)."""
    rng = np.random.default_rng(2)
    inits = [numpy_helper.from_array(rng.standard_normal((vocab, dim), dtype=np.float32) * 0.02, "embed.weight")]
    nodes = [helper.make_node("Gather", ["embed.weight", "tokens"], ["h0"], name="embed")]
    x = "h0"
    for l in range(layers):
        p = f"layer{l}."
        def w(name, shape):
            inits.append(numpy_helper.from_array(rng.standard_normal(shape, dtype=np.float32) * 0.02, p + name))
            return p + name
        def v(name, value):
            inits.append(numpy_helper.from_array(np.full((dim,), value, np.float32), p + name))
            return p + name
        nodes.append(helper.make_node("LayerNormalization", [x, v("ln1.g", 1.0), v("ln1.b", 0.0)], [p + "n1"], axis=-1))
        for proj in ("q", "k", "v"):
            nodes.append(helper.make_node("MatMul", [p + "n1", w(proj, (dim, dim))], [p + proj + "_out"]))
        nodes.append(helper.make_node("Transpose", [p + "k_out"], [p + "kT"], perm=[0, 2, 1]))
        nodes.append(helper.make_node("MatMul", [p + "q_out", p + "kT"], [p + "scores"]))
        nodes.append(helper.make_node("Softmax", [p + "scores"], [p + "probs"], axis=-1))
        nodes.append(helper.make_node("MatMul", [p + "probs", p + "v_out"], [p + "ctx"]))
        nodes.append(helper.make_node("MatMul", [p + "ctx", w("o", (dim, dim))], [p + "attn"]))
        nodes.append(helper.make_node("Add", [x, p + "attn"], [p + "r1"]))
        nodes.append(helper.make_node("LayerNormalization", [p + "r1", v("ln2.g", 1.0), v("ln2.b", 0.0)], [p + "n2"], axis=-1))
        nodes.append(helper.make_node("MatMul", [p + "n2", w("up", (dim, 4 * dim))], [p + "u"]))
        nodes.append(helper.make_node("Relu", [p + "u"], [p + "a"]))
        nodes.append(helper.make_node("MatMul", [p + "a", w("down", (4 * dim, dim))], [p + "d"]))
        nodes.append(helper.make_node("Add", [p + "r1", p + "d"], [p + "out"]))
        x = p + "out"
    graph = helper.make_graph(nodes, "transformer",
                              [helper.make_tensor_value_info("tokens", TensorProto.INT64, ["batch", "seq"])],
                              [helper.make_tensor_value_info(x, TensorProto.FLOAT, ["batch", "seq", dim])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 10
    onnx.save_model(model, str(path))


def make_resnet50(path: Path) -> None:
    from bench_run import resnet50  # the generator `make bench-run` uses (this script's folder is on sys.path)
    resnet50(path)


# name -> (file name, generator, description, external data?)
MODELS = {
    "mlp256": ("mlp256.onnx", make_mlp, f"MLP, {BLOCKS} x [{HIDDEN}x{INNER}, {INNER}x{HIDDEN}] float32, embedded", False),
    "transformer": ("transformer.onnx", make_transformer,
                    "transformer-like: [32000x1024] embedding + 4 layers (q/k/v/o 1024², MLP 1024x4096), embedded", False),
    "mlp1g": ("mlp1g.onnx", lambda p: make_mlp_external(p, 16, 2048, 4096),
              "MLP, 16 x [2048x4096, 4096x2048] float32, external data", True),
    "mlp4g": ("mlp4g.onnx", lambda p: make_mlp_external(p, 16, 4096, 8192),
              "MLP, 16 x [4096x8192, 8192x4096] float32, external data", True),
    "resnet50": ("resnet50.onnx", make_resnet50,
                 "ResNet-50-sized CNN (bench_run.py's): 1x3x224x224, bottlenecks [3, 4, 6, 3], 1000 classes, embedded", False),
}
# The formats a model is measured in, where not all of --formats (the CNN is here for its Core ML conversion).
MODEL_FORMATS = {"resnet50": {"import", "coreml"}}
# The models with Core ML conversion rows (format `coreml`), and the options that pin a dynamic input for them.
COREML_PINS = {"mlp1g": ["--input-shape", "x=1,2048"], "resnet50": []}
# The Core ML conversions timed: (label, extra options).
COREML_VARIANTS = [("default", []), ("int8", ["--weights", "int8"])]
COREML_BASELINE_RATIO = 1.5  # "conversion time stays within 1.5× of [the build before the MIL IR work]"


def model_bytes(path: Path) -> int:
    data = path.with_suffix(".data")
    return path.stat().st_size + (data.stat().st_size if data.exists() else 0)


# ---------------------------------------------------------------------------------------------------------------------
# tools

PEER_FP16 = ("import onnx, sys; from onnxconverter_common import float16; m = onnx.load(sys.argv[1]); "
             "m = float16.convert_float_to_float16(m, keep_io_types=True); "
             "big = sum(t.ByteSize() for t in m.graph.initializer) > 2**30; "
             "onnx.save(m, sys.argv[2], save_as_external_data=big, location=sys.argv[2].rsplit('/', 1)[-1] + '.data')")
PEER_INT8 = ("import sys; from onnxruntime.quantization import quantize_dynamic, QuantType; "
             "quantize_dynamic(sys.argv[1], sys.argv[2], weight_type=QuantType.QInt8, per_channel=True, "
             "use_external_data_format=sys.argv[3] == 'external')")
PEER_INT4 = ("import sys; from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer; "
             "q = MatMulNBitsQuantizer(sys.argv[1], block_size=32, is_symmetric=True, bits=4); q.process(); "
             "q.model.save_model_to_file(sys.argv[2], use_external_data_format=sys.argv[3] == 'external')")
PEERS = {
    "fp16": ("onnxconverter_common float16 (keep_io_types) + onnx.save", PEER_FP16, "fp16", None),
    "int8": ("onnxruntime quantize_dynamic (QInt8, per_channel)", PEER_INT8, "qdyn-int8", "quantize_dynamic"),
    "int4": ("onnxruntime MatMulNBitsQuantizer (4 bit, block 32, sym)", PEER_INT4, "nbits-int4", "matmul_nbits"),
}
TARGET_SNR_MARGIN = {"int8": 0.0, "int4": 1.0}


def clear(path: Path) -> None:
    """Removes a previous output (file, its .data, or package folder) so a stale one is never measured."""
    import shutil
    if path.is_dir():
        shutil.rmtree(path)
    for p in (path, path.with_name(path.name + ".data"), *path.parent.glob(path.name + ".*.data")):
        if p.is_file():
            p.unlink()


def bench_model(args, key: str, out: Path, formats: list[str]) -> dict:
    file_name, generate, description, external = MODELS[key]
    if key in MODEL_FORMATS:
        formats = [f for f in formats if f in MODEL_FORMATS[key]]
    model = out / file_name
    scratch = Path(args.scratch) if args.scratch else out  # where outputs go
    if not model.exists():
        # In a child process: a forked child's peak RSS starts from its parent's, so the measuring process stays small.
        print(f"generating {model} ...", flush=True)
        subprocess.run([sys.executable, __file__, "--generate", key, str(model)], check=True)
    size = model_bytes(model)
    big = size > args.peer_max_bytes
    runs = min(args.runs, 3) if size > 2**30 else args.runs  # big models: fewer, but still a best of 3
    peer_runs = 1 if size > 2**29 else max(1, min(2, args.runs // 2))  # peers too get a best of 2 up to 512 MiB
    stem = model.stem
    rows: list[dict] = []

    def add(row: dict, fmt: str, role: str, path: Path | None, snr_kind: str | None) -> None:
        row.update({"model": key, "format": fmt, "role": role})
        if "error" not in row and path is not None:
            row["output_bytes"] = output_bytes(path)
            if snr_kind and size <= args.snr_max_bytes:
                row.update({f"snr_{k}": v for k, v in weight_snr(snr_kind, model, path).items()})
        rows.append(row)

    print(f"{key}: {description}, {size / 2**20:.0f} MiB", flush=True)
    load_before = os.getloadavg()
    copy_target = scratch / f"{stem}.copy"
    src = model.with_suffix(".data") if external else model
    add(try_tool("cp (floor)", ["cp", str(src), str(copy_target)], runs), "-", "floor", None, None)
    copy_target.unlink(missing_ok=True)
    if "import" in formats:
        add(try_tool("mlpkg inspect", [args.mlpkg, "inspect", str(model), "--json"], runs), "import", "mlpkg", None, None)
        if not big:
            loader = "import onnx, sys; m = onnx.load(sys.argv[1]); print(len(m.graph.initializer))"
            add(try_tool("python onnx.load", [sys.executable, "-c", loader, str(model)], peer_runs), "import", "peer",
                None, None)
    if "coreml" in formats and key in COREML_PINS:
        coreml_rows(args, key, model, scratch, runs, add)
    for fmt in (f for f in formats if f not in ("import", "coreml")):
        pkg = scratch / f"{stem}.{fmt}.mlpkg"
        clear(pkg)
        print(f"  {fmt}: mlpkg ...", flush=True)
        budget = ["--max-size", "0.14"] if fmt == "auto" else []  # auto: about int4's size
        add(try_tool(f"mlpkg convert --weights {fmt}" + (" --max-size 0.14" if budget else ""),
                     [args.mlpkg, "convert", str(model), "-o", str(pkg), "--weights", fmt, *budget, "--quiet"], runs),
            fmt, "mlpkg", pkg, "mlpkg" if fmt != "fp16" else None)
        if key == "mlp4g" or args.verify_export:
            # The package verifies and exports (ONNX with external data past 2 GiB), timed like the rest.
            add(try_tool("mlpkg verify", [args.mlpkg, "verify", str(pkg)], 1, warmup=False), fmt, "verify", None, None)
            exported = scratch / f"{stem}.{fmt}.export.onnx"
            clear(exported)
            add(try_tool("mlpkg export", [args.mlpkg, "export", str(pkg), "-o", str(exported)], 1, warmup=False),
                fmt, "export", exported, None)
            if fmt == "fp16" and exported.exists():
                # The exported model runs in onnxruntime and agrees with the original (fp16 weights' error only).
                print(f"  {fmt}: onnxruntime check of the export ...", flush=True)
                check = subprocess.run([sys.executable, __file__, "--ort-check", str(model), str(exported)],
                                       capture_output=True, text=True)
                rows.append({"model": key, "format": fmt, "role": "ort-check", "tool": "onnxruntime: export vs original",
                             **(json.loads(check.stdout) if check.returncode == 0
                                else {"error": (check.stderr.strip().splitlines() or ["?"])[-1][:200]})})
            clear(exported)
        if key == "mlp1g" or args.verify_export:
            # Export to ONNX and to Core ML (.mlpackage, ML Program, weights kept compressed) of the same package.
            onnx_out = scratch / f"{stem}.{fmt}.export.onnx"
            coreml_out = scratch / f"{stem}.{fmt}.mlpackage"
            clear(onnx_out)
            clear(coreml_out)
            add(try_tool("mlpkg export (ONNX)", [args.mlpkg, "export", str(pkg), "-o", str(onnx_out), "--quiet"], runs),
                fmt, "export-onnx", onnx_out, None)
            add(try_tool("mlpkg export --format coreml",
                         [args.mlpkg, "export", str(pkg), "--format", "coreml", "-o", str(coreml_out),
                          "--input-shape", "x=1,2048", "--quiet"], runs),
                fmt, "export-coreml", coreml_out, None)
            clear(onnx_out)
            clear(onnx_out.with_name(onnx_out.name + ".data"))
            clear(coreml_out)
        if key == "mlp256" and fmt == "int4":
            # The peer's 5 bits per weight (block 32, fp32 scales) spent as blocks of 16 with fp16 scales.
            equal = scratch / f"{stem}.int4-b16-fp16.mlpkg"
            clear(equal)
            add(try_tool("mlpkg convert --weights int4 --block-size 16 --scale-type fp16 (equal size)",
                         [args.mlpkg, "convert", str(model), "-o", str(equal), "--weights", "int4", "--block-size", "16",
                          "--scale-type", "fp16", "--quiet"], runs), fmt, "mlpkg-equal-size", equal, "mlpkg")
            clear(equal)
        if fmt not in PEERS:
            rows.append({"model": key, "format": fmt, "role": "peer", "tool": "-",
                         "skipped": "no ONNX tool palettizes (coremltools does it on Core ML models only)" if fmt.startswith("lut")
                         else "no peer chooses formats per tensor under a budget"})
        elif big:
            rows.append({"model": key, "format": fmt, "role": "peer", "tool": PEERS[fmt][0],
                         "skipped": f"model over {args.peer_max_bytes / 2**30:.1f} GiB (--peer-max-bytes)"})
        else:
            name, code, suffix, snr_kind = PEERS[fmt]
            peer_out = scratch / f"{stem}.{suffix}.onnx"
            clear(peer_out)
            print(f"  {fmt}: {name} ...", flush=True)
            # the model is in the page cache already; a slow peer gets no warm-up run
            add(try_tool(name, [sys.executable, "-c", code, str(model), str(peer_out),
                                "external" if external else "embedded"], peer_runs, warmup=False),
                fmt, "peer", peer_out, snr_kind)
            clear(peer_out)
        clear(pkg)
    return {"model": key, "file": file_name, "description": description, "bytes": size, "external_data": external,
            "rows": rows, "load_average": {"start": list(load_before), "end": list(os.getloadavg())}}


def coreml_rows(args, key: str, model: Path, scratch: Path, runs: int, add) -> None:
    """`mlpkg convert MODEL.onnx -o X.mlpackage` per COREML_VARIANTS, and the same with --baseline-mlpkg, alternating."""
    stem = model.stem
    env = {**os.environ, "TMPDIR": str(scratch)}  # a temporary package (older builds write one) is an output too
    for label, extra in COREML_VARIANTS:
        tools, paths = [], []
        for role, binary in (("coreml", args.mlpkg), ("coreml-baseline", args.baseline_mlpkg)):
            if binary is None:
                continue
            target = scratch / f"{stem}.coreml-{label}{'.baseline' if role == 'coreml-baseline' else ''}.mlpackage"
            clear(target)
            name = ("baseline " if role == "coreml-baseline" else "") + "mlpkg convert -o X.mlpackage" + \
                (" " + " ".join(extra) if extra else "")
            tools.append((name, [binary, "convert", str(model), "-o", str(target), *extra, *COREML_PINS[key], "--quiet"]))
            paths.append((role, target))
        print(f"  coreml {label}: {', '.join(name for name, _ in tools)} ...", flush=True)
        for result, (role, target) in zip(try_tools_alternating(tools, runs, env), paths):
            add(result, label, role, target, None)
            clear(target)


# ---------------------------------------------------------------------------------------------------------------------
# report

def _mib(b: float | None) -> str:
    return "" if b is None else f"{b / 2**20:.1f}"


def markdown(results: list[dict]) -> str:
    lines = ["# mlpkg benchmarks", "",
             "One `make bench` run: every tool on the same files, each command in its own process. Time is wall-clock "
             "(best of the runs; the file is in the page cache), peak RSS is wait4's ru_maxrss.", ""]
    baseline = next((m["baseline_mlpkg"] for m in results if m.get("baseline_mlpkg")), None)
    if baseline:
        lines += [f"Baseline binary (`--baseline-mlpkg`, rows `coreml-baseline`): `{baseline}`; its runs alternate with "
                  "the current binary's.", ""]
    for m in results:
        size = m["bytes"]
        load = m.get("load_average")
        lines += [f"## {m['model']}: {m['description']} ({size / 2**20:.0f} MiB)", ""]
        if load:
            lines += [f"Load average (1, 5, 15 min) at the start: {', '.join(f'{x:.2f}' for x in load['start'])}; "
                      f"at the end: {', '.join(f'{x:.2f}' for x in load['end'])} ({os.cpu_count()} CPUs).", ""]
        lines += [
                  "| format | tool | best (s) | median (s) | × cp | peak RSS (MiB) | RSS / file | output (MiB) "
                  "| weight SNR (dB) | vs peer |",
                  "|---|---|---:|---:|---:|---:|---:|---:|---:|---|"]
        floor = next((r for r in m["rows"] if r["role"] == "floor" and "best_s" in r), None)
        for r in m["rows"]:
            if r["role"] == "ort-check":
                detail = (f"max |diff| / max |output| = {r['max_rel_diff']:.2e}" if "max_rel_diff" in r
                          else "failed: " + r.get("error", "?").replace("|", "/"))
                lines.append(f"| {r['format']} | {r['tool']} | {detail} | | | | | | | |")
                continue
            if "skipped" in r or "error" in r:
                lines.append(f"| {r['format']} | {r['tool']} | {('skipped: ' + r['skipped']) if 'skipped' in r else 'failed: ' + r['error'].replace('|', '/')} | | | | | | | |")
                continue
            peer = next((p for p in m["rows"] if p["role"] == "peer" and p["format"] == r["format"] and "best_s" in p), None)
            versus = ""
            base = next((b for b in m["rows"] if b["role"] == "coreml-baseline" and b["format"] == r["format"]
                         and "best_s" in b), None)
            if r["role"] == "coreml" and base:
                versus = (f"{r['best_s'] / base['best_s']:.2f}× the baseline's time (median "
                          f"{r['median_s'] / base['median_s']:.2f}×), {r['peak_rss_bytes'] / base['peak_rss_bytes']:.2f}× RSS")
            if r["role"] in ("mlpkg", "mlpkg-equal-size") and peer:
                versus = (f"{peer['best_s'] / r['best_s']:.1f}× faster, {r['peak_rss_bytes'] / peer['peak_rss_bytes']:.2f}× RSS")
                if "snr_snr_db" in r and "snr_snr_db" in peer:
                    versus += f", {r['snr_snr_db'] - peer['snr_snr_db']:+.2f} dB"
            snr = f"{r['snr_snr_db']:.2f}" if "snr_snr_db" in r else ""
            lines.append(f"| {r['format']} | {r['tool']} | {r['best_s']:.3f} | {r['median_s']:.3f} | "
                         f"{r['best_s'] / floor['best_s']:.1f} | {r['peak_rss_bytes'] / 2**20:.0f} | "
                         f"{r['peak_rss_bytes'] / size:.2f} | {_mib(r.get('output_bytes'))} | {snr} | {versus} |"
                         if floor else f"| {r['format']} | {r['tool']} | {r['best_s']:.3f} | | | | | | | |")
        lines.append("")
    lines += targets(results)
    return "\n".join(lines) + "\n"


def targets(results: list[dict]) -> list[str]:
    """The issue's targets, each with its measured value and met / NOT met."""
    by = {m["model"]: m for m in results}
    out = ["## Targets", ""]

    def row(model: str, fmt: str, role: str) -> dict | None:
        m = by.get(model)
        r = next((r for r in m["rows"] if r["format"] == fmt and r["role"] == role), None) if m else None
        return r if r and "best_s" in r else None

    def check(label: str, ok: bool, detail: str) -> None:
        out.append(f"- {label}: {detail} — {'met' if ok else 'NOT met'}")

    if "mlp256" in by:
        floor = row("mlp256", "-", "floor")
        for fmt in ("fp16", "int8", "int4"):
            ours, peer = row("mlp256", fmt, "mlpkg"), row("mlp256", fmt, "peer")
            if ours and peer:
                check(f"256 MiB {fmt} ≥ 10× faster than its peer", peer["best_s"] / ours["best_s"] >= 10,
                      f"{peer['best_s'] / ours['best_s']:.1f}× ({ours['best_s']:.3f} s vs {peer['best_s']:.3f} s)")
            if ours and floor:
                check(f"256 MiB {fmt} within 4× of cp", ours["best_s"] / floor["best_s"] <= 4,
                      f"{ours['best_s'] / floor['best_s']:.2f}× cp ({floor['best_s']:.3f} s)")
    for key in ("mlp256", "transformer"):
        if key in by:
            worst = max((r["peak_rss_bytes"] for r in by[key]["rows"] if r["role"] == "mlpkg" and "peak_rss_bytes" in r),
                        default=None)
            if worst:
                check(f"{key} (embedded) peak RSS ≤ 2.1× the file", worst / by[key]["bytes"] <= 2.1,
                      f"{worst / by[key]['bytes']:.2f}× at worst")
    for key in ("mlp1g", "mlp4g"):
        if key in by:
            worst = max((r["peak_rss_bytes"] for r in by[key]["rows"] if r["role"] == "mlpkg" and "peak_rss_bytes" in r),
                        default=None)
            if worst:
                check(f"{key} (external data) convert peak RSS ≤ 0.3× the weights", worst / by[key]["bytes"] <= 0.3,
                      f"{worst / by[key]['bytes']:.3f}× at worst ({worst / 2**20:.0f} MiB)")
    if "mlp1g" in by:
        for fmt in ("fp16", "int8", "int4"):
            onnx_row, coreml_row = row("mlp1g", fmt, "export-onnx"), row("mlp1g", fmt, "export-coreml")
            if onnx_row and coreml_row:
                check(f"1 GiB {fmt} Core ML export within 2× of the ONNX export's time",
                      coreml_row["best_s"] <= 2 * onnx_row["best_s"],
                      f"{coreml_row['best_s']:.2f} s vs {onnx_row['best_s']:.2f} s")
                rss = coreml_row.get("peak_rss_bytes")
                if rss:
                    check(f"1 GiB {fmt} Core ML export peak RSS ≤ 0.3× the weights", rss / by["mlp1g"]["bytes"] <= 0.3,
                          f"{rss / by['mlp1g']['bytes']:.3f}× ({rss / 2**20:.0f} MiB)")
    for key in COREML_PINS:
        for label, _ in COREML_VARIANTS:
            now, base = row(key, label, "coreml"), row(key, label, "coreml-baseline")
            if now and base:
                ratio = now["best_s"] / base["best_s"]
                check(f"{key} Core ML conversion ({label}) within {COREML_BASELINE_RATIO}× of the baseline's time",
                      ratio <= COREML_BASELINE_RATIO,
                      f"{ratio:.2f}× ({now['best_s']:.2f} s vs {base['best_s']:.2f} s best; median "
                      f"{now['median_s']:.2f} s vs {base['median_s']:.2f} s, {now['median_s'] / base['median_s']:.2f}×)")
    for key in ("mlp256", "mlp1g"):
        lut, int4 = row(key, "lut4", "mlpkg"), row(key, "int4", "mlpkg")
        if lut and int4:
            check(f"{key} LUT-4 (exact k-means) within 3× of int4's time", lut["best_s"] <= 3 * int4["best_s"],
                  f"{lut['best_s']:.2f} s vs {int4['best_s']:.2f} s ({lut['best_s'] / int4['best_s']:.2f}×)")
            if lut.get("peak_rss_bytes") and int4.get("peak_rss_bytes"):
                ratio = lut["peak_rss_bytes"] / int4["peak_rss_bytes"]
                check(f"{key} LUT-4 peak RSS as int4's (≤ 1.25×)", ratio <= 1.25,
                      f"{lut['peak_rss_bytes'] / 2**20:.0f} MiB vs {int4['peak_rss_bytes'] / 2**20:.0f} MiB ({ratio:.2f}×)")
    if "mlp1g" in by and "mlp4g" in by:
        for fmt in ("fp16", "int8", "int4"):
            a, b = row("mlp1g", fmt, "mlpkg"), row("mlp4g", fmt, "mlpkg")
            if a and b:
                check(f"{fmt} 1 GiB → 4 GiB time grows ≤ 4.4×", b["best_s"] / a["best_s"] <= 4.4,
                      f"{b['best_s'] / a['best_s']:.2f}× ({a['best_s']:.2f} s → {b['best_s']:.2f} s)")
        ok = all(any(r["role"] == role and r["format"] == fmt and "best_s" in r for r in by["mlp4g"]["rows"])
                 for fmt in ("fp16", "int8", "int4") for role in ("mlpkg", "verify", "export"))
        check("the 4 GiB model converts, verifies and exports (each format)", ok, "see the mlp4g table")
        ort_check = next((r for r in by["mlp4g"]["rows"] if r["role"] == "ort-check"), None)
        if ort_check:
            diff = ort_check.get("max_rel_diff")
            check("the 4 GiB model's fp16 export runs in onnxruntime and matches the original (≤ 2e-3 relative)",
                  diff is not None and diff <= 2e-3, f"max relative difference {diff:.2e}" if diff is not None
                  else ort_check.get("error", "failed"))
    out.append("")
    return out


def chart(results: list[dict], path: Path) -> None:
    """Time and peak RSS per tool and format, one pair of panels per model (PNG)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(len(results), 2, figsize=(13, 3.2 * len(results)), squeeze=False)
    colours = {"mlpkg": "#2b7bba", "mlpkg-equal-size": "#6aaed6", "peer": "#e6550d", "floor": "#969696",
               "verify": "#31a354", "export": "#74c476", "coreml": "#756bb1", "coreml-baseline": "#bcbddc"}
    for (time_ax, rss_ax), m in zip(axes, results):
        rows = [r for r in m["rows"] if "best_s" in r]
        labels = [f"{r['format']} · {r['tool'][:38]}" for r in rows]
        y = range(len(rows))
        time_ax.barh(y, [r["best_s"] for r in rows], color=[colours.get(r["role"], "#444") for r in rows])
        rss_ax.barh(y, [r["peak_rss_bytes"] / 2**20 for r in rows], color=[colours.get(r["role"], "#444") for r in rows])
        time_ax.set_yticks(list(y), labels, fontsize=7)
        rss_ax.set_yticks(list(y), [""] * len(rows))
        time_ax.set_xscale("log")
        time_ax.set_xlabel("wall time (s, log scale)")
        rss_ax.set_xlabel("peak RSS (MiB)")
        time_ax.set_title(f"{m['model']} ({m['bytes'] / 2**20:.0f} MiB): time", fontsize=9)
        rss_ax.set_title(f"{m['model']}: peak memory", fontsize=9)
        time_ax.invert_yaxis()
        rss_ax.invert_yaxis()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mlpkg", default=".build/release/mlpkg")
    parser.add_argument("--out", default="bench/out", help="folder for the models, bench.md, bench.json and bench.png")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--models", default="mlp256,transformer,mlp1g,mlp4g,resnet50",
                        help="comma-separated subset of " + ",".join(MODELS))
    parser.add_argument("--formats", default="import,fp16,int8,int4,lut4,coreml",
                        help="import, fp16, int8, int4, lut4, auto (.mlpkg conversions, peers), coreml (Core ML rows)")
    parser.add_argument("--baseline-mlpkg", help="a second mlpkg binary (e.g. an older build) whose Core ML conversion "
                        "is timed beside --mlpkg's; the report says whether --mlpkg is within "
                        f"{COREML_BASELINE_RATIO}× of its time")
    parser.add_argument("--peer-max-bytes", type=int, default=3 * 2**29,
                        help="run the Python peers only on models up to this size (they need several times the "
                             "model in memory)")
    parser.add_argument("--snr-max-bytes", type=int, default=2**29, help="recompute weight SNR up to this size")
    parser.add_argument("--scratch", help="write every tool's output here instead of --out (e.g. a tmpfs such as "
                             "/dev/shm/x, to take the disk's write-back out of the times)")
    parser.add_argument("--verify-export", action="store_true", help="also time verify and export on every model")
    parser.add_argument("--generate", nargs=2, metavar=("MODEL", "PATH"), help=argparse.SUPPRESS)
    parser.add_argument("--ort-check", nargs=2, metavar=("ORIGINAL", "EXPORTED"), help=argparse.SUPPRESS)
    parser.add_argument("--weight-snr", nargs=3, metavar=("KIND", "ORIGINAL", "OUTPUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.generate:
        key, path = args.generate
        MODELS[key][1](Path(path))
        return
    if args.ort_check:
        import onnxruntime as ort
        original, exported = args.ort_check
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
        first = ort.InferenceSession(original, options, providers=["CPUExecutionProvider"])
        feed = {i.name: np.random.default_rng(0).standard_normal([2 if isinstance(d, str) else d for d in i.shape])
                .astype(np.float32) for i in first.get_inputs()}
        want = first.run(None, feed)[0]
        del first
        got = ort.InferenceSession(exported, options, providers=["CPUExecutionProvider"]).run(None, feed)[0]
        print(json.dumps({"max_rel_diff": float(np.abs(want - got).max() / np.abs(want).max())}))
        return
    if args.weight_snr:
        kind, original, output = args.weight_snr
        print(json.dumps(SNR_JOBS[kind](Path(original), Path(output))))
        return
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.scratch:
        Path(args.scratch).mkdir(parents=True, exist_ok=True)
    formats = [f.strip() for f in args.formats.split(",") if f.strip()]
    results = [bench_model(args, key.strip(), out, formats) for key in args.models.split(",") if key.strip()]
    if args.baseline_mlpkg:
        for m in results:
            m["baseline_mlpkg"] = args.baseline_mlpkg
    table = markdown(results)
    print(table)
    (out / "bench.md").write_text(table)
    (out / "bench.json").write_text(json.dumps({"results": results}, indent=2) + "\n")
    chart(results, out / "bench.png")
    print(f"wrote {out / 'bench.md'}, {out / 'bench.json'} and {out / 'bench.png'}")


if __name__ == "__main__":
    main()
