"""Compression study (issue 14): which format keeps a model's answers at which size, on generated models with
realistic weight statistics. Not part of `make test` (it takes minutes); `make study` runs it.

Models (generated here, never committed):
- minilm: a MiniLM-L6-like sentence encoder (BERT layout: 30,522 × 384 token embedding, position embedding,
  6 layers of Q/K/V/O 384×384 and FFN 384→1536→384 with GELU, LayerNorms), mean-pooled over tokens, 22.7 M
  parameters. Weights are heavy-tailed like trained ones: Student-t noise (ν = 5) with a log-normal scale per
  output channel, a few outlier input channels ×6, embedding rows of log-normal norm.
- convnet: a ResNet-like stack of 3×3 convolutions (16→256 channels) with per-channel scales and BatchNorm folded in.

For each format (uniform int8/int4 variants, lut formats, and --weights auto at several budgets) it converts with
mlpkg, exports to ONNX and runs both in onnxruntime on fixed inputs: the score is the mean cosine between the
original's and the export's outputs (sentence embeddings / logits), next to the weight bytes.

Usage: python3 bench/compression_study.py --mlpkg .build/release/mlpkg --out DIR [--models minilm,convnet]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper


def heavy(rng, shape, scale, channel_axis=-1, outliers=0):
    """Student-t (ν=5) weights with a log-normal scale per output channel and a few outlier input channels."""
    w = rng.standard_t(5, size=shape) * scale / np.sqrt(5 / 3)
    per = rng.lognormal(0, 0.3, size=shape[channel_axis])
    w = w * np.expand_dims(per, tuple(i for i in range(len(shape)) if i != channel_axis % len(shape)))
    if outliers:
        other = 0 if channel_axis % len(shape) != 0 else 1
        idx = rng.choice(shape[other], outliers, replace=False)
        sl = [slice(None)] * len(shape)
        sl[other] = idx
        w[tuple(sl)] *= 6
    return w.astype(np.float32)


def make_minilm(path: Path, layers=6, hidden=384, heads=12, inner=1536, vocab=30522, positions=512) -> None:
    rng = np.random.default_rng(2024)
    inits, nodes = [], []

    def init(name, a):
        inits.append(numpy_helper.from_array(np.asarray(a, np.float32) if a.dtype.kind == "f" else a, name))
        return name

    def n(op, ins, outs, **kw):
        nodes.append(helper.make_node(op, ins, outs, **kw))
        return outs[0]

    emb = rng.standard_t(4, size=(vocab, hidden)) * 0.05
    emb *= rng.lognormal(0, 0.4, size=(vocab, 1))
    init("tok_emb", emb)
    init("pos_emb", heavy(rng, (positions, hidden), 0.02, channel_axis=0))
    init("pos_ids", np.arange(positions, dtype=np.int64))
    x = n("Gather", ["tok_emb", "input_ids"], ["tok"], axis=0)
    init("zero", np.array([0], np.int64))
    seq = n("Shape", ["input_ids"], ["ids_shape"])
    one = init("one_i", np.array([1], np.int64))
    two = init("two_i", np.array([2], np.int64))
    length = n("Slice", [seq, one, two], ["seq_len"])
    pos = n("Slice", ["pos_ids", "zero", length], ["pos_sel"])
    p = n("Gather", ["pos_emb", pos], ["pos"], axis=0)
    x = n("Add", [x, p], ["emb_sum"])

    def ln(prefix, v):
        init(prefix + ".g", 1 + 0.05 * rng.standard_normal(hidden))
        init(prefix + ".b", 0.02 * rng.standard_normal(hidden))
        return n("LayerNormalization", [v, prefix + ".g", prefix + ".b"], [prefix + ".out"], axis=-1, epsilon=1e-12)

    def linear(prefix, v, din, dout, scale):
        init(prefix + ".w", heavy(rng, (din, dout), scale, channel_axis=-1, outliers=4))
        init(prefix + ".bias", 0.02 * rng.standard_normal(dout))
        h = n("MatMul", [v, prefix + ".w"], [prefix + ".mm"])
        return n("Add", [h, prefix + ".bias"], [prefix + ".out"])

    x = ln("emb_ln", x)
    hd = hidden // heads
    init("split_shape", np.array([0, -1, heads, hd], np.int64))
    init("merge_shape", np.array([0, -1, hidden], np.int64))
    init("scale", np.array(1 / np.sqrt(hd), np.float32))
    init("half", np.array(0.5, np.float32))
    init("one", np.array(1.0, np.float32))
    init("rsqrt2", np.array(1 / np.sqrt(2), np.float32))
    for i in range(layers):
        pre = f"l{i}"
        q = linear(pre + ".q", x, hidden, hidden, 0.04)
        k = linear(pre + ".k", x, hidden, hidden, 0.04)
        v = linear(pre + ".v", x, hidden, hidden, 0.04)
        heads_of = lambda t, nm: n("Transpose", [n("Reshape", [t, "split_shape"], [nm + ".r"])], [nm + ".t"], perm=[0, 2, 1, 3])
        qt, kt, vt = heads_of(q, pre + ".qh"), heads_of(k, pre + ".kh"), heads_of(v, pre + ".vh")
        kT = n("Transpose", [kt], [pre + ".kT"], perm=[0, 1, 3, 2])
        s = n("Mul", [n("MatMul", [qt, kT], [pre + ".s"]), "scale"], [pre + ".ss"])
        a = n("Softmax", [s], [pre + ".a"], axis=-1)
        c = n("MatMul", [a, vt], [pre + ".c"])
        c = n("Reshape", [n("Transpose", [c], [pre + ".ct"], perm=[0, 2, 1, 3]), "merge_shape"], [pre + ".cm"])
        o = linear(pre + ".o", c, hidden, hidden, 0.04)
        x = ln(pre + ".ln1", n("Add", [x, o], [pre + ".res1"]))
        h = linear(pre + ".fc1", x, hidden, inner, 0.04)
        g = n("Mul", [n("Mul", [h, "half"], [pre + ".h2"]),
                      n("Add", [n("Erf", [n("Mul", [h, "rsqrt2"], [pre + ".hs"])], [pre + ".erf"]), "one"], [pre + ".e1"])],
              [pre + ".gelu"])
        f = linear(pre + ".fc2", g, inner, hidden, 0.025)
        x = ln(pre + ".ln2", n("Add", [x, f], [pre + ".res2"]))
    n("ReduceMean", [x], ["sentence"], axes=[1], keepdims=0)
    graph = helper.make_graph(nodes, "minilm_like", [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "seq"])],
                              [helper.make_tensor_value_info("sentence", TensorProto.FLOAT, ["batch", hidden])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 10
    onnx.save(model, str(path))


def make_convnet(path: Path) -> None:
    rng = np.random.default_rng(7)
    inits, nodes = [], []
    x, cin = "images", 3
    for i, cout in enumerate([16, 32, 64, 128, 256, 256]):
        w = heavy(rng, (cout, cin, 3, 3), np.sqrt(2 / (cin * 9)), channel_axis=0)
        inits += [numpy_helper.from_array(w, f"c{i}.w"), numpy_helper.from_array((0.05 * rng.standard_normal(cout)).astype(np.float32), f"c{i}.b")]
        nodes.append(helper.make_node("Conv", [x, f"c{i}.w", f"c{i}.b"], [f"c{i}"], kernel_shape=[3, 3], pads=[1, 1, 1, 1],
                                      strides=[2, 2] if i % 2 else [1, 1]))
        nodes.append(helper.make_node("Relu", [f"c{i}"], [f"r{i}"]))
        x, cin = f"r{i}", cout
    nodes.append(helper.make_node("GlobalAveragePool", [x], ["gap"]))
    nodes.append(helper.make_node("Flatten", ["gap"], ["flat"]))
    inits.append(numpy_helper.from_array(heavy(rng, (256, 1000), 0.06, channel_axis=-1), "fc.w"))
    nodes.append(helper.make_node("MatMul", ["flat", "fc.w"], ["logits"]))
    graph = helper.make_graph(nodes, "convnet", [helper.make_tensor_value_info("images", TensorProto.FLOAT, [4, 3, 64, 64])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [4, 1000])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 10
    onnx.save(model, str(path))


MODELS = {"minilm": make_minilm, "convnet": make_convnet}


def feeds(model: str) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(99)
    if model == "minilm":
        return {"input_ids": rng.integers(1000, 30000, size=(16, 32)).astype(np.int64)}
    return {"images": rng.standard_normal((4, 3, 64, 64)).astype(np.float32)}


def calibration_feeds(model: str) -> dict[str, np.ndarray]:
    """Calibration inputs (`--calibration`): drawn apart from the evaluation feeds (another seed), so calibrated
    choices are scored on inputs they never saw."""
    rng = np.random.default_rng(1234)
    if model == "minilm":
        return {"input_ids": rng.integers(1000, 30000, size=(16, 32)).astype(np.int64)}
    return {"images": rng.standard_normal((4, 3, 64, 64)).astype(np.float32)}


def run(path: Path, inputs) -> np.ndarray:
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"]).run(None, inputs)[0]


def mean_cosine(a: np.ndarray, b: np.ndarray) -> float:
    a = a.reshape(a.shape[0], -1).astype(np.float64)
    b = b.reshape(b.shape[0], -1).astype(np.float64)
    return float(np.mean(np.sum(a * b, 1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))))


def study(mlpkg: str, out: Path, model: str) -> list[dict]:
    src = out / f"{model}.onnx"
    if not src.exists():
        MODELS[model](src)
    inputs = feeds(model)
    ref = run(src, inputs)
    variants = [
        ("fp16", ["--weights", "fp16"]),
        ("int8 per-channel", ["--weights", "int8"]),
        ("int7 block 32 asym", ["--weights", "int7"]),
        ("int6 block 32 asym", ["--weights", "int6"]),
        ("int5 block 32 asym", ["--weights", "int5"]),
        ("int4 block 32 asym (default)", ["--weights", "int4"]),
        ("int4 block 32 sym", ["--weights", "int4", "--symmetric"]),
        ("int4 block 32 sym fp32 scales", ["--weights", "int4", "--symmetric", "--scale-type", "fp32"]),
        ("int4 block 64 sym", ["--weights", "int4", "--symmetric", "--block-size", "64"]),
        ("int4 block 64 asym", ["--weights", "int4", "--block-size", "64"]),
        ("int4 block 128 sym", ["--weights", "int4", "--symmetric", "--block-size", "128"]),
        ("int4 block 16 sym", ["--weights", "int4", "--symmetric", "--block-size", "16"]),
        ("int4 per-channel sym", ["--weights", "int4", "--symmetric", "--granularity", "per-channel"]),
        ("int3 block 32 asym", ["--weights", "int3"]),
        ("lut8", ["--weights", "lut8"]),
        ("lut6", ["--weights", "lut6"]),
        ("lut4", ["--weights", "lut4"]),
        ("lut4 per 16 rows", ["--weights", "lut4", "--granularity", "per-channel"]),
        ("lut3", ["--weights", "lut3"]),
    ]
    rows = []

    def one(label, args):
        pkg = out / f"{model}.pkg"
        proc = subprocess.run([mlpkg, "convert", str(src), "-o", str(pkg), "--json", *args], capture_output=True, text=True)
        if proc.returncode != 0:
            rows.append({"model": model, "variant": label, "error": proc.stderr.strip()[-200:]})
            return None
        report = json.loads(proc.stdout)["report"]
        exported = out / f"{model}.export.onnx"
        subprocess.run([mlpkg, "export", str(pkg), "-o", str(exported), "--quiet", "--dequantize"], check=True)
        got = run(exported, inputs)
        row = {"model": model, "variant": label, "bytes": report["totals"]["bytesAfter"],
               "weighted_snr_db": report["totals"]["weightedMeanSNRDB"], "cosine": mean_cosine(ref, got)}
        if report.get("auto"):
            row["auto_formats"] = report["auto"]["formats"]
        rows.append(row)
        print(json.dumps(row), flush=True)
        return row

    sizes = {}
    for label, args in variants:
        r = one(label, args)
        if r:
            sizes[label] = r["bytes"]
    calib = out / f"{model}.calibration.npz"
    np.savez(calib, **calibration_feeds(model))
    for label in ("int4 block 32 sym", "int4 block 32 asym (default)", "lut4", "lut3", "int8 per-channel"):
        if label in sizes:
            one(f"auto --max-size {sizes[label]} (= {label})", ["--weights", "auto", "--max-size", str(sizes[label])])
            one(f"calibrated auto --max-size {sizes[label]} (= {label})",
                ["--weights", "auto", "--max-size", str(sizes[label]), "--calibration", str(calib)])
    rows += activations(mlpkg, out, model, src, inputs, ref, calib)
    return rows


def activations(mlpkg: str, out: Path, model: str, src: Path, inputs, ref, calib: Path) -> list[dict]:
    """W8A8 (`--activations int8`, int8 weights) against W8 (int8 weights, fp16 activations): one-step .mlpackage
    conversions run in mlpkg's evaluator (`mlpkg run`, fp16 compute as declared) on the evaluation feeds."""
    pins = [f"{k}={','.join(map(str, v.shape))}" for k, v in inputs.items()]
    feeds = out / f"{model}.feeds.npz"
    np.savez(feeds, **inputs)
    rows = []
    for label, extra in (("W8 (int8 weights, fp16 activations)", ["--weights", "int8"]),
                         ("W8A8 (--activations int8)", ["--activations", "int8", "--calibration", str(calib)])):
        pkg = out / f"{model}.{'w8a8' if 'A8' in label else 'w8'}.mlpackage"
        args = [mlpkg, "convert", str(src), "-o", str(pkg), *extra]
        for p in pins:
            args += ["--input-shape", p]
        proc = subprocess.run(args, capture_output=True, text=True)
        if proc.returncode != 0:
            rows.append({"model": model, "variant": label, "error": proc.stderr.strip()[-300:]})
            continue
        got_path = out / f"{model}.outputs.npz"
        subprocess.run([mlpkg, "run", str(pkg), "--inputs", str(feeds), "-o", str(got_path), "--quiet"], check=True)
        got = list(np.load(got_path).values())[0]
        row = {"model": model, "variant": label, "bytes": None, "weighted_snr_db": None, "cosine": mean_cosine(ref, got),
               "report": [l for l in proc.stdout.splitlines() if l.startswith(("int8 activations", "  kept in fp16"))]}
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mlpkg", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--models", default="minilm,convnet")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for m in args.models.split(","):
        rows += study(args.mlpkg, out, m)
    (out / "compression_study.json").write_text(json.dumps(rows, indent=1))
    print("\n| model | variant | weight bytes | weighted SNR dB | mean output cosine |\n|---|---|---|---|---|")
    for r in rows:
        if "error" in r:
            print(f"| {r['model']} | {r['variant']} | error: {r['error']} | | |")
        else:
            snr = "" if r["weighted_snr_db"] is None else f"{r['weighted_snr_db']:.1f}"
            size = "" if r["bytes"] is None else f"{r['bytes']:,}"
            print(f"| {r['model']} | {r['variant']} | {size} | {snr} | {r['cosine']:.5f} |")
            for line in r.get("report", []):
                print(f"|  |  {line.strip()} | | | |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
