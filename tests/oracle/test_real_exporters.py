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
