"""The MIL pass pipeline changes no answer and only ever removes ops: each fixture (and small models written the way
exporters decompose GELU, SiLU and Linear) is exported twice, with the standard pipeline and with --no-optimize;
both packages load in coremltools with matching types, the numpy MIL reference gives the same outputs for both
(cosine >= 0.99999, fp32 compute) and against onnxruntime, and the optimized program has no more ops than the
unoptimized one (strictly fewer where a pattern is present).
"""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from conftest import FIXTURES, run
from mil_reference import evaluate
from test_coreml import MODELS, coremltools_types, cosine, load_spec, onnx_feeds, pin_args, program_ops, proto_type

F = TensorProto.FLOAT
N = helper.make_node
R = np.random.default_rng(11)


def w(*shape):
    return (R.standard_normal(shape) * 0.3).astype(np.float32)


def small(name, nodes, inputs, outputs, inits):
    g = helper.make_graph(nodes, name, [helper.make_tensor_value_info(n, F, s) for n, s in inputs],
                          [helper.make_tensor_value_info(n, F, None) for n in outputs],
                          [numpy_helper.from_array(v, n) for n, v in inits])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    return m


# Decomposed patterns as torch.onnx writes them, with the MIL op the pipeline must produce.
PATTERNS = {
    "gelu_erf": (small("gelu_erf", [N("Div", ["x", "s2"], ["d"]), N("Erf", ["d"], ["e"]), N("Add", ["e", "one"], ["a"]),
                                    N("Mul", ["x", "a"], ["m"]), N("Mul", ["m", "half"], ["y"])],
                       [("x", [2, 16])], ["y"],
                       [("s2", np.array(1.4142135, np.float32)), ("one", np.array(1, np.float32)), ("half", np.array(0.5, np.float32))]),
                 "gelu"),
    "silu": (small("silu", [N("Sigmoid", ["x"], ["g"]), N("Mul", ["x", "g"], ["y"])], [("x", [2, 16])], ["y"], []), "silu"),
    "linear": (small("linear", [N("MatMul", ["x", "W"], ["m"]), N("Add", ["m", "b"], ["y"])], [("x", [1, 4, 16])], ["y"],
                     [("W", w(16, 8)), ("b", w(8))]), "linear"),
    "gemm": (small("gemm", [N("Gemm", ["x", "W", "b"], ["y"], transB=1)], [("x", [3, 16])], ["y"], [("W", w(8, 16)), ("b", w(8))]),
             "linear"),
    "layer_norm_decomposed": (small("layer_norm_decomposed", [
        N("ReduceMean", ["x"], ["m"], axes=[-1]), N("Sub", ["x", "m"], ["d"]), N("Pow", ["d", "two"], ["sq"]),
        N("ReduceMean", ["sq"], ["v"], axes=[-1]), N("Add", ["v", "eps"], ["ve"]), N("Sqrt", ["ve"], ["sd"]),
        N("Div", ["d", "sd"], ["n"]), N("Mul", ["n", "g"], ["ng"]), N("Add", ["ng", "b"], ["y"])],
        [("x", [2, 5, 16])], ["y"],
        [("two", np.array(2, np.float32)), ("eps", np.array(1e-5, np.float32)), ("g", w(16)), ("b", w(16))]), "layer_norm"),
    "channel_layer_norm": (small("channel_layer_norm", [
        N("ReduceMean", ["x"], ["m"], axes=[1]), N("Sub", ["x", "m"], ["d"]), N("Mul", ["d", "d"], ["sq"]),
        N("ReduceMean", ["sq"], ["v"], axes=[1]), N("Add", ["v", "eps"], ["ve"]), N("Sqrt", ["ve"], ["sd"]),
        N("Div", ["d", "sd"], ["n"]), N("Mul", ["g", "n"], ["ng"]), N("Add", ["ng", "b"], ["y"])],
        [("x", [1, 8, 4, 4])], ["y"],
        [("eps", np.array(1e-6, np.float32)), ("g", w(8, 1, 1)), ("b", w(8, 1, 1))]), "layer_norm"),
    "instance_norm_decomposed": (small("instance_norm_decomposed", [
        N("ReduceMean", ["x"], ["m"], axes=[2, 3]), N("Sub", ["x", "m"], ["d"]), N("Pow", ["d", "two"], ["sq"]),
        N("ReduceMean", ["sq"], ["v"], axes=[2, 3]), N("Add", ["v", "eps"], ["ve"]), N("Sqrt", ["ve"], ["sd"]),
        N("Div", ["d", "sd"], ["n"]), N("Mul", ["n", "g"], ["ng"]), N("Add", ["ng", "b"], ["y"])],
        [("x", [2, 4, 5, 5])], ["y"],
        [("two", np.array(2, np.float32)), ("eps", np.array(1e-5, np.float32)), ("g", w(4, 1, 1)), ("b", w(1, 4, 1, 1))]),
        "instance_norm"),
    "shuffle_chain": (small("shuffle_chain", [
        N("Reshape", ["x", "s1"], ["r1"]), N("Transpose", ["r1"], ["t"], perm=[0, 2, 1, 3, 4]), N("Reshape", ["t", "s2"], ["r2"]),
        N("Reshape", ["r2", "s3"], ["y"])],
        [("x", [1, 8, 3, 3])], ["y"],
        [("s1", np.array([1, 2, 4, 3, 3], np.int64)), ("s2", np.array([1, 8, 3, 3], np.int64)), ("s3", np.array([1, 8, 9], np.int64))]),
        "transpose"),
    # ShuffleNet v2's channel shuffle after the branch concat (torchvision, TorchScript export).
    "concat_shuffle": (small("concat_shuffle", [
        N("Relu", ["a"], ["ra"]), N("Relu", ["b"], ["rb"]), N("Concat", ["ra", "rb"], ["c"], axis=1), N("Reshape", ["c", "s1"], ["r1"]),
        N("Transpose", ["r1"], ["t"], perm=[0, 2, 1, 3, 4]), N("Reshape", ["t", "s2"], ["y"])],
        [("a", [1, 4, 3, 3]), ("b", [1, 4, 3, 3])], ["y"],
        [("s1", np.array([1, 2, 4, 3, 3], np.int64)), ("s2", np.array([1, 8, 3, 3], np.int64))]), "concat"),
    # torch's chunk(2) on channels as the TorchScript exporter writes it (two Slices of one tensor).
    "chunk_slices": (small("chunk_slices", [
        N("Slice", ["x", "s0", "e0", "ax"], ["a"]), N("Slice", ["x", "s1", "e1", "ax"], ["b"]), N("Relu", ["b"], ["rb"]),
        N("Concat", ["a", "rb"], ["y"], axis=1)], [("x", [1, 6, 3, 3])], ["y"],
        [("s0", np.array([0], np.int64)), ("e0", np.array([3], np.int64)), ("s1", np.array([3], np.int64)),
         ("e1", np.array([2**62], np.int64)), ("ax", np.array([1], np.int64))]), "split"),
    "attention_scores": (small("attention_scores", [N("Transpose", ["k"], ["kt"], perm=[0, 2, 1]), N("MatMul", ["q", "kt"], ["y"])],
                               [("q", [2, 5, 8]), ("k", [2, 7, 8])], ["y"], []), "matmul"),
    # torch.onnx (TorchScript, opset 17) writes gelu(approximate='tanh') in this order; Hugging Face's NewGELU
    # with pow(x, 3) and 0.5 · x first (both orders as exported by torch 2.13).
    "gelu_tanh_torch": (small("gelu_tanh_torch", [
        N("Mul", ["x", "x"], ["sq"]), N("Mul", ["x", "sq"], ["cube"]), N("Mul", ["k", "cube"], ["kc"]), N("Add", ["x", "kc"], ["s"]),
        N("Mul", ["c", "s"], ["in"]), N("Tanh", ["in"], ["t"]), N("Add", ["one", "t"], ["a"]), N("Mul", ["x", "a"], ["xa"]),
        N("Mul", ["half", "xa"], ["y"])], [("x", [2, 16])], ["y"],
        [("k", np.array(0.044715, np.float32)), ("c", np.array(0.7978845608, np.float32)), ("one", np.array(1, np.float32)),
         ("half", np.array(0.5, np.float32))]), "gelu"),
    "gelu_tanh_newgelu": (small("gelu_tanh_newgelu", [
        N("Mul", ["x", "half"], ["hx"]), N("Pow", ["x", "three"], ["cube"]), N("Mul", ["cube", "k"], ["kc"]), N("Add", ["x", "kc"], ["s"]),
        N("Mul", ["s", "c"], ["in"]), N("Tanh", ["in"], ["t"]), N("Add", ["t", "one"], ["a"]), N("Mul", ["hx", "a"], ["y"])],
        [("x", [2, 16])], ["y"],
        [("k", np.array(0.044715, np.float32)), ("c", np.array(0.7978845608, np.float32)), ("one", np.array(1, np.float32)),
         ("half", np.array(0.5, np.float32)), ("three", np.array(3, np.float32))]), "gelu"),
    "gelu_sigmoid": (small("gelu_sigmoid", [N("Mul", ["x", "k"], ["kx"]), N("Sigmoid", ["kx"], ["g"]), N("Mul", ["x", "g"], ["y"])],
                           [("x", [2, 16])], ["y"], [("k", np.array(1.702, np.float32))]), "gelu"),
    "conv_bias_scale": (small("conv_bias_scale", [
        N("Conv", ["x", "W"], ["c"], pads=[1, 1, 1, 1]), N("Add", ["c", "b"], ["a"]), N("Mul", ["a", "s"], ["m"]),
        N("Div", ["m", "two"], ["y"])], [("x", [1, 3, 6, 6])], ["y"],
        [("W", w(4, 3, 3, 3)), ("b", w(1, 4, 1, 1)), ("s", w(4, 1, 1)), ("two", np.array(2, np.float32))]), "conv"),
    "conv_transpose_scale": (small("conv_transpose_scale", [
        N("ConvTranspose", ["x", "W", "B"], ["c"], group=2, strides=[2, 2]), N("Mul", ["c", "s"], ["m"]), N("Sub", ["m", "b"], ["y"])],
        [("x", [1, 4, 3, 3])], ["y"], [("W", w(4, 3, 2, 2)), ("B", w(6)), ("s", w(1, 6, 1, 1)), ("b", w(6, 1, 1))]),
        "conv_transpose"),
    "pad_conv": (small("pad_conv", [N("Pad", ["x", "pads"], ["p"], mode="constant"), N("Conv", ["p", "W"], ["y"])],
                       [("x", [1, 3, 5, 5])], ["y"], [("pads", np.array([0, 0, 1, 2, 0, 0, 2, 1], np.int64)), ("W", w(2, 3, 3, 3))]),
                 "conv"),
    # ConvNeXt's channels-last MLP: MatMul + Add on a rank-4 input, then the layer scale.
    "linear_rank4_layer_scale": (small("linear_rank4_layer_scale", [
        N("MatMul", ["x", "W"], ["m"]), N("Add", ["m", "b"], ["a"]), N("Mul", ["a", "gamma"], ["y"])],
        [("x", [1, 3, 3, 16])], ["y"], [("W", w(16, 8)), ("b", w(8)), ("gamma", w(8))]), "linear"),
    # torch's bidirectional LSTM as exported: zero initial states as constants, ONNX's Y [seq, 2, batch, hidden]
    # transposed and reshaped back to [seq, batch, 2·hidden] (the lowering's split/stack then cancels).
    "bilstm_layout": (small("bilstm_layout", [
        N("LSTM", ["x", "W", "R", "B", "", "h0", "c0"], ["Y", "", ""], direction="bidirectional", hidden_size=6),
        N("Transpose", ["Y"], ["t"], perm=[0, 2, 1, 3]), N("Reshape", ["t", "s"], ["y"])],
        [("x", [5, 1, 4])], ["y"],
        [("W", w(2, 24, 4)), ("R", w(2, 24, 6)), ("B", w(2, 48)), ("h0", np.zeros((2, 1, 6), np.float32)),
         ("c0", np.zeros((2, 1, 6), np.float32)), ("s", np.array([5, 1, 12], np.int64))]), "lstm"),
    # The dynamo exporter's attention: kᵀ through rank 3, a zero mask, and the softmax guarded by where(isnan).
    "dynamo_attention_guard": (small("dynamo_attention_guard", [
        N("Reshape", ["k", "s3"], ["k3"]), N("Transpose", ["k3"], ["kt3"], perm=[0, 2, 1]), N("Reshape", ["kt3", "s4"], ["kt"]),
        N("MatMul", ["q", "kt"], ["qk"]), N("Add", ["qk", "zeros"], ["sc"]), N("Softmax", ["sc"], ["p"], axis=-1),
        N("IsNaN", ["p"], ["nan"]), N("Where", ["nan", "zero", "p"], ["pg"]), N("MatMul", ["pg", "v"], ["y"])],
        [("q", [1, 2, 5, 4]), ("k", [1, 2, 5, 4]), ("v", [1, 2, 5, 4])], ["y"],
        [("s3", np.array([2, 5, 4], np.int64)), ("s4", np.array([1, 2, 4, 5], np.int64)),
         ("zeros", np.zeros((1, 1, 5, 5), np.float32)), ("zero", np.array(0, np.float32))]), "softmax"),
    # Inception v3's dynamo export: torch.cat of a list holding torch.cat results.
    "nested_concat": (small("nested_concat", [
        N("Relu", ["a"], ["ra"]), N("Sigmoid", ["b"], ["sb"]), N("Tanh", ["b"], ["tb"]), N("Concat", ["sb", "tb"], ["inner"], axis=1),
        N("Concat", ["ra", "inner"], ["y"], axis=-3)], [("a", [1, 2, 3, 3]), ("b", [1, 4, 3, 3])], ["y"], []), "concat"),
    "identity_chain": (small("identity_chain", [N("Identity", ["x"], ["i"]), N("Relu", ["i"], ["r"]), N("Identity", ["r"], ["y"])],
                             [("x", [2, 3])], ["y"], []), "relu"),
}


def op_types(path: Path) -> Counter:
    return Counter(op.type for op in program_ops(load_spec(path)) if op.type != "const")


def typecheck(path: Path) -> None:
    spec = load_spec(path)
    inferred = coremltools_types(path, spec)
    for op in program_ops(spec):
        for o in op.outputs:
            assert inferred[o.name] == proto_type(o.type), f"{op.type} {o.name}"


def export_both(mlpkg, tmp: Path, src: Path, pins: dict, extra: list[str] = []) -> tuple[Path, Path]:
    outs = []
    for flag in ([], ["--no-optimize"]):
        out = tmp / (src.stem + ("-raw" if flag else "") + ".mlpackage")
        r = run([str(mlpkg), "convert", str(src), "-o", str(out), "--weights", "fp32", "--compute-precision", "fp32",
                 *pin_args(pins), "--quiet", *extra, *flag], tmp)
        assert r.returncode == 0, r.stderr
        typecheck(out)
        outs.append(out)
    return outs[0], outs[1]


def compare(src: Path, optimized: Path, raw: Path, pins: dict) -> None:
    for seed in (0, 1):
        feeds = onnx_feeds(src, pins, seed)
        mil_feeds = {k: (v.astype(np.int32) if v.dtype == np.int64 else v) for k, v in feeds.items()}
        a, b = evaluate(optimized, mil_feeds), evaluate(raw, mil_feeds)
        want = ort.InferenceSession(str(src), providers=["CPUExecutionProvider"]).run(None, feeds)
        names = [o.name for o in onnx.load(str(src), load_external_data=False).graph.output]
        for name, expected in zip(names, want):
            key = next(k for k in a if k == name or k.replace("_", "") == name.replace(".", "").replace("_", "").replace("/", ""))
            assert cosine(np.asarray(a[key]), np.asarray(b[key])) >= 0.99999, f"{name}: optimized differs from --no-optimize"
            assert cosine(np.asarray(a[key]).reshape(-1), np.asarray(expected).reshape(-1)) >= 0.99999, f"{name}: differs from onnxruntime"


def attention(name: str, sqrt_scales: bool = False) -> onnx.ModelProto:
    """One attention head block as ViT/BERT exports write it: q, k, v projections (MatMul + Add), heads split by
    Reshape + Transpose, scores = q·kᵀ / √d (+ a mask), Softmax, ·v, heads merged. With `sqrt_scales`, as
    torch.onnx exports F.scaled_dot_product_attention: q and kᵀ each times d^-1/4, no division."""
    b, s, d, h = 1, 6, 16, 2
    shape = np.array([b, s, h, d // h], np.int64)
    nodes, inits = [], [("shape", shape), ("merged", np.array([b, s, d], np.int64)), ("scale", np.array(math.sqrt(d // h), np.float32)),
                        ("mask", (np.triu(np.ones((s, s), np.float32), 1) * -1e4).reshape(1, 1, s, s))]
    for p in "qkv":
        inits += [(f"W{p}", w(d, d)), (f"b{p}", w(d))]
        nodes += [N("MatMul", ["x", f"W{p}"], [f"{p}m"]), N("Add", [f"{p}m", f"b{p}"], [f"{p}a"]),
                  N("Reshape", [f"{p}a", "shape"], [f"{p}r"]), N("Transpose", [f"{p}r"], [f"{p}h"], perm=[0, 2, 1, 3])]
    if sqrt_scales:
        inits.append(("root", np.array((d // h) ** -0.25, np.float32)))
        nodes += [N("Transpose", ["kh"], ["kt0"], perm=[0, 1, 3, 2]), N("Mul", ["qh", "root"], ["qs"]), N("Mul", ["kt0", "root"], ["kt"]),
                  N("MatMul", ["qs", "kt"], ["sc"])]
    else:
        nodes += [N("Transpose", ["kh"], ["kt"], perm=[0, 1, 3, 2]), N("MatMul", ["qh", "kt"], ["qk"]), N("Div", ["qk", "scale"], ["sc"])]
    nodes += [N("Add", ["sc", "mask"], ["ms"]), N("Softmax", ["ms"], ["p"], axis=-1), N("MatMul", ["p", "vh"], ["o"]),
              N("Transpose", ["o"], ["ot"], perm=[0, 2, 1, 3]), N("Reshape", ["ot", "merged"], ["y"])]
    return small(name, nodes, [("x", [b, s, d])], ["y"], inits)


# Patterns whose fusion depends on the deployment target: (model, expected op, extra export options).
TARGETED = {
    "attention_ios15": (attention("attention_ios15"), "linear", []),
    "sdpa_export_ios15": (attention("sdpa_export_ios15", sqrt_scales=True), "linear", []),
    "attention_ios18": (attention("attention_ios18"), "scaled_dot_product_attention", ["--deployment-target", "iOS18"]),
    "sdpa_export_ios18": (attention("sdpa_export_ios18", sqrt_scales=True), "scaled_dot_product_attention",
                          ["--deployment-target", "iOS18"]),
}


@pytest.mark.parametrize("name", list(TARGETED))
def test_attention_fuses_with_equal_numerics(mlpkg, tmp_path, name):
    model, expected_op, extra = TARGETED[name]
    src = tmp_path / f"{name}.onnx"
    onnx.save(model, src)
    optimized, raw = export_both(mlpkg, tmp_path, src, {}, extra)
    fused, unfused = op_types(optimized), op_types(raw)
    assert fused[expected_op] >= 1, f"{name}: no {expected_op} in {dict(fused)}"
    # The division by √d (or the two d^-1/4 factors) is gone into the query projection (iOS15) or into the
    # attention op (iOS18).
    assert fused["real_div"] == 0 and fused["mul"] == 0, dict(fused)
    assert sum(fused.values()) < sum(unfused.values()), f"{name}: {dict(fused)} vs --no-optimize {dict(unfused)}"
    compare(src, optimized, raw, {})


@pytest.mark.parametrize("name", list(PATTERNS))
def test_pattern_fuses_with_equal_numerics(mlpkg, tmp_path, name):
    model, expected_op = PATTERNS[name]
    src = tmp_path / f"{name}.onnx"
    onnx.save(model, src)
    optimized, raw = export_both(mlpkg, tmp_path, src, {})
    fused, unfused = op_types(optimized), op_types(raw)
    assert fused[expected_op] >= 1, f"{name}: no {expected_op} in {dict(fused)}"
    assert sum(fused.values()) < sum(unfused.values()), f"{name}: {dict(fused)} vs --no-optimize {dict(unfused)}"
    compare(src, optimized, raw, {})


@pytest.mark.parametrize("model", list(MODELS))
def test_fixture_optimized_is_smaller_and_equal(mlpkg, tmp_path, model):
    src = FIXTURES / f"{model}.onnx"
    optimized, raw = export_both(mlpkg, tmp_path, src, MODELS[model])
    assert sum(op_types(optimized).values()) <= sum(op_types(raw).values())
    compare(src, optimized, raw, MODELS[model])
