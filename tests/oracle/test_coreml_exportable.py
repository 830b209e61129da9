"""Compression defaults that always export to Core ML (issue 27, item 1).

A MobileNet v3-like model whose blocked axes have 24, 40, 88 and 240 channels (none a multiple of the default block
of 32) converts with int4, int8, lut4 and auto, in one step (`-o X.mlpackage`) and in two (`convert`,
then `export --format coreml` at the default target). coremltools rebuilds every program with its own op
definitions; the MIL reference evaluator runs it against onnxruntime within the quantization error. The audit
predicts an export failure of a package whose stored blocks Core ML cannot write (rule coreml-encoding), and
a byte `--max-size` bounds every byte written.
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
from mil_reference import evaluate
from test_coreml import MODELS, coremltools_types, cosine, load_spec, pin_args, program_ops, proto_type


def mobilenet_like(path: Path) -> Path:
    """Convolutions whose input channels (the blocked axis of Conv W [M, C, k, k]) are 24, 40 and 88, a depthwise
    convolution over 240 channels and a classifier MatMul whose K (blocked axis 0 of B [K, N]) is 240."""
    rng = np.random.default_rng(27)

    def w(name, *shape):
        return numpy_helper.from_array((rng.standard_normal(shape) * 0.1).astype(np.float32), name)

    inits = [w("c1.w", 40, 24, 3, 3), w("c2.w", 88, 40, 3, 3), w("c3.w", 240, 88, 1, 1), w("dw.w", 240, 1, 3, 3),
             w("fc.w", 240, 40)]
    nodes = [
        helper.make_node("Conv", ["x", "c1.w"], ["a"], pads=[1, 1, 1, 1], name="c1"),
        helper.make_node("Relu", ["a"], ["a1"], name="r1"),
        helper.make_node("Conv", ["a1", "c2.w"], ["b"], pads=[1, 1, 1, 1], name="c2"),
        helper.make_node("Relu", ["b"], ["b1"], name="r2"),
        helper.make_node("Conv", ["b1", "c3.w"], ["c"], name="c3"),
        helper.make_node("Conv", ["c", "dw.w"], ["d"], pads=[1, 1, 1, 1], group=240, name="dw"),
        helper.make_node("GlobalAveragePool", ["d"], ["g"], name="gap"),
        helper.make_node("Flatten", ["g"], ["f"], name="flat"),
        helper.make_node("MatMul", ["f", "fc.w"], ["y"], name="fc"),
    ]
    graph = helper.make_graph(nodes, "mobilenet_like", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 24, 8, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 40])], inits)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


FORMATS = {
    "int4": ["--weights", "int4"],
    "int8": ["--weights", "int8"],
    "lut4": ["--weights", "lut4"],
    "auto": ["--weights", "auto", "--max-size", "25%"],
}

# Lowest target each default format needs (one table per tensor: the iOS16 form of constexpr_lut_to_dense).
SPEC = {"int4": 9, "int8": 7, "lut4": 7}


def check_loads_and_types(out: Path) -> None:
    """coremltools opens the package, rebuilds the program with its op definitions, and infers every type mlpkg wrote."""
    spec = load_spec(out)
    inferred = coremltools_types(out, spec)
    for op in program_ops(spec):
        for o in op.outputs:
            assert inferred[o.name] == proto_type(o.type), f"{op.type} {o.name}"


def check_numerics(out: Path, reference: Path, floor: float) -> None:
    for seed in (0, 1):
        x = np.random.default_rng(seed).standard_normal((1, 24, 8, 8)).astype(np.float32)
        want = ort.InferenceSession(str(reference), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
        got = np.asarray(evaluate(out, {"x": x})["y"])
        c = cosine(got, want)
        assert c >= floor, f"{out.name}: cosine {c:.6f} < {floor}"


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_mobilenet_channel_counts_export_at_default_target(mlpkg, tmp_path, fmt):
    model = mobilenet_like(tmp_path / "m.onnx")
    one = tmp_path / "One.mlpackage"
    r = run([str(mlpkg), "convert", str(model), "-o", str(one), *FORMATS[fmt], "--compute-precision", "fp32"], tmp_path)
    assert r.returncode == 0, r.stderr
    pkg = tmp_path / "m.mlpkg"
    r = run([str(mlpkg), "convert", str(model), "-o", str(pkg), *FORMATS[fmt], "--quiet"], tmp_path)
    assert r.returncode == 0, r.stderr
    two = tmp_path / "Two.mlpackage"
    r = run([str(mlpkg), "export", str(pkg), "--format", "coreml", "-o", str(two), "--compute-precision", "fp32", "--quiet"], tmp_path)
    assert r.returncode == 0, r.stderr

    converted = {c["name"]: c for c in json.loads((pkg / "report.json").read_text())["conversion"]["converted"]}
    if fmt == "int4":
        # The largest block from 8 to 32 that divides each blocked axis, reported per tensor; 24 < 32: per channel.
        assert {n: converted[n].get("blockSize") for n in converted} == {"c1.w": None, "c2.w": 20, "c3.w": 22, "dw.w": None, "fc.w": 30}
        assert converted["c2.w"]["note"] == "blocks of 20: 32 does not divide dim 1 (40); Core ML needs whole blocks"
        assert "note: 'fc.w': blocks of 30" in r.stderr or "note: 'fc.w': blocks of 30" in run(
            [str(mlpkg), "convert", str(model), "-o", str(tmp_path / "Three.mlpackage"), *FORMATS[fmt]], tmp_path).stderr

    # The package's weights decoded (--dequantize) are the reference the program must compute exactly (fp32).
    decoded = tmp_path / "decoded.onnx"
    r = run([str(mlpkg), "export", str(pkg), "-o", str(decoded), "--dequantize", "--quiet"], tmp_path)
    assert r.returncode == 0, r.stderr
    for out in (one, two):
        check_loads_and_types(out)
        if fmt in SPEC:
            assert load_spec(out).specificationVersion == SPEC[fmt]
        if out == two or fmt != "auto":  # auto's one-step choice budgets for the .mlpackage's own overhead
            check_numerics(out, decoded, 0.99999)
        # Against the original model: within what the weights' quantization costs (SNR ≥ 20 dB per tensor).
        check_numerics(out, model, 0.98)


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_every_fixture_exports_in_default_formats(mlpkg, tmp_path, fmt):
    """Default int4, int8, lut4 and auto packages of every fixture that converts to Core ML (zoo/fixtures included)
    export at their default target, and coremltools rebuilds each program."""
    # The fixtures are tiny (a few KB of weights): a fraction of them cannot hold the JSON around them (--max-size
    # bounds the whole package), so auto works to an SNR floor here; its candidates are the same.
    args = ["--weights", "auto", "--min-snr", "25"] if fmt == "auto" else FORMATS[fmt]
    # Besides test_coreml's models: the other fixtures that convert to Core ML, and the committed real-exporter files.
    # (Not here: constant_weights and typed_fields have string outputs, qdq quantizes activations at run time,
    # dynamic_dims holds sequences and optionals, custom_domain a custom op: all refused for Core ML.)
    tokens = {"input_ids": [1, 16], "attention_mask": [1, 16]}
    more = {"bn_fold": {}, "if_branches": {}, "fp16": {"x": [1, 8]}}
    zoo = {"bert_sdpa.dynamo": tokens, "bert_sdpa.torchscript": tokens, "llama.torchscript": tokens}
    sources = [(FIXTURES / f"{n}.onnx", n, p) for n, p in {**MODELS, **more}.items()]
    sources += [(FIXTURES.parent / "zoo" / "fixtures" / f"{n}.onnx", n, p) for n, p in zoo.items()]
    for source, name, pins in sources:
        pkg = tmp_path / f"{name}.mlpkg"
        r = run([str(mlpkg), "convert", str(source), "-o", str(pkg), *args, "--quiet"], tmp_path)
        assert r.returncode == 0, f"{name}: {r.stderr}"
        out = tmp_path / f"{name}.mlpackage"
        r = run([str(mlpkg), "export", str(pkg), "--format", "coreml", "-o", str(out), *pin_args(pins), "--quiet"], tmp_path)
        assert r.returncode == 0, f"{name}: {r.stderr}"
        check_loads_and_types(out)


def test_audit_predicts_blocks_core_ml_cannot_write(mlpkg, tmp_path):
    """A block given on the command line is kept in a package not meant for Core ML; the audit flags every node that
    reads such a tensor (coreml-encoding), exactly the nodes the exporter refuses, and --for coreml fixes it."""
    model = mobilenet_like(tmp_path / "m.onnx")
    pkg = tmp_path / "exact.mlpkg"
    r = run([str(mlpkg), "convert", str(model), "-o", str(pkg), "--weights", "int4", "--block-size", "32", "--quiet"], tmp_path)
    assert r.returncode == 0, r.stderr
    audit = run([str(mlpkg), "audit", str(pkg), "--format", "json"], tmp_path)
    assert audit.returncode == 0, audit.stderr
    flagged = {n["name"] for n in json.loads(audit.stdout)["nodes"]
               if any(f["rule"] == "coreml-encoding" for f in n["verdicts"]["neural-engine"]["failures"])}
    assert flagged == {"c2", "c3", "fc"}
    out = tmp_path / "X.mlpackage"
    r = run([str(mlpkg), "export", str(pkg), "--format", "coreml", "-o", str(out)], tmp_path)
    assert r.returncode == 1 and not out.exists()
    assert r.stderr.startswith("error:") and r.stderr.count("\n") == 1
    assert "'fc.w' is stored as uint4 per-block 32, which iOS18 cannot write (blocks of 32 do not divide dim 0 (240)" in r.stderr
    assert "--for coreml" in r.stderr
    fixed = tmp_path / "fixed.mlpkg"
    r = run([str(mlpkg), "convert", str(model), "-o", str(fixed), "--weights", "int4", "--block-size", "32", "--for", "coreml", "--quiet"], tmp_path)
    assert r.returncode == 0, r.stderr
    assert json.loads((fixed / "manifest.json").read_text())["provenance"]["options"]["for"] == "coreml"
    audit = json.loads(run([str(mlpkg), "audit", str(fixed), "--format", "json"], tmp_path).stdout)
    assert not [f for n in audit["nodes"] for f in n["verdicts"]["neural-engine"]["failures"] if f["rule"] == "coreml-encoding"]
    r = run([str(mlpkg), "export", str(fixed), "--format", "coreml", "-o", str(out), "--quiet"], tmp_path)
    assert r.returncode == 0, r.stderr


@pytest.mark.parametrize("target,fmt,spec,expected", [
    ("iOS16", "int4", 7, {"constexpr_affine_dequantize"}),   # no 4-bit or blocks before iOS18: int8 per channel
    ("iOS17", "lut3", 8, {"constexpr_lut_to_dense"}),        # 3-bit tables need iOS18: lut4, iOS16 form
    ("iOS16", "lut4-grouped", 7, {"constexpr_lut_to_dense"}),  # grouped tables need iOS18: one table
    ("iOS15", "int8", 6, set()),                             # no constexpr at all: fp16 consts
])
def test_for_coreml_target_chooses_what_it_writes(mlpkg, tmp_path, target, fmt, spec, expected):
    model = mobilenet_like(tmp_path / "m.onnx")
    f, _, variant = fmt.partition("-")
    extra = ["--granularity", "per-channel", "--block-size", "8"] if variant == "grouped" else []
    pkg = tmp_path / "t.mlpkg"
    r = run([str(mlpkg), "convert", str(model), "-o", str(pkg), "--weights", f, *extra, "--for", "coreml",
             "--deployment-target", target, "--quiet"], tmp_path)
    assert r.returncode == 0, r.stderr
    report = json.loads((pkg / "report.json").read_text())["conversion"]
    assert all(c.get("note") for c in report["converted"]), report["converted"]
    out = tmp_path / "T.mlpackage"
    r = run([str(mlpkg), "export", str(pkg), "--format", "coreml", "-o", str(out), "--deployment-target", target,
             "--compute-precision", "fp32", "--quiet"], tmp_path)
    assert r.returncode == 0, r.stderr
    spec_ = load_spec(out)
    assert spec_.specificationVersion == spec
    assert {op.type for op in program_ops(spec_) if op.type.startswith("constexpr_")} == expected
    check_loads_and_types(out)
    decoded = tmp_path / "decoded.onnx"
    assert run([str(mlpkg), "export", str(pkg), "-o", str(decoded), "--dequantize", "--quiet"], tmp_path).returncode == 0
    check_numerics(out, decoded, 0.99999)
    # Without --for coreml the target is refused, with the way to use it.
    r = run([str(mlpkg), "convert", str(model), "-o", str(tmp_path / "u.mlpkg"), "--deployment-target", target], tmp_path)
    assert r.returncode == 2 and "--for coreml" in r.stderr


def test_auto_takes_block_size_and_target(mlpkg, tmp_path):
    model = mobilenet_like(tmp_path / "m.onnx")
    pkg = tmp_path / "a.mlpkg"
    r = run([str(mlpkg), "convert", str(model), "-o", str(pkg), "--weights", "auto", "--max-size", "20%", "--block-size", "16", "--quiet"], tmp_path)
    assert r.returncode == 0, r.stderr
    converted = json.loads((pkg / "report.json").read_text())["conversion"]["converted"]
    blocks = {c.get("blockSize") for c in converted if c.get("granularity") == "per-block"}
    # Tables win on these Gaussian weights; any per-block choice has 16 or the largest divisor from 8 to 16.
    assert blocks <= {16, 8, 11, 10}, blocks
    options = json.loads((pkg / "manifest.json").read_text())["provenance"]["options"]
    assert options["weights"] == "auto" and options["blockSize"] == "16"
    # At iOS16 auto offers only int8 per channel and 1/2/4/6/8-bit single tables among compact formats.
    pkg16 = tmp_path / "a16.mlpkg"
    r = run([str(mlpkg), "convert", str(model), "-o", str(pkg16), "--weights", "auto", "--max-size", "20%", "--for", "coreml",
             "--deployment-target", "iOS16", "--quiet"], tmp_path)
    assert r.returncode == 0, r.stderr
    formats = json.loads((pkg16 / "report.json").read_text())["conversion"]["auto"]["formats"]
    assert set(formats) <= {"fp32", "fp16", "int8", "lut8", "lut6", "lut4", "lut2"}, formats
    r = run([str(mlpkg), "export", str(pkg16), "--format", "coreml", "-o", str(tmp_path / "A.mlpackage"), "--quiet"], tmp_path)
    assert r.returncode == 0, r.stderr
    assert load_spec(tmp_path / "A.mlpackage").specificationVersion <= 7


def tree_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def adds_model(path: Path, tensors: int, elements: int) -> Path:
    """A chain of Adds of constant vectors: every weight is a float tensor that is not a weight input, so auto
    chooses between fp32 and fp16 only (fast to measure), in steps of elements × 2 bytes."""
    rng = np.random.default_rng(5)
    inits = [numpy_helper.from_array(rng.standard_normal(elements).astype(np.float32), f"b{i}") for i in range(tensors)]
    nodes, x = [], "x"
    for i in range(tensors):
        nodes.append(helper.make_node("Add", [x, f"b{i}"], [f"h{i}"], name=f"add{i}"))
        x = f"h{i}"
    graph = helper.make_graph(nodes, "adds", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, elements])],
                              [helper.make_tensor_value_info(x, TensorProto.FLOAT, [1, elements])], inits)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


def test_max_size_16mb_bounds_every_byte_written(mlpkg, tmp_path):
    """--max-size 16MB (10^6 bytes per MB): the package folder holds at most 16,000,000 bytes in all, though the
    weights alone could fill the budget (16.1 MB of float32 in 250 tensors, 32 KB saved per fp16 step)."""
    model = adds_model(tmp_path / "adds.onnx", 250, 16_100)
    pkg = tmp_path / "adds.mlpkg"
    r = run([str(mlpkg), "convert", str(model), "-o", str(pkg), "--weights", "auto", "--max-size", "16MB", "--quiet"], tmp_path)
    assert r.returncode == 0, r.stderr
    total = tree_bytes(pkg)
    auto = json.loads((pkg / "report.json").read_text())["conversion"]["auto"]
    assert total <= 16_000_000, total
    assert auto["budgetBytes"] == 16_000_000 and auto["overheadBytes"] > 32_200  # more than one fp16 step
    # Most of the budget is used: within one step and the overhead's slack.
    assert total > 16_000_000 - 2 * auto["overheadBytes"] - 64_400, total
    assert sorted(p.name for p in tmp_path.iterdir()) == ["adds.mlpkg", "adds.onnx"]  # no trial left beside it


def test_max_size_bounds_an_mlpackage(mlpkg, tmp_path):
    model = adds_model(tmp_path / "adds.onnx", 60, 4000)
    pkg_bytes = 60 * 4000 * 4
    budget = pkg_bytes - 20 * 8000  # 20 tensors must go to fp16; the model description must fit too
    out = tmp_path / "A.mlpackage"
    r = run([str(mlpkg), "convert", str(model), "-o", str(out), "--weights", "auto", "--max-size", str(budget),
             "--compute-precision", "fp32", "--quiet"], tmp_path)
    assert r.returncode == 0, r.stderr
    assert tree_bytes(out) <= budget
    check_loads_and_types(out)
    # Too small for even the smallest choice with its description: a usage error, nothing written.
    r = run([str(mlpkg), "convert", str(model), "-o", str(tmp_path / "B.mlpackage"), "--weights", "auto", "--max-size",
             str(60 * 4000 * 2 + 100)], tmp_path)
    assert r.returncode == 2 and "below the smallest" in r.stderr and not (tmp_path / "B.mlpackage").exists()
