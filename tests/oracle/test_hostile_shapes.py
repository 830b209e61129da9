"""Models of a few hundred bytes whose attributes or declared shapes make shape arithmetic overflow (issue 28):
Conv and ConvTranspose groups of 2^62 and 2^40, Resize given both scales and sizes or a NaN, infinite or huge scale,
Concat and Softmax on a declared [2^32, 2^32] input. Shape inference refuses them (the node is reported with the
reason, or the model is refused at import), so no consumer — inspect, the audit, convert, the Core ML lowering —
ever computes with them: never a trap, and a refusal is one `error:` line naming the file and the node or value."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from conftest import run

TRAP_MARKERS = ("Fatal error", "mlpkg stopped", "internal error")
F = TensorProto.FLOAT


def save_model(path: Path, node, inputs, inits=(), opset: int = 17) -> Path:
    graph = helper.make_graph([node], "g", inputs, [helper.make_tensor_value_info("y", F, None)], list(inits))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    onnx.save_model(model, str(path))
    return path


def no_trap(proc) -> None:
    assert proc.returncode in (0, 1), (proc.returncode, proc.stderr[-2000:])
    assert not any(m in proc.stderr for m in TRAP_MARKERS), proc.stderr[-2000:]


def one_error_line(proc, *culprits: str) -> str:
    no_trap(proc)
    assert proc.returncode == 1, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), proc.stderr[-2000:]
    for c in culprits:
        assert c in lines[0], (c, lines[0])
    return lines[0]


def x(shape=(1, 4, 8, 8)):
    return helper.make_tensor_value_info("x", F, list(shape))


def ones(name, shape):
    return numpy_helper.from_array(np.ones(shape, np.float32), name)


def resize_scales(values, sizes=None, op="Resize", opset=13):
    inits = [numpy_helper.from_array(np.array(values, np.float32), "scales")]
    if op == "Upsample":
        return helper.make_node("Upsample", ["x", "scales"], ["y"], name="rs"), inits, 9
    inputs = ["x", "", "scales"]
    if sizes is not None:
        inits.append(numpy_helper.from_array(np.array(sizes, np.int64), "sizes"))
        inputs.append("sizes")
    return helper.make_node("Resize", inputs, ["y"], name="rs"), inits, opset


# (name, node, inputs, initializers, opset, what inference says about the node)
CASES = {
    "conv_group_2e62": (helper.make_node("Conv", ["x", "W"], ["y"], name="conv", group=1 << 62), [x()],
                        [ones("W", (4, 4, 3, 3))], 17, "'group'"),
    "convtranspose_group_2e40": (helper.make_node("ConvTranspose", ["x", "W"], ["y"], name="conv", group=1 << 40), [x()],
                                 [ones("W", (4, 1, 3, 3))], 17, "'group'"),
    "convtranspose_group_not_dividing": (helper.make_node("ConvTranspose", ["x", "W"], ["y"], name="conv", group=3), [x()],
                                         [ones("W", (4, 1, 3, 3))], 17, "does not divide"),
}
for tag, scale in (("nan", np.nan), ("inf", np.inf), ("huge", 1e30)):
    node, inits, opset = resize_scales([1, 1, scale, 2], sizes=[1, 1, 16, 16])
    CASES[f"resize_both_{tag}"] = (node, [helper.make_tensor_value_info("x", F, [1, 1, 8, 8])], inits, opset,
                                   "both scales and sizes")
    node, inits, opset = resize_scales([1, 1, scale, 2])
    CASES[f"resize_scale_{tag}"] = (node, [helper.make_tensor_value_info("x", F, [1, 1, 8, 8])], inits, opset, "scale")
for op in ("Resize", "Upsample"):
    node, inits, opset = resize_scales([1, 1, 3e9, 2], op=op)  # 2.4·10^10 rows: past int32
    CASES[f"{op.lower()}_past_int32"] = (node, [helper.make_tensor_value_info("x", F, [1, 1, 8, 8])], inits, opset,
                                         "larger than 2147483647")
node, inits, opset = resize_scales([], sizes=[1, 1, 1 << 31, 16])
CASES["resize_sizes_past_int32"] = (node, [helper.make_tensor_value_info("x", F, [1, 1, 8, 8])], inits, opset, "outside 0")


@pytest.mark.parametrize("case", sorted(CASES))
def test_hostile_attribute_is_reported_never_a_trap(mlpkg, tmp_path, case):
    node, inputs, inits, opset, reason = CASES[case]
    model = save_model(tmp_path / f"{case}.onnx", node, inputs, inits, opset)
    assert model.stat().st_size < 1024
    shapes = run([str(mlpkg), "inspect", "--shapes", str(model)], tmp_path)
    no_trap(shapes)
    assert shapes.returncode == 0 and reason in shapes.stdout, shapes.stdout[-2000:]  # the node, reported with why
    for argv in (["audit", str(model)], ["audit", str(model), "--format", "json"],
                 ["convert", str(model), "-o", str(tmp_path / "out.mlpkg")]):
        no_trap(run([str(mlpkg), *argv], tmp_path))
    # The Core ML lowering never sees the node's (unknown) output as a shape it can compute with.
    line = one_error_line(run([str(mlpkg), "convert", str(model), "-o", str(tmp_path / "out.mlpackage")], tmp_path),
                          f"'{node.name}'")
    assert "out.mlpackage" in line or model.name in line, line
    assert not (tmp_path / "out.mlpackage").exists()


@pytest.mark.parametrize("op, opset", [("Concat", 17), ("Softmax", 11)])
def test_declared_shape_past_64_bits_is_refused_at_import(mlpkg, tmp_path, op, opset):
    node = helper.make_node(op, ["x", "x"] if op == "Concat" else ["x"], ["y"], name="n", axis=0 if op == "Concat" else 1)
    model = save_model(tmp_path / "big.onnx", node, [helper.make_tensor_value_info("x", F, [1 << 32, 1 << 32])], (), opset)
    for argv in (["inspect", "--shapes", str(model)], ["audit", str(model)],
                 ["convert", str(model), "-o", str(tmp_path / "out.mlpkg")],
                 ["convert", str(model), "-o", str(tmp_path / "out.mlpackage")]):
        one_error_line(run([str(mlpkg), *argv], tmp_path), "big.onnx", "'x'", "64 bits")
    assert not (tmp_path / "out.mlpkg").exists() and not (tmp_path / "out.mlpackage").exists()


def test_computed_shape_past_64_bits_is_left_unknown(mlpkg, tmp_path):
    # Each input holds 2^62 elements (declarable); their Concat along axis 1 would hold 2^63.
    node = helper.make_node("Concat", ["a", "b"], ["y"], name="cat", axis=1)
    inputs = [helper.make_tensor_value_info(n, F, [1 << 31, 1 << 31]) for n in ("a", "b")]
    model = save_model(tmp_path / "cat.onnx", node, inputs)
    shapes = run([str(mlpkg), "inspect", "--shapes", str(model)], tmp_path)
    no_trap(shapes)
    assert shapes.returncode == 0 and "64 bits" in shapes.stdout, shapes.stdout
    no_trap(run([str(mlpkg), "audit", str(model)], tmp_path))
    # The inputs themselves (dims of 2^31) are refused first: one line naming them.
    line = one_error_line(run([str(mlpkg), "convert", str(model), "-o", str(tmp_path / "out.mlpackage")], tmp_path),
                          "2147483648")
    assert "out.mlpackage" in line or "cat.onnx" in line, line


@pytest.mark.parametrize("scales_known", [True, False])
def test_declared_output_dim_past_int32_is_not_believed(mlpkg, tmp_path, scales_known):
    # The output's declared type would stand in for what inference cannot (or will not) compute: 2.4·10^10 rows.
    scales = numpy_helper.from_array(np.array([1, 1, 3e9, 2], np.float32), "scales")
    inputs = [helper.make_tensor_value_info("x", F, [1, 1, 8, 8])]
    if not scales_known:
        inputs.append(helper.make_tensor_value_info("scales", F, [4]))
    graph = helper.make_graph([helper.make_node("Resize", ["x", "", "scales"], ["y"], name="rs")], "g", inputs,
                              [helper.make_tensor_value_info("y", F, [1, 1, 24_000_000_000, 16])],
                              [scales] if scales_known else [])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    path = tmp_path / "declared.onnx"
    onnx.save_model(model, str(path))
    shapes = run([str(mlpkg), "inspect", "--shapes", str(path)], tmp_path)
    no_trap(shapes)
    assert shapes.returncode == 0, shapes.stderr
    (inferred,) = [line for line in shapes.stdout.splitlines() if line.split()[:2] == ["y", "node"]]
    assert "24000000000" not in inferred, inferred  # the declared dim is not taken for the inferred one
    no_trap(run([str(mlpkg), "audit", str(path)], tmp_path))
    line = one_error_line(run([str(mlpkg), "convert", str(path), "-o", str(tmp_path / "out.mlpackage")], tmp_path), "'rs'")
    assert not (tmp_path / "out.mlpackage").exists(), line
