"""Compression that keeps answers (issue 14): float16 range safety, BatchNormalization folding, contrib
quantized ops kept at full precision, and per-layer control (--exclude, --include, --config).

Oracles: onnxruntime runs the original ONNX and mlpkg's export of the converted package on the same inputs
(outputs compared by cosine and relative max error); the package's manifest and report.json are read as JSON.
Models beyond the committed bn_fold fixture are generated here with onnx.helper (small, deterministic).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from conftest import FIXTURES, run
from mlpkg_reader import Package


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    a = a.ravel().astype(np.float64)
    b = b.ravel().astype(np.float64)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def ort_outputs(path: Path, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"]).run(None, feeds)


def convert(mlpkg: Path, model: Path, out: Path, *args: str) -> dict:
    proc = run([str(mlpkg), "convert", str(model), "-o", str(out), "--quiet", *args], out.parent)
    assert proc.returncode == 0, proc.stderr
    return json.loads((out / "report.json").read_text())


def export(mlpkg: Path, package: Path, out: Path) -> Path:
    proc = run([str(mlpkg), "export", str(package), "-o", str(out), "--quiet"], out.parent)
    assert proc.returncode == 0, proc.stderr
    return out


def manifest_encodings(package: Path) -> dict[str, str]:
    """Tensor name -> encoding kind (raw, float16, linear) of every main-graph tensor in the manifest."""
    m = json.loads((package / "manifest.json").read_text())
    return {t["name"]: t["encoding"]["kind"] for t in m["tensors"]}


def save(model: onnx.ModelProto, path: Path) -> Path:
    onnx.checker.check_model(model) if all(o.type.tensor_type.HasField("shape") for o in model.graph.output) else None
    onnx.save(model, str(path))
    return path


def init(name: str, array: np.ndarray) -> TensorProto:
    return numpy_helper.from_array(np.asarray(array, dtype=np.float32), name)


def bn_params(prefix: str, channels: int, seed: int, huge: bool = False) -> tuple[list[str], list[TensorProto]]:
    rng = np.random.default_rng(seed)
    scale = 1 + 0.2 * rng.standard_normal(channels)
    var = 1 + np.abs(rng.standard_normal(channels))
    if huge:
        var[0], scale[0] = 1e8, 5000.0
    names = [f"{prefix}.{k}" for k in ("scale", "bias", "mean", "var")]
    arrays = [scale, 0.1 * rng.standard_normal(channels), 0.1 * rng.standard_normal(channels), var]
    return names, [init(n, a) for n, a in zip(names, arrays)]


# ---------------------------------------------------------------------------------------------------------------
# 1. float16 safety and BatchNormalization folding on the committed fixture


@pytest.fixture(scope="module")
def bn_input() -> dict[str, np.ndarray]:
    return {"input": np.random.default_rng(14).standard_normal((1, 3, 16, 16)).astype(np.float32)}


def test_bn_variance_1e8_folds_and_fp16_keeps_the_answer(mlpkg, tmp_path, bn_input):
    src = FIXTURES / "bn_fold.onnx"
    report = convert(mlpkg, src, tmp_path / "f.mlpkg", "--weights", "fp16")
    assert report["graph"]["foldedBatchNorms"] == 1
    # The folded parameters are gone; nothing is kept float32 and nothing clamped.
    assert report["conversion"]["kept"] == []
    assert report["conversion"]["totals"]["clampedValues"] == 0
    encodings = manifest_encodings(tmp_path / "f.mlpkg")
    assert not any(name.startswith("bn.") for name in encodings)
    assert encodings["conv1.weight"] == "float16"
    exported = export(mlpkg, tmp_path / "f.mlpkg", tmp_path / "f.onnx")
    assert "BatchNormalization" not in {n.op_type for n in onnx.load(str(exported)).graph.node}
    (ref,), (got,) = ort_outputs(src, bn_input), ort_outputs(exported, bn_input)
    assert cosine(ref, got) >= 0.9999


def test_no_fold_keeps_the_out_of_range_variance_float32_and_lists_it(mlpkg, tmp_path, bn_input):
    src = FIXTURES / "bn_fold.onnx"
    report = convert(mlpkg, src, tmp_path / "n.mlpkg", "--weights", "fp16", "--no-fold")
    assert "foldedBatchNorms" not in report["graph"] or report["graph"]["foldedBatchNorms"] == 0
    kept = {k["name"]: k["reason"] for k in report["conversion"]["kept"]}
    assert list(kept) == ["bn.var"]
    assert "beyond float16's range" in kept["bn.var"] and "--fp16-clamp" in kept["bn.var"]
    assert manifest_encodings(tmp_path / "n.mlpkg")["bn.var"] == "raw"
    exported = export(mlpkg, tmp_path / "n.mlpkg", tmp_path / "n.onnx")
    (ref,), (got,) = ort_outputs(src, bn_input), ort_outputs(exported, bn_input)
    assert cosine(ref, got) >= 0.9999


def test_fp16_clamp_is_an_explicit_opt_in_and_shows_the_damage(mlpkg, tmp_path, bn_input):
    src = FIXTURES / "bn_fold.onnx"
    report = convert(mlpkg, src, tmp_path / "c.mlpkg", "--weights", "fp16", "--no-fold", "--fp16-clamp")
    assert report["conversion"]["totals"]["clampedValues"] == 2
    assert json.loads((tmp_path / "c.mlpkg" / "manifest.json").read_text())["provenance"]["options"]["fp16Clamp"] == "true"
    exported = export(mlpkg, tmp_path / "c.mlpkg", tmp_path / "c.onnx")
    (ref,), (got,) = ort_outputs(src, bn_input), ort_outputs(exported, bn_input)
    # Why clamping is never the default: the variance's channel is 39x too large after it.
    assert cosine(ref, got) < 0.9


def test_fp16_clamp_needs_fp16(mlpkg, tmp_path):
    proc = run([str(mlpkg), "convert", str(FIXTURES / "bn_fold.onnx"), "-o", str(tmp_path / "x.mlpkg"),
                "--weights", "int8", "--fp16-clamp"], tmp_path)
    assert proc.returncode == 2 and "--fp16-clamp" in proc.stderr
    assert not (tmp_path / "x.mlpkg").exists()


def test_fp16_underflow_keeps_a_tensor_float32(mlpkg, tmp_path):
    # A tensor of values around 1e-7 lies below float16's normal range (6.1e-5): rounded, it keeps a few bits.
    rng = np.random.default_rng(3)
    tiny = (1e-7 * rng.standard_normal((8, 8))).astype(np.float32)
    normal = (0.1 * rng.standard_normal((8, 8))).astype(np.float32)
    g = helper.make_graph(
        [helper.make_node("MatMul", ["x", "tiny"], ["a"]), helper.make_node("MatMul", ["a", "normal"], ["y"])],
        "underflow", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 8])], [init("tiny", tiny), init("normal", normal)])
    src = save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), tmp_path / "u.onnx")
    report = convert(mlpkg, src, tmp_path / "u.mlpkg", "--weights", "fp16")
    kept = {k["name"]: k["reason"] for k in report["conversion"]["kept"]}
    assert "tiny" in kept and "below its normal range" in kept["tiny"]
    assert manifest_encodings(tmp_path / "u.mlpkg") == {"tiny": "raw", "normal": "float16"}


# ---------------------------------------------------------------------------------------------------------------
# BatchNormalization folding, producer by producer: the folded export computes what the original did


def conv_bn(channels_in=3, channels_out=6, group=1, bias=True, transpose=False):
    rng = np.random.default_rng(21)
    if transpose:
        w = 0.3 * rng.standard_normal((channels_in, channels_out // group, 3, 3))
        op = "ConvTranspose"
    else:
        w = 0.3 * rng.standard_normal((channels_out, channels_in // group, 3, 3))
        op = "Conv"
    inputs = ["x", "w"] + (["b"] if bias else [])
    inits = [init("w", w)] + ([init("b", 0.1 * rng.standard_normal(channels_out))] if bias else [])
    names, params = bn_params("bn", channels_out, 22, huge=True)
    nodes = [helper.make_node(op, inputs, ["c"], group=group, kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
             helper.make_node("BatchNormalization", ["c", *names], ["y"], epsilon=1e-3)]
    g = helper.make_graph(nodes, "conv_bn", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, channels_in, 5, 5])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits + params)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), {"x": rng.standard_normal((2, channels_in, 5, 5))}


def gemm_bn(trans_b: int, c_shape, alpha=1.0, beta=1.0):
    rng = np.random.default_rng(23)
    k, n = 5, 4
    w = 0.3 * rng.standard_normal((n, k) if trans_b else (k, n))
    inputs = ["x", "w"] + (["c"] if c_shape is not None else [])
    inits = [init("w", w)] + ([init("c", rng.standard_normal(c_shape))] if c_shape is not None else [])
    names, params = bn_params("bn", n, 24, huge=True)
    nodes = [helper.make_node("Gemm", inputs, ["g"], transB=trans_b, alpha=alpha, beta=beta),
             helper.make_node("BatchNormalization", ["g", *names], ["y"])]
    g = helper.make_graph(nodes, "gemm_bn", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [3, k])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [3, n])], inits + params)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), {"x": rng.standard_normal((3, k))}


def matmul_bn(rank: int):
    rng = np.random.default_rng(25)
    k, n = 6, 4
    shape = [3, k] if rank == 2 else [3, n, k]
    channels = n  # rank 2: BN's channel axis 1 is MatMul's output column; rank 3: it is axis 1 of [3, n, n]
    names, params = bn_params("bn", channels, 26)
    nodes = [helper.make_node("MatMul", ["x", "w"], ["m"]), helper.make_node("BatchNormalization", ["m", *names], ["y"])]
    g = helper.make_graph(nodes, "matmul_bn", [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                          [init("w", 0.3 * rng.standard_normal((k, n)))] + params)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), {"x": rng.standard_normal(shape)}


FOLD_CASES = {
    "conv": (lambda: conv_bn(), 1),
    "conv-no-bias": (lambda: conv_bn(bias=False), 1),
    "conv-grouped": (lambda: conv_bn(channels_in=4, channels_out=6, group=2), 1),
    "conv-transpose": (lambda: conv_bn(channels_in=4, channels_out=6, transpose=True), 1),
    "conv-transpose-grouped": (lambda: conv_bn(channels_in=4, channels_out=6, group=2, transpose=True), 1),
    "gemm": (lambda: gemm_bn(0, None), 1),
    "gemm-transB-C-vector-alpha-beta": (lambda: gemm_bn(1, (4,), alpha=0.5, beta=2.0), 1),
    "gemm-C-row": (lambda: gemm_bn(0, (1, 4), beta=3.0), 1),
    "gemm-C-scalar": (lambda: gemm_bn(1, (), beta=0.5), 1),
    "gemm-C-matrix-not-folded": (lambda: gemm_bn(0, (3, 4)), 0),
    "matmul-rank2": (lambda: matmul_bn(2), 1),
    "matmul-rank3-not-folded": (lambda: matmul_bn(3), 0),
}


@pytest.mark.parametrize("case", sorted(FOLD_CASES))
def test_batchnorm_folding_matches_onnxruntime(mlpkg, tmp_path, case):
    build, expected = FOLD_CASES[case]
    model, feeds = build()
    feeds = {k: v.astype(np.float32) for k, v in feeds.items()}
    src = save(model, tmp_path / "m.onnx")
    report = convert(mlpkg, src, tmp_path / "m.mlpkg", "--weights", "fp32")
    assert report["graph"].get("foldedBatchNorms", 0) == expected
    exported = export(mlpkg, tmp_path / "m.mlpkg", tmp_path / "e.onnx")
    ops = [n.op_type for n in onnx.load(str(exported)).graph.node]
    assert ("BatchNormalization" in ops) == (expected == 0)
    (ref,), (got,) = ort_outputs(src, feeds), ort_outputs(exported, feeds)
    assert ref.shape == got.shape
    # Folding reassociates float32 arithmetic: equal to a few ulps of the output's scale.
    assert np.abs(got - ref).max() <= 1e-5 * max(1.0, float(np.abs(ref).max()))


def test_shared_weight_or_training_mode_is_not_folded(mlpkg, tmp_path):
    rng = np.random.default_rng(27)
    names, params = bn_params("bn", 4, 28)
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], kernel_shape=[1, 1]),
             helper.make_node("BatchNormalization", ["c", *names], ["y"]),
             helper.make_node("Conv", ["x", "w"], ["z"], kernel_shape=[1, 1])]  # a second reader of w
    g = helper.make_graph(nodes, "shared", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 3, 3])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None),
                           helper.make_tensor_value_info("z", TensorProto.FLOAT, None)],
                          [init("w", rng.standard_normal((4, 2, 1, 1)))] + params)
    src = save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), tmp_path / "s.onnx")
    assert convert(mlpkg, src, tmp_path / "s.mlpkg", "--weights", "fp32")["graph"].get("foldedBatchNorms", 0) == 0

    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], kernel_shape=[1, 1]),
             helper.make_node("BatchNormalization", ["c", *names], ["y", "rm", "rv"], training_mode=1)]
    g = helper.make_graph(nodes, "training", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 3, 3])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                          [init("w", rng.standard_normal((4, 2, 1, 1)))] + params)
    src = save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), tmp_path / "t.onnx")
    assert convert(mlpkg, src, tmp_path / "t.mlpkg", "--weights", "fp32")["graph"].get("foldedBatchNorms", 0) == 0


def test_contrib_quantized_op_parameters_keep_full_precision(mlpkg, tmp_path):
    # com.microsoft MatMulIntegerToFloat: its float inputs are the scales and bias of an int8 matmul.
    rng = np.random.default_rng(29)
    b = numpy_helper.from_array(rng.integers(-127, 127, (64, 64)).astype(np.int8), "B")
    scales = [init("a_scale", [0.02]), init("b_scale", 0.01 + 0.001 * rng.random(64)), init("bias", rng.standard_normal(64))]
    node = helper.make_node("MatMulIntegerToFloat", ["A", "B", "a_scale", "b_scale", "", "", "bias"], ["Y"],
                            domain="com.microsoft")
    g = helper.make_graph([node], "contrib", [helper.make_tensor_value_info("A", TensorProto.INT8, [2, 64])],
                          [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [2, 64])], [b, *scales])
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)])
    onnx.save(model, str(tmp_path / "q.onnx"))
    report = convert(mlpkg, tmp_path / "q.onnx", tmp_path / "q.mlpkg", "--weights", "fp16")
    kept = {k["name"]: k["reason"] for k in report["conversion"]["kept"]}
    assert set(kept) == {"a_scale", "b_scale", "bias"}
    assert all("com.microsoft.MatMulIntegerToFloat" in r for r in kept.values())


# ---------------------------------------------------------------------------------------------------------------
# 3. Per-layer control


@pytest.fixture(scope="module")
def transformer() -> Path:
    return FIXTURES / "transformer.onnx"


def formats(report: dict) -> dict[str, str]:
    """Tensor -> storage of every converted tensor (int8/int4/... or float16)."""
    return {c["name"]: c.get("storage", c["encoding"]) for c in report["conversion"]["converted"]}


def test_exclude_by_glob_and_op_type(mlpkg, tmp_path, transformer):
    base = formats(convert(mlpkg, transformer, tmp_path / "a.mlpkg", "--weights", "int8"))
    assert base and all(v == "int8" for v in base.values())
    victim = sorted(base)[0]
    report = convert(mlpkg, transformer, tmp_path / "b.mlpkg", "--weights", "int8", "--exclude", victim)
    assert set(formats(report)) == set(base) - {victim}
    kept = {k["name"]: k for k in report["conversion"]["kept"]}
    assert kept[victim]["reason"] == f"excluded by --exclude {victim}" and kept[victim]["rule"] == f"--exclude {victim}"
    # op:MatMul leaves every MatMul weight alone.
    report = convert(mlpkg, transformer, tmp_path / "c.mlpkg", "--weights", "int8", "--exclude", "op:MatMul")
    assert formats(report) == {}
    # A glob over node names: the MatMuls reading the MLP weights are named h1_mm and h2_mm.
    model = onnx.load(str(transformer))
    readers = {i: n.name for n in model.graph.node for i in n.input}
    mlp = {t for t in base if readers.get(t) in ("h1_mm", "h2_mm")}
    assert mlp == {"mlp.fc1.weight", "mlp.fc2.weight"}
    report = convert(mlpkg, transformer, tmp_path / "d.mlpkg", "--weights", "int8", "--exclude", "h?_mm")
    assert set(formats(report)) == set(base) - mlp


def test_include_converts_only_what_it_picks(mlpkg, tmp_path, transformer):
    base = formats(convert(mlpkg, transformer, tmp_path / "a.mlpkg", "--weights", "int4"))
    pick = sorted(base)[-1]
    report = convert(mlpkg, transformer, tmp_path / "b.mlpkg", "--weights", "int4", "--include", pick)
    assert formats(report) == {pick: "uint4"}  # asymmetric: the default below 8 bits
    converted = report["conversion"]["converted"][0]
    assert converted["rule"] == f"command line (--weights int4), --include {pick}"
    kept = {k["name"]: k["reason"] for k in report["conversion"]["kept"]}
    assert all(kept[t] == "not picked by --include" for t in base if t != pick)
    # include and exclude together: exclude wins.
    report = convert(mlpkg, transformer, tmp_path / "c.mlpkg", "--weights", "int4", "--include", pick, "--exclude", pick)
    assert formats(report) == {}


def test_config_sets_formats_by_default_op_type_and_name_and_export_runs(mlpkg, tmp_path, transformer):
    base = formats(convert(mlpkg, transformer, tmp_path / "a.mlpkg", "--weights", "int8"))
    names = sorted(base)
    config = {"default": {"weights": "int4", "blockSize": 16},
              "names": {names[0]: {"weights": "int8"}, names[1]: {"weights": "fp16"}, names[2]: {"weights": "fp32"}}}
    (tmp_path / "q.json").write_text(json.dumps(config))
    report = convert(mlpkg, transformer, tmp_path / "b.mlpkg", "--config", str(tmp_path / "q.json"))
    got = formats(report)
    assert got[names[0]] == "int8" and got[names[1]] == "float16" and names[2] not in got
    assert all(got[t] == "uint4" for t in names[3:])
    rules = {c["name"]: c["rule"] for c in report["conversion"]["converted"]}
    assert rules[names[0]] == f"config names['{names[0]}']"
    assert rules[names[3]] == "config default"
    blocks = {c["name"]: c.get("blockSize") for c in report["conversion"]["converted"]}
    assert all(blocks[t] == 16 for t in names[3:])
    kept = {k["name"]: k["reason"] for k in report["conversion"]["kept"]}
    assert kept[names[2]] == f"kept as fp32 by config names['{names[2]}']"
    opts = json.loads((tmp_path / "b.mlpkg" / "manifest.json").read_text())["provenance"]["options"]
    assert opts["config"].startswith("sha256:") and len(opts["config"]) == 7 + 64
    exported = export(mlpkg, tmp_path / "b.mlpkg", tmp_path / "b.onnx")
    feeds = {"tokens": np.random.default_rng(5).standard_normal((2, 7, 64)).astype(np.float32)}
    (ref,), (got_out,) = ort_outputs(transformer, feeds), ort_outputs(exported, feeds)
    assert cosine(ref, got_out) >= 0.99


def test_config_op_types_and_force(mlpkg, tmp_path):
    # A positional table added to the input: no heuristic quantizes it (Add is not a weight input); force does.
    rng = np.random.default_rng(31)
    g = helper.make_graph(
        [helper.make_node("Add", ["x", "pos"], ["a"]), helper.make_node("MatMul", ["a", "w"], ["y"])],
        "force", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [64, 64])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [64, 64])],
        [init("pos", 0.1 * rng.standard_normal((64, 64))), init("w", 0.1 * rng.standard_normal((64, 64)))])
    src = save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 21)]), tmp_path / "f.onnx")
    report = convert(mlpkg, src, tmp_path / "a.mlpkg", "--weights", "int8")
    assert formats(report) == {"w": "int8"}
    (tmp_path / "c.json").write_text(json.dumps({"opTypes": {"MatMul": {"weights": "int4"}},
                                                 "names": {"pos": {"weights": "int8", "force": True}}}))
    report = convert(mlpkg, src, tmp_path / "b.mlpkg", "--weights", "int8", "--config", str(tmp_path / "c.json"))
    assert formats(report) == {"w": "uint4", "pos": "int8"}
    rules = {c["name"]: c["rule"] for c in report["conversion"]["converted"]}
    assert rules == {"w": "config opTypes.MatMul", "pos": "config names['pos']"}
    exported = export(mlpkg, tmp_path / "b.mlpkg", tmp_path / "b.onnx")
    feeds = {"x": rng.standard_normal((64, 64)).astype(np.float32)}
    (ref,), (got,) = ort_outputs(src, feeds), ort_outputs(exported, feeds)
    assert cosine(ref, got) >= 0.99


CONFLICTS = {
    "two name patterns disagree": ({"names": {"mlp*": {"weights": "int8"}, "*fc1*": {"weights": "int4"}}}, [],
                                   "both pick it with different settings"),
    "exclude against force": ({"names": {"*": {"force": True}}}, ["--exclude", "op:MatMul"], "contradict each other"),
    "command line against config default": ({"default": {"weights": "int4"}}, ["--weights", "int8"],
                                            "contradicts default.weights"),
    "unknown setting": ({"default": {"bits": 4}}, [], "unknown setting 'bits'"),
    "unknown section": ({"layers": {}}, [], "unknown section 'layers'"),
    "bad format": ({"default": {"weights": "int9"}}, [], "'int9' is not a format"),
    "mistyped value": ({"default": {"symmetric": "yes"}}, [], "expected true or false"),
    "not JSON": (None, [], "not valid JSON"),
}


@pytest.mark.parametrize("case", sorted(CONFLICTS))
def test_conflicting_or_malformed_config_is_a_usage_error(mlpkg, tmp_path, transformer, case):
    config, extra, message = CONFLICTS[case]
    path = tmp_path / "bad.json"
    path.write_text("{not json" if config is None else json.dumps(config))
    out = tmp_path / "x.mlpkg"
    proc = run([str(mlpkg), "convert", str(transformer), "-o", str(out), "--config", str(path), *extra], tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr
    assert proc.stderr.startswith("error: ") and len(proc.stderr.splitlines()) == 2  # the line and the usage hint
    assert not out.exists()
    assert list(tmp_path.iterdir()) == [path]  # no temporary left behind


def test_rules_keep_packages_byte_identical(mlpkg, tmp_path, transformer):
    (tmp_path / "c.json").write_text(json.dumps({"default": {"weights": "int4"}, "opTypes": {"Gather": {"weights": "int8"}}}))
    for name in ("a", "b"):
        convert(mlpkg, transformer, tmp_path / f"{name}.mlpkg", "--config", str(tmp_path / "c.json"), "--exclude", "*fc2*")
    for f in ("manifest.json", "weights.bin", "report.json"):
        assert (tmp_path / "a.mlpkg" / f).read_bytes() == (tmp_path / "b.mlpkg" / f).read_bytes()


# ---------------------------------------------------------------------------------------------------------------
# 2. Palettization: every format row round-trips within its bound; exports run


LUT_CASES = [("transformer.onnx", w, []) for w in ("lut1", "lut2", "lut3", "lut4", "lut6", "lut8")] + [
    ("cnn.onnx", "lut4", ["--min-elements", "16"]),
    ("cnn.onnx", "lut4", ["--min-elements", "16", "--granularity", "per-channel", "--block-size", "8"]),
    ("yolo_like.onnx", "lut3", ["--min-elements", "64", "--granularity", "per-channel", "--block-size", "2"]),
    ("external_data.onnx", "lut8", []),
]


def feeds_for(model: Path) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(9)
    out = {}
    for i in ort.InferenceSession(str(model), providers=["CPUExecutionProvider"]).get_inputs():
        shape = [d if isinstance(d, int) else 2 for d in i.shape]
        out[i.name] = rng.standard_normal(shape).astype(np.float32)
    return out


@pytest.mark.parametrize("model,weights,args", LUT_CASES, ids=[f"{m}-{w}-{'-'.join(a)}" for m, w, a in LUT_CASES])
def test_palettized_tensors_decode_independently_and_exports_run(mlpkg, tmp_path, model, weights, args):
    src = FIXTURES / model
    report = convert(mlpkg, src, tmp_path / "p.mlpkg", "--weights", weights, "--no-fold", *args)
    bits = int(weights[3:])
    package = Package(tmp_path / "p.mlpkg")
    assert package.manifest["formatVersion"] == "1.2"
    original = {i.name: numpy_helper.to_array(i, base_dir=str(src.parent)) for i in onnx.load(str(src)).graph.initializer}
    converted = {c["name"]: c for c in report["conversion"]["converted"]}
    luts = [i for i, t in enumerate(package.tensors) if t["encoding"]["kind"] == "lut"]
    assert luts and {package.tensors[i]["name"] for i in luts} == set(converted)
    for i in luts:
        name = package.tensors[i]["name"]
        w = original[name].astype(np.float32)
        indices, table, group, b = package.palettized(i)
        assert b == bits and indices.max() < 1 << bits
        assert (np.diff(table, axis=1) >= 0).all()  # each table ascends
        decoded = package.decode_palettized(i)
        # The bound: each weight decodes to the table entry nearest its float16 value (never a farther one).
        half = w.astype(np.float16).astype(np.float32)
        rows = w.shape[0]
        for r in range(rows):
            entries = table[(r // group) if group else 0]
            nearest = np.abs(half[r].reshape(-1, 1) - entries.reshape(1, -1)).min(axis=1)
            assert (np.abs(decoded[r].reshape(-1) - half[r].reshape(-1)) <= nearest * (1 + 1e-6) + 1e-12).all(), name
        # The report's SNR and sizes are what the stored bytes give.
        err = np.sum((w.astype(np.float64) - decoded) ** 2)
        if err > 0:
            snr = 10 * np.log10(np.sum(w.astype(np.float64) ** 2) / err)
            assert abs(converted[name]["snrDB"] - snr) < 0.01, name
        assert converted[name]["bytesAfter"] == package.tensors[i]["length"] + table.size * 2
        assert package.tensors[i]["length"] == -(-w.size * bits // 8)
    assert run([str(mlpkg), "verify", str(tmp_path / "p.mlpkg")], tmp_path).returncode == 0
    # Exports: table lookups in ONNX (onnxruntime runs them), and --dequantize floats; both compute the same.
    exported = export(mlpkg, tmp_path / "p.mlpkg", tmp_path / "p.onnx")
    ops = {n.op_type for n in onnx.load(str(exported)).graph.node}
    assert ops & {"Gather", "GatherElements"}
    proc = run([str(mlpkg), "export", str(tmp_path / "p.mlpkg"), "-o", str(tmp_path / "d.onnx"), "--dequantize", "--quiet"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    feeds = feeds_for(src)
    ref = ort_outputs(src, feeds)
    lookup = ort_outputs(exported, feeds)
    floats = ort_outputs(tmp_path / "d.onnx", feeds)
    floor = {1: 0.5, 2: 0.9, 3: 0.97, 4: 0.99, 6: 0.999, 8: 0.9999}[bits]
    for want, got, deq in zip(ref, lookup, floats):
        np.testing.assert_array_equal(got, deq)  # the lookup computes exactly the decoded weights
        assert cosine(want, got) >= floor, (weights, cosine(want, got))


def test_palettized_packages_are_byte_identical(mlpkg, tmp_path):
    for name in ("a", "b"):
        convert(mlpkg, FIXTURES / "transformer.onnx", tmp_path / f"{name}.mlpkg", "--weights", "lut4")
    for f in ("manifest.json", "weights.bin", "report.json"):
        assert (tmp_path / "a.mlpkg" / f).read_bytes() == (tmp_path / "b.mlpkg" / f).read_bytes()


def test_fold_then_int4_and_lut4_keep_the_bn_fixture_close(mlpkg, tmp_path, bn_input):
    src = FIXTURES / "bn_fold.onnx"
    for weights in ("int4", "lut4"):
        convert(mlpkg, src, tmp_path / f"{weights}.mlpkg", "--weights", weights, "--min-elements", "16")
        exported = export(mlpkg, tmp_path / f"{weights}.mlpkg", tmp_path / f"{weights}.onnx")
        (ref,), (got,) = ort_outputs(src, bn_input), ort_outputs(exported, bn_input)
        assert cosine(ref, got) >= 0.99, weights


# ---------------------------------------------------------------------------------------------------------------
# 4. --weights auto


UNIFORM = ["int8", "int4", "lut8", "lut6", "lut4", "lut3", "lut2"]


def transformer_feeds(model: Path) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    feeds = {}
    for i in ort.InferenceSession(str(model), providers=["CPUExecutionProvider"]).get_inputs():
        shape = [d if isinstance(d, int) else 8 for d in i.shape]
        feeds[i.name] = (rng.standard_normal(shape).astype(np.float32) if i.type == "tensor(float)"
                         else rng.integers(0, 16, shape).astype(np.int64))
    return feeds


def worst_cosine(mlpkg: Path, src: Path, package: Path, feeds) -> float:
    exported = export(mlpkg, package, package.with_suffix(".onnx"))
    ref, got = ort_outputs(src, feeds), ort_outputs(exported, feeds)
    return min(cosine(r, g) for r, g in zip(ref, got) if r.dtype.kind == "f")


@pytest.mark.parametrize("model", ["transformer.onnx", "transformer_dynamic.onnx"])
def test_auto_fits_the_budget_and_beats_every_uniform_format_that_fits_it(mlpkg, tmp_path, model):
    src = FIXTURES / model
    feeds = transformer_feeds(src)
    uniform = {}
    for w in UNIFORM:
        report = convert(mlpkg, src, tmp_path / f"{w}.mlpkg", "--weights", w)
        uniform[w] = (report["conversion"]["totals"]["bytesAfter"], worst_cosine(mlpkg, src, tmp_path / f"{w}.mlpkg", feeds))
    before = convert(mlpkg, src, tmp_path / "f.mlpkg", "--weights", "fp32")["conversion"]["totals"]["bytesBefore"]
    for w, (budget, _) in uniform.items():
        out = tmp_path / f"auto-{w}.mlpkg"
        # A fraction bounds the weights (a byte count would bound the whole package, JSON included): the same weight
        # budget as the uniform format's bytes.
        size = "100%" if budget >= before else repr((budget + 0.5) / before)
        report = convert(mlpkg, src, out, "--weights", "auto", "--max-size", size)["conversion"]
        assert report["auto"]["budgetBytes"] == budget
        assert report["totals"]["bytesAfter"] <= budget
        assert report["auto"]["predictedBytes"] == report["totals"]["bytesAfter"]  # measured, not estimated
        got = worst_cosine(mlpkg, src, out, feeds)
        for u, (size, cos_u) in uniform.items():
            if size <= budget:
                assert got >= cos_u, f"auto at {budget} B: cosine {got} < {u} ({size} B): {cos_u}"


def test_auto_budget_forms_and_errors(mlpkg, tmp_path):
    src = FIXTURES / "transformer.onnx"
    before = convert(mlpkg, src, tmp_path / "f.mlpkg", "--weights", "fp32")["conversion"]["totals"]["bytesBefore"]
    # Fractions bound the weights; byte counts the whole package on disk (its JSON is ~28 KB here).
    for size, limit in (("0.2", int(before * 0.2)), ("20%", int(before * 0.2)), ("60KB", 60_000), ("60KiB", 60 * 1024)):
        report = convert(mlpkg, src, tmp_path / "a.mlpkg", "--weights", "auto", "--max-size", size)["conversion"]
        assert report["auto"]["budgetBytes"] == limit and report["totals"]["bytesAfter"] <= limit
        if size.endswith("B"):
            assert sum(p.stat().st_size for p in (tmp_path / "a.mlpkg").rglob("*") if p.is_file()) <= limit
        assert all(c["rule"].startswith("auto (--max-size") for c in report["converted"])
    opts = json.loads((tmp_path / "a.mlpkg" / "manifest.json").read_text())["provenance"]["options"]
    assert opts["weights"] == "auto" and opts["maxSize"] == str(60 * 1024)
    for argv, message in ((["--weights", "auto"], "needs a budget"), (["--max-size", "1MB"], "apply to --weights auto"),
                          (["--weights", "auto", "--max-size", "1KB"], "below the smallest"),
                          (["--weights", "auto", "--max-size", "lots"], "expected bytes"),
                          (["--weights", "auto", "--max-size", "1MB", "--min-snr", "20"], "alternatives")):
        out = tmp_path / "x.mlpkg"
        proc = run([str(mlpkg), "convert", str(src), "-o", str(out), *argv], tmp_path)
        assert proc.returncode == 2 and message in proc.stderr, (argv, proc.stderr)
        assert not out.exists()


def test_auto_min_snr_gives_every_tensor_its_smallest_format_above_the_floor(mlpkg, tmp_path):
    src = FIXTURES / "transformer.onnx"
    report = convert(mlpkg, src, tmp_path / "s.mlpkg", "--weights", "auto", "--min-snr", "25")["conversion"]
    assert report["auto"]["budget"] == "--min-snr 25.0"
    for c in report["converted"]:
        assert c.get("snrDB") is None or c["snrDB"] >= 25, c  # absent: exact
    formats = {c.get("storage", c["encoding"]) for c in report["converted"] if c["bytesBefore"] >= 8192}
    # 25 dB is more than int4/lut4 reach on these weights (~21 dB): int5 (28 dB, uint8 storage), lut6 or better.
    assert formats <= {"uint8", "lut6", "int8", "lut8"} and formats
    larger = convert(mlpkg, src, tmp_path / "t.mlpkg", "--weights", "auto", "--min-snr", "40")["conversion"]
    assert larger["totals"]["bytesAfter"] > report["totals"]["bytesAfter"]


def test_auto_is_deterministic(mlpkg, tmp_path):
    for name in ("a", "b"):
        convert(mlpkg, FIXTURES / "transformer.onnx", tmp_path / f"{name}.mlpkg", "--weights", "auto", "--max-size", "0.15")
    for f in ("manifest.json", "weights.bin", "report.json"):
        assert (tmp_path / "a.mlpkg" / f).read_bytes() == (tmp_path / "b.mlpkg" / f).read_bytes()


# ---------------------------------------------------------------------------------------------------------------
# 2b. Linear formats at 2, 3, 5, 6 and 7 bits (packed at their width in the package; format 1.2)


NBIT_CASES = [("transformer.onnx", w, []) for w in ("int2", "int3", "int5", "int6", "int7")] + [
    ("transformer.onnx", "int3", ["--symmetric"]),
    ("transformer.onnx", "int6", ["--symmetric", "--granularity", "per-channel"]),
    ("cnn.onnx", "int5", ["--min-elements", "16"]),
    ("lstm.onnx", "int3", []),
]


@pytest.mark.parametrize("model,weights,args", NBIT_CASES, ids=[f"{m}-{w}-{'-'.join(a)}" for m, w, a in NBIT_CASES])
def test_linear_packed_widths_decode_independently_and_exports_run(mlpkg, tmp_path, model, weights, args):
    src = FIXTURES / model
    bits = int(weights[3:])
    report = convert(mlpkg, src, tmp_path / "p.mlpkg", "--weights", weights, "--no-fold", *args)["conversion"]
    package = Package(tmp_path / "p.mlpkg")
    assert package.manifest["formatVersion"] == "1.2"
    original = {i.name: numpy_helper.to_array(i, base_dir=str(src.parent)) for i in onnx.load(str(src)).graph.initializer}
    converted = {c["name"]: c for c in report["converted"]}
    linear = [i for i, t in enumerate(package.tensors) if t["encoding"]["kind"] == "linear"]
    assert linear and {package.tensors[i]["name"] for i in linear} == set(converted)
    symmetric = "--symmetric" in args
    for i in linear:
        t, enc = package.tensors[i], package.tensors[i]["encoding"]
        assert enc["bits"] == bits and enc["storage"] == ("int" if symmetric else "uint") + ("4" if bits <= 4 else "8")
        assert t["length"] == -(-int(np.prod(t["shape"])) * bits // 8)
        q = package.quantized(i)
        lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if symmetric else (0, (1 << bits) - 1)
        assert q.q.min() >= lo and q.q.max() <= hi
        w = original[t["name"]].astype(np.float64)
        decoded = q.dequantize().astype(np.float64)
        err = np.sum((w - decoded) ** 2)
        snr = 10 * np.log10(np.sum(w * w) / err)
        entry = converted[t["name"]]
        assert abs(entry["snrDB"] - snr) < 0.01
        assert entry["rtnSNRDB"] <= entry["snrDB"] + 1e-9  # the clipping search never loses to round-to-nearest
        # Each bit is worth ~6 dB on these Gaussian-like weights: a floor well below it, per width.
        assert snr >= 6.02 * bits - 9, (t["name"], snr)
    assert run([str(mlpkg), "verify", str(tmp_path / "p.mlpkg")], tmp_path).returncode == 0
    exported = export(mlpkg, tmp_path / "p.mlpkg", tmp_path / "p.onnx")
    assert "DequantizeLinear" in {n.op_type for n in onnx.load(str(exported)).graph.node}
    proc = run([str(mlpkg), "export", str(tmp_path / "p.mlpkg"), "-o", str(tmp_path / "d.onnx"), "--dequantize", "--quiet"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    feeds = feeds_for(src)
    for want, got, deq in zip(ort_outputs(src, feeds), ort_outputs(exported, feeds), ort_outputs(tmp_path / "d.onnx", feeds)):
        np.testing.assert_allclose(got, deq, rtol=1e-5, atol=1e-6)  # DequantizeLinear computes the decoded weights
        floor = {2: 0.9, 3: 0.97, 5: 0.995, 6: 0.999, 7: 0.9999}[bits]  # cnn: conv1 has 27 weights per channel
        assert cosine(want, got) >= floor, (weights, cosine(want, got))
