"""Models as real exporters write them (zoo/fixtures: Hugging Face BERT with SDPA attention through both torch.onnx
exporters, Llama through TorchScript; random weights): the one-step conversion to Core ML writes a package
coremltools loads with every declared type equal to its own inference, whose MIL reference evaluation matches
onnxruntime (cosine >= 0.9999, fp32 compute) on every output, at the default fp16 as well; the MIL passes leave no
more ops than --no-optimize writes.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from conftest import REPO_ROOT, run
from mil_reference import evaluate
from test_coreml import coremltools_types, cosine, load_spec, program_ops, proto_type

ZOO = REPO_ROOT / "zoo" / "fixtures"
PINS = ["--input-shape", "input_ids=1,16", "--input-shape", "attention_mask=1,16"]
MODELS = ["bert_sdpa.torchscript", "bert_sdpa.dynamo", "llama.torchscript"]


def feeds(seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    mask = np.ones((1, 16), np.int64)
    mask[0, 12:] = 0  # padding at the end, as a tokenizer writes it
    return {"input_ids": rng.integers(0, 100, size=(1, 16)).astype(np.int64), "attention_mask": mask}


def convert(mlpkg, tmp: Path, name: str, *extra: str) -> Path:
    out = tmp / f"{name}{'-'.join(['', *extra]).replace('--', '-')}.mlpackage"
    r = run([str(mlpkg), "convert", str(ZOO / f"{name}.onnx"), "-o", str(out), *PINS, "--quiet", *extra], tmp)
    assert r.returncode == 0, r.stderr
    spec = load_spec(out)
    inferred = coremltools_types(out, spec)
    for op in program_ops(spec):
        for o in op.outputs:
            assert inferred[o.name] == proto_type(o.type), f"{op.type} {o.name}: coremltools {inferred[o.name]} vs {proto_type(o.type)}"
    return out


@pytest.mark.parametrize("name", MODELS)
def test_converts_loads_and_matches_onnxruntime(mlpkg, tmp_path, name):
    fp32 = convert(mlpkg, tmp_path, name, "--weights", "fp32", "--compute-precision", "fp32")
    fp16 = convert(mlpkg, tmp_path, name)
    sess = ort.InferenceSession(str(ZOO / f"{name}.onnx"), providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    for seed in (0, 1):
        f = feeds(seed)
        want = sess.run(None, f)
        mil = {k: v.astype(np.int32) for k, v in f.items()}
        got32, got16 = evaluate(fp32, mil), evaluate(fp16, mil)
        for n, expected in zip(names, want):
            c32 = cosine(np.asarray(got32[n]).reshape(-1), np.asarray(expected).reshape(-1))
            c16 = cosine(np.asarray(got16[n]).reshape(-1), np.asarray(expected).reshape(-1))
            assert c32 >= 0.9999, f"{name} {n}: fp32 cosine {c32:.7f}"
            assert c16 >= 0.99, f"{name} {n}: fp16 cosine {c16:.5f}"


@pytest.mark.parametrize("name", MODELS)
def test_passes_never_add_ops(mlpkg, tmp_path, name):
    def count(path: Path) -> int:
        return sum(1 for op in program_ops(load_spec(path)) if op.type != "const")
    optimized = convert(mlpkg, tmp_path, name, "--weights", "fp32")
    raw = convert(mlpkg, tmp_path, name, "--weights", "fp32", "--no-optimize")
    assert count(optimized) < count(raw)


# Flexible sequence length on the real exports: the attention masks, position ids (Range over a run-time length,
# Slice of a position buffer up to it), Expand to a run-time shape and the dynamo export's Shape(start, end) all lower
# for every size of the range.
RANGED = ["--input-shape", "input_ids=1,1..128@16", "--input-shape", "attention_mask=1,1..128@16"]


def flexible_feeds(seed: int, length: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    mask = np.ones((1, length), np.int64)
    mask[0, max(1, length * 3 // 4):] = 0
    return {"input_ids": rng.integers(0, 100, size=(1, length)).astype(np.int64), "attention_mask": mask}


@pytest.mark.parametrize("name", MODELS)
def test_flexible_sequence_converts_and_matches_onnxruntime_at_each_length(mlpkg, tmp_path, name):
    from coremltools.converters.mil.frontend.milproto import load as milproto_load
    from coremltools.converters.mil.mil.types.symbolic import is_symbolic

    out = tmp_path / f"{name}-ranged.mlpackage"
    r = run([str(mlpkg), "convert", str(ZOO / f"{name}.onnx"), "-o", str(out), *RANGED, "--weights", "fp32",
             "--compute-precision", "fp32", "--quiet"], tmp_path)
    assert r.returncode == 0, r.stderr
    spec = load_spec(out)
    # The interface: a range 1..128 on the sequence dim, default 16.
    for i in spec.description.input:
        assert list(i.type.multiArrayType.shape) == [1, 16], i.name
        ranges = [(d.lowerBound, d.upperBound) for d in i.type.multiArrayType.shapeRange.sizeRanges]
        assert ranges == [(1, 1), (1, 128)], (i.name, ranges)
    # coremltools rebuilds the program with its own op definitions: the sequence dim stays symbolic to the outputs.
    prog = milproto_load.load(spec, specification_version=spec.specificationVersion,
                              file_weights_dir=str(out / "Data" / "com.apple.CoreML" / "weights"))
    fn = prog.functions["main"]
    assert is_symbolic(fn.inputs["input_ids"].shape[1])
    for y in fn.outputs:
        if y.rank == 3:
            assert is_symbolic(y.shape[1]), y
    ops = Counter(op.op_type for op in fn.operations)
    if name != "bert_sdpa.dynamo":
        assert ops["range_1d"] >= 1, ops  # position ids / causal mask from the run-time length
    sess = ort.InferenceSession(str(ZOO / f"{name}.onnx"), providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    for length in (1, 9, 128):
        f = flexible_feeds(length, length)
        want = sess.run(None, f)
        got = evaluate(out, {k: v.astype(np.int32) for k, v in f.items()})
        for n, expected in zip(names, want):
            value = np.asarray(got[n])
            assert value.shape == expected.shape, (n, length, value.shape, expected.shape)
            c = cosine(value.reshape(-1), np.asarray(expected).reshape(-1))
            assert c >= 0.99999, f"{name} {n} at length {length}: cosine {c:.7f}"
    # mlpkg's own evaluator runs the same package at another length and agrees with onnxruntime.
    f = flexible_feeds(5, 5)
    for k, v in f.items():
        np.save(tmp_path / f"{k}.npy", v)
    r = run([str(mlpkg), "run", str(out), "--input", f"input_ids={tmp_path / 'input_ids.npy'}",
             "--input", f"attention_mask={tmp_path / 'attention_mask.npy'}", "-o", str(tmp_path / "out.npz")], tmp_path)
    assert r.returncode == 0, r.stderr
    ran = np.load(tmp_path / "out.npz")
    for n, expected in zip(names, sess.run(None, f)):
        assert cosine(ran[n].reshape(-1), expected.reshape(-1)) >= 0.99999, n
