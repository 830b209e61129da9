#!/usr/bin/env python3
"""`mlpkg run` (the Swift reference evaluator) against onnxruntime's CPU provider on the same machine, on two models
generated at run time with random weights (nothing committed): a ResNet-50-sized CNN (the torchvision layout: 7×7
stem, bottleneck stages [3, 4, 6, 3], 1000 classes; input 1×3×224×224) and a BERT-base-sized encoder (12 layers,
hidden 768, 12 heads, FFN 3072, vocabulary 30522, sequence 128).

Each model is converted once with `mlpkg convert -o X.mlpackage --weights fp32 --compute-precision fp32`. Timed:
`mlpkg run` as a whole process (reading the package, decoding constants, running, writing the .npz) and onnxruntime's
`session.run` alone (session creation excluded), best of --runs after a warm-up; both use every core (OpenBLAS's and
onnxruntime's default thread pools). The outputs are compared too (cosine).

Usage: bench/bench_run.py --mlpkg .build/release/mlpkg --out DIR [--runs 3]
"""
import argparse
import subprocess
import time
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper


def resnet50(path: Path) -> None:
    rng = np.random.default_rng(0)
    nodes, inits = [], []
    count = [0]

    def conv(x, cin, cout, k, stride=1, relu=True):
        count[0] += 1
        n = f"c{count[0]}"
        w = (rng.standard_normal((cout, cin, k, k), dtype=np.float32) * np.sqrt(2.0 / (cin * k * k))).astype(np.float32)
        inits.append(numpy_helper.from_array(w, n + ".w"))
        inits.append(numpy_helper.from_array(np.zeros(cout, np.float32), n + ".b"))
        p = k // 2
        nodes.append(helper.make_node("Conv", [x, n + ".w", n + ".b"], [n], strides=[stride, stride], pads=[p, p, p, p]))
        if relu:
            nodes.append(helper.make_node("Relu", [n], [n + ".r"]))
            return n + ".r"
        return n

    x = conv("input", 3, 64, 7, 2)
    nodes.append(helper.make_node("MaxPool", [x], ["pool"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]))
    x, cin = "pool", 64
    for stage, (blocks, width) in enumerate([(3, 64), (4, 128), (6, 256), (3, 512)]):
        for b in range(blocks):
            stride = 2 if b == 0 and stage > 0 else 1
            h = conv(x, cin, width, 1)
            h = conv(h, width, width, 3, stride)
            h = conv(h, width, width * 4, 1, relu=False)
            short = conv(x, cin, width * 4, 1, stride, relu=False) if b == 0 else x
            count[0] += 1
            nodes.append(helper.make_node("Add", [h, short], [f"a{count[0]}"]))
            nodes.append(helper.make_node("Relu", [f"a{count[0]}"], [f"a{count[0]}.r"]))
            x, cin = f"a{count[0]}.r", width * 4
    nodes.append(helper.make_node("GlobalAveragePool", [x], ["gap"]))
    nodes.append(helper.make_node("Flatten", ["gap"], ["flat"]))
    inits.append(numpy_helper.from_array((rng.standard_normal((1000, 2048), dtype=np.float32) * 0.02).astype(np.float32), "fc.w"))
    inits.append(numpy_helper.from_array(np.zeros(1000, np.float32), "fc.b"))
    nodes.append(helper.make_node("Gemm", ["flat", "fc.w", "fc.b"], ["logits"], transB=1))
    g = helper.make_graph(nodes, "resnet50", [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 224, 224])],
                          [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 1000])], inits)
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), path)


def bert_base(path: Path, seq: int = 128, layers: int = 12, d: int = 768, heads: int = 12, ffn: int = 3072, vocab: int = 30522) -> None:
    rng = np.random.default_rng(1)
    nodes, inits = [], []

    def w(name, *shape, scale=0.02):
        inits.append(numpy_helper.from_array((rng.standard_normal(shape, dtype=np.float32) * scale).astype(np.float32), name))
        return name

    def const(name, value):
        inits.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    nodes.append(helper.make_node("Gather", [w("emb", vocab, d), "input_ids"], ["e"]))
    nodes.append(helper.make_node("Add", ["e", w("pos", seq, d)], ["e2"]))
    const("ones", np.ones(d, np.float32)); const("zeros", np.zeros(d, np.float32))
    nodes.append(helper.make_node("LayerNormalization", ["e2", "ones", "zeros"], ["h0"], axis=-1, epsilon=1e-12))
    const("split_heads", np.array([1, seq, heads, d // heads], np.int64))
    const("merge", np.array([1, seq, d], np.int64))
    const("scale", np.array(1 / np.sqrt(d // heads), np.float32))
    const("half", np.array(0.5, np.float32)); const("one", np.array(1.0, np.float32)); const("rsqrt2", np.array(1 / np.sqrt(2), np.float32))
    x = "h0"
    for i in range(layers):
        p = f"l{i}."

        def linear(src, name, din, dout):
            nodes.append(helper.make_node("MatMul", [src, w(p + name + ".w", din, dout)], [p + name + ".mm"]))
            nodes.append(helper.make_node("Add", [p + name + ".mm", const(p + name + ".b", np.zeros(dout, np.float32))], [p + name]))
            return p + name

        heads_of = {}
        for n in ("q", "k", "v"):
            t = linear(x, n, d, d)
            nodes.append(helper.make_node("Reshape", [t, "split_heads"], [t + ".r"]))
            perm = [0, 2, 3, 1] if n == "k" else [0, 2, 1, 3]
            nodes.append(helper.make_node("Transpose", [t + ".r"], [t + ".t"], perm=perm))
            heads_of[n] = t + ".t"
        nodes.append(helper.make_node("MatMul", [heads_of["q"], heads_of["k"]], [p + "s"]))
        nodes.append(helper.make_node("Mul", [p + "s", "scale"], [p + "ss"]))
        nodes.append(helper.make_node("Softmax", [p + "ss"], [p + "a"], axis=-1))
        nodes.append(helper.make_node("MatMul", [p + "a", heads_of["v"]], [p + "c"]))
        nodes.append(helper.make_node("Transpose", [p + "c"], [p + "ct"], perm=[0, 2, 1, 3]))
        nodes.append(helper.make_node("Reshape", [p + "ct", "merge"], [p + "cm"]))
        o = linear(p + "cm", "o", d, d)
        nodes.append(helper.make_node("Add", [o, x], [p + "r1"]))
        nodes.append(helper.make_node("LayerNormalization", [p + "r1", "ones", "zeros"], [p + "n1"], axis=-1, epsilon=1e-12))
        f = linear(p + "n1", "f1", d, ffn)
        nodes.append(helper.make_node("Mul", [f, "rsqrt2"], [p + "g0"]))
        nodes.append(helper.make_node("Erf", [p + "g0"], [p + "g1"]))
        nodes.append(helper.make_node("Add", [p + "g1", "one"], [p + "g2"]))
        nodes.append(helper.make_node("Mul", [f, p + "g2"], [p + "g3"]))
        nodes.append(helper.make_node("Mul", [p + "g3", "half"], [p + "g4"]))
        f2 = linear(p + "g4", "f2", ffn, d)
        nodes.append(helper.make_node("Add", [f2, p + "n1"], [p + "r2"]))
        nodes.append(helper.make_node("LayerNormalization", [p + "r2", "ones", "zeros"], [p + "out"], axis=-1, epsilon=1e-12))
        x = p + "out"
    nodes.append(helper.make_node("Identity", [x], ["hidden"]))
    g = helper.make_graph(nodes, "bert_base", [helper.make_tensor_value_info("input_ids", TensorProto.INT64, [1, seq])],
                          [helper.make_tensor_value_info("hidden", TensorProto.FLOAT, [1, seq, d])], inits)
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), path)


def best(fn, runs):
    fn()
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mlpkg", default=".build/release/mlpkg")
    parser.add_argument("--out", default="bench/out-run")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for name, make, feeds in [
        ("resnet50", resnet50, {"input": np.random.default_rng(2).standard_normal((1, 3, 224, 224)).astype(np.float32)}),
        ("bert_base_seq128", bert_base, {"input_ids": np.random.default_rng(3).integers(0, 30522, (1, 128)).astype(np.int64)}),
    ]:
        model = out / f"{name}.onnx"
        if not model.exists():
            make(model)
        package = out / f"{name}.mlpackage"
        if not package.exists():
            subprocess.run([args.mlpkg, "convert", str(model), "-o", str(package), "--weights", "fp32", "--compute-precision", "fp32",
                            "--quiet"], check=True)
        argv = [args.mlpkg, "run", str(package), "-o", str(out / f"{name}.out.npz"), "--quiet"]
        for k, v in feeds.items():
            np.save(out / f"{k}.npy", v.astype(np.int32) if v.dtype == np.int64 else v)
            argv += ["--input", f"{k}={out / (k + '.npy')}"]
        t_mlpkg = best(lambda: subprocess.run(argv, check=True), args.runs)
        sess = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
        t_ort = best(lambda: sess.run(None, feeds), args.runs)
        want = sess.run(None, feeds)[0].astype(np.float64).ravel()
        with np.load(out / f"{name}.out.npz") as z:
            have = z[z.files[0]].astype(np.float64).ravel()
        cos = float(have @ want / (np.linalg.norm(have) * np.linalg.norm(want)))
        rows.append((name, t_mlpkg, t_ort, cos))
        print(f"{name}: mlpkg run {t_mlpkg:.3f} s, onnxruntime {t_ort:.3f} s, ratio {t_mlpkg / t_ort:.2f}×, cosine {cos:.7f}", flush=True)
    lines = ["| model | mlpkg run (s) | onnxruntime CPU (s) | ratio | cosine |", "|---|---|---|---|---|"]
    lines += [f"| {n} | {a:.3f} | {b:.3f} | {a / b:.2f}× | {c:.7f} |" for n, a, b, c in rows]
    (out / "run.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
