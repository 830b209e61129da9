"""Numerically hostile weights: inf, NaN, subnormals, all-zero and constant tensors, values past float16's range,
blocks whose scale float16 cannot hold, and int64 shape tensors far out of any real range. Every format converts them
without a crash or a silent loss: inf/NaN tensors stay float32 and are named, clamping is counted, and the exported
model runs in onnxruntime with the outputs each encoding allows."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from conftest import run

FORMATS = ["fp16", "int8", "int4", "lut4"]


def hostile_weights() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(11)
    w = {}
    a = (rng.standard_normal((64, 64)) * 0.1).astype(np.float32)
    a[3, 5] = np.inf
    w["W_inf"] = a
    a = (rng.standard_normal((64, 64)) * 0.1).astype(np.float32)
    a[7, 1] = np.nan
    w["W_nan"] = a
    w["W_subnormal"] = (rng.standard_normal((64, 64)) * 1e-40).astype(np.float32)
    w["W_zero"] = np.zeros((64, 64), np.float32)
    w["W_constant"] = np.full((64, 64), 0.5, np.float32)
    a = rng.standard_normal((64, 64)).astype(np.float32)
    a[0, :8] = 1e6  # past float16's 65504, and an int4 block scale (1e6/7) float16 cannot hold
    w["W_huge"] = a
    a = (rng.standard_normal((64, 64)) * 1e-6).astype(np.float32)  # int4 scales in float16's subnormal range
    w["W_tiny"] = a
    return w


@pytest.fixture(scope="module")
def model_path(tmp_path_factory) -> Path:
    weights = hostile_weights()
    nodes = [helper.make_node("MatMul", ["x", name], [f"y_{name}"], name=f"mm_{name}") for name in weights]
    graph = helper.make_graph(
        nodes, "hostile_numbers", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 64])],
        [helper.make_tensor_value_info(f"y_{name}", TensorProto.FLOAT, [2, 64]) for name in weights],
        [numpy_helper.from_array(v, k) for k, v in weights.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 10
    path = tmp_path_factory.mktemp("hostile_numbers") / "model.onnx"
    onnx.save_model(model, str(path))
    return path


def convert(mlpkg: Path, model: Path, fmt: str) -> tuple[Path, dict]:
    out = model.parent / f"{fmt}.mlpkg"
    proc = run([str(mlpkg), "convert", str(model), "-o", str(out), "--weights", fmt, "--json"], model.parent)
    assert proc.returncode == 0, proc.stderr
    return out, json.loads(proc.stdout)["report"]


def run_model(path: Path, x: np.ndarray) -> dict[str, np.ndarray]:
    # Basic optimizations only: the extended level fuses DequantizeLinear + MatMul into MatMulIntegerToFloat, which
    # also quantizes x and so adds onnxruntime's own error (0.5% here) to the encoding's.
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(names, {"x": x})))


@pytest.mark.parametrize("fmt", FORMATS)
def test_hostile_weights_convert_export_and_run(mlpkg, model_path, fmt):
    package, report = convert(mlpkg, model_path, fmt)
    converted = {t["name"]: t for t in report["converted"]}
    kept = {t["name"]: t for t in report["kept"]}

    # inf and NaN are never encoded: the tensors stay float32 and the report says why.
    for name in ("W_inf", "W_nan"):
        assert name in kept and "inf/NaN" in kept[name]["reason"], kept
    # all-zero and constant tensors: no division by zero; zeros exact, the constant to float rounding (0.5/127·127).
    assert converted["W_zero"]["maxAbsError"] == 0, converted["W_zero"]
    # int4 (asymmetric by default, fp16 scales): 0.5 = 15 × scale, and the scale is rounded to float16 (2^-11).
    constant_bound = 0.5 * 2**-11 if fmt == "int4" else 0.5 * 2**-23
    assert converted["W_constant"]["maxAbsError"] <= constant_bound, converted["W_constant"]
    if fmt == "lut4":
        # A float16 table cannot hold 1e6; W_tiny (1e-6) sits in float16's subnormal range, where its 16 entries
        # are still the optimal clustering of what float16 keeps of it.
        assert "beyond float16's range" in kept["W_huge"]["reason"], kept
        assert converted["W_subnormal"]["maxAbsError"] < 1e-38
        assert converted["W_tiny"]["snrDB"] > 10, converted["W_tiny"]
    elif fmt == "fp16":
        # float16 cannot hold them: values beyond ±65504 and values it would flush to zero stay float32 (issue 14).
        assert "beyond float16's range" in kept["W_huge"]["reason"], kept
        assert "below its normal range" in kept["W_subnormal"]["reason"], kept
        assert report["totals"]["clampedValues"] == 0
    else:
        # subnormal weights may flush to zero, but the error is bounded by their own (tiny) magnitude.
        assert converted["W_subnormal"]["maxAbsError"] < 1e-38
        assert converted["W_huge"]["clamped"] == 0
        assert converted["W_huge"]["snrDB"] > 30, converted["W_huge"]
        assert converted["W_tiny"]["snrDB"] > (30 if fmt == "int8" else 15), converted["W_tiny"]
    if fmt == "int4":
        # float16 scales would clamp 1e6/7 to 65504 or lose W_tiny's to subnormals: those tensors keep float32 scales.
        assert converted["W_huge"]["scaleType"] == "float" and converted["W_tiny"]["scaleType"] == "float"
        assert converted["W_constant"]["scaleType"] == "float16"

    assert run([str(mlpkg), "verify", str(package)], package.parent).returncode == 0
    exported = package.parent / f"{fmt}.onnx"
    proc = run([str(mlpkg), "export", str(package), "-o", str(exported)], package.parent)
    assert proc.returncode == 0, proc.stderr

    x = np.random.default_rng(2).standard_normal((2, 64)).astype(np.float32)
    want = run_model(model_path, x)
    got = run_model(exported, x)
    weights = hostile_weights()
    for name, w in weights.items():
        out = f"y_{name}"
        if name in kept:
            np.testing.assert_array_equal(got[out], want[out])  # float32 kept: bit-for-bit, inf and NaN included
            continue
        # Each output's error is bounded by Σ|x|·max|w−ŵ| from the report.
        bound = np.abs(x).sum(axis=1, keepdims=True) * converted[name]["maxAbsError"]
        assert np.all(np.abs(got[out] - want[out]) <= bound * 1.001 + 1e-6 * np.abs(want[out]).max() + 1e-30), name


def test_out_of_range_shape_values_are_never_materialised(mlpkg, tmp_path):
    """ConstantOfShape asking for 2^124 elements (int64 shape values far out of range): inspect and convert must
    neither evaluate it nor crash."""
    shape = numpy_helper.from_array(np.array([2**62, 2**62], np.int64), "huge_shape")
    nodes = [helper.make_node("ConstantOfShape", ["huge_shape"], ["huge"], name="huge_constant"),
             helper.make_node("Shape", ["huge"], ["huge_dims"], name="read_huge_dims")]
    graph = helper.make_graph(nodes, "huge_shapes", [], [helper.make_tensor_value_info("huge_dims", TensorProto.INT64, [2])],
                              [shape])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 10
    path = tmp_path / "huge.onnx"
    onnx.save_model(model, str(path))
    for argv in (["inspect", str(path)], ["convert", str(path), "-o", str(tmp_path / "s.mlpkg")]):
        proc = run([str(mlpkg), *argv], tmp_path)
        assert proc.returncode == 0, proc.stderr
