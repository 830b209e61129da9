"""No invalid package is ever written (issue: real exporters, item 1). Each case is a small hostile or unusual ONNX
model built here; `mlpkg convert X.onnx -o X.mlpackage` must either write a package that coremltools' loader opens
with every declared type equal to its own inference (and, where onnxruntime runs the model, whose MIL reference
evaluation matches onnxruntime), or exit 1 with exactly one `error:` line naming the model and the node, writing
nothing. Exit 0 with a package coremltools rejects is the one outcome never allowed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from conftest import run
from mil_reference import evaluate
from test_coreml import coremltools_types, cosine, load_spec, program_ops, proto_type

F = TensorProto.FLOAT
I64 = TensorProto.INT64
BOOL = TensorProto.BOOL
N = helper.make_node
INT64_MIN = -(2**63)


def model(nodes, inputs, outputs, inits=(), opset=17):
    g = helper.make_graph(
        nodes, "g",
        [helper.make_tensor_value_info(n, t, s) for n, t, s in inputs],
        [helper.make_tensor_value_info(n, t, s) for n, t, s in outputs],
        [numpy_helper.from_array(np.asarray(v), n) for n, v in inits])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8
    return m


R = np.random.default_rng(3)


def f32(*shape):
    return R.standard_normal(shape).astype(np.float32)


# name, model, outcome: "converts" (must load, type-check and match onnxruntime) or "refused" (exit 1, one line)
CASES = [
    ("ScalarSelect", model([N("Greater", ["x", "z"], ["c"]), N("Where", ["c", "one", "minus"], ["s"]), N("Add", ["s", "x"], ["y"])],
                           [("x", F, [1, 8])], [("y", F, [1, 8])],
                           [("z", np.float32(0)), ("one", np.float32(1)), ("minus", np.float32(-1))]), "converts"),
    ("WhereConditionBroadcast", model([N("Greater", ["x", "z"], ["c"]), N("Where", ["c", "a", "b"], ["y"])],
                                      [("x", F, [2, 3])], [("y", F, [2, 3])],
                                      [("z", np.float32(0)), ("a", f32(3)), ("b", f32(1))]), "converts"),
    ("MatMulVectorLeft", model([N("MatMul", ["v", "m"], ["y"])], [("v", F, [4])], [("y", F, [3])], [("m", f32(4, 3))]), "converts"),
    ("MatMulVectorRight", model([N("MatMul", ["m", "v"], ["y"])], [("v", F, [4])], [("y", F, [3])], [("m", f32(3, 4))]), "converts"),
    ("MatMulBothVectors", model([N("MatMul", ["v", "u"], ["y"])], [("v", F, [4]), ("u", F, [4])], [("y", F, [])]), "converts"),
    ("MatMulInnerMismatch", model([N("MatMul", ["x", "m"], ["y"])], [("x", F, [2, 4])], [("y", F, [2, 3])], [("m", f32(5, 3))]), "refused"),
    ("AddNoBroadcast", model([N("Add", ["x", "b"], ["y"])], [("x", F, [2, 4])], [("y", F, [2, 4])], [("b", f32(3))]), "refused"),
    ("ConvKernelShapeContradicts", model([N("Conv", ["x", "k"], ["y"], kernel_shape=[5, 5])], [("x", F, [1, 2, 8, 8])],
                                         [("y", F, [1, 3, 4, 4])], [("k", f32(3, 2, 3, 3))]), "refused"),
    ("ExpandZeroDim", model([N("Expand", ["x", "s"], ["y"])], [("x", F, [1, 4])], [("y", F, [0, 4])],
                            [("s", np.array([0, 4], np.int64))]), "refused"),
    ("RankZeroInput", model([N("Mul", ["x", "x"], ["y"])], [("x", F, [])], [("y", F, [])]), "converts"),
    ("SliceStepInt64Min", model([N("Slice", ["x", "st", "en", "ax", "sp"], ["y"])], [("x", F, [4, 6])], [("y", F, [4, 1])],
                                [("st", np.array([5], np.int64)), ("en", np.array([INT64_MIN], np.int64)),
                                 ("ax", np.array([1], np.int64)), ("sp", np.array([INT64_MIN], np.int64))]), "either"),
    ("PadHuge", model([N("Pad", ["x", "p"], ["y"])], [("x", F, [1, 4])], [("y", F, None)],
                      [("p", np.array([0, 0, 0, 2**31], np.int64))]), "refused"),
    ("TileHuge", model([N("Tile", ["x", "r"], ["y"])], [("x", F, [1, 4])], [("y", F, None)],
                       [("r", np.array([2**31, 1], np.int64))]), "refused"),
    ("ExpandHuge", model([N("Expand", ["x", "s"], ["y"])], [("x", F, [1, 4])], [("y", F, None)],
                         [("s", np.array([2**31, 4], np.int64))]), "refused"),
    ("SliceHugeEnd", model([N("Slice", ["x", "st", "en"], ["y"])], [("x", F, [4, 6])], [("y", F, None)],
                           [("st", np.array([1, 1], np.int64)), ("en", np.array([2**40, 2**33], np.int64))]), "converts"),
    ("GatherElementsOutOfRange", model([N("GatherElements", ["x", "i"], ["y"], axis=1)], [("x", F, [2, 3])], [("y", F, [2, 2])],
                                       [("i", np.array([[0, 7], [1, 2]], np.int64))]), "refused"),
    ("BatchNormWrongStats", model([N("BatchNormalization", ["x", "s", "b", "m", "v"], ["y"])], [("x", F, [1, 4, 3, 3])],
                                  [("y", F, [1, 4, 3, 3])],
                                  [("s", f32(4)), ("b", f32(4)), ("m", f32(3)), ("v", np.ones(5, np.float32))]), "refused"),
]


@pytest.mark.parametrize("name,m,outcome", CASES, ids=[c[0] for c in CASES])
def test_package_loads_or_one_line_refusal(mlpkg, tmp_path, name, m, outcome):
    src = tmp_path / f"{name}.onnx"
    onnx.save(m, src)
    out = tmp_path / f"{name}.mlpackage"
    r = run([str(mlpkg), "convert", str(src), "-o", str(out), "--weights", "fp32", "--compute-precision", "fp32"], tmp_path)
    if r.returncode != 0:
        assert outcome in ("refused", "either"), f"{name} was refused: {r.stderr}"
        assert r.returncode == 1, r.stderr
        errors = [l for l in r.stderr.splitlines() if l.startswith("error:")]
        assert len(errors) == 1, r.stderr
        assert name in errors[0] and "internal error" not in errors[0], errors[0]
        assert not out.exists()
        return
    assert outcome in ("converts", "either"), f"{name} converted; expected a refusal"
    spec = load_spec(out)
    inferred = coremltools_types(out, spec)
    for op in program_ops(spec):
        for o in op.outputs:
            assert inferred[o.name] == proto_type(o.type), f"{op.type} {o.name}: coremltools {inferred[o.name]} vs {proto_type(o.type)}"
    sess = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    feeds = {i.name: np.random.default_rng(0).standard_normal(
        [d.dim_value for d in i.type.tensor_type.shape.dim]).astype(np.float32) for i in m.graph.input}
    want = sess.run(None, feeds)
    # Scalars are [1] at a Core ML interface (features have rank >= 1); docs/COREML.md says so.
    got = evaluate(out, {k: (v.reshape(1) if v.ndim == 0 else v) for k, v in feeds.items()})
    for o, expected in zip(m.graph.output, want):
        have = np.asarray(got[o.name])
        expected = np.asarray(expected)
        if expected.ndim == 0:
            assert have.shape == (1,), f"{o.name}: a scalar output is [1] at the interface, got {have.shape}"
            have = have.reshape(())
        assert have.shape == expected.shape, f"{o.name}: {have.shape} vs {expected.shape}"
        assert cosine(have.reshape(-1), np.asarray(expected).reshape(-1)) >= 0.99999
