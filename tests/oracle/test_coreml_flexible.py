"""Flexible shapes for Core ML export (issue 26, item 1), read back with coremltools on Linux:

* a pinned symbol applies to every input that shares it (`input_ids` pinned, `attention_mask` follows);
* `--input-shape NAME=1,LO..HI[@DEFAULT]` writes `shapeRange` (and the default shape) in the model description and
  unknown dims in the MIL program; a small BERT-like attention block whose Reshape targets come from
  Shape → Gather → Unsqueeze → Concat chains converts, coremltools' milproto loader type-checks the program, and the
  numpy MIL reference evaluation matches onnxruntime at three sequence lengths;
* a node whose lowering needs static dims is refused (exit 1, one line naming the op and the ranged dim), and the
  audit reports it under `coreml-static-dim`;
* bad ranges and contradictory pins are usage errors (exit 2) that write nothing.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from conftest import run
from mil_reference import evaluate

ct = pytest.importorskip("coremltools", reason="coremltools is a required test dependency (tests/requirements.txt)")
from coremltools.converters.mil.frontend.milproto import load as milproto_load  # noqa: E402
from coremltools.converters.mil.mil.types.symbolic import is_symbolic  # noqa: E402

VOCAB, D, HEADS = 50, 32, 4


def _const(name: str, values, dtype=np.float32) -> onnx.TensorProto:
    return numpy_helper.from_array(np.asarray(values, dtype=dtype), name)


def attention_model(path: Path, seed: int = 0) -> Path:
    """input_ids [batch, sequence] (int64), attention_mask [batch, sequence] (float) → one self-attention block.
    The head split and merge reshape to shapes computed from Shape(emb), as torch.onnx exports them."""
    rng = np.random.default_rng(seed)
    w = lambda *s: rng.standard_normal(s).astype(np.float32) * 0.2  # noqa: E731
    head = D // HEADS
    inits = [_const("E", w(VOCAB, D)), _const("Wq", w(D, D)), _const("Wk", w(D, D)), _const("Wv", w(D, D)),
             _const("Wo", w(D, D)), _const("bq", w(D)), _const("bo", w(D)), _const("gamma", 1 + w(D)), _const("beta", w(D)),
             _const("i0", [0], np.int64), _const("i1", [1], np.int64), _const("heads", [HEADS, head], np.int64),
             _const("width", [D], np.int64), _const("ax12", [1, 2], np.int64), _const("one", 1.0),
             _const("neg", -10000.0), _const("scale", float(np.sqrt(head)))]
    n = helper.make_node
    nodes = [
        n("Gather", ["E", "input_ids"], ["emb"], axis=0),
        n("Shape", ["emb"], ["s"]),
        n("Gather", ["s", "i0"], ["b"], axis=0),
        n("Gather", ["s", "i1"], ["t"], axis=0),
        n("Concat", ["b", "t", "heads"], ["split_shape"], axis=0),
        n("Concat", ["b", "t", "width"], ["merge_shape"], axis=0),
        n("MatMul", ["emb", "Wq"], ["q0"]), n("Add", ["q0", "bq"], ["q"]),
        n("MatMul", ["emb", "Wk"], ["k"]), n("MatMul", ["emb", "Wv"], ["v"]),
        n("Reshape", ["q", "split_shape"], ["q4"]), n("Transpose", ["q4"], ["qh"], perm=[0, 2, 1, 3]),
        n("Reshape", ["k", "split_shape"], ["k4"]), n("Transpose", ["k4"], ["kh"], perm=[0, 2, 3, 1]),
        n("Reshape", ["v", "split_shape"], ["v4"]), n("Transpose", ["v4"], ["vh"], perm=[0, 2, 1, 3]),
        n("MatMul", ["qh", "kh"], ["scores0"]), n("Div", ["scores0", "scale"], ["scores1"]),
        n("Sub", ["one", "attention_mask"], ["inv"]), n("Mul", ["inv", "neg"], ["bias2"]),
        n("Unsqueeze", ["bias2", "ax12"], ["bias4"]), n("Add", ["scores1", "bias4"], ["scores"]),
        n("Softmax", ["scores"], ["probs"], axis=-1),
        n("MatMul", ["probs", "vh"], ["ctx4"]), n("Transpose", ["ctx4"], ["ctx_t"], perm=[0, 2, 1, 3]),
        n("Reshape", ["ctx_t", "merge_shape"], ["ctx"]),
        n("MatMul", ["ctx", "Wo"], ["o0"]), n("Add", ["o0", "bo"], ["o"]), n("Add", ["o", "emb"], ["res"]),
        n("LayerNormalization", ["res", "gamma", "beta"], ["y"], axis=-1, epsilon=1e-5),
    ]
    graph = helper.make_graph(
        nodes, "attention",
        [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "sequence"]),
         helper.make_tensor_value_info("attention_mask", TensorProto.FLOAT, ["batch", "sequence"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", "sequence", D])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def feeds(batch: int, length: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    mask = np.ones((batch, length), np.float32)
    mask[:, max(1, length * 3 // 4):] = 0  # padding at the end, as a tokenizer writes it
    return {"input_ids": rng.integers(0, VOCAB, size=(batch, length)).astype(np.int64), "attention_mask": mask}


def spec_of(path: Path):
    return ct.models.MLModel(str(path), skip_model_load=True).get_spec()


def ranges(feature) -> list[tuple[int, int]]:
    return [(r.lowerBound, r.upperBound) for r in feature.type.multiArrayType.shapeRange.sizeRanges]


def test_a_pinned_symbol_pins_every_input_that_shares_it(mlpkg: Path, tmp_path: Path) -> None:
    src = attention_model(tmp_path / "attn.onnx")
    out = tmp_path / "Pinned.mlpackage"
    r = run([str(mlpkg), "convert", str(src), "-o", str(out), "--input-shape", "input_ids=1,12", "--quiet"], tmp_path)
    assert r.returncode == 0, r.stderr
    spec = spec_of(out)
    shapes = {f.name: list(f.type.multiArrayType.shape) for f in spec.description.input}
    assert shapes == {"input_ids": [1, 12], "attention_mask": [1, 12]}
    assert list(spec.description.output[0].type.multiArrayType.shape) == [1, 12, D]
    # Pinned differently through the two inputs: a usage error naming the symbol, nothing written.
    bad = tmp_path / "Bad.mlpackage"
    r = run([str(mlpkg), "convert", str(src), "-o", str(bad), "--input-shape", "input_ids=1,12",
             "--input-shape", "attention_mask=1,16"], tmp_path)
    assert r.returncode == 2 and "'sequence'" in r.stderr and "input_ids" in r.stderr, r.stderr
    assert not bad.exists()


@pytest.fixture(scope="module")
def ranged(mlpkg: Path, tmp_path_factory) -> tuple[Path, Path]:
    tmp = tmp_path_factory.mktemp("ranged")
    src = attention_model(tmp / "attn.onnx")
    out = tmp / "Ranged.mlpackage"
    r = run([str(mlpkg), "convert", str(src), "-o", str(out), "--input-shape", "input_ids=1..4,1..64@16",
             "--compute-precision", "fp32", "--weights", "fp32", "--quiet"], tmp)
    assert r.returncode == 0, r.stderr
    return src, out


def test_range_writes_shape_range_and_unknown_dims(ranged: tuple[Path, Path]) -> None:
    _, out = ranged
    spec = spec_of(out)
    by_name = {f.name: f for f in spec.description.input}
    # Both inputs share `sequence`, so both are flexible: default shape [1, 16], sizes 1…64 on the sequence axis.
    for name in ("input_ids", "attention_mask"):
        f = by_name[name]
        assert list(f.type.multiArrayType.shape) == [1, 16], name
        assert f.type.multiArrayType.WhichOneof("ShapeFlexibility") == "shapeRange"
        assert ranges(f) == [(1, 4), (1, 64)], name
    # An output with a dim known only at run time has no shape (as coremltools writes it).
    assert list(spec.description.output[0].type.multiArrayType.shape) == []
    main = spec.mlProgram.functions["main"]
    for i in main.inputs:
        kinds = [d.WhichOneof("dimension") for d in i.type.tensorType.dimensions]
        assert kinds == ["unknown", "unknown"], i.name
    # coremltools' milproto loader rebuilds and type-checks the program; its symbolic dims sit where mlpkg's unknowns are.
    prog = milproto_load.load(spec, specification_version=spec.specificationVersion,
                              file_weights_dir=str(out / "Data" / "com.apple.CoreML" / "weights"))
    fn = prog.functions["main"]
    assert [is_symbolic(d) for d in fn.inputs["input_ids"].shape] == [True, True]
    # Two flexible dims: the head split and merge reshape to shapes computed at run time (shape → gather → concat).
    ops = [op.op_type for op in fn.operations]
    assert "shape" in ops and ops.count("reshape") >= 4 and "concat" in ops, ops
    (y,) = fn.outputs
    assert y.rank == 3 and is_symbolic(y.shape[1]) and y.shape[2] == D


@pytest.mark.parametrize("batch,length", [(1, 1), (1, 16), (2, 64)])
def test_ranged_model_matches_onnxruntime_at_each_length(ranged: tuple[Path, Path], batch: int, length: int) -> None:
    src, out = ranged
    x = feeds(batch, length, seed=length)
    want = ort.InferenceSession(str(src), providers=["CPUExecutionProvider"]).run(None, x)[0]
    have = evaluate(out, x)["y"]
    assert have.shape == want.shape == (batch, length, D)
    np.testing.assert_allclose(have, want, rtol=1e-4, atol=1e-4)


def test_range_is_deterministic(mlpkg: Path, ranged: tuple[Path, Path], tmp_path: Path) -> None:
    src, out = ranged
    again = tmp_path / "Again.mlpackage"
    r = run([str(mlpkg), "convert", str(src), "-o", str(again), "--input-shape", "input_ids=1..4,1..64@16",
             "--compute-precision", "fp32", "--weights", "fp32", "--quiet"], tmp_path)
    assert r.returncode == 0, r.stderr
    for name in ("Data/com.apple.CoreML/model.mlmodel", "Data/com.apple.CoreML/weights/weight.bin", "Manifest.json"):
        assert (again / name).read_bytes() == (out / name).read_bytes(), name


def test_default_of_a_range_is_its_lower_bound(mlpkg: Path, tmp_path: Path) -> None:
    src = attention_model(tmp_path / "attn.onnx")
    out = tmp_path / "Low.mlpackage"
    r = run([str(mlpkg), "convert", str(src), "-o", str(out), "--input-shape", "input_ids=1,8..32", "--quiet"], tmp_path)
    assert r.returncode == 0, r.stderr
    f = spec_of(out).description.input[0]
    assert list(f.type.multiArrayType.shape) == [1, 8] and ranges(f) == [(1, 1), (8, 32)]


def cumsum_model(path: Path) -> Path:
    """x [1, n] → CumSum(x, axis 1): a lowering without flexible-shape support."""
    graph = helper.make_graph(
        [helper.make_node("CumSum", ["x", "axis"], ["y"])], "cumsum",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, "n"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, "n"])], [_const("axis", 1, np.int64)])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), str(path))
    return path


def test_a_lowering_that_needs_static_dims_refuses_naming_the_dim(mlpkg: Path, tmp_path: Path) -> None:
    src = cumsum_model(tmp_path / "cumsum.onnx")
    out = tmp_path / "C.mlpackage"
    r = run([str(mlpkg), "convert", str(src), "-o", str(out), "--input-shape", "x=1,2..10"], tmp_path)
    assert r.returncode == 1
    lines = [l for l in r.stderr.splitlines() if l.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), r.stderr
    assert "CumSum" in lines[0] and "n (2..10)" in lines[0], lines[0]
    assert not out.exists()
    # Pinned, the same model converts.
    r = run([str(mlpkg), "convert", str(src), "-o", str(out), "--input-shape", "x=1,10", "--quiet"], tmp_path)
    assert r.returncode == 0, r.stderr


def slice_model(path: Path, starts: int, ends: int, step: int) -> Path:
    """x [1, n] → Slice(x, starts, ends, axis 1, step) → y."""
    graph = helper.make_graph(
        [helper.make_node("Slice", ["x", "s", "e", "a", "p"], ["y"])], "slice",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, "n"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [_const("s", [starts], np.int64), _const("e", [ends], np.int64), _const("a", [1], np.int64), _const("p", [step], np.int64)])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), str(path))
    return path


@pytest.mark.parametrize("starts,ends,step", [(1, 2**62, 1), (-3, -1, 1), (0, 2**62, 2), (-2, 2**62, 1)])
def test_slice_of_a_flexible_dim_matches_onnxruntime_at_each_length(mlpkg: Path, tmp_path: Path, starts, ends, step) -> None:
    """Constant bounds on a dim known only at run time: MIL's Python-style indices mean what ONNX's do."""
    src = slice_model(tmp_path / "slice.onnx", starts, ends, step)
    out = tmp_path / "S.mlpackage"
    r = run([str(mlpkg), "convert", str(src), "-o", str(out), "--input-shape", "x=1,4..40", "--weights", "fp32",
             "--compute-precision", "fp32", "--quiet"], tmp_path)
    assert r.returncode == 0, r.stderr
    sess = ort.InferenceSession(str(src), providers=["CPUExecutionProvider"])
    for n in (4, 7, 40):
        x = {"x": np.arange(n, dtype=np.float32).reshape(1, n)}
        want = sess.run(None, x)[0]
        have = evaluate(out, x)["y"]
        np.testing.assert_array_equal(have, want)


def test_a_negative_step_on_a_flexible_dim_is_refused(mlpkg: Path, tmp_path: Path) -> None:
    src = slice_model(tmp_path / "slice.onnx", -1, -2**62, -1)
    out = tmp_path / "S.mlpackage"
    r = run([str(mlpkg), "convert", str(src), "-o", str(out), "--input-shape", "x=1,4..40"], tmp_path)
    assert r.returncode == 1
    lines = [l for l in r.stderr.splitlines() if l.strip()]
    assert len(lines) == 1 and "Slice" in lines[0] and "negative step" in lines[0], r.stderr
    assert not out.exists()


def test_audit_names_the_nodes_that_force_static_shapes(mlpkg: Path, tmp_path: Path) -> None:
    src = cumsum_model(tmp_path / "cumsum.onnx")
    r = run([str(mlpkg), "audit", str(src), "--input-shape", "x=1,2..10", "--format", "json"], tmp_path)
    assert r.returncode == 0, r.stderr
    text = json.dumps(json.loads(r.stdout))
    assert "coreml-static-dim" in text and "n (2..10)" in text


@pytest.mark.parametrize("pin,needle", [
    ("x=1,5..2", "'5..2'"),          # empty range
    ("x=1,0..8", "'0..8'"),          # below 1
    ("x=1,1..8@9", "'1..8@9'"),      # default outside the range
    ("x=1..4,1..8", "fixes it at 1"),  # a range where the model fixes the dim
])
def test_bad_ranges_are_usage_errors(mlpkg: Path, tmp_path: Path, pin: str, needle: str) -> None:
    src = cumsum_model(tmp_path / "cumsum.onnx")
    out = tmp_path / "B.mlpackage"
    r = run([str(mlpkg), "convert", str(src), "-o", str(out), "--input-shape", pin], tmp_path)
    assert r.returncode == 2, r.stderr
    assert needle in r.stderr and r.stderr.startswith("error:"), r.stderr
    assert not out.exists()


def matmul_model(path: Path) -> Path:
    """x [1, n, 8] → Softmax(x·W): one input, every op flexible."""
    w = np.random.default_rng(3).standard_normal((8, 8)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["h"]), helper.make_node("Softmax", ["h"], ["y"], axis=-1)], "mm",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, "n", 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, "n", 8])], [_const("W", w)])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), str(path))
    return path


def enumerated(spec, name: str) -> list[list[int]]:
    f = next(f for f in spec.description.input if f.name == name)
    assert f.type.multiArrayType.WhichOneof("ShapeFlexibility") == "enumeratedShapes"
    return [list(s.shape) for s in f.type.multiArrayType.enumeratedShapes.shapes]


def test_enumerated_shapes_of_one_input(mlpkg: Path, tmp_path: Path) -> None:
    src = matmul_model(tmp_path / "mm.onnx")
    out = tmp_path / "E.mlpackage"
    r = run([str(mlpkg), "convert", str(src), "-o", str(out), "--input-shape", "x=1,4,8|1,16,8|1,9,8",
             "--compute-precision", "fp32", "--weights", "fp32", "--quiet"], tmp_path)
    assert r.returncode == 0, r.stderr
    spec = spec_of(out)
    assert spec.specificationVersion == 6  # iOS15: one enumerated input is fine
    assert enumerated(spec, "x") == [[1, 4, 8], [1, 16, 8], [1, 9, 8]]
    assert list(spec.description.input[0].type.multiArrayType.shape) == [1, 4, 8]  # the first is the default
    sess = ort.InferenceSession(str(src), providers=["CPUExecutionProvider"])
    for n in (4, 16, 9):
        x = np.random.default_rng(n).standard_normal((1, n, 8)).astype(np.float32)
        np.testing.assert_allclose(evaluate(out, {"x": x})["y"], sess.run(None, {"x": x})[0], rtol=1e-5, atol=1e-6)


def test_enumerated_inputs_pair_by_index_from_ios18(mlpkg: Path, tmp_path: Path) -> None:
    src = attention_model(tmp_path / "attn.onnx")
    out = tmp_path / "E18.mlpackage"
    pin = ["--input-shape", "input_ids=1,8|1,16|2,32"]
    # attention_mask shares `batch` and `sequence`: two enumerated inputs, which Core ML takes from iOS18 only.
    r = run([str(mlpkg), "convert", str(src), "-o", str(out), *pin], tmp_path)
    assert r.returncode == 2 and "before iOS18" in r.stderr and "attention_mask" in r.stderr, r.stderr
    assert not out.exists()
    r = run([str(mlpkg), "convert", str(src), "-o", str(out), *pin, "--deployment-target", "iOS18",
             "--compute-precision", "fp32", "--weights", "fp32", "--quiet"], tmp_path)
    assert r.returncode == 0, r.stderr
    spec = spec_of(out)
    assert spec.specificationVersion == 9
    assert enumerated(spec, "input_ids") == enumerated(spec, "attention_mask") == [[1, 8], [1, 16], [2, 32]]
    sess = ort.InferenceSession(str(src), providers=["CPUExecutionProvider"])
    for batch, length in ((1, 8), (1, 16), (2, 32)):
        x = feeds(batch, length, seed=length)
        np.testing.assert_allclose(evaluate(out, x)["y"], sess.run(None, x)[0], rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("pin,needle", [
    ("x=1,4,8|1,4", "not a list of shapes"),        # ranks differ
    ("x=1,4,8|1,0,8", "not a list of shapes"),      # a dim below 1
    ("x=1,4,8|1,4,8", "not a list of shapes"),      # a repeated shape
])
def test_bad_enumerations_are_usage_errors(mlpkg: Path, tmp_path: Path, pin: str, needle: str) -> None:
    src = matmul_model(tmp_path / "mm.onnx")
    out = tmp_path / "B.mlpackage"
    r = run([str(mlpkg), "convert", str(src), "-o", str(out), "--input-shape", pin], tmp_path)
    assert r.returncode == 2 and needle in r.stderr and r.stderr.startswith("error:"), r.stderr
    assert not out.exists()


def test_functions_write_one_function_per_shape_sharing_weights(mlpkg: Path, tmp_path: Path) -> None:
    src = attention_model(tmp_path / "attn.onnx")
    out = tmp_path / "Multi.mlpackage"
    r = run([str(mlpkg), "convert", str(src), "-o", str(out), "--input-shape", "input_ids=1,8|1,16|2,32", "--functions",
             "--compute-precision", "fp32", "--weights", "fp32", "--quiet"], tmp_path)
    assert r.returncode == 0, r.stderr
    names = ["input_ids_1x8", "input_ids_1x16", "input_ids_2x32"]
    spec = spec_of(out)
    assert spec.specificationVersion == 9  # iOS18, raised by --functions
    d = spec.description
    assert d.defaultFunctionName == names[0] and len(d.input) == 0 and len(d.output) == 0
    assert [f.name for f in d.functions] == names
    assert sorted(spec.mlProgram.functions.keys()) == sorted(names)
    shapes = {(1, 8), (1, 16), (2, 32)}
    for f, shape in zip(d.functions, [(1, 8), (1, 16), (2, 32)]):
        assert {i.name: tuple(i.type.multiArrayType.shape) for i in f.input} == {"input_ids": shape, "attention_mask": shape}
        assert tuple(f.output[0].type.multiArrayType.shape) == (*shape, D)
        # coremltools opens each function by name and type-checks its program with its own op definitions.
        ct.models.MLModel(str(out), skip_model_load=True, function_name=f.name)
        prog = milproto_load.load(spec, specification_version=9, file_weights_dir=str(out / "Data" / "com.apple.CoreML" / "weights"))
        fn = prog.functions[f.name]
        assert tuple(fn.inputs["input_ids"].shape) == shape and "shape" not in [op.op_type for op in fn.operations]
    assert shapes == {tuple(i.type.multiArrayType.shape) for f in d.functions for i in f.input if i.name == "input_ids"}
    # Every weight blob is stored once: weight.bin holds as many blobs as one function's program has.
    single = tmp_path / "Single.mlpackage"
    r = run([str(mlpkg), "convert", str(src), "-o", str(single), "--input-shape", "input_ids=1,8", "--deployment-target", "iOS18",
             "--compute-precision", "fp32", "--weights", "fp32", "--quiet"], tmp_path)
    assert r.returncode == 0, r.stderr
    weights = lambda p: (p / "Data/com.apple.CoreML/weights/weight.bin").read_bytes()  # noqa: E731
    count = lambda b: int.from_bytes(b[0:4], "little")  # noqa: E731  (weight.bin header: uint32 blob count)
    assert count(weights(out)) == count(weights(single)) > 0
    assert len(weights(out)) == len(weights(single))
    # Each function computes what onnxruntime computes at its shape (the reference evaluator runs `main`, so each
    # function is evaluated through a one-function copy of the spec).
    sess = ort.InferenceSession(str(src), providers=["CPUExecutionProvider"])
    import mil_reference
    for name, (batch, length) in zip(names, [(1, 8), (1, 16), (2, 32)]):
        x = feeds(batch, length, seed=length)
        prog = mil_reference.load_program(out, function=name)
        have = mil_reference.run_program(prog, x)["y"]
        np.testing.assert_allclose(have, sess.run(None, x)[0], rtol=1e-4, atol=1e-4)


def test_functions_need_enumerated_shapes_and_ios18(mlpkg: Path, tmp_path: Path) -> None:
    src = attention_model(tmp_path / "attn.onnx")
    out = tmp_path / "M.mlpackage"
    r = run([str(mlpkg), "convert", str(src), "-o", str(out), "--input-shape", "input_ids=1,1..8", "--functions"], tmp_path)
    assert r.returncode == 2 and "enumerated shape" in r.stderr, r.stderr
    r = run([str(mlpkg), "convert", str(src), "-o", str(out), "--input-shape", "input_ids=1,8|1,16", "--functions",
             "--deployment-target", "iOS17"], tmp_path)
    assert r.returncode == 2 and "iOS18" in r.stderr, r.stderr
    assert not out.exists()


def pooling_model(path: Path) -> Path:
    """x [1, n, 8] → x[:, 0] and x[:, 2] (Gather along the flexible axis, as BERT pools its first token)."""
    graph = helper.make_graph(
        [helper.make_node("Gather", ["x", "first"], ["cls"], axis=1), helper.make_node("Gather", ["x", "third"], ["t2"], axis=1)],
        "pool", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, "n", 8])],
        [helper.make_tensor_value_info("cls", TensorProto.FLOAT, [1, 8]), helper.make_tensor_value_info("t2", TensorProto.FLOAT, [1, 8])],
        [_const("first", 0, np.int64), _const("third", 2, np.int64)])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), str(path))
    return path


def test_gather_along_a_flexible_dim_is_checked_against_the_range(mlpkg: Path, tmp_path: Path) -> None:
    src = pooling_model(tmp_path / "pool.onnx")
    out = tmp_path / "P.mlpackage"
    # Index 2 exists at every size from 3 up: converts, and picks the same tokens as onnxruntime.
    r = run([str(mlpkg), "convert", str(src), "-o", str(out), "--input-shape", "x=1,3..40,8", "--weights", "fp32",
             "--compute-precision", "fp32", "--quiet"], tmp_path)
    assert r.returncode == 0, r.stderr
    sess = ort.InferenceSession(str(src), providers=["CPUExecutionProvider"])
    for n in (3, 17, 40):
        x = np.random.default_rng(n).standard_normal((1, n, 8)).astype(np.float32)
        have, want = evaluate(out, {"x": x}), sess.run(None, {"x": x})
        np.testing.assert_array_equal(have["cls"], want[0])
        np.testing.assert_array_equal(have["t2"], want[1])
    # From size 2, index 2 is out of range for the smallest size: refused, naming the dim and its range.
    r = run([str(mlpkg), "convert", str(src), "-o", str(tmp_path / "Q.mlpackage"), "--input-shape", "x=1,2..40,8"], tmp_path)
    assert r.returncode == 1 and "n (2..40)" in r.stderr and "Gather" in r.stderr, r.stderr


def test_bounds_carry_through_expressions(mlpkg: Path, tmp_path: Path) -> None:
    """Concat(x, x) along the flexible axis is 2n long: index 3 exists for every n ≥ 2 (interval 4..80), not for n = 1."""
    graph = helper.make_graph(
        [helper.make_node("Concat", ["x", "x"], ["xx"], axis=1), helper.make_node("Gather", ["xx", "k"], ["y"], axis=1)],
        "twice", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, "n", 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8])], [_const("k", 3, np.int64)])
    src = tmp_path / "twice.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), str(src))
    out = tmp_path / "T.mlpackage"
    r = run([str(mlpkg), "convert", str(src), "-o", str(out), "--input-shape", "x=1,2..40,8", "--weights", "fp32",
             "--compute-precision", "fp32", "--quiet"], tmp_path)
    assert r.returncode == 0, r.stderr
    x = np.random.default_rng(5).standard_normal((1, 2, 8)).astype(np.float32)
    want = ort.InferenceSession(str(src), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    np.testing.assert_array_equal(evaluate(out, {"x": x})["y"], want)
    r = run([str(mlpkg), "convert", str(src), "-o", str(tmp_path / "U.mlpackage"), "--input-shape", "x=1,1..40,8"], tmp_path)
    assert r.returncode == 1 and "(2..80)" in r.stderr, r.stderr


def exporter_patterns_model(path: Path) -> Path:
    """What torch's exporter writes around attention masks, on a flexible n: Gemm on [n, 8], a ConstantOfShape of
    a shape computed at run time (MIL fill), Where, and a Concat of shape parts with an empty one."""
    rng = np.random.default_rng(11)
    n = helper.make_node
    nodes = [
        n("Gemm", ["x", "W", "C"], ["g"], transB=1, alpha=0.5),
        n("Shape", ["x"], ["s"]),
        n("Gather", ["s", "i0"], ["rows"], axis=0),
        n("Concat", ["rows", "empty", "one"], ["mask_shape"], axis=0),
        n("ConstantOfShape", ["mask_shape"], ["half"], value=numpy_helper.from_array(np.array([0.5], np.float32))),
        n("Greater", ["x", "zero"], ["pos"]),
        n("Where", ["pos", "g", "minus"], ["w"]),
        n("Add", ["w", "half"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes, "patterns", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 8])],
        [_const("W", rng.standard_normal((8, 8))), _const("C", rng.standard_normal(8)), _const("i0", [0], np.int64),
         _const("empty", np.zeros(0), np.int64), _const("one", [1], np.int64), _const("zero", 0.0), _const("minus", -1.0)])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), str(path))
    return path


def test_exporter_patterns_convert_with_a_range(mlpkg: Path, tmp_path: Path) -> None:
    src = exporter_patterns_model(tmp_path / "patterns.onnx")
    out = tmp_path / "X.mlpackage"
    r = run([str(mlpkg), "convert", str(src), "-o", str(out), "--input-shape", "x=1..64,8", "--weights", "fp32",
             "--compute-precision", "fp32", "--quiet"], tmp_path)
    assert r.returncode == 0, r.stderr
    spec = spec_of(out)
    prog = milproto_load.load(spec, specification_version=spec.specificationVersion,
                              file_weights_dir=str(out / "Data" / "com.apple.CoreML" / "weights"))
    assert "fill" in [op.op_type for op in prog.functions["main"].operations]
    sess = ort.InferenceSession(str(src), providers=["CPUExecutionProvider"])
    for rows in (1, 7, 64):
        x = np.random.default_rng(rows).standard_normal((rows, 8)).astype(np.float32)
        np.testing.assert_allclose(evaluate(out, {"x": x})["y"], sess.run(None, {"x": x})[0], rtol=1e-5, atol=1e-5)


def test_ranged_model_with_default_fp16_compute(mlpkg: Path, ranged: tuple[Path, Path], tmp_path: Path) -> None:
    """The defaults (fp16 weights and compute, fp32 interface) with a range: casts at the interface keep their
    unknown dims, and the result agrees with onnxruntime as fp16 compute allows."""
    src, _ = ranged
    out = tmp_path / "Half.mlpackage"
    r = run([str(mlpkg), "convert", str(src), "-o", str(out), "--input-shape", "input_ids=1,1..64@16", "--quiet"], tmp_path)
    assert r.returncode == 0, r.stderr
    x = feeds(1, 23, seed=23)
    want = ort.InferenceSession(str(src), providers=["CPUExecutionProvider"]).run(None, x)[0]
    have = evaluate(out, x)["y"].astype(np.float64)
    cos = float(have.ravel() @ want.ravel() / (np.linalg.norm(have) * np.linalg.norm(want)))
    assert have.shape == (1, 23, D) and cos >= 0.999, cos


def test_functions_are_deterministic(mlpkg: Path, tmp_path: Path) -> None:
    src = matmul_model(tmp_path / "mm.onnx")
    outs = [tmp_path / "A.mlpackage", tmp_path / "B.mlpackage"]
    for out in outs:
        r = run([str(mlpkg), "convert", str(src), "-o", str(out), "--input-shape", "x=1,4,8|1,16,8", "--functions", "--quiet"], tmp_path)
        assert r.returncode == 0, r.stderr
    for name in ("Data/com.apple.CoreML/model.mlmodel", "Data/com.apple.CoreML/weights/weight.bin", "Manifest.json"):
        assert (outs[0] / name).read_bytes() == (outs[1] / name).read_bytes(), name
    spec = spec_of(outs[0])
    assert [f.name for f in spec.description.functions] == ["x_1x4x8", "x_1x16x8"]
    assert dict(spec.description.metadata.userDefined)["com.mlpkg.functions"] == "x_1x4x8;x_1x16x8"
