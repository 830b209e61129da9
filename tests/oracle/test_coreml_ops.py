"""Every Core ML lowering, one small generated ONNX model each (nothing committed): convert to a package, export
to an .mlpackage, check it with coremltools (load + type inference), evaluate the MIL program with the numpy
reference and compare with onnxruntime on the original model (cosine >= 0.99999 with fp32 compute, >= 0.999 with
fp16; integer and boolean outputs exactly). Then one refusal per precondition: exit 1, one `error:` line naming the
node and the reason.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from coremltools.proto import MIL_pb2
from onnx import TensorProto, helper, numpy_helper

from conftest import run
from mil_reference import evaluate
from test_coreml import coremltools_types, cosine, load_spec, program_ops, proto_type

F = TensorProto.FLOAT
MIL_FLOAT = {TensorProto.FLOAT: MIL_pb2.FLOAT32, TensorProto.FLOAT16: MIL_pb2.FLOAT16}
I64 = TensorProto.INT64
BOOL = TensorProto.BOOL
RNG = np.random.default_rng(7)


def w(*shape, scale=0.5):
    return (RNG.standard_normal(shape) * scale).astype(np.float32)


class Case:
    def __init__(self, name, nodes, inputs, outputs, inits=(), opset=17, feeds=None, fp16=True, reference_nodes=None):
        self.name = name
        self.nodes = nodes
        self.inputs = inputs            # [(name, elem, shape)]
        self.outputs = outputs          # [(name, elem)]
        self.inits = inits              # [(name, array)]
        self.opset = opset
        self.feeds = feeds or {}        # name -> array (else random)
        self.fp16 = fp16
        # The same function in nodes onnxruntime runs, when it cannot run `nodes` (recurrent layout=1).
        self.reference_nodes = reference_nodes

    def reference(self) -> onnx.ModelProto:
        return self.model(self.reference_nodes) if self.reference_nodes else self.model()

    def model(self, nodes=None) -> onnx.ModelProto:
        g = helper.make_graph(
            nodes or self.nodes, self.name,
            [helper.make_tensor_value_info(n, e, s) for n, e, s in self.inputs],
            [helper.make_tensor_value_info(n, e, None) for n, e in self.outputs],
            [numpy_helper.from_array(a, n) for n, a in self.inits])
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", self.opset)])
        m.ir_version = 10
        return m


def unary(op, opset=17, positive=False, **attrs):
    nodes = []
    src = "x"
    if positive:
        nodes += [helper.make_node("Abs", ["x"], ["ax"]), helper.make_node("Add", ["ax", "one"], ["px"])]
        src = "px"
    nodes.append(helper.make_node(op, [src], ["y"], **attrs))
    inits = [("one", np.array(0.5, np.float32))] if positive else []
    return Case(f"{op}", nodes, [("x", F, [2, 3, 4])], [("y", F)], inits, opset)


def binary(op, out=F, opset=17, **attrs):
    return Case(op, [helper.make_node(op, ["a", "b"], ["y"], **attrs)], [("a", F, [2, 3, 4]), ("b", F, [3, 1])],
                [("y", out)], opset=opset)


def single(name, node, inputs, out=F, inits=(), opset=17, outputs=None, **kw):
    return Case(name, [node], inputs, outputs or [("y", out)], inits, opset, **kw)


N = helper.make_node
X4 = [("x", F, [1, 4, 8, 8])]

GATES = {"LSTM": 4, "GRU": 3, "RNN": 1}


def recurrent(op, name, direction="forward", bias=False, states=None, peephole=False, layout=0, outputs=(0, 1, 2),
              seq=5, batch=2, inp=3, hidden=4, opset=17, **attrs):
    """A small LSTM/GRU/RNN node. states: None (zeros), "input" (graph inputs) or "const" (initializers)."""
    nd = 2 if direction == "bidirectional" else 1
    g = GATES[op]
    x_shape = [seq, batch, inp] if layout == 0 else [batch, seq, inp]
    state_shape = [nd, batch, hidden] if layout == 0 else [batch, nd, hidden]
    inits = [("W", w(nd, g * hidden, inp)), ("R", w(nd, g * hidden, hidden))]
    inputs = [("x", F, x_shape)]
    names = ["x", "W", "R", "", "", "", "", ""]
    if bias:
        inits.append(("B", w(nd, 2 * g * hidden)))
        names[3] = "B"
    for i, state in [(5, "h0"), (6, "c0")] if op == "LSTM" else [(5, "h0")]:
        if states == "input":
            inputs.append((state, F, state_shape))
            names[i] = state
        elif states == "const":
            inits.append((state, w(*state_shape)))
            names[i] = state
    if peephole:
        inits.append(("P", w(nd, 3 * hidden)))
        names[7] = "P"
    if "sequence_lens" in attrs:
        inits.append(("L", np.array(attrs.pop("sequence_lens"), np.int32)))
        names[4] = "L"
    while names and names[-1] == "":
        names.pop()
    if layout:
        attrs["layout"] = layout
    outs = [["y", "yh", "yc"][i] if i in outputs else "" for i in range(3 if op == "LSTM" else 2)]
    while outs[-1] == "":
        outs.pop()
    node = N(op, names, outs, hidden_size=hidden, direction=direction, **attrs)
    reference = None
    if layout:
        # onnxruntime runs layout 0 only: the same layer between transposes ([batch, seq] <-> [seq, batch]).
        attrs.pop("layout")
        batch_major = ("x", "h0", "c0")
        seq_names = [n + "_seq" if n in batch_major else n for n in names]
        inner = [o + "_seq" if o else "" for o in outs]
        reference = [N("Transpose", [n], [n + "_seq"], perm=[1, 0, 2]) for n in names if n in batch_major]
        reference.append(N(op, seq_names, inner, hidden_size=hidden, direction=direction, **attrs))
        reference += [N("Transpose", [o + "_seq"], [o], perm=[2, 0, 1, 3] if o == "y" else [1, 0, 2]) for o in outs if o]
    return Case(name, [node], inputs, [(o, F) for o in outs if o], inits, opset, reference_nodes=reference)


RECURRENT = [
    (("LSTM", "LSTM"), {}),
    (("LSTM", "LSTMReverse"), dict(direction="reverse", bias=True, states="input", peephole=True)),
    (("LSTM", "LSTMBidirectional"), dict(direction="bidirectional", bias=True, states="const", peephole=True)),
    (("LSTM", "LSTMBidirectionalZeroStates"), dict(direction="bidirectional", outputs=(0, 2))),
    (("LSTM", "LSTMBidirectionalMixedActivations"), dict(direction="bidirectional", bias=True, states="input", layout=1, opset=14,
                                                         activations=["Sigmoid", "Tanh", "Tanh", "Sigmoid", "Relu", "Tanh"])),
    (("LSTM", "LSTMActivations"), dict(bias=True, activations=["HardSigmoid", "Relu", "Affine"], activation_alpha=[0.2, 1.0],
                                       activation_beta=[0.5, 0.0])),
    (("LSTM", "LSTMLastStateOnly"), dict(bias=True, states="input", outputs=(1,), sequence_lens=[5, 5])),
    # MIL gru (linear_before_reset=0) is written for batch 1; other GRUs cell by cell (a while_loop, unrolled for 1 step)
    (("GRU", "GRU"), dict(batch=1)),
    (("GRU", "GRUReverse"), dict(direction="reverse", bias=True, states="input", batch=1)),
    (("GRU", "GRUBidirectional"), dict(direction="bidirectional", bias=True, states="const", batch=1)),
    (("GRU", "GRUBatch2"), dict(direction="reverse", bias=True, states="input")),
    (("GRU", "GRULinearBeforeReset"), dict(bias=True, states="input", linear_before_reset=1)),
    (("GRU", "GRULinearBeforeResetBidirectional"), dict(direction="bidirectional", bias=True, states="const", layout=1, opset=14,
                                                        linear_before_reset=1)),
    # GRUs written cell by cell: one while_loop per direction (any length; 600 is past the old unroll limit), the
    # cell unrolled for a one-step sequence; forward, reverse, bidirectional; with and without initial_h; batch 1 and 3
    (("GRU", "GRULoop"), dict(seq=7, batch=1, bias=True, linear_before_reset=1)),
    (("GRU", "GRULoopReverseBatch3"), dict(seq=7, batch=3, direction="reverse", bias=True, states="input", linear_before_reset=1)),
    (("GRU", "GRULoopBidirectionalResetFirst"), dict(seq=7, batch=3, direction="bidirectional", bias=True, states="const")),
    (("GRU", "GRULoopLastStateOnly"), dict(seq=7, batch=3, direction="bidirectional", outputs=(1,), linear_before_reset=1)),
    (("GRU", "GRULoop600"), dict(seq=600, batch=1, inp=2, hidden=3, bias=True, states="input", linear_before_reset=1)),
    (("GRU", "GRUOneStep"), dict(seq=1, batch=3, direction="bidirectional", bias=True, states="input", linear_before_reset=1)),
    (("GRU", "GRUOneStepBatch1"), dict(seq=1, batch=1, linear_before_reset=1)),
    (("RNN", "RNN"), {}),
    (("RNN", "RNNReverseRelu"), dict(direction="reverse", bias=True, states="input", activations=["Relu"])),
    (("RNN", "RNNBidirectional"), dict(direction="bidirectional", bias=True, states="const", layout=1, opset=14)),
]

def vi(name, elem, shape):
    return helper.make_tensor_value_info(name, elem, shape)


def if_case(name, cond_from_data=True):
    """If decided at run time: the condition is computed from the input (sum > 0), so it is known only then."""
    then_g = helper.make_graph([N("Add", ["x", "c"], ["then_out"])], "then", [], [vi("then_out", F, [3, 4])])
    else_g = helper.make_graph([N("Mul", ["x", "x"], ["sq"]), N("Sub", ["sq", "c"], ["else_out"])], "else", [],
                               [vi("else_out", F, [3, 4])])
    nodes = [N("ReduceSum", ["x"], ["total"], keepdims=0), N("Greater", ["total", "zero"], ["flag"]),
             N("If", ["flag"], ["y"], then_branch=then_g, else_branch=else_g)]
    return Case(name, nodes, [("x", F, [3, 4])], [("y", F)], [("c", w(3, 4)), ("zero", np.array(0, np.float32))])


def loop_case(name, condition, scan=False, passed=False):
    """Loop with a constant trip count (5) and two loop-carried values reading an outer input; with `condition`, a
    condition input and a body condition computed from the data (stop once the sum passes 40), or with `passed` one
    the body passes on unchanged (PyTorch's `for` loops); with `scan`, a scan output stacking v each iteration."""
    body_nodes = [N("Mul", ["v_in", "half"], ["v_half"]), N("Add", ["v_half", "x"], ["v_out"]),
                  N("Cast", ["iter"], ["iter_f"], to=F), N("Add", ["s_in", "iter_f"], ["s_out"])]
    if condition and not passed:
        body_nodes += [N("ReduceSum", ["v_out"], ["v_total"], keepdims=0), N("Less", ["v_total", "limit"], ["cond_out"])]
    else:
        body_nodes += [N("Identity", ["cond_in"], ["cond_out"])]
    outputs = [vi("cond_out", TensorProto.BOOL, []), vi("v_out", F, [2, 3]), vi("s_out", F, [1])]
    if scan:
        body_nodes += [N("Sigmoid", ["v_out"], ["v_scan"])]
        outputs += [vi("v_scan", F, [2, 3])]
    body = helper.make_graph(body_nodes, "body",
                             [vi("iter", TensorProto.INT64, []), vi("cond_in", TensorProto.BOOL, []), vi("v_in", F, [2, 3]),
                              vi("s_in", F, [1])], outputs)
    inits = [("trip", np.array(5, np.int64)), ("half", np.array(0.5, np.float32)), ("s0", np.zeros(1, np.float32))]
    inputs = ["trip", "go", "v0", "s0"] if condition else ["trip", "", "v0", "s0"]
    if condition:
        inits += [("go", np.array(True)), ("limit", np.array(40.0, np.float32))]
    return Case(name, [N("Loop", inputs, ["v_final", "s_final"] + (["v_all"] if scan else []), body=body)],
                [("v0", F, [2, 3]), ("x", F, [2, 3])], [("v_final", F), ("s_final", F)] + ([("v_all", F)] if scan else []), inits)


def scan_case(name, variant):
    """Scan (opset 16) → while_loop. `cumulative`: one state and one scan input along axis 0, the running sums as
    the scan output. `axes`: two states, a scan input along axis 1 read backwards and one along axis 0, a scan
    output stacked along axis 2 written backwards and one of scalars. `map`: no state, a sigmoid per row."""
    if variant == "cumulative":
        body = helper.make_graph([N("Add", ["acc_in", "row"], ["acc_out"]), N("Identity", ["acc_out"], ["row_out"])], "body",
                                 [vi("acc_in", F, [4]), vi("row", F, [4])], [vi("acc_out", F, [4]), vi("row_out", F, [4])])
        return Case(name, [N("Scan", ["acc0", "xs"], ["acc", "sums"], body=body, num_scan_inputs=1)],
                    [("acc0", F, [4]), ("xs", F, [5, 4])], [("acc", F), ("sums", F)], opset=16)
    if variant == "axes":
        body = helper.make_graph([N("Mul", ["s_in", "half"], ["s_half"]), N("Add", ["s_half", "x_t"], ["s_x"]),
                                  N("Add", ["s_x", "y_t"], ["s_out"]), N("Add", ["c_in", "one"], ["c_out"]),
                                  N("Tanh", ["s_out"], ["o_t"]), N("ReduceSum", ["s_out"], ["total_t"], keepdims=0)], "body",
                                 [vi("s_in", F, [2, 3]), vi("c_in", F, [1]), vi("x_t", F, [2, 3]), vi("y_t", F, [3])],
                                 [vi("s_out", F, [2, 3]), vi("c_out", F, [1]), vi("o_t", F, [2, 3]), vi("total_t", F, [])])
        node = N("Scan", ["s0", "c0", "xs", "ys"], ["s", "c", "o", "totals"], body=body, num_scan_inputs=2,
                 scan_input_axes=[1, 0], scan_input_directions=[1, 0], scan_output_axes=[2, -1], scan_output_directions=[1, 0])
        return Case(name, [node], [("s0", F, [2, 3]), ("xs", F, [2, 6, 3]), ("ys", F, [6, 3])],
                    [("s", F), ("c", F), ("o", F), ("totals", F)],
                    [("c0", np.zeros(1, np.float32)), ("half", np.array(0.5, np.float32)), ("one", np.ones(1, np.float32))], opset=16)
    body = helper.make_graph([N("Sigmoid", ["row"], ["row_out"])], "body", [vi("row", F, [3])], [vi("row_out", F, [3])])
    return Case(name, [N("Scan", ["xs"], ["ys"], body=body, num_scan_inputs=1)], [("xs", F, [4, 3])], [("ys", F)], opset=16)


CASES = [
    # control flow: If decided at run time → cond, Loop → while_loop
    if_case("IfRuntime"), loop_case("LoopTripCount", condition=False), loop_case("LoopCondition", condition=True),
    loop_case("LoopScanTripCount", condition=False, scan=True),
    loop_case("LoopScanPassedCondition", condition=True, scan=True, passed=True),
    scan_case("ScanCumulative", "cumulative"), scan_case("ScanAxesDirections", "axes"), scan_case("ScanMap", "map"),
    # elementwise
    binary("Add"), binary("Sub"), binary("Mul"), binary("Div"),
    Case("Pow", [N("Abs", ["a"], ["aa"]), N("Pow", ["aa", "b"], ["y"])], [("a", F, [2, 3]), ("b", F, [2, 3])], [("y", F)]),
    binary("Equal", BOOL), binary("Greater", BOOL), binary("Less", BOOL), binary("GreaterOrEqual", BOOL), binary("LessOrEqual", BOOL),
    Case("Logical", [N("Greater", ["a", "b"], ["g"]), N("Less", ["a", "c"], ["l"]), N("And", ["g", "l"], ["n"]),
                     N("Or", ["g", "l"], ["o"]), N("Xor", ["n", "o"], ["x"]), N("Not", ["x"], ["y"])],
         [("a", F, [4, 5]), ("b", F, [4, 5]), ("c", F, [5])], [("y", BOOL)]),
    Case("Mod", [N("Cast", ["a"], ["ai"], to=I64), N("Mod", ["ai", "m"], ["y"])], [("a", F, [3, 4])], [("y", I64)],
         [("m", np.array([3, -3, 5, 7], np.int64))], feeds={"a": (RNG.standard_normal((3, 4)) * 20).astype(np.float32)}),
    single("PRelu", N("PRelu", ["x", "s"], ["y"]), X4, inits=[("s", w(4, 1, 1))]),
    Case("SumMean", [N("Sum", ["a", "b", "c"], ["s"]), N("Mean", ["a", "b", "c"], ["m"]), N("Max", ["a", "b", "c"], ["mx"]),
                     N("Min", ["a", "b"], ["mn"]), N("Concat", ["s", "m", "mx", "mn"], ["y"], axis=0)],
         [("a", F, [2, 3]), ("b", F, [2, 3]), ("c", F, [2, 3])], [("y", F)]),
    *[unary(op) for op in ["Relu", "Sigmoid", "Tanh", "Exp", "Abs", "Floor", "Ceil", "Sin", "Cos", "Erf", "Sign",
                           "Softplus", "Neg", "Atan", "Sinh", "Cosh", "Identity"]],
    *[unary(op, positive=True) for op in ["Log", "Sqrt", "Reciprocal", "Tan", "Asin", "Acos"]][:3],
    unary("LeakyRelu", alpha=0.2), unary("Elu", alpha=0.7), unary("HardSigmoid", alpha=0.3, beta=0.4),
    unary("Selu"), unary("ThresholdedRelu", alpha=0.3), unary("HardSwish", opset=14), unary("Mish", opset=18),
    unary("Gelu", opset=20), unary("Gelu", opset=20, approximate="tanh"),
    single("Clip", N("Clip", ["x", "lo", "hi"], ["y"]), X4, inits=[("lo", np.array(-0.3, np.float32)), ("hi", np.array(0.6, np.float32))]),
    single("ClipMin", N("Clip", ["x", "lo"], ["y"]), X4, inits=[("lo", np.array(-0.3, np.float32))]),
    single("Relu6", N("Clip", ["x", "lo", "hi"], ["y"]), X4, inits=[("lo", np.array(0, np.float32)), ("hi", np.array(6, np.float32))]),
    # linear algebra
    single("MatMul", N("MatMul", ["x", "w"], ["y"]), [("x", F, [2, 5, 16])], inits=[("w", w(16, 8))]),
    single("MatMulBatched", N("MatMul", ["x", "z"], ["y"]), [("x", F, [2, 5, 16]), ("z", F, [2, 16, 3])]),
    single("Gemm", N("Gemm", ["a", "b", "c"], ["y"], transA=1, transB=1, alpha=0.5, beta=2.0), [("a", F, [6, 4])],
           inits=[("b", w(5, 6)), ("c", w(5))]),
    single("GemmDynamicC", N("Gemm", ["a", "b", "c"], ["y"], beta=0.5), [("a", F, [4, 6]), ("c", F, [4, 5])], inits=[("b", w(6, 5))]),
    # convolution and pooling
    # A weight computed at run time (MIL's conv allows it without dilation).
    single("ConvRuntimeWeight", N("Conv", ["x", "k"], ["y"], pads=[1, 1, 1, 1]), X4 + [("k", F, [3, 4, 3, 3])]),
    # Weight normalization on weights too large for shape inference to fold (80 KiB): computed at export time.
    Case("ConvWeightNorm", [
        N("ReduceL2", ["v"], ["norm"], axes=[1, 2], keepdims=1), N("Div", ["v", "norm"], ["unit"]),
        N("Mul", ["g", "unit"], ["k"]), N("Conv", ["x", "k", "b"], ["y"], pads=[10, 9], group=2)],
        [("x", F, [1, 32, 40])], [("y", F)],
        [("v", w(64, 16, 20)), ("g", np.abs(w(64, 1, 1)) + 0.5), ("b", w(64))], opset=17),
    single("Conv", N("Conv", ["x", "k", "b"], ["y"], pads=[1, 0, 2, 1], strides=[2, 1], dilations=[1, 2]), X4,
           inits=[("k", w(6, 4, 3, 3)), ("b", w(6))]),
    single("ConvGroups", N("Conv", ["x", "k"], ["y"], group=2, auto_pad="SAME_UPPER", strides=[2, 2]), X4, inits=[("k", w(4, 2, 3, 3))]),
    single("ConvSameLower", N("Conv", ["x", "k"], ["y"], auto_pad="SAME_LOWER", strides=[2, 2]), X4, inits=[("k", w(2, 4, 4, 4))]),
    single("Conv1D", N("Conv", ["x", "k"], ["y"], pads=[1, 1]), [("x", F, [1, 3, 10])], inits=[("k", w(5, 3, 3))]),
    single("Conv3D", N("Conv", ["x", "k"], ["y"]), [("x", F, [1, 2, 4, 5, 5])], inits=[("k", w(3, 2, 2, 2, 2))]),
    single("ConvTranspose", N("ConvTranspose", ["x", "k", "b"], ["y"], strides=[2, 2], pads=[1, 1, 1, 1]), X4,
           inits=[("k", w(4, 3, 3, 3)), ("b", w(3))]),
    single("ConvTransposeOutPad", N("ConvTranspose", ["x", "k"], ["y"], strides=[2, 2], output_padding=[1, 1], group=2), X4,
           inits=[("k", w(4, 1, 3, 3))]),
    single("MaxPool", N("MaxPool", ["x"], ["y"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]), X4),
    single("AveragePool", N("AveragePool", ["x"], ["y"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]), X4),
    single("AveragePoolInclPad", N("AveragePool", ["x"], ["y"], kernel_shape=[2, 2], pads=[1, 1, 0, 0], count_include_pad=1), X4),
    single("LpPool", N("LpPool", ["x"], ["y"], kernel_shape=[2, 2], strides=[2, 2], p=2), X4),
    single("MaxPoolCeil", N("MaxPool", ["x"], ["y"], kernel_shape=[2, 2], strides=[2, 2], ceil_mode=1), X4),
    single("GlobalAveragePool", N("GlobalAveragePool", ["x"], ["y"]), X4),
    single("GlobalMaxPool", N("GlobalMaxPool", ["x"], ["y"]), [("x", F, [1, 4, 9])]),
    single("GlobalLpPool", N("GlobalLpPool", ["x"], ["y"]), X4),
    # normalization
    single("BatchNormalization", N("BatchNormalization", ["x", "s", "b", "m", "v"], ["y"], epsilon=1e-3), X4,
           inits=[("s", w(4)), ("b", w(4)), ("m", w(4)), ("v", np.abs(w(4)) + 0.5)]),
    single("LayerNormalization", N("LayerNormalization", ["x", "s", "b"], ["y"]), [("x", F, [2, 5, 16])], inits=[("s", w(16)), ("b", w(16))]),
    single("LayerNormalizationAxis1", N("LayerNormalization", ["x", "s"], ["y"], axis=1), [("x", F, [2, 5, 6])], inits=[("s", w(5, 6))]),
    single("InstanceNormalization", N("InstanceNormalization", ["x", "s", "b"], ["y"]), X4, inits=[("s", w(4)), ("b", w(4))]),
    # Einsum: attention scores, batched products, implicit output, ellipsis, one-operand sums and transposes.
    single("EinsumAttention", N("Einsum", ["a", "b"], ["y"], equation="bhqd,bhkd->bhqk"), [("a", F, [2, 3, 4, 5]), ("b", F, [2, 3, 6, 5])]),
    single("EinsumBatched", N("Einsum", ["a", "b"], ["y"], equation="bij,bjk->bik"), [("a", F, [2, 3, 4]), ("b", F, [2, 4, 5])]),
    single("EinsumImplicit", N("Einsum", ["a", "b"], ["y"], equation="ij,jk"), [("a", F, [3, 4]), ("b", F, [4, 5])]),
    single("EinsumEllipsis", N("Einsum", ["a", "b"], ["y"], equation="...ij,...jk->...ik"), [("a", F, [2, 2, 3, 4]), ("b", F, [2, 2, 4, 3])]),
    single("EinsumOuterSummed", N("Einsum", ["a", "b"], ["y"], equation="ij,k->ki"), [("a", F, [3, 4]), ("b", F, [5])]),
    single("EinsumPermuted", N("Einsum", ["a", "b"], ["y"], equation="nchw,kc->nkwh"), [("a", F, [1, 4, 3, 5])], inits=[("b", w(6, 4))]),
    single("EinsumOneOperand", N("Einsum", ["a"], ["y"], equation="bij->jb"), [("a", F, [2, 3, 4])]),
    # GridSample → resample. Random grids reach past [-1, 1] (padding). The nearest case's grid is a lattice of
    # fp16-exact values whose pixel positions stay 1/16 away from rounding ties, so fp16 compute picks the same pixels.
    single("GridSampleBilinear", N("GridSample", ["x", "g"], ["y"]), X4 + [("g", F, [1, 3, 5, 2])], opset=16),
    single("GridSampleReflection", N("GridSample", ["x", "g"], ["y"], padding_mode="reflection"),
           X4 + [("g", F, [1, 6, 2, 2])], opset=16),
    single("GridSampleReflectionAligned", N("GridSample", ["x", "g"], ["y"], padding_mode="reflection", align_corners=1),
           X4 + [("g", F, [1, 6, 2, 2])], opset=16),
    single("GridSampleNearestBorder", N("GridSample", ["x", "g"], ["y"], mode="nearest", padding_mode="border", align_corners=1),
           [("x", F, [2, 3, 4, 4]), ("g", F, [2, 5, 3, 2])], opset=16,
           feeds={"g": ((2 * np.random.default_rng(7).integers(-4, 12, (2, 5, 3, 2)) + 1) / 8 - 1).astype(np.float32)}),
    single("GridSampleLinear20", N("GridSample", ["x", "g"], ["y"], mode="linear", padding_mode="border"),
           X4 + [("g", F, [1, 4, 4, 2])], opset=20),
    # GroupNormalization: scale and bias per group at opset 18, per channel from opset 21.
    single("GroupNormalization18", N("GroupNormalization", ["x", "s", "b"], ["y"], num_groups=2, epsilon=1e-3),
           [("x", F, [2, 6, 5, 3])], inits=[("s", w(2)), ("b", w(2))], opset=18),
    single("GroupNormalization21", N("GroupNormalization", ["x", "s", "b"], ["y"], num_groups=3),
           [("x", F, [1, 6, 7])], inits=[("s", w(6)), ("b", w(6))], opset=21),
    single("Softmax", N("Softmax", ["x"], ["y"], axis=1), [("x", F, [2, 5, 6])]),
    single("SoftmaxOpset11", N("Softmax", ["x"], ["y"], axis=1), [("x", F, [2, 5, 6])], opset=11),
    single("LogSoftmax", N("LogSoftmax", ["x"], ["y"]), [("x", F, [2, 5, 6])]),
    # reductions
    single("ReduceMean", N("ReduceMean", ["x"], ["y"], axes=[1, -1]), X4),
    single("ReduceSum", N("ReduceSum", ["x", "ax"], ["y"], keepdims=0), X4, inits=[("ax", np.array([2], np.int64))]),
    single("ReduceMaxAll", N("ReduceMax", ["x"], ["y"], keepdims=0), X4),
    *[single(op, N(op, ["x"], ["y"], axes=[2]), X4) for op in ["ReduceMin", "ReduceProd", "ReduceL1", "ReduceL2",
                                                               "ReduceLogSumExp", "ReduceSumSquare"]],
    single("ArgMax", N("ArgMax", ["x"], ["y"], axis=1), X4, out=I64),
    single("ArgMin", N("ArgMin", ["x"], ["y"], axis=-1, keepdims=0), X4, out=I64),
    # layout
    single("Reshape", N("Reshape", ["x", "s"], ["y"]), X4, inits=[("s", np.array([0, -1, 16], np.int64))]),
    single("Flatten", N("Flatten", ["x"], ["y"], axis=2), X4),
    single("Squeeze", N("Squeeze", ["x", "ax"], ["y"]), [("x", F, [1, 4, 1, 3])], inits=[("ax", np.array([0, 2], np.int64))]),
    single("Unsqueeze", N("Unsqueeze", ["x", "ax"], ["y"]), [("x", F, [4, 3])], inits=[("ax", np.array([0, -1], np.int64))]),
    single("Transpose", N("Transpose", ["x"], ["y"], perm=[0, 2, 3, 1]), X4),
    # Swin's window partition and reverse pass through rank 6; the exporter merges the axes that move together.
    Case("WindowPartitionRank6", [
        N("Reshape", ["x", "s6"], ["p6"]), N("Transpose", ["p6"], ["t6"], perm=[0, 1, 3, 2, 4, 5]),
        N("Reshape", ["t6", "sw"], ["win"]), N("Mul", ["win", "k"], ["wk"]),
        N("Reshape", ["wk", "r6"], ["q6"]), N("Transpose", ["q6"], ["u6"], perm=[0, 1, 3, 2, 4, 5]),
        N("Reshape", ["u6", "s4"], ["y"])], [("x", F, [1, 8, 12, 5])], [("y", F)],
        [("s6", np.array([1, 2, 4, 3, 4, 5], np.int64)), ("sw", np.array([-1, 4, 4, 5], np.int64)), ("k", w(4, 4, 5)),
         ("r6", np.array([1, 2, 3, 4, 4, 5], np.int64)), ("s4", np.array([1, 8, 12, -1], np.int64))]),
    single("Concat", N("Concat", ["x", "c"], ["y"], axis=-1), [("x", F, [2, 3])], inits=[("c", w(2, 4))]),
    single("Split", N("Split", ["x", "s"], ["a", "b", "c"], axis=1), [("x", F, [2, 9])], inits=[("s", np.array([2, 3, 4], np.int64))],
           outputs=[("a", F), ("b", F), ("c", F)]),
    single("SplitNumOutputs", N("Split", ["x"], ["a", "b"], axis=1, num_outputs=2), [("x", F, [2, 9])], opset=18,
           outputs=[("a", F), ("b", F)]),
    single("Slice", N("Slice", ["x", "st", "en", "ax", "sp"], ["y"]), X4,
           inits=[("st", np.array([-1, 1], np.int64)), ("en", np.array([-100, 7], np.int64)), ("ax", np.array([2, 3], np.int64)),
                  ("sp", np.array([-2, 3], np.int64))]),
    single("SliceClamp", N("Slice", ["x", "st", "en", "ax"], ["y"]), X4,
           inits=[("st", np.array([1], np.int64)), ("en", np.array([np.iinfo(np.int64).max], np.int64)), ("ax", np.array([1], np.int64))]),
    single("Expand", N("Expand", ["x", "s"], ["y"]), [("x", F, [3, 1])], inits=[("s", np.array([2, 3, 4], np.int64))]),
    single("Tile", N("Tile", ["x", "r"], ["y"]), [("x", F, [2, 3])], inits=[("r", np.array([2, 1], np.int64))]),
    single("GatherConst", N("Gather", ["x", "i"], ["y"], axis=1), [("x", F, [3, 5, 2])], inits=[("i", np.array([[0, -1], [2, 4]], np.int64))]),
    Case("GatherEmbedding", [N("Gather", ["e", "ids"], ["y"])], [("ids", I64, [2, 6])], [("y", F)], [("e", w(40, 8))],
         feeds={"ids": RNG.integers(0, 40, size=(2, 6)).astype(np.int64)}),
    single("GatherElements", N("GatherElements", ["x", "i"], ["y"], axis=1), [("x", F, [3, 4])],
           inits=[("i", np.array([[0, 3], [1, 1], [2, 0]], np.int64))]),
    Case("Where", [N("Greater", ["a", "b"], ["c"]), N("Where", ["c", "a", "b"], ["y"])], [("a", F, [3, 4]), ("b", F, [4])], [("y", F)]),
    Case("Cast", [N("Mul", ["x", "ten"], ["t"]), N("Cast", ["t"], ["i"], to=I64), N("Cast", ["i"], ["f"], to=F),
                  N("Cast", ["x"], ["b"], to=BOOL), N("Cast", ["b"], ["bf"], to=F), N("Add", ["f", "bf"], ["y"])],
         [("x", F, [3, 4])], [("y", F)], [("ten", np.array(10, np.float32))]),
    single("PadConstant", N("Pad", ["x", "p", "v"], ["y"]), X4,
           inits=[("p", np.array([0, 1, 2, 0, 0, 0, 1, 3], np.int64)), ("v", np.array(0.25, np.float32))]),
    single("PadReflect", N("Pad", ["x", "p"], ["y"], mode="reflect"), X4, inits=[("p", np.array([0, 0, 1, 2, 0, 0, 2, 1], np.int64))]),
    single("PadEdge", N("Pad", ["x", "p"], ["y"], mode="edge"), X4, inits=[("p", np.array([0, 0, 1, 2, 0, 0, 2, 1], np.int64))]),
    single("ResizeNearest", N("Resize", ["x", "", "s"], ["y"], mode="nearest"), X4, inits=[("s", np.array([1, 1, 2, 3], np.float32))]),
    single("ResizeNearestAsymmetric", N("Resize", ["x", "", "s"], ["y"], mode="nearest", coordinate_transformation_mode="asymmetric",
                                        nearest_mode="floor"), X4, inits=[("s", np.array([1, 1, 2, 2], np.float32))]),
    single("ResizeLinear", N("Resize", ["x", "", "s"], ["y"], mode="linear"), X4, inits=[("s", np.array([1, 1, 1.5, 2], np.float32))]),
    # A resize to the same size is an identity in any mode (DINOv2 interpolates its position embedding that way).
    single("ResizeCubicSameSize", N("Resize", ["x", "", "", "z"], ["y"], mode="cubic"), X4,
           inits=[("z", np.array([1, 4, 8, 8], np.int64))]),
    # A reshape target computed with Pow on floats (sqrt of a token count, as DINOv2's export does) folds.
    Case("PowShapeChain", [
        N("Shape", ["x"], ["sh"]), N("Gather", ["sh", "one"], ["n"]), N("Cast", ["n"], ["nf"], to=F),
        N("Pow", ["nf", "half"], ["rf"]), N("Cast", ["rf"], ["r"], to=I64), N("Unsqueeze", ["r", "zero"], ["r1"]),
        N("Concat", ["two", "r1", "r1"], ["target"], axis=0), N("Reshape", ["x", "target"], ["y"])],
        [("x", F, [2, 16])], [("y", F)],
        [("one", np.array(1, np.int64)), ("half", np.array(0.5, np.float32)), ("zero", np.array([0], np.int64)),
         ("two", np.array([2], np.int64))]),
    single("ResizeLinearAlign", N("Resize", ["x", "", "", "z"], ["y"], mode="linear", coordinate_transformation_mode="align_corners"),
           X4, inits=[("z", np.array([1, 4, 13, 5], np.int64))]),
    single("ResizeLinearAsym", N("Resize", ["x", "", "s"], ["y"], mode="linear", coordinate_transformation_mode="asymmetric"),
           X4, inits=[("s", np.array([1, 1, 2, 0.5], np.float32))]),
    single("Upsample", N("Upsample", ["x", "s"], ["y"], mode="nearest"), X4, opset=9, inits=[("s", np.array([1, 1, 2, 2], np.float32))]),
    single("Dropout", N("Dropout", ["x"], ["y"]), X4),
    # issue 25: ops real exporters write
    Case("IsNaN", [N("Div", ["x", "z"], ["q"]), N("IsNaN", ["q"], ["y"])], [("x", F, [3, 4])], [("y", BOOL)],
         [("z", np.array([0, 1, 0, 2], np.float32))], feeds={"x": np.array([[0, 1, 2, 3], [0, 0, 1, 1], [-1, 0, 5, 0]], np.float32)}),
    Case("IsInf", [N("Div", ["x", "z"], ["q"]), N("IsInf", ["q"], ["y"])], [("x", F, [3, 4])], [("y", BOOL)],
         [("z", np.array([0, 1, 0, 2], np.float32))], feeds={"x": np.array([[0, 1, 2, 3], [-1, 0, 1, 1], [-1, 0, 5, 0]], np.float32)}),
    Case("IsInfPositive", [N("Div", ["x", "z"], ["q"]), N("IsInf", ["q"], ["y"], detect_negative=0)], [("x", F, [3, 4])], [("y", BOOL)],
         [("z", np.array([0, 1, 0, 2], np.float32))], feeds={"x": np.array([[1, 1, 2, 3], [-1, 0, -1, 1], [-1, 0, 5, 0]], np.float32)}),
    Case("GatherBool", [N("Greater", ["x", "z"], ["b"]), N("Gather", ["b", "i"], ["g"], axis=1), N("Cast", ["g"], ["y"], to=F)],
         [("x", F, [3, 5])], [("y", F)], [("z", np.array(0, np.float32)), ("i", np.array([4, 0, 2], np.int64))]),
    Case("GatherElementsBool", [N("Greater", ["x", "z"], ["b"]), N("GatherElements", ["b", "i"], ["y"], axis=1)],
         [("x", F, [3, 4])], [("y", BOOL)], [("z", np.array(0, np.float32)), ("i", np.array([[0, 3], [1, 1], [2, 0]], np.int64))]),
    single("GatherND", N("GatherND", ["x", "i"], ["y"]), [("x", F, [3, 4, 5])], inits=[("i", np.array([[0, 1], [2, -1]], np.int64))]),
    Case("GatherNDRuntime", [N("GatherND", ["x", "i"], ["y"])], [("x", F, [3, 4, 5]), ("i", I64, [2, 3])], [("y", F)],
         feeds={"i": np.array([[0, 1, 2], [2, 3, 4]], np.int64)}),
    single("CumSum", N("CumSum", ["x", "a"], ["y"]), [("x", F, [3, 5])], inits=[("a", np.array(1, np.int64))]),
    single("CumSumExclusiveReverse", N("CumSum", ["x", "a"], ["y"], exclusive=1, reverse=1), [("x", F, [3, 5])],
           inits=[("a", np.array(0, np.int64))]),
    single("TopK", N("TopK", ["x", "k"], ["v", "i"], axis=1), [("x", F, [3, 6])], inits=[("k", np.array([3], np.int64))],
           outputs=[("v", F), ("i", I64)]),
    single("TopKSmallest", N("TopK", ["x", "k"], ["v", "i"], largest=0), [("x", F, [3, 6])], inits=[("k", np.array([2], np.int64))],
           outputs=[("v", F), ("i", I64)]),
    single("TriluUpper", N("Trilu", ["x"], ["y"]), [("x", F, [2, 4, 5])]),
    single("TriluLowerK", N("Trilu", ["x", "k"], ["y"], upper=0), [("x", F, [2, 4, 5])], inits=[("k", np.array(-1, np.int64))]),
    single("TriluUpperK", N("Trilu", ["x", "k"], ["y"]), [("x", F, [4, 4])], inits=[("k", np.array(2, np.int64))]),
    single("LRN", N("LRN", ["x"], ["y"], size=3, alpha=0.002, beta=0.7, bias=1.5), X4),
    Case("IdentitySharedWeight", [N("Identity", ["k"], ["k2"]), N("Conv", ["x", "k2"], ["y"])], X4, [("y", F)], [("k", w(600, 4, 3, 3))]),  # 86 KB: above the 64 KB inference folds
    Case("TransposedWeight", [N("Transpose", ["k"], ["kt"], perm=[1, 0]), N("MatMul", ["x", "kt"], ["y"])], [("x", F, [3, 300])], [("y", F)],
         [("k", w(70, 300))]),
    Case("ConstantOfShapeWeight", [N("ConstantOfShape", ["s"], ["k"], value=numpy_helper.from_array(np.array([0.01], np.float32))),
                                   N("Conv", ["x", "k"], ["c"]), N("Add", ["c", "x2"], ["y"])], X4 + [("x2", F, [1, 512, 6, 6])], [("y", F)],
         [("s", np.array([512, 4, 3, 3], np.int64))]),
    single("ScatterND", N("ScatterND", ["x", "i", "u"], ["y"]), [("x", F, [4, 3, 2])],
           inits=[("i", np.array([[1], [-1]], np.int64)), ("u", w(2, 3, 2))]),
    single("ScatterNDAdd", N("ScatterND", ["x", "i", "u"], ["y"], reduction="add"), [("x", F, [4, 3])],
           inits=[("i", np.array([[0, 1], [2, 2], [0, 1]], np.int64)), ("u", w(3))], opset=18),
    Case("ScatterElements", [N("ScatterElements", ["x", "i", "u"], ["y"], axis=1)], [("x", F, [3, 4]), ("u", F, [3, 2])], [("y", F)],
         [("i", np.array([[0, 3], [1, 2], [3, 0]], np.int64))]),
    single("ScatterElementsMax", N("ScatterElements", ["x", "i", "u"], ["y"], axis=0, reduction="max"), [("x", F, [3, 4])],
           inits=[("i", np.array([[0, 1, 2, 0]], np.int64)), ("u", w(1, 4))], opset=18),
    # An If decided by shapes once inputs are static becomes its branch (values inside renamed, initializers moved).
    Case("IfDecidedByShape", [N("Shape", ["x"], ["s"]), N("Gather", ["s", "zero"], ["d0"], axis=0), N("Greater", ["d0", "one"], ["c"]),
                              N("If", ["c"], ["y"],
                                then_branch=helper.make_graph([N("Mul", ["x", "two"], ["t"])], "then", [],
                                                              [helper.make_tensor_value_info("t", F, None)],
                                                              [numpy_helper.from_array(np.array(2, np.float32), "two")]),
                                else_branch=helper.make_graph([N("Neg", ["x"], ["e"])], "else", [],
                                                              [helper.make_tensor_value_info("e", F, None)]))],
         [("x", F, [3, 4])], [("y", F)], [("zero", np.array(0, np.int64)), ("one", np.array(1, np.int64))]),
    single("DepthToSpace", N("DepthToSpace", ["x"], ["y"], blocksize=2), X4),
    single("DepthToSpaceCRD", N("DepthToSpace", ["x"], ["y"], blocksize=2, mode="CRD"), X4),
    single("SpaceToDepth", N("SpaceToDepth", ["x"], ["y"], blocksize=2), X4),
    single("BatchNormRank2", N("BatchNormalization", ["x", "s", "b", "m", "v"], ["y"]), [("x", F, [3, 4])],
           inits=[("s", w(4)), ("b", w(4)), ("m", w(4)), ("v", np.abs(w(4)) + 0.5)]),
    Case("ClipInteger", [N("Mul", ["x", "ten"], ["t"]), N("Cast", ["t"], ["i"], to=I64), N("Clip", ["i", "lo", "hi"], ["y"])],
         [("x", F, [3, 4])], [("y", I64)], [("ten", np.array(10, np.float32)), ("lo", np.array(-5, np.int64)), ("hi", np.array(7, np.int64))]),
    single("MaxPoolCeil", N("MaxPool", ["x"], ["y"], kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1), X4),
    single("AveragePoolCeil", N("AveragePool", ["x"], ["y"], kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1, pads=[1, 1, 0, 0]), X4),
    Case("DequantizeLinear", [N("DequantizeLinear", ["q", "s", "z"], ["wd"], axis=1), N("MatMul", ["x", "wd"], ["y"])],
         [("x", F, [3, 16])], [("y", F)],
         [("q", RNG.integers(-127, 128, size=(16, 12)).astype(np.int8)), ("s", (np.abs(w(12)) * 0.02 + 0.001).astype(np.float32)),
          ("z", np.zeros(12, np.int8))]),
    # recurrent layers (small: seq 5, batch 2, input 3, hidden 4); W, R, B, P initializers, initial states inputs or initializers
    *[recurrent(*args, **kw) for args, kw in RECURRENT],
]


def feeds_for(case: Case, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    out = {}
    for name, elem, shape in case.inputs:
        if name in case.feeds:
            out[name] = case.feeds[name]
        else:
            out[name] = rng.standard_normal(shape).astype(np.float32)
    return out


def export_case(mlpkg, tmp: Path, case: Case, compute: str, target: str | None = None) -> Path:
    src = tmp / f"{case.name}.onnx"
    onnx.save(case.model(), src)
    pkg = tmp / f"{case.name}.mlpkg"
    r = run([str(mlpkg), "convert", str(src), "-o", str(pkg), "--weights", "fp32", "--quiet"], tmp)
    assert r.returncode == 0, r.stderr
    out = tmp / f"{case.name}.{compute}.mlpackage"
    argv = [str(mlpkg), "export", str(pkg), "--format", "coreml", "-o", str(out), "--compute-precision", compute, "--quiet"]
    if target:
        argv += ["--deployment-target", target]
    r = run(argv, tmp)
    assert r.returncode == 0, r.stderr
    return out


@pytest.mark.parametrize("compute", ["fp32", "fp16"])
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_lowering_matches_onnxruntime(mlpkg, tmp_path, case, compute):
    check_case(mlpkg, tmp_path, case, compute)


def check_case(mlpkg, tmp_path, case, compute, target=None) -> Path:
    """Export, check coremltools' type inference against the declared types, and compare the MIL reference evaluation
    with onnxruntime; returns the .mlpackage."""
    out = export_case(mlpkg, tmp_path, case, compute, target)
    spec = load_spec(out)
    inferred = coremltools_types(out, spec)
    for op in program_ops(spec):
        for o in op.outputs:
            assert inferred[o.name] == proto_type(o.type), f"{op.type} {o.name}: coremltools {inferred[o.name]} vs {proto_type(o.type)}"
    # `mlpkg verify` reads the package back as it reads any tool's: every op checked, nothing wrong.
    verified = json.loads(run([str(mlpkg), "verify", str(out), "--json"], tmp_path).stdout)
    assert verified["ok"] and verified["notChecked"] == [], verified
    # Graph optimizations off: onnxruntime would fuse DequantizeLinear + MatMul into a kernel that also quantizes the
    # activations, which is not the function the ONNX graph (or Core ML) computes.
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(case.reference().SerializeToString(), options, providers=["CPUExecutionProvider"])
    threshold = 0.99999 if compute == "fp32" else 0.999
    for seed in (0, 1):
        feeds = feeds_for(case, seed)
        want = sess.run(None, feeds)
        got = evaluate(out, {k: (v.astype(np.int32) if v.dtype == np.int64 else v) for k, v in feeds.items()})
        for (name, _), expected in zip(case.outputs, want):
            have = np.asarray(got[name])
            if expected.ndim == 0:
                # A scalar is [1] at a Core ML interface (an MLMultiArray has at least one dim); docs/COREML.md.
                assert have.shape == (1,), f"{name}: {have.shape}"
                have = have.reshape(())
            assert have.shape == expected.shape, f"{name}: {have.shape} vs {expected.shape}"
            if expected.dtype.kind in "iub":
                if compute == "fp16" and case.name in ("Equal", "Greater", "Less", "GreaterOrEqual", "LessOrEqual", "Logical", "Mod", "ArgMax", "ArgMin"):
                    # fp16 compute rounds the inputs first; comparisons and arg-reductions may flip on near-ties.
                    assert np.mean(have.astype(np.int64) == expected.astype(np.int64)) >= 0.9
                else:
                    np.testing.assert_array_equal(have.astype(np.int64), expected.astype(np.int64))
            else:
                c = cosine(have, expected)
                assert c >= threshold, f"{name}: cosine {c:.7f} < {threshold}"
    return out


@pytest.mark.parametrize("name", ["LSTMReverse", "LSTMBidirectional", "GRUReverse", "GRUBidirectional", "RNNReverseRelu"])
def test_recurrent_ops_compute_in_fp16_from_ios17(mlpkg, tmp_path, name):
    """iOS17/recurrent.py adds fp16 to lstm, gru and rnn: from iOS17 they run in fp16, below it in fp32 between casts."""
    case = next(c for c in CASES if c.name == name)
    for target, dtype in (("iOS17", TensorProto.FLOAT16), (None, TensorProto.FLOAT)):
        folder = tmp_path / (target or "default")
        folder.mkdir()
        out = check_case(mlpkg, folder, case, "fp16", target)
        recurrent = [op for op in program_ops(load_spec(out)) if op.type in ("lstm", "gru", "rnn")]
        assert recurrent and all(o.type.tensorType.dataType == MIL_FLOAT[dtype] for op in recurrent for o in op.outputs), target


@pytest.mark.parametrize("weights", ["fp32", "fp16"])
def test_weight_normalization_is_computed_at_export_time(mlpkg, tmp_path, weights):
    """The weight of ConvWeightNorm (ReduceL2, Div, Mul on 80 KiB of weights: more than shape inference folds) is one
    constant in the program: no op computes it at run time (coremltools' loader would re-evaluate the reduction, and
    fails under NumPy 2). With fp16 weights (the default) the operands are stored as halves and so is the result."""
    case = next(c for c in CASES if c.name == "ConvWeightNorm")
    src = tmp_path / "wn.onnx"
    onnx.save(case.model(), src)
    out = tmp_path / f"wn.{weights}.mlpackage"
    r = run([str(mlpkg), "convert", str(src), "-o", str(out), "--weights", weights, "--compute-precision", "fp32", "--quiet"], tmp_path)
    assert r.returncode == 0, r.stderr
    spec = load_spec(out)
    ops = program_ops(spec)
    # (fp16 weights in fp32 compute are cast once each: the casts are not arithmetic on the weights)
    assert [op.type for op in ops if op.type not in ("const", "cast")] == ["conv"]
    weight_types = {o.type.tensorType.dataType for op in ops if op.type == "const" for o in op.outputs
                    if len(o.type.tensorType.dimensions) == 3}
    assert weight_types == {MIL_FLOAT[TensorProto.FLOAT16 if weights == "fp16" else TensorProto.FLOAT]}
    inferred = coremltools_types(out, spec)  # coremltools' loader rebuilds and type-checks the program
    assert all(inferred[o.name] == proto_type(o.type) for op in ops for o in op.outputs)
    sess = ort.InferenceSession(case.reference().SerializeToString(), providers=["CPUExecutionProvider"])
    feeds = feeds_for(case, 0)
    want = sess.run(None, feeds)[0]
    got = np.asarray(evaluate(out, feeds)["y"])
    assert cosine(got, want) >= (0.99999 if weights == "fp32" else 0.9999)


REFUSALS = [
    ("IntegerDiv", Case("IntegerDiv", [N("Cast", ["x"], ["i"], to=I64), N("Div", ["i", "i"], ["y"])], [("x", F, [3])], [("y", I64)]),
     "truncates toward zero"),
    ("ModFmod", Case("ModFmod", [N("Mod", ["x", "x"], ["y"], fmod=1)], [("x", F, [3])], [("y", F)]), "fmod=1"),
    ("DynamicWeight", Case("DynamicWeight", [N("ConvTranspose", ["x", "k"], ["y"])], [("x", F, [1, 2, 5, 5]), ("k", F, [2, 3, 3, 3])], [("y", F)]),
     "weight 'k' must be constant"),
    ("Conv2dRank", Case("Conv2dRank", [N("Conv", ["x", "k"], ["y"])], [("x", F, [1, 2, 2, 2, 2, 5])], [("y", F)],
                        [("k", w(3, 2, 1, 1, 1, 1))]), "rank 6"),
    ("MaxPoolIndices", Case("MaxPoolIndices", [N("MaxPool", ["x"], ["y", "i"], kernel_shape=[2, 2])], X4, [("y", F), ("i", I64)]),
     "Indices"),
    ("DilatedPool", Case("DilatedPool", [N("MaxPool", ["x"], ["y"], kernel_shape=[2, 2], dilations=[2, 2])], X4, [("y", F)]), "dilated"),
    ("CeilChangesSize", Case("CeilChangesSize", [N("AveragePool", ["x"], ["y"], kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1,
                                                    count_include_pad=1)], X4, [("y", F)]), "ceil_mode"),
    ("LayerNormBroadcastScale", Case("LayerNormBroadcastScale", [N("LayerNormalization", ["x", "s"], ["y"], axis=1)],
                                     [("x", F, [2, 5, 6])], [("y", F)], [("s", w(6))]), "normalized shape"),
    ("TrainingBatchNorm", Case("TrainingBatchNorm", [N("BatchNormalization", ["x", "s", "b", "m", "v"], ["y", "rm", "rv"], training_mode=1)],
                               X4, [("y", F), ("rm", F), ("rv", F)], [("s", w(4)), ("b", w(4)), ("m", w(4)), ("v", np.ones(4, np.float32))],
                               opset=15), "training"),
    ("ArgMaxLast", Case("ArgMaxLast", [N("ArgMax", ["x"], ["y"], select_last_index=1)], X4, [("y", I64)]), "select_last_index"),
    ("ClipDynamicBound", Case("ClipDynamicBound", [N("Clip", ["x", "lo"], ["y"])], [("x", F, [4]), ("lo", F, [])], [("y", F)]),
     "must be a constant"),
    ("SliceDynamicStarts", Case("SliceDynamicStarts", [N("Slice", ["x", "st", "en"], ["y"])], [("x", F, [4]), ("st", I64, [1])],
                                [("y", F)], [("en", np.array([3], np.int64))]), "dynamic dims"),
    ("NegativePad", Case("NegativePad", [N("Pad", ["x", "p"], ["y"])], X4, [("y", F)],
                         [("p", np.array([0, 0, -1, 0, 0, 0, 0, 0], np.int64))]), "negative pads"),
    ("ReflectPadOuter", Case("ReflectPadOuter", [N("Pad", ["x", "p"], ["y"], mode="reflect")], X4, [("y", F)],
                             [("p", np.array([0, 1, 0, 0, 0, 1, 0, 0], np.int64))]), "last two dims"),
    ("ResizeCubic", Case("ResizeCubic", [N("Resize", ["x", "", "s"], ["y"], mode="cubic")], X4, [("y", F)],
                         [("s", np.array([1, 1, 2, 2], np.float32))]), "cubic"),
    ("ResizeFractionalNearest", Case("ResizeFractionalNearest", [N("Resize", ["x", "", "s"], ["y"], mode="nearest")], X4, [("y", F)],
                                     [("s", np.array([1, 1, 1.5, 1.5], np.float32))]), "whole-number"),
    ("ResizeChannels", Case("ResizeChannels", [N("Resize", ["x", "", "s"], ["y"], mode="nearest")], X4, [("y", F)],
                            [("s", np.array([1, 2, 2, 2], np.float32))]), "N or C"),
    ("GeluOther", Case("GeluOther", [N("Gelu", ["x"], ["y"], approximate="erf")], X4, [("y", F)], opset=20), "approximate"),
    ("DropoutMask", Case("DropoutMask", [N("Dropout", ["x"], ["y", "m"])], X4, [("y", F), ("m", BOOL)]), "mask"),
    ("DropoutTraining", Case("DropoutTraining", [N("Dropout", ["x", "r", "t"], ["y"])], X4, [("y", F)],
                             [("r", np.array(0.5, np.float32)), ("t", np.array(True))]), "training_mode"),
    ("IntegerPow", Case("IntegerPow", [N("Cast", ["x"], ["i"], to=I64), N("Pow", ["i", "i"], ["y"])], [("x", F, [3])], [("y", I64)]),
     "integer Pow"),
    ("IntegerMean", Case("IntegerMean", [N("Cast", ["x"], ["i"], to=I64), N("Mean", ["i", "i"], ["y"])], [("x", F, [3])], [("y", I64)]),
     "is int32; MIL add, maximum, minimum, real_div takes fp16, fp32"),
    ("IntegerRelu", Case("IntegerRelu", [N("Cast", ["x"], ["i"], to=I64), N("Relu", ["i"], ["y"])], [("x", F, [3])], [("y", I64)]),
     "takes fp16, fp32"),
    ("BoolClip", Case("BoolClip", [N("Cast", ["x"], ["i"], to=BOOL), N("Clip", ["i"], ["y"])], [("x", F, [3])], [("y", BOOL)], opset=13),
     "MIL clip, relu6, maximum, minimum takes fp16, fp32, int32"),
    ("TopKUnsorted", Case("TopKUnsorted", [N("TopK", ["x", "k"], ["v", "i"], sorted=0)], [("x", F, [3, 6])], [("v", F), ("i", I64)],
                          [("k", np.array([2], np.int64))]), "sorted=0"),
    # A run-time k leaves the output's dim unknown: refused as a dynamic dim, before k's own precondition.
    ("TopKRuntimeK", Case("TopKRuntimeK", [N("TopK", ["x", "k"], ["v", "i"])], [("x", F, [3, 6]), ("k", I64, [1])], [("v", F), ("i", I64)]),
     "dynamic dims"),
    ("GatherNDBatchDims", Case("GatherNDBatchDims", [N("GatherND", ["x", "i"], ["y"], batch_dims=1)], [("x", F, [3, 4, 5])], [("y", F)],
                               [("i", np.array([[1], [2], [0]], np.int64))]), "batch_dims"),
    ("CumSumRuntimeAxis", Case("CumSumRuntimeAxis", [N("CumSum", ["x", "a"], ["y"])], [("x", F, [3, 5]), ("a", I64, [])], [("y", F)]),
     "must be a constant"),
    ("DepthToSpaceRank3", Case("DepthToSpaceRank3", [N("DepthToSpace", ["x"], ["y"], blocksize=2)], [("x", F, [4, 8, 8])], [("y", F)]),
     "rank"),
    ("IntegerMatMul", Case("IntegerMatMul", [N("Cast", ["x"], ["i"], to=I64), N("MatMul", ["i", "i"], ["y"])], [("x", F, [3, 3])],
                           [("y", I64)]), "takes floats"),
    ("DynamicBias", Case("DynamicBias", [N("Conv", ["x", "k", "b"], ["y"])], [("x", F, [1, 2, 5, 5]), ("b", F, [3])], [("y", F)],
                         [("k", w(3, 2, 3, 3))]), "bias 'b' must be constant"),
    ("ConvTransposeOutputShape", Case("ConvTransposeOutputShape", [N("ConvTranspose", ["x", "k"], ["y"], strides=[2, 2],
                                                                     output_shape=[9, 9])], X4, [("y", F)], [("k", w(4, 2, 3, 3))]),
     "output_shape"),
    ("ConvTransposeSame", Case("ConvTransposeSame", [N("ConvTranspose", ["x", "k"], ["y"], strides=[2, 2], auto_pad="SAME_UPPER")],
                               X4, [("y", F)], [("k", w(4, 2, 3, 3))]), "auto_pad"),
    ("StorageOrder", Case("StorageOrder", [N("MaxPool", ["x"], ["y"], kernel_shape=[2, 2], storage_order=1)], X4, [("y", F)]),
     "storage_order"),
    ("LpPoolP3", Case("LpPoolP3", [N("LpPool", ["x"], ["y"], kernel_shape=[2, 2], p=3)], X4, [("y", F)]), "p=3"),
    ("GlobalLpPoolP1", Case("GlobalLpPoolP1", [N("GlobalLpPool", ["x"], ["y"], p=1)], X4, [("y", F)]), "p≠2"),
    ("BatchNormRank1", Case("BatchNormRank1", [N("BatchNormalization", ["x", "s", "b", "m", "v"], ["y"])], [("x", F, [4])], [("y", F)],
                            [("s", w(4)), ("b", w(4)), ("m", w(4)), ("v", np.ones(4, np.float32))]), "rank 2 to 5"),
    ("BatchNormDynamicStats", Case("BatchNormDynamicStats", [N("BatchNormalization", ["x", "s", "b", "m", "v"], ["y"])],
                                   X4 + [("m", F, [4])], [("y", F)], [("s", w(4)), ("b", w(4)), ("v", np.ones(4, np.float32))]),
     "mean 'm' must be constant"),
    ("LayerNormMean", Case("LayerNormMean", [N("LayerNormalization", ["x", "s"], ["y", "mu"])], [("x", F, [2, 5])],
                           [("y", F), ("mu", F)], [("s", w(5))]), "Mean and InvStdDev"),
    ("EinsumDiagonal", Case("EinsumDiagonal", [N("Einsum", ["a"], ["y"], equation="ii->i")], [("a", F, [3, 3])], [("y", F)]), "diagonal"),
    ("EinsumThreeOperands", Case("EinsumThreeOperands", [N("Einsum", ["a", "b", "c"], ["y"], equation="ij,jk,kl->il")],
                                 [("a", F, [2, 3]), ("b", F, [3, 4]), ("c", F, [4, 5])], [("y", F)]), "3 operands"),
    ("EinsumBroadcast", Case("EinsumBroadcast", [N("Einsum", ["a", "b"], ["y"], equation="bij,bjk->bik")],
                             [("a", F, [1, 3, 4]), ("b", F, [2, 4, 5])], [("y", F)]), "broadcasting is not lowered"),
    ("GridSampleCubic", Case("GridSampleCubic", [N("GridSample", ["x", "g"], ["y"], mode="bicubic")], X4 + [("g", F, [1, 3, 5, 2])],
                             [("y", F)], opset=16), "mode 'bicubic'"),
    ("GridSampleRank5", Case("GridSampleRank5", [N("GridSample", ["x", "g"], ["y"], mode="linear")],
                             [("x", F, [1, 2, 3, 4, 4]), ("g", F, [1, 2, 3, 3, 3])], [("y", F)], opset=20), "rank 4"),
    ("GroupNormGroups", Case("GroupNormGroups", [N("GroupNormalization", ["x", "s", "b"], ["y"], num_groups=3)], X4, [("y", F)],
                             [("s", w(3)), ("b", w(3))], opset=18), "does not divide 4 channels"),
    ("GroupNormScaleShape", Case("GroupNormScaleShape", [N("GroupNormalization", ["x", "s", "b"], ["y"], num_groups=2)], X4, [("y", F)],
                                 [("s", w(2)), ("b", w(2))], opset=21), "one value per channel"),
    ("GroupNormRuntimeScale", Case("GroupNormRuntimeScale", [N("GroupNormalization", ["x", "s", "b"], ["y"], num_groups=2)],
                                   X4 + [("s", F, [2])], [("y", F)], [("b", w(2))], opset=18), "must be constant"),
    ("InstanceNormRank5", Case("InstanceNormRank5", [N("InstanceNormalization", ["x", "s", "b"], ["y"])], [("x", F, [1, 2, 2, 2, 2])],
                               [("y", F)], [("s", w(2)), ("b", w(2))]), "MIL instance_norm takes rank 3 to 4"),
    ("IntegerReduceMean", Case("IntegerReduceMean", [N("Cast", ["x"], ["i"], to=I64), N("ReduceMean", ["i"], ["y"], axes=[0])],
                               [("x", F, [3])], [("y", I64)]), "of integers"),
    ("SplitZeroPart", Case("SplitZeroPart", [N("Split", ["x", "s"], ["a", "b"], axis=1)], [("x", F, [2, 4])], [("a", F), ("b", F)],
                           [("s", np.array([0, 4], np.int64))]), "MIL has no empty tensors"),
    ("EmptySlice", Case("EmptySlice", [N("Slice", ["x", "st", "en"], ["y"])], [("x", F, [4])], [("y", F)],
                        [("st", np.array([3], np.int64)), ("en", np.array([1], np.int64))]), "empty"),
    ("GatherOutOfRange", Case("GatherOutOfRange", [N("Gather", ["x", "i"], ["y"])], [("x", F, [3, 2])], [("y", F)],
                              [("i", np.array([5], np.int64))]), "out of range"),  # shape inference refuses it first (coreml-inference)
    ("GatherElementsShortIndices", Case("GatherElementsShortIndices", [N("GatherElements", ["x", "i"], ["y"])], [("x", F, [7, 4])],
                                        [("y", F)], [("i", np.array([[0, 3], [1, 1], [2, 0]], np.int64))]),
     "must have equal dims except on axis 0"),  # ONNX allows it; MIL's gather_along_axis does not (fuzz regression)
    ("ConvRuntimeWeightDilated", Case("ConvRuntimeWeightDilated", [N("Conv", ["x", "k"], ["y"], dilations=[2, 2])],
                                      X4 + [("k", F, [3, 4, 3, 3])], [("y", F)]), "dilated"),
    ("ConvBiasShape", Case("ConvBiasShape", [N("Conv", ["x", "k", "b"], ["y"])], X4, [("y", F)],
                           [("k", w(2, 4, 1, 1)), ("b", w(3))]), "2 output channels need [2]"),  # fuzz regression
    ("PadWrap", Case("PadWrap", [N("Pad", ["x", "p"], ["y"], mode="wrap")], X4, [("y", F)],
                     [("p", np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64))], opset=19), "mode 'wrap'"),
    ("PadAxes", Case("PadAxes", [N("Pad", ["x", "p", "", "a"], ["y"])], X4, [("y", F)],
                     [("p", np.array([1, 1], np.int64)), ("a", np.array([3], np.int64))], opset=18), "axes"),
    ("IntegerPad", Case("IntegerPad", [N("Cast", ["x"], ["i"], to=I64), N("Pad", ["i", "p"], ["y"])], [("x", F, [3])], [("y", I64)],
                        [("p", np.array([1, 1], np.int64))]), "MIL pad takes fp16, fp32"),
    ("ResizeRank3", Case("ResizeRank3", [N("Resize", ["x", "", "s"], ["y"], mode="nearest")], [("x", F, [1, 4, 8])], [("y", F)],
                         [("s", np.array([1, 1, 2], np.float32))]), "rank-4"),
    ("ResizeAntialias", Case("ResizeAntialias", [N("Resize", ["x", "", "s"], ["y"], mode="linear", antialias=1)], X4, [("y", F)],
                             [("s", np.array([1, 1, 0.5, 0.5], np.float32))], opset=18), "antialias"),
    ("ResizeNearestAlign", Case("ResizeNearestAlign", [N("Resize", ["x", "", "s"], ["y"], mode="nearest",
                                                         coordinate_transformation_mode="align_corners")], X4, [("y", F)],
                                [("s", np.array([1, 1, 2, 2], np.float32))]), "picks other pixels"),
    ("ResizeCrop", Case("ResizeCrop", [N("Resize", ["x", "r", "s"], ["y"], mode="linear", coordinate_transformation_mode="tf_crop_and_resize")],
                        X4, [("y", F)], [("r", np.array([0, 0, 0, 0, 1, 1, 1, 1], np.float32)), ("s", np.array([1, 1, 2, 2], np.float32))]),
     "tf_crop_and_resize"),
    ("LSTMClip", recurrent("LSTM", "LSTMClip", clip=1.0), "clip: ONNX bounds the gates' inputs"),
    ("LSTMInputForget", recurrent("LSTM", "LSTMInputForget", input_forget=1), "input_forget=1"),
    ("LSTMShortSequence", recurrent("LSTM", "LSTMShortSequence", sequence_lens=[5, 3]), "sequence_lens [5, 3] are not all"),
    ("LSTMDynamicSequenceLens", Case("LSTMDynamicSequenceLens", [N("LSTM", ["x", "W", "R", "", "L"], ["y"], hidden_size=4)],
                                     [("x", F, [5, 2, 3]), ("L", TensorProto.INT32, [2])], [("y", F)],
                                     [("W", w(1, 16, 3)), ("R", w(1, 16, 4))]), "sequence_lens 'L' must be constant"),
    ("LSTMLeakyRelu", recurrent("LSTM", "LSTMLeakyRelu", activations=["LeakyRelu", "Tanh", "Tanh"]),
     "activation LeakyRelu has no MIL lstm equivalent"),
    ("LSTMHardSigmoidAlpha", recurrent("LSTM", "LSTMHardSigmoidAlpha", activations=["HardSigmoid", "Tanh", "Tanh"],
                                       activation_alpha=[0.3]), "activation HardSigmoid (alpha 0.3) has no MIL lstm equivalent"),
    ("GRURelu", recurrent("GRU", "GRURelu", activations=["Relu", "Tanh"]), "activation Relu has no MIL gru equivalent"),
    ("RNNActivationCount", recurrent("RNN", "RNNActivationCount", activations=["Tanh", "Tanh"]), "activations lists 2 functions"),
    ("LSTMDynamicW", Case("LSTMDynamicW", [N("LSTM", ["x", "W", "R"], ["y"], hidden_size=4)], [("x", F, [5, 2, 3]), ("W", F, [1, 16, 3])],
                          [("y", F)], [("R", w(1, 16, 4))]), "W 'W' must be constant"),
    ("GRUDynamicB", Case("GRUDynamicB", [N("GRU", ["x", "W", "R", "B"], ["y"], hidden_size=4)], [("x", F, [5, 2, 3]), ("B", F, [1, 24])],
                         [("y", F)], [("W", w(1, 12, 3)), ("R", w(1, 12, 4))]), "B 'B' must be constant"),
    ("RNNHiddenSize", Case("RNNHiddenSize", [N("RNN", ["x", "W", "R"], ["y"], hidden_size=5)], [("x", F, [5, 2, 3])], [("y", F)],
                           [("W", w(1, 4, 3)), ("R", w(1, 4, 4))]), "hidden_size 5 contradicts R"),
    # Every dim below 2^31 but 4·(2^30+5)² elements: refused by the lowering, not caught later as an invalid program.
    ("PadElementsBeyondCoreML", Case("PadElementsBeyondCoreML", [N("Pad", ["x", "p"], ["y"])], X4, [("y", F)],
                                     [("p", np.array([0, 0, 1 << 30, 1 << 30, 0, 0, 0, 0], np.int64))]),
     "more elements than any tensor Core ML holds"),
    # A scan output whose length a data-dependent condition decides.
    ("LoopScanStops", loop_case("LoopScanStops", condition=True, scan=True), "lowered only when all 5 iterations run"),
    # Scan-8: a batch dim and sequence_lens, which MIL's while_loop has no form for.
    ("ScanOpset8", Case("ScanOpset8", [N("Scan", ["", "acc0", "xs"], ["acc", "sums"], num_scan_inputs=1,
        body=helper.make_graph([N("Add", ["a_in", "r"], ["a_out"]), N("Identity", ["a_out"], ["r_out"])], "body",
                               [vi("a_in", F, [4]), vi("r", F, [4])], [vi("a_out", F, [4]), vi("r_out", F, [4])]))],
        [("acc0", F, [1, 4]), ("xs", F, [1, 5, 4])], [("acc", F), ("sums", F)], opset=8), "Scan-8's batched form"),
    ("IfBranchNoLowering", Case("IfBranchNoLowering", [N("ReduceSum", ["x"], ["t"], keepdims=0), N("Greater", ["t", "zero"], ["flag"]),
        N("If", ["flag"], ["y"], then_branch=helper.make_graph([N("Add", ["x", "x"], ["a"])], "then", [], [vi("a", F, [3])]),
          else_branch=helper.make_graph([N("Hardmax", ["x"], ["b"])], "else", [], [vi("b", F, [3])]))],
        [("x", F, [3])], [("y", F)], [("zero", np.array(0, np.float32))]), "else_branch node 'b' (Hardmax): no Core ML lowering for Hardmax"),
    ("CastToString", Case("CastToString", [N("Cast", ["x"], ["y"], to=TensorProto.STRING)], [("x", F, [3])], [("y", TensorProto.STRING)]),
     "string"),
]


@pytest.mark.parametrize("name,case,expected", REFUSALS, ids=[r[0] for r in REFUSALS])
def test_precondition_refusals(mlpkg, tmp_path, name, case, expected):
    src = tmp_path / f"{name}.onnx"
    onnx.save(case.model(), src)
    pkg = tmp_path / f"{name}.mlpkg"
    r = run([str(mlpkg), "convert", str(src), "-o", str(pkg), "--weights", "fp32", "--quiet"], tmp_path)
    assert r.returncode == 0, r.stderr
    out = tmp_path / "R.mlpackage"
    r = run([str(mlpkg), "export", str(pkg), "--format", "coreml", "-o", str(out)], tmp_path)
    assert r.returncode == 1, r.stdout + r.stderr
    errors = [l for l in r.stderr.splitlines() if l.startswith("error:")]
    assert len(errors) == 1 and expected in errors[0], r.stderr
    assert not out.exists()


def test_every_lowering_has_a_case():
    """Each ONNX op with a lowering appears in a numerically checked case above."""
    covered = {n.op_type for c in CASES for n in c.nodes}
    lowered = {
        "Add", "Sub", "Mul", "Div", "Pow", "Equal", "Greater", "Less", "GreaterOrEqual", "LessOrEqual", "And", "Or", "Xor",
        "Mod", "PRelu", "Sum", "Mean", "Max", "Min", "Relu", "Sigmoid", "Tanh", "Exp", "Log", "Sqrt", "Abs", "Reciprocal",
        "Floor", "Ceil", "Sin", "Cos", "Erf", "Sign", "Not", "Softplus", "Neg", "LeakyRelu", "Elu", "HardSigmoid", "Gelu",
        "Selu", "ThresholdedRelu", "HardSwish", "Mish", "Clip", "MatMul", "Gemm", "Conv", "ConvTranspose", "MaxPool",
        "AveragePool", "LpPool", "GlobalAveragePool", "GlobalMaxPool", "GlobalLpPool", "BatchNormalization",
        "LayerNormalization", "InstanceNormalization", "Softmax", "LogSoftmax", "ReduceMean", "ReduceSum", "ReduceMax",
        "ReduceMin", "ReduceProd", "ReduceL1", "ReduceL2", "ReduceLogSumExp", "ReduceSumSquare", "ArgMax", "ArgMin",
        "Reshape", "Flatten", "Squeeze", "Unsqueeze", "Transpose", "Concat", "Split", "Slice", "Expand", "Tile", "Gather",
        "GatherElements", "Where", "Cast", "Pad", "Resize", "Upsample", "Identity", "Dropout", "DequantizeLinear",
        "IsNaN", "IsInf", "GatherND", "CumSum", "TopK", "Trilu", "DepthToSpace", "SpaceToDepth", "LRN", "ScatterND", "ScatterElements",
        "LSTM", "GRU", "RNN", "GroupNormalization", "Einsum", "GridSample", "If", "Loop", "Scan",
    }
    assert lowered - covered == set()


@pytest.mark.parametrize("compute", ["fp32", "fp16"])
def test_control_flow_takes_either_branch_and_stops_when_told(mlpkg, tmp_path, compute):
    """An If decided at run time is one MIL cond (both branches taken on inputs chosen for each); a Loop is one
    while_loop, run for its trip count or until its condition turns false."""
    threshold = 0.99999 if compute == "fp32" else 0.999
    for case, feeds in ((if_case("IfBothBranches"), [np.full((3, 4), 0.5, np.float32), np.full((3, 4), -0.5, np.float32)]),
                        (loop_case("LoopStops", condition=True), [np.full((2, 3), 0.1, np.float32), np.full((2, 3), 3.0, np.float32)])):
        out = export_case(mlpkg, tmp_path, case, compute)
        types = [op.type for op in program_ops(load_spec(out))]
        assert types.count("cond" if case.name.startswith("If") else "while_loop") == 1, types
        sess = ort.InferenceSession(case.model().SerializeToString(), providers=["CPUExecutionProvider"])
        for x in feeds:
            f = {"x": x} if case.name.startswith("If") else {"x": x, "v0": x}
            for (name, _), expected in zip(case.outputs, sess.run(None, f)):
                c = cosine(np.asarray(evaluate(out, f)[name]), expected)
                assert c >= threshold, f"{case.name} {name}: cosine {c:.7f}"
