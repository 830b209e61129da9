"""Compressed recurrent weights stay compressed in the `.mlpackage` (docs/COREML.md, Recurrent layers).

LSTM, GRU and RNN weights W and R are split per direction and put in MIL's gate order at export time. When the
package stores them linear-quantized or palettized, each direction's rows are picked from the stored integers or
indices bit for bit, so the program reads them through a constexpr op rather than float constants. Checked here, for
a bidirectional LSTM (one MIL lstm), a GRU with linear_before_reset = 1 in both directions (the cell in a while_loop),
a GRU with linear_before_reset = 0 (MIL gru) and an RNN, each in int8 (symmetric and asymmetric), int4, int3, lut4
and lut2:

* every W and R reaches its op through a constexpr (counted per model), and weight.bin is smaller than the same
  package exported with --dequantize (floats);
* coremltools rebuilds the program and infers every type mlpkg wrote;
* the numpy MIL evaluator agrees with onnxruntime running the package's own weights (`export --dequantize`):
  cosine >= 0.99999 per output with fp32 compute.
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
from test_coreml import cosine, load_spec, program_ops
from test_coreml_exportable import check_loads_and_types

SEQ, INPUT = 5, 40


def recurrent_model(path: Path, op: str, direction: str, **attrs) -> Path:
    """A single recurrent node whose W and R are large enough for every format to quantize them."""
    HIDDEN = 64 if op == "RNN" else 32  # noqa: N806
    rng = np.random.default_rng(len(op) + len(direction) + len(attrs))
    dirs = 2 if direction == "bidirectional" else 1
    gates = {"LSTM": 4, "GRU": 3, "RNN": 1}[op]

    def w(name, *shape):
        return numpy_helper.from_array((rng.standard_normal(shape) * 0.2).astype(np.float32), name)

    inits = [w("W", dirs, gates * HIDDEN, INPUT), w("R", dirs, gates * HIDDEN, HIDDEN), w("B", dirs, 2 * gates * HIDDEN)]
    node = helper.make_node(op, ["X", "W", "R", "B"], ["Y", "Y_h"], hidden_size=HIDDEN, direction=direction, **attrs)
    graph = helper.make_graph([node], op.lower(), [helper.make_tensor_value_info("X", TensorProto.FLOAT, [SEQ, 1, INPUT])],
                              [helper.make_tensor_value_info("Y", TensorProto.FLOAT, None),
                               helper.make_tensor_value_info("Y_h", TensorProto.FLOAT, None)], inits)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


# name -> (op, direction, attributes, constexprs expected: W and R per direction; the GRU cell reads W as one
# 3H-wide projection and R as its z/r rows and its h rows)
MODELS = {
    "lstm_bidirectional": ("LSTM", "bidirectional", {}, 4),
    "gru_cell_bidirectional": ("GRU", "bidirectional", {"linear_before_reset": 1}, 6),
    "gru_mil": ("GRU", "forward", {}, 2),
    "rnn": ("RNN", "reverse", {}, 2),
}

FORMATS = {
    "int8": ["--weights", "int8"],
    "int8-asym": ["--weights", "int8", "--asymmetric"],
    "int4": ["--weights", "int4"],
    "int3": ["--weights", "int3"],
    "lut4": ["--weights", "lut4"],
    "lut2": ["--weights", "lut2"],
}


def weight_bytes(out: Path) -> int:
    return (out / "Data" / "com.apple.CoreML" / "weights" / "weight.bin").stat().st_size


@pytest.mark.parametrize("fmt", sorted(FORMATS))
@pytest.mark.parametrize("name", sorted(MODELS))
def test_recurrent_weights_stay_compressed(mlpkg, tmp_path, name, fmt):
    op, direction, attrs, constexprs = MODELS[name]
    model = recurrent_model(tmp_path / f"{name}.onnx", op, direction, **attrs)
    pkg = tmp_path / "m.mlpkg"
    r = run([str(mlpkg), "convert", str(model), "-o", str(pkg), *FORMATS[fmt], "--quiet"], tmp_path)
    assert r.returncode == 0, r.stderr
    out, floats = tmp_path / "M.mlpackage", tmp_path / "Floats.mlpackage"
    for path, extra in ((out, []), (floats, ["--dequantize"])):
        r = run([str(mlpkg), "export", str(pkg), "--format", "coreml", "-o", str(path), "--compute-precision", "fp32",
                 *extra, "--quiet"], tmp_path)
        assert r.returncode == 0, r.stderr

    ops = program_ops(load_spec(out))
    written = [o for o in ops if o.type.startswith("constexpr_")]
    assert len(written) == constexprs, [o.type for o in ops]
    assert not [o for o in program_ops(load_spec(floats)) if o.type.startswith("constexpr_")]
    assert weight_bytes(out) < weight_bytes(floats) * 0.7, (weight_bytes(out), weight_bytes(floats))
    check_loads_and_types(out)

    decoded = tmp_path / "decoded.onnx"
    r = run([str(mlpkg), "export", str(pkg), "-o", str(decoded), "--dequantize", "--quiet"], tmp_path)
    assert r.returncode == 0, r.stderr
    session = ort.InferenceSession(str(decoded), providers=["CPUExecutionProvider"])
    for seed in (0, 1):
        x = np.random.default_rng(seed).standard_normal((SEQ, 1, INPUT)).astype(np.float32)
        want = dict(zip(["Y", "Y_h"], session.run(["Y", "Y_h"], {"X": x})))
        got = evaluate(out, {"X": x})
        for key in ("Y", "Y_h"):
            c = cosine(np.asarray(got[key]), want[key])
            assert c >= 0.99999, f"{name} {fmt} {key}: cosine {c:.7f}"
