"""`--calibration` (issue 27, item 3): calibrated `--weights auto` and `--activations int8` (W8A8).

- A W8A8 .mlpackage passes coremltools' milproto loader (its own quantize/dequantize definitions and type inference),
  holds a quantize → dequantize pair per quantized layer input, and the test-side numpy MIL reference of it agrees with
  onnxruntime on the original within the cosine W8A8 promises (0.999 against float activations; here against fp32).
- Calibrated auto spends the budget where the outputs need it: on a model whose small matrix is scaled ×100 into the
  output, it gives that matrix more bytes than the data-free choice, which weighs tensors by their size.
- Bad calibration input is one `error:` line naming the file and the tensor, a non-zero exit, nothing written.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from conftest import FIXTURES, run
from mil_reference import evaluate
from test_coreml import coremltools_types, cosine, load_spec, program_ops

TRANSFORMER = FIXTURES / "transformer.onnx"


def calibration(path: Path, seed: int = 0, samples: int = 4) -> Path:
    rng = np.random.default_rng(seed)
    np.savez(path, tokens=rng.standard_normal((samples, 1, 8, 64)).astype(np.float32))
    return path


def test_w8a8_loads_in_coremltools_and_matches_onnxruntime(mlpkg, tmp_path):
    out = tmp_path / "W8A8.mlpackage"
    r = run([str(mlpkg), "convert", str(TRANSFORMER), "-o", str(out), "--activations", "int8",
             "--calibration", str(calibration(tmp_path / "c.npz")), "--input-shape", "tokens=1,8,64"], tmp_path)
    assert r.returncode == 0, r.stderr
    assert "int8 activations:" in r.stdout
    spec = load_spec(out)
    assert spec.specificationVersion >= 8  # iOS17
    types = coremltools_types(out, spec)  # coremltools rebuilds every op with its own definitions
    ops = [op.type for op in program_ops(spec)]
    assert ops.count("quantize") == ops.count("dequantize") >= 6
    assert "constexpr_affine_dequantize" in ops  # int8 weights
    quantized = [n for n, (dtype, _) in types.items() if n.endswith("_quantized")]
    assert quantized and all(types[n][0] == 21 for n in quantized)  # MIL.proto INT8
    meta = dict(spec.description.metadata.userDefined)
    assert meta["com.mlpkg.activations"] == "int8"
    x = np.random.default_rng(7).standard_normal((1, 8, 64)).astype(np.float32)
    want = ort.InferenceSession(str(TRANSFORMER), providers=["CPUExecutionProvider"]).run(None, {"tokens": x})[0]
    got = next(iter(evaluate(out, {"tokens": x}).values()))
    assert cosine(want, got) >= 0.999


def critical_model(path: Path) -> None:
    """y = 100 · (x · A) + relu(x · B1) · B2: A (64×64) is the smallest matrix and the one the output depends on."""
    rng = np.random.default_rng(3)
    inits = [numpy_helper.from_array((rng.standard_normal((64, 64)) * 0.05).astype(np.float32), "A"),
             numpy_helper.from_array((rng.standard_normal((64, 512)) * 0.05).astype(np.float32), "B1"),
             numpy_helper.from_array((rng.standard_normal((512, 64)) * 0.05).astype(np.float32), "B2"),
             numpy_helper.from_array(np.array(100, np.float32), "gain")]
    nodes = [helper.make_node("MatMul", ["x", "A"], ["a"]), helper.make_node("Mul", ["a", "gain"], ["a100"]),
             helper.make_node("MatMul", ["x", "B1"], ["b1"]), helper.make_node("Relu", ["b1"], ["r"]),
             helper.make_node("MatMul", ["r", "B2"], ["b2"]), helper.make_node("Add", ["a100", "b2"], ["y"])]
    graph = helper.make_graph(nodes, "critical", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 64])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 64])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 10
    onnx.save(model, path)


def test_calibrated_auto_protects_the_output_critical_tensor(mlpkg, tmp_path):
    src = tmp_path / "critical.onnx"
    critical_model(src)
    np.savez(tmp_path / "c.npz", x=np.random.default_rng(5).standard_normal((16, 64)).astype(np.float32))
    after = {}
    for label, extra in (("data-free", []), ("calibrated", ["--calibration", str(tmp_path / "c.npz")])):
        pkg = tmp_path / f"{label}.mlpkg"
        r = run([str(mlpkg), "convert", str(src), "-o", str(pkg), "--weights", "auto", "--max-size", "0.2", "--quiet", *extra], tmp_path)
        assert r.returncode == 0, r.stderr
        report = json.loads((pkg / "report.json").read_text())["conversion"]
        after[label] = {c["name"]: c["bytesAfter"] for c in report["converted"]}
        assert report["auto"].get("calibratedTensors") == (3 if extra else None)
    # The data-free choice weighs A by its 4096 elements, far below B1's and B2's 32768; measured, A matters most.
    assert after["calibrated"]["A"] > after["data-free"]["A"]
    assert after["calibrated"]["B1"] + after["calibrated"]["B2"] < after["data-free"]["B1"] + after["data-free"]["B2"]


def test_bad_calibration_input_is_one_error_line_and_nothing_written(mlpkg, tmp_path):
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "missing.npz", other=rng.standard_normal((1, 8, 64)).astype(np.float32))
    np.savez(tmp_path / "shape.npz", tokens=rng.standard_normal((8, 65)).astype(np.float32))
    np.savez(tmp_path / "dtype.npz", tokens=rng.integers(0, 3, (1, 8, 64)))
    good = calibration(tmp_path / "good.npz")
    cases = [
        (["-o", "a.mlpkg", "--weights", "auto", "--max-size", "0.2", "--calibration", "missing.npz"], 1, ["missing.npz", "'tokens'"]),
        (["-o", "a.mlpkg", "--weights", "auto", "--max-size", "0.2", "--calibration", "shape.npz"], 1, ["shape.npz", "'tokens'", "[8, 65]"]),
        (["-o", "a.mlpkg", "--weights", "auto", "--max-size", "0.2", "--calibration", "dtype.npz"], 1, ["dtype.npz", "'tokens'", "int32"]),
        (["-o", "A.mlpackage", "--activations", "int8", "--calibration", "missing.npz", "--input-shape", "tokens=1,8,64"], 1,
         ["missing.npz", "'tokens'"]),
        (["-o", "A.mlpackage", "--activations", "int8", "--input-shape", "tokens=1,8,64"], 2, ["--calibration"]),
        (["-o", "A.mlpackage", "--activations", "int8", "--calibration", str(good), "--deployment-target", "iOS16",
          "--input-shape", "tokens=1,8,64"], 2, ["iOS17"]),
        (["-o", "a.mlpkg", "--activations", "int8", "--calibration", str(good)], 2, ["--activations"]),
    ]
    for args, code, words in cases:
        r = run([str(mlpkg), "convert", str(TRANSFORMER), *args], tmp_path)
        assert r.returncode == code, (args, r.stderr)
        errors = [l for l in r.stderr.splitlines() if l.startswith("error:")]
        assert len(errors) == 1, r.stderr
        assert all(w in errors[0] for w in words), (words, errors[0])
        assert not list(tmp_path.glob("a.mlpkg*")) and not list(tmp_path.glob("A.mlpackage*")), args
