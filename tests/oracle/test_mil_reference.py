"""Cross-checks of the numpy ML Program evaluator (tests/oracle/mil_reference.py).

Needs coremltools, onnx and onnxruntime; never the mlpkg binary.

* value inference: every op in mil_reference.OPS for which coremltools' op class defines
  `value_inference` (or, for constexpr ops, `materialized_val_inference`) is built with
  coremltools' builder on constant inputs inside `mb.program(opset_version=...)`; the value
  coremltools infers is compared with mil_reference.run_op on the same inputs (random inputs
  from np.random.default_rng with fixed seeds; several shapes, broadcasting, negative axes,
  parameter choices and dtypes per op). test_value_inference_coverage enforces that every such
  op has cases.
* onnxruntime: ops without value inference (conv, conv_transpose, pooling, norms, resizing,
  depth/space, silu, one_hot, local_response_norm), and the parts of ops whose coremltools value
  inference is broken (cumsum exclusive), are compared with onnxruntime running the equivalent
  ONNX op built with onnx.helper (MIL pads [b0, e0, b1, e1, ...] become ONNX [b0, b1, ..., e0,
  e1, ...]). Where the MIL definition states the semantics with examples (resize_bilinear's
  sampling grids, concat interleave, constexpr_lut_to_dense's cases) those are checked
  literally too.
* packages: programs saved by coremltools (`ct.convert(prog, ...).save(...)`) are loaded with
  load_program (which parses the blob storage itself) and run with evaluate(): conv -> relu ->
  reshape -> linear in fp32 (matching a direct numpy computation to 1e-5) and fp16
  (cosine >= 0.999), and compressed weights (constexpr ops with int4/int8/uint8/uint1..uint6
  blobs, iOS16 attribute form and iOS18 input form).

Tolerances: integer and bool results exact; fp32 rtol 1e-5 with atol 1e-6 x max(1, max|ref|)
(atol 1e-5 x ... for accumulations: conv, pooling, matmul-like and norms, where float32
summation order in the reference differs from this float64 evaluator); fp16 results rtol/atol
2e-3 (one fp16 ulp is 2^-10 relative).
"""

from __future__ import annotations

import math
import shutil
import struct
import warnings
from pathlib import Path
from typing import Any

import coremltools as ct  # prints "Failed to load libcoremlpython" on Linux: harmless
import numpy as np
import onnxruntime as ort
import pytest
from coremltools.converters.mil import Builder as mb
from coremltools.converters.mil.mil import Operation as _MILOperation
from coremltools.converters.mil.mil import types as _types
from coremltools.converters.mil.mil.ops.registry import SSAOpRegistry
from onnx import TensorProto, helper

import mil_reference as mr

IOS = {15: ct.target.iOS15, 16: ct.target.iOS16, 17: ct.target.iOS17, 18: ct.target.iOS18}
INT4 = _types.np_int4_dtype
UINT = {1: _types.np_uint1_dtype, 2: _types.np_uint2_dtype, 3: _types.np_uint3_dtype,
        4: _types.np_uint4_dtype, 6: _types.np_uint6_dtype, 8: np.dtype(np.uint8)}


# ----------------------------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------------------------

def rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def f32(g: np.random.Generator, *shape: int, lo: float | None = None,
        hi: float | None = None) -> np.ndarray:
    if lo is None:
        return g.standard_normal(shape).astype(np.float32)
    return g.uniform(lo, hi, shape).astype(np.float32)


def i32(g: np.random.Generator, *shape: int, lo: int = -5, hi: int = 6) -> np.ndarray:
    return g.integers(lo, hi, shape).astype(np.int32)


def assert_close(got: Any, ref: Any, what: str, acc: bool = False) -> None:
    got, ref = np.asarray(got), np.asarray(ref)
    assert got.shape == ref.shape, f"{what}: shape {got.shape} != reference {ref.shape}"
    if ref.dtype.kind in "biu" or got.dtype.kind in "biu":
        np.testing.assert_array_equal(got, ref, err_msg=what)
        return
    r64, g64 = ref.astype(np.float64), got.astype(np.float64)
    if ref.dtype == np.float16 or got.dtype == np.float16:
        np.testing.assert_allclose(g64, r64, rtol=2e-3, atol=2e-3, err_msg=what)
        return
    finite = r64[np.isfinite(r64)]
    scale = max(1.0, float(np.abs(finite).max()) if finite.size else 1.0)
    np.testing.assert_allclose(g64, r64, rtol=1e-5, atol=(1e-5 if acc else 1e-6) * scale,
                               err_msg=what)


def coreml_reference(op: str, kwargs: dict[str, Any], ios: int) -> tuple[list[Any], list[str]]:
    """Build `op` with coremltools' builder on constant inputs; return the values coremltools
    infers for its outputs (value_inference, or materialized_val_inference for constexpr ops)
    and their MIL dtypes."""
    got: dict[str, Any] = {}

    @mb.program(input_specs=[], opset_version=IOS[ios])
    def _prog():
        res = getattr(mb, op)(**kwargs)
        outs = list(res) if isinstance(res, (list, tuple)) else [res]
        if op.startswith("constexpr_") or (op == "dequantize" and outs[0].val is None):
            got["vals"] = [outs[0].op.materialized_val_inference()]
        else:
            got["vals"] = [v.val for v in outs]
        got["dtypes"] = [_types.builtin_to_string(v.dtype) for v in outs]
        return mb.const(val=np.float32(0))

    for v in got["vals"]:
        assert v is not None, f"coremltools inferred no value for {op}"
    return got["vals"], got["dtypes"]


def in_dtypes_of(kwargs: dict[str, Any]) -> dict[str, str]:
    """MIL dtype names of coremltools' sub-byte numpy dtypes (int8/uint8 with metadata)."""
    out = {}
    for k, v in kwargs.items():
        md = v.dtype.metadata if isinstance(v, np.ndarray) else None
        if md and _types.SUB_BYTE_DTYPE_METADATA_KEY in md:
            out[k] = _types.builtin_to_string(md[_types.SUB_BYTE_DTYPE_METADATA_KEY])
    return out


def plain(v: Any) -> Any:
    """Strip coremltools' sub-byte dtype metadata (run_op gets the dtype via in_dtypes)."""
    if isinstance(v, np.ndarray) and v.dtype.metadata:
        return v.astype(np.int8 if v.dtype.kind == "i" else np.uint8)
    if isinstance(v, (list, tuple)):
        return [plain(e) for e in v]
    return v


# ----------------------------------------------------------------------------------------------
# value-inference cases
# ----------------------------------------------------------------------------------------------

VI_CASES: list[Any] = []


def vi(op: str, ios: int = 18, tag: str = "", acc: bool = False, **kwargs: Any) -> None:
    VI_CASES.append(pytest.param(op, kwargs, ios, acc, id=f"{op}-{tag or len(VI_CASES)}"))


BROADCAST_SHAPES = [((2, 3, 4), (2, 3, 4)), ((2, 3, 4), (4,)), ((3, 1, 5), (1, 4, 1)),
                    ((), (2, 3)), ((2, 1), ())]


def _binary_cases() -> None:
    for si, (sa, sb) in enumerate(BROADCAST_SHAPES):
        g = rng(100 + si)
        for op in ("add", "sub", "mul", "maximum", "minimum"):
            vi(op, tag=f"fp32-{si}", x=f32(g, *sa), y=f32(g, *sb))
            vi(op, tag=f"int32-{si}", x=i32(g, *sa, lo=-100, hi=100), y=i32(g, *sb, lo=-100, hi=100))
            vi(op, tag=f"fp16-{si}", x=f32(g, *sa).astype(np.float16),
               y=f32(g, *sb).astype(np.float16))
        nz_f = lambda *s: (f32(g, *s, lo=0.5, hi=3.0) * g.choice([-1, 1], s)).astype(np.float32)
        nz_i = lambda *s: (g.integers(1, 6, s) * g.choice([-1, 1], s)).astype(np.int32)
        for op in ("real_div", "floor_div", "mod"):
            vi(op, tag=f"fp32-{si}", x=f32(g, *sa, lo=-10, hi=10), y=nz_f(*sb))
            vi(op, tag=f"int32-{si}", x=i32(g, *sa, lo=-20, hi=21), y=nz_i(*sb))
        vi("real_div", tag=f"fp16-{si}", x=f32(g, *sa).astype(np.float16),
           y=nz_f(*sb).astype(np.float16))
        vi("pow", tag=f"fp32-{si}", x=f32(g, *sa, lo=0.5, hi=2.0), y=f32(g, *sb, lo=-2, hi=2))
        vi("pow", tag=f"int32-{si}", x=i32(g, *sa, lo=-4, hi=5), y=i32(g, *sb, lo=0, hi=4))
        for op in ("equal", "not_equal", "less", "less_equal", "greater", "greater_equal"):
            vi(op, tag=f"fp32-{si}", x=i32(g, *sa, lo=-2, hi=3).astype(np.float32),
               y=i32(g, *sb, lo=-2, hi=3).astype(np.float32))
            vi(op, tag=f"int32-{si}", x=i32(g, *sa, lo=-2, hi=3), y=i32(g, *sb, lo=-2, hi=3))
        for op in ("logical_and", "logical_or", "logical_xor"):
            vi(op, tag=f"{si}", x=g.random(sa) < 0.5, y=g.random(sb) < 0.5)
        vi("select", tag=f"fp32-{si}", cond=g.random(sa) < 0.5, a=f32(g, *sb), b=f32(g, *sa))
        vi("select", tag=f"int32-{si}", cond=g.random(sb) < 0.5, a=i32(g, *sa), b=i32(g, *sb))
    g = rng(99)
    vi("logical_not", tag="r3", x=g.random((2, 3, 4)) < 0.5)
    vi("logical_not", tag="scalar", x=np.bool_(True))


def _unary_cases() -> None:
    g = rng(200)
    general = ["relu", "relu6", "sigmoid", "tanh", "exp", "abs", "sign", "floor", "ceil", "sin",
               "cos", "erf", "square", "atan", "sinh", "cosh", "exp2", "softsign", "softplus"]
    for op in general:
        vi(op, tag="fp32", x=f32(g, 2, 3, 4) * 3)
        vi(op, tag="fp16", x=(f32(g, 3, 5) * 3).astype(np.float16))
    vi("relu6", tag="wide", x=f32(g, 50) * 10)
    vi("sigmoid", tag="extreme", x=np.array([-100, -20, 0, 20, 100], np.float32))
    vi("softplus", tag="extreme", x=np.array([-100, -20, 0, 20, 80], np.float32))
    for op in ("abs", "sign", "square"):
        vi(op, tag="int32", x=i32(g, 4, 5, lo=-50, hi=50))
    vi("exp2", tag="int32", x=i32(g, 10, lo=0, hi=10))
    halves = np.array([-2.5, -1.5, -0.5, 0.5, 1.5, 2.5, 3.5, -3.49, 0.49], np.float32)
    vi("round", tag="halves", x=halves)
    vi("round", tag="fp32", x=f32(g, 3, 4) * 5)
    vi("round", tag="fp16", x=halves.astype(np.float16))
    for op in ("asin", "acos", "atanh"):
        vi(op, tag="fp32", x=f32(g, 3, 4, lo=-0.95, hi=0.95))
    vi("tan", tag="fp32", x=f32(g, 3, 4, lo=-1.4, hi=1.4))
    vi("sqrt", tag="fp32", x=f32(g, 3, 4, lo=0, hi=10))
    vi("sqrt", tag="fp16", x=f32(g, 7, lo=0, hi=10).astype(np.float16))
    for op, lo in (("log", 0.01), ("rsqrt", 0.01), ("inverse", 0.1)):
        vi(op, tag="default-eps", x=f32(g, 2, 5, lo=lo, hi=10))
        vi(op, tag="eps", x=f32(g, 2, 5, lo=lo, hi=10), epsilon=np.float32(0.5))
        vi(op, tag="fp16", x=f32(g, 6, lo=lo, hi=10).astype(np.float16))
        vi(op, tag="ios17-eps-fp32-on-fp16", ios=17, x=f32(g, 6, lo=lo, hi=10).astype(np.float16),
           epsilon=np.float32(0.25))
    vi("log", tag="zero", x=np.array([0.0, 1e-30, 1.0], np.float32))
    for mode in ("EXACT", "TANH_APPROXIMATION", "SIGMOID_APPROXIMATION"):
        vi("gelu", tag=mode, x=f32(g, 3, 7) * 3, mode=mode)
        vi("gelu", tag=f"{mode}-fp16", x=(f32(g, 9) * 3).astype(np.float16), mode=mode)
    vi("gelu", tag="default", x=f32(g, 11) * 3)
    vi("elu", tag="fp32", x=f32(g, 3, 4) * 2, alpha=np.float32(0.7))
    vi("elu", tag="fp16", x=(f32(g, 9) * 2).astype(np.float16), alpha=np.float16(1.5))
    vi("leaky_relu", tag="fp32", x=f32(g, 3, 4), alpha=np.float32(0.1))
    vi("leaky_relu", tag="ios17", ios=17, x=f32(g, 2, 5).astype(np.float16), alpha=np.float32(0.2))
    vi("prelu", tag="r4", x=f32(g, 2, 3, 4, 5), alpha=f32(g, 3, lo=0, hi=1))
    vi("prelu", tag="r3-uniform", x=f32(g, 2, 3, 5), alpha=np.full(3, 0.25, np.float32))
    vi("prelu", tag="r5-uniform", x=f32(g, 1, 2, 3, 2, 2), alpha=np.full(2, 0.5, np.float32))
    vi("clip", tag="fp32", x=f32(g, 4, 5) * 3, alpha=np.float32(-1), beta=np.float32(1.5))
    vi("clip", tag="fp16", x=(f32(g, 9) * 3).astype(np.float16), alpha=np.float16(-0.5),
       beta=np.float16(2))
    vi("sigmoid_hard", tag="fp32", x=f32(g, 4, 5) * 4, alpha=np.float32(0.2), beta=np.float32(0.5))
    vi("threshold", tag="fp32", x=f32(g, 4, 5), alpha=np.float32(0.3))
    vi("threshold", tag="int32", x=i32(g, 4, 5), alpha=np.int32(1))
    vi("thresholded_relu", tag="fp32", x=f32(g, 4, 5), alpha=np.float32(0.3))
    vi("clamped_relu", tag="fp32", x=f32(g, 4, 5) * 5, alpha=np.float32(0.3), beta=np.float32(2))
    vi("scaled_tanh", tag="fp32", x=f32(g, 4, 5), alpha=np.float32(1.7), beta=np.float32(0.6))
    vi("linear_activation", tag="fp32", x=f32(g, 4, 5), alpha=np.float32(-1.5),
       beta=np.float32(0.25))
    vi("softplus_parametric", tag="r4", x=f32(g, 2, 3, 4, 2), alpha=f32(g, 3, lo=0.5, hi=2),
       beta=f32(g, 3, lo=0.5, hi=2))
    # cast (float -> int truncates toward zero)
    frac = np.array([-2.7, -1.5, -0.5, -0.2, 0.0, 0.3, 0.5, 1.5, 2.7, 99.9], np.float32)
    vi("cast", tag="fp32-int32", x=frac, dtype="int32")
    vi("cast", tag="fp32-fp16", x=f32(g, 3, 4) * 100, dtype="fp16")
    vi("cast", tag="fp32-bool", x=np.array([0.0, -0.0, 1.0, -2.5, 1e-30], np.float32), dtype="bool")
    vi("cast", tag="int32-fp32", x=i32(g, 3, 4, lo=-1000, hi=1000), dtype="fp32")
    vi("cast", tag="int32-bool", x=i32(g, 3, 4, lo=-2, hi=3), dtype="bool")
    vi("cast", tag="bool-int32", x=g.random((3, 4)) < 0.5, dtype="int32")
    vi("cast", tag="bool-fp16", x=g.random((5,)) < 0.5, dtype="fp16")
    vi("cast", tag="fp16-fp32", x=f32(g, 6).astype(np.float16), dtype="fp32")
    vi("cast", tag="fp16-int32", x=frac.astype(np.float16), dtype="int32")
    vi("cast", tag="ios17-fp32-int8", ios=17, x=frac * 10, dtype="int8")
    vi("cast", tag="ios17-int32-uint8", ios=17, x=i32(g, 7, lo=0, hi=256), dtype="uint8")
    vi("cast", tag="ios17-fp32-int16", ios=17, x=frac * 300, dtype="int16")
    vi("cast", tag="ios17-fp32-uint16", ios=17, x=np.abs(frac) * 300, dtype="uint16")


def _linalg_cases() -> None:
    g = rng(300)
    # rank-1 y is in ORT_CASES: coremltools' matmul type inference rejects it (IndexError)
    shapes = [((3, 4), (4, 5)), ((2, 3, 4), (4, 5)), ((4,), (2, 4, 3)), ((4,), (4, 3)),
              ((2, 1, 3, 4), (5, 4, 2)), ((1, 3, 4), (2, 4, 6))]
    for si, (sa, sb) in enumerate(shapes):
        vi("matmul", tag=f"{si}", acc=True, x=f32(g, *sa), y=f32(g, *sb))
    vi("matmul", tag="tx", acc=True, x=f32(g, 2, 4, 3), y=f32(g, 4, 5), transpose_x=True)
    vi("matmul", tag="ty", acc=True, x=f32(g, 2, 3, 4), y=f32(g, 2, 5, 4), transpose_y=True)
    vi("matmul", tag="txty", acc=True, x=f32(g, 4, 3), y=f32(g, 1, 5, 4), transpose_x=True,
       transpose_y=True)
    vi("matmul", tag="int32", x=i32(g, 2, 3, 4), y=i32(g, 4, 2))
    vi("matmul", tag="fp16", x=f32(g, 3, 4).astype(np.float16), y=f32(g, 4, 2).astype(np.float16))
    vi("linear", tag="bias", acc=True, x=f32(g, 2, 3, 4), weight=f32(g, 5, 4), bias=f32(g, 5))
    vi("linear", tag="nobias", acc=True, x=f32(g, 6, 4), weight=f32(g, 3, 4))
    vi("linear", tag="rank1", acc=True, x=f32(g, 4), weight=f32(g, 3, 4), bias=f32(g, 3))
    vi("einsum", tag="nchw", acc=True, values=(f32(g, 2, 3, 4, 5), f32(g, 2, 5, 4, 6)),
       equation="nchw,nwhu->nchu")
    vi("einsum", tag="nchw-bcast", acc=True, values=(f32(g, 1, 3, 1, 5), f32(g, 2, 5, 4, 6)),
       equation="nchw,nwhu->nchu")
    vi("einsum", tag="chw", acc=True, values=(f32(g, 3, 4, 5), f32(g, 5, 1, 2)),
       equation="chw,whr->chr")


def _norm_cases() -> None:
    g = rng(400)
    x = f32(g, 2, 3, 4, 5)
    vi("layer_norm", tag="last", acc=True, x=x, axes=[-1], gamma=f32(g, 5), beta=f32(g, 5))
    vi("layer_norm", tag="12", acc=True, x=x, axes=[1, 2], gamma=f32(g, 3, 4), beta=f32(g, 3, 4),
       epsilon=np.float32(1e-3))
    vi("layer_norm", tag="0-2", acc=True, x=x, axes=[0, -2], gamma=f32(g, 2, 4))
    # coremltools cannot build layer_norm without axes (its default, range(rank), is not a
    # valid const); the default is checked in test_layer_norm_default_axes
    vi("layer_norm", tag="all", acc=True, x=f32(g, 3, 4), axes=[0, 1])
    vi("layer_norm", tag="fp16", x=f32(g, 2, 8).astype(np.float16), axes=[-1])
    vi("l2_norm", tag="r3", acc=True, x=f32(g, 3, 4, 5))
    vi("l2_norm", tag="r4", acc=True, x=f32(g, 2, 3, 4, 5), epsilon=np.float32(0.1))
    vi("softmax", tag="default", acc=True, x=f32(g, 2, 3, 5) * 3)
    vi("softmax", tag="axis0", acc=True, x=f32(g, 4, 3) * 3, axis=0)
    vi("softmax", tag="axis-2", acc=True, x=f32(g, 2, 3, 5) * 3, axis=-2)
    vi("softmax", tag="fp16", x=(f32(g, 2, 6) * 3).astype(np.float16), axis=1)
    q, k, v = f32(g, 2, 3, 4), f32(g, 2, 5, 4), f32(g, 2, 5, 6)
    vi("scaled_dot_product_attention", tag="plain", acc=True, query=q, key=k, value=v)
    vi("scaled_dot_product_attention", tag="float-mask", acc=True, query=q, key=k, value=v, attn_mask=f32(g, 1, 3, 5))
    vi("scaled_dot_product_attention", tag="bool-mask", acc=True, query=f32(g, 1, 2, 3, 4), key=f32(g, 1, 2, 5, 4),
       value=f32(g, 1, 2, 5, 6), attn_mask=g.random((3, 5)) > 0.3)


def _reduction_cases() -> None:
    g = rng(500)
    ops = ["reduce_mean", "reduce_sum", "reduce_max", "reduce_min", "reduce_prod",
           "reduce_l1_norm", "reduce_l2_norm", "reduce_log_sum_exp", "reduce_sum_square"]
    for op in ops:
        for ti, (axes, keep) in enumerate([(None, False), ([1], False), ([-1, 0], True),
                                           ([0, 1, 2], False), ([2], True)]):
            kw: dict[str, Any] = {"keep_dims": keep}
            if axes is not None:
                kw["axes"] = axes
            vi(op, tag=f"fp32-{ti}", acc=True, x=f32(g, 2, 3, 4), **kw)
    for op in ("reduce_sum", "reduce_max", "reduce_min", "reduce_prod", "reduce_mean"):
        vi(op, tag="int32", x=i32(g, 3, 4, lo=-3, hi=4), axes=[1], keep_dims=False)
        vi(op, tag="int32-all", x=i32(g, 2, 3, lo=-3, hi=4))
    vi("reduce_sum", tag="fp16", x=f32(g, 2, 6).astype(np.float16), axes=[1])
    vi("reduce_log_sum", tag="fp32", acc=True, x=f32(g, 3, 4, lo=0.1, hi=2), axes=[0])
    for op in ("reduce_argmax", "reduce_argmin"):
        vi(op, tag="default", x=f32(g, 3, 4, 5))
        vi(op, tag="axis0-keep", x=f32(g, 3, 4, 5), axis=0, keep_dims=True)
        vi(op, tag="ties-int32", x=i32(g, 4, 6, lo=0, hi=3), axis=1)
        vi(op, tag="axis-2", x=f32(g, 3, 4, 5), axis=-2, keep_dims=False)


def _shape_cases() -> None:
    g = rng(600)
    x = f32(g, 2, 3, 4)
    vi("reshape", tag="flat", x=x, shape=[-1])
    vi("reshape", tag="ios15-zero", ios=15, x=x, shape=[0, -1, 2])
    vi("reshape", tag="ios17-zero-right-aligned", ios=17, x=x, shape=[0, -1])
    vi("reshape", tag="ios17-doc", ios=17, x=f32(g, 2, 50), shape=[1, 0, -1, 0])
    vi("reshape", tag="int32", x=i32(g, 6, 4), shape=[2, 3, 4])
    vi("reshape", tag="bool", x=g.random((4, 3)) < 0.5, shape=[3, 1, 4])
    vi("reshape", tag="to-scalar", x=f32(g, 1, 1), shape=np.zeros(0, np.int32))
    vi("transpose", tag="r3", x=x, perm=[2, 0, 1])
    vi("transpose", tag="r4-int", x=i32(g, 2, 3, 4, 5), perm=[0, 3, 1, 2])
    vi("concat", tag="axis0", values=[f32(g, 2, 3), f32(g, 4, 3)], axis=0)
    vi("concat", tag="axis-1-3", values=[f32(g, 2, 3, 1), f32(g, 2, 3, 2), f32(g, 2, 3, 4)],
       axis=-1)
    vi("concat", tag="int32", values=[i32(g, 2, 2), i32(g, 2, 5)], axis=1)
    vi("concat", tag="bool", values=[g.random((3,)) < 0.5, g.random((2,)) < 0.5], axis=0)
    vi("stack", tag="axis0", values=[f32(g, 2, 3), f32(g, 2, 3), f32(g, 2, 3)], axis=0)
    vi("stack", tag="axis-1", values=[i32(g, 2, 3), i32(g, 2, 3)], axis=-1)
    vi("split", tag="num", x=f32(g, 6, 4), num_splits=3, axis=0)
    vi("split", tag="sizes", x=f32(g, 2, 7), split_sizes=[2, 4, 1], axis=-1)
    vi("split", tag="int32", x=i32(g, 4, 2, 3), split_sizes=[1, 3], axis=0)
    y = f32(g, 5, 6, 7)
    sl = [
        dict(begin=[1, 0, 2], end=[4, 6, 7]),
        dict(begin=[-4, -5, 0], end=[-1, 6, 7], stride=[2, 1, 3]),
        dict(begin=[4, 5, 6], end=[0, 0, 0], stride=[-1, -2, -3], end_mask=[True, False, True]),
        dict(begin=[0, 2, 0], end=[0, 0, 0], begin_mask=[True, False, True],
             end_mask=[True, True, True], squeeze_mask=[False, True, False]),
        dict(begin=[-1, 0, 3], end=[0, 6, 4], squeeze_mask=[True, False, True]),
        dict(begin=[1, 1, 1], end=[5, 6, 7], stride=[2, 2, 2], begin_mask=[False, True, False]),
        dict(begin=[0, 0, 0], end=[99, 99, 99], stride=[1, 1, 1]),
    ]
    for i, kw in enumerate(sl):
        vi("slice_by_index", tag=f"{i}", x=y, **kw)
    vi("slice_by_index", tag="int32", x=i32(g, 4, 5), begin=[1, -3], end=[3, 5])
    vi("slice_by_size", tag="pos", x=y, begin=[1, 2, 3], size=[2, 3, 4])
    vi("slice_by_size", tag="neg-rest", x=y, begin=[-3, 0, -2], size=[-1, 2, -1])
    vi("squeeze", tag="all", x=f32(g, 1, 3, 1, 4, 1))
    vi("squeeze", tag="axes", x=f32(g, 1, 3, 1, 4, 1), axes=[0, -1])
    vi("squeeze", tag="int32", x=i32(g, 2, 1), axes=[1])
    vi("expand_dims", tag="0", x=f32(g, 3, 4), axes=[0])
    vi("expand_dims", tag="-1", x=f32(g, 3, 4), axes=[-1])
    vi("expand_dims", tag="multi", x=i32(g, 3, 4), axes=[0, 3])
    vi("expand_dims", tag="neg-multi", x=f32(g, 3, 4), axes=[-1, -4])
    vi("tile", tag="r2", x=f32(g, 2, 3), reps=[2, 3])
    vi("tile", tag="r3-int", x=i32(g, 1, 2, 3), reps=[3, 1, 2])
    vi("reverse", tag="all", x=f32(g, 2, 3, 4))
    vi("reverse", tag="axes", x=i32(g, 2, 3, 4), axes=[0, -1])
    vi("flatten2d", tag="1", x=f32(g, 2, 3, 4))
    vi("flatten2d", tag="2", x=f32(g, 2, 3, 4, 5), axis=2)
    vi("band_part", tag="lower1", x=f32(g, 2, 4, 5), lower=1, upper=-1)
    vi("band_part", tag="upper0", x=f32(g, 5, 4), lower=-1, upper=0)
    vi("band_part", tag="both", x=i32(g, 5, 5), lower=1, upper=2)
    # coremltools' value inference of scatter_along_axis ignores `mode` (np.put_along_axis): only "update" compares;
    # the reductions are checked against onnxruntime's ScatterElements below.
    for mode in ("update",):
        vi("scatter_along_axis", tag=f"ios15-{mode}", ios=15, data=f32(g, 3, 4), indices=np.array([[0, 3], [1, 2], [3, 0]], np.int32),
           updates=f32(g, 3, 2), axis=1, mode=mode)
    vi("gather", tag="ios15-axis0", ios=15, x=f32(g, 5, 3), indices=np.array([[0, 4], [2, -1]], np.int32))
    vi("gather", tag="ios15-axis-1", ios=15, x=f32(g, 2, 3, 6), indices=np.array([5, 0, -6], np.int32),
       axis=-1)
    vi("gather", tag="ios16-batch1", ios=16, x=f32(g, 2, 5, 3),
       indices=np.array([[0, 4, 1], [3, 3, 2]], np.int32), axis=1, batch_dims=1)
    vi("gather", tag="ios16-batch2", ios=16, x=f32(g, 2, 3, 4, 2),
       indices=g.integers(0, 4, (2, 3, 5)).astype(np.int32), axis=2, batch_dims=2)
    vi("gather", tag="ios18-int32", x=i32(g, 4, 3), indices=np.array(2, np.int32), axis=0)
    vi("gather", tag="ios18-validate", x=f32(g, 4, 3), indices=np.array([3, 0], np.int32), axis=0,
       validate_indices=True)
    vi("gather_along_axis", tag="axis0", x=f32(g, 4, 3), indices=g.integers(0, 4, (2, 3)).astype(np.int32))
    vi("gather_along_axis", tag="axis-1", x=f32(g, 2, 3, 5),
       indices=g.integers(0, 5, (2, 3, 7)).astype(np.int32), axis=-1)
    z = f32(g, 2, 3, 4)
    vi("pad", tag="const-last2", x=z, pad=np.array([1, 2, 0, 3], np.int32), mode="constant",
       constant_val=np.float32(-1.5))
    vi("pad", tag="const-all", x=z, pad=np.array([1, 0, 0, 1, 2, 2], np.int32))
    vi("pad", tag="reflect", x=z, pad=np.array([2, 1, 3, 2], np.int32), mode="reflect")
    vi("pad", tag="replicate", x=z, pad=np.array([0, 0, 2, 2, 4, 1], np.int32), mode="replicate")
    vi("pad", tag="fp16", x=z.astype(np.float16), pad=np.array([1, 1], np.int32),
       constant_val=np.float16(2))
    vi("fill", tag="fp32", shape=np.array([2, 3], np.int32), value=np.float32(1.5))
    vi("fill", tag="int32", shape=np.array([4], np.int32), value=np.int32(-7))
    vi("fill", tag="default", shape=np.array([2, 1, 2], np.int32))
    vi("fill_like", ios=16, tag="fp32", ref_tensor=f32(g, 2, 3), value=np.float32(3.25))
    vi("fill_like", ios=16, tag="int-from-float", ref_tensor=f32(g, 4), value=np.int32(2))
    vi("range_1d", tag="int", start=np.int32(-3), end=np.int32(10), step=np.int32(3))
    vi("range_1d", tag="int-neg", start=np.int32(5), end=np.int32(-4), step=np.int32(-2))
    vi("range_1d", tag="fp32", start=np.float32(0.5), end=np.float32(3.0), step=np.float32(0.25))
    vi("shape", tag="r3", x=z)
    vi("shape", tag="scalar", x=np.float32(2))
    vi("identity", tag="fp32", x=z)
    vi("identity", tag="bool", x=g.random((3,)) < 0.5)
    vi("const", tag="fp32", val=z)
    vi("const", tag="int32", val=i32(g, 4))
    vi("const", tag="fp16", val=z.astype(np.float16))
    distinct = g.permutation(60).reshape(3, 4, 5).astype(np.float32)
    vi("topk", tag="default", x=distinct)
    vi("topk", tag="k2-axis0-asc", x=distinct, k=2, axis=0, ascending=True)
    vi("topk", tag="int32", x=distinct.astype(np.int32), k=3, axis=-2)
    vi("topk", tag="ios16-values-only", ios=16, x=distinct, k=4, return_indices=False)
    vi("argsort", tag="desc", x=distinct)
    vi("argsort", tag="asc-axis0", x=distinct, axis=0, ascending=True)
    vi("cumsum", tag="axis0", acc=True, x=f32(g, 3, 4))
    vi("cumsum", tag="axis-1-rev", acc=True, x=f32(g, 2, 3, 5), axis=-1, reverse=True)
    vi("cumsum", tag="int32", x=i32(g, 4, 3), axis=1)
    vi("non_zero", tag="fp32", x=np.where(g.random((3, 4)) < 0.5, 0, f32(g, 3, 4)).astype(np.float32))
    vi("non_zero", tag="bool", x=g.random((2, 3, 2)) < 0.5)
    vi("non_zero", tag="int32-1d", x=i32(g, 9, lo=-1, hi=2))


def _constexpr_cases() -> None:
    g = rng(700)
    vi("constexpr_affine_dequantize", ios=16, tag="uint8-vector",
       quantized_data=g.integers(0, 256, (4, 6)).astype(np.uint8),
       zero_point=g.integers(0, 256, (4,)).astype(np.uint8), scale=f32(g, 4, lo=0.01, hi=0.1),
       axis=0)
    vi("constexpr_affine_dequantize", ios=16, tag="int8-axis1",
       quantized_data=g.integers(-128, 128, (3, 5, 2)).astype(np.int8),
       zero_point=g.integers(-128, 128, (5,)).astype(np.int8),
       scale=f32(g, 5, lo=0.01, hi=0.1), axis=-2)
    vi("constexpr_affine_dequantize", ios=16, tag="scalar-fp16",
       quantized_data=g.integers(0, 256, (4, 4)).astype(np.uint8), zero_point=np.uint8(128),
       scale=np.float16(0.03), axis=1)
    vi("constexpr_affine_dequantize", ios=17, tag="fp32-zp",
       quantized_data=g.integers(-128, 128, (4, 3)).astype(np.int8),
       zero_point=f32(g, 4, lo=-3, hi=3), scale=f32(g, 4, lo=0.01, hi=0.1), axis=0)
    # iOS17 activation quantization: round half to even, clip to the output type; scalar or per-axis parameters.
    halves = np.array([[0.5, 1.5, 2.5, -0.5], [-1.5, 300.0, -300.0, 0.26]], np.float32)
    vi("quantize", ios=17, tag="int8-halves", input=halves, scale=np.float32(1.0), zero_point=np.int8(0), output_dtype="int8")
    vi("quantize", ios=17, tag="uint8-axis", input=f32(g, 3, 4, lo=-2, hi=2), scale=f32(g, 4, lo=0.01, hi=0.05),
       zero_point=g.integers(0, 256, (4,)).astype(np.uint8), axis=1, output_dtype="uint8")
    vi("quantize", ios=17, tag="fp16-nozp", input=f32(g, 2, 5).astype(np.float16), scale=np.float16(0.02), output_dtype="int8")
    vi("dequantize", ios=17, tag="int8-scalar", input=g.integers(-128, 128, (3, 4)).astype(np.int8), scale=np.float32(0.05),
       zero_point=np.int8(3))
    vi("dequantize", ios=17, tag="uint8-axis0", input=g.integers(0, 256, (3, 4)).astype(np.uint8),
       scale=f32(g, 3, lo=0.01, hi=0.1), zero_point=g.integers(0, 256, (3,)).astype(np.uint8), axis=0)
    vi("constexpr_cast", ios=16, tag="fp16", source_val=f32(g, 3, 4).astype(np.float16),
       output_dtype="fp32")
    vi("constexpr_blockwise_shift_scale", tag="int4-blocks",
       data=g.integers(-8, 8, (6, 8)).astype(INT4), scale=f32(g, 2, 4, lo=0.01, hi=1),
       offset=g.integers(-8, 8, (2, 4)).astype(INT4))
    vi("constexpr_blockwise_shift_scale", tag="uint4-per-channel",
       data=g.integers(0, 16, (4, 6)).astype(UINT[4]), scale=f32(g, 4, 1, lo=0.01, hi=1),
       offset=g.integers(0, 16, (4, 1)).astype(UINT[4]))
    vi("constexpr_blockwise_shift_scale", tag="int8-no-offset",
       data=g.integers(-128, 128, (2, 4, 6)).astype(np.int8), scale=f32(g, 1, 2, 3, lo=0.01, hi=1))
    vi("constexpr_blockwise_shift_scale", tag="uint8-fp16",
       data=g.integers(0, 256, (4, 4)).astype(np.uint8),
       scale=f32(g, 2, 1, lo=0.01, hi=0.1).astype(np.float16),
       offset=g.integers(0, 256, (2, 1)).astype(np.uint8))
    vi("constexpr_blockwise_shift_scale", tag="fp16-offset",
       data=g.integers(-8, 8, (4, 4)).astype(INT4), scale=f32(g, 1, 2, lo=0.1, hi=1),
       offset=f32(g, 1, 2, lo=-1, hi=1))
    for nbits in (1, 2, 4, 6, 8):
        n = 2 ** nbits
        count = 4 * 6
        idx = g.integers(0, n, count).astype(np.uint8)
        bits = ((idx[:, None] >> np.arange(nbits)) & 1).astype(np.uint8).reshape(-1)
        packed = np.packbits(bits, bitorder="little")
        vi("constexpr_lut_to_dense", ios=16, tag=f"ios16-{nbits}bit", indices=packed,
           lut=f32(g, n), shape=np.array([4, 6], np.uint32))
    vi("constexpr_lut_to_dense", tag="ios18-uint3-groups",
       indices=g.integers(0, 8, (6, 4)).astype(UINT[3]), lut=f32(g, 3, 2, 8, 1))
    vi("constexpr_lut_to_dense", tag="ios18-uint2-vector-axis0",
       indices=g.integers(0, 4, (3, 4)).astype(UINT[2]), lut=f32(g, 1, 2, 4, 2),
       vector_axis=np.int32(0))
    vi("constexpr_lut_to_dense", tag="ios18-uint1-vector-axis-1",
       indices=g.integers(0, 2, (2, 2, 2)).astype(UINT[1]),
       lut=g.integers(-100, 100, (1, 1, 1, 2, 3)).astype(np.int8), vector_axis=np.int32(-1))
    vi("constexpr_lut_to_dense", tag="ios18-uint6-fp16",
       indices=g.integers(0, 64, (4, 4)).astype(UINT[6]),
       lut=f32(g, 2, 1, 64, 1).astype(np.float16))


_binary_cases()
_unary_cases()
_linalg_cases()
_norm_cases()
_reduction_cases()
_shape_cases()
_constexpr_cases()


@pytest.mark.parametrize("op,kwargs,ios,acc", VI_CASES)
def test_value_inference(op: str, kwargs: dict[str, Any], ios: int, acc: bool) -> None:
    with np.errstate(all="ignore"):
        ref_vals, ref_dtypes = coreml_reference(op, kwargs, ios)
    got = mr.run_op(op, {k: plain(v) for k, v in kwargs.items()}, ios=ios,
                    out_dtypes=ref_dtypes, in_dtypes=in_dtypes_of(kwargs))
    got = list(got) if isinstance(got, tuple) else [got]
    assert len(got) == len(ref_vals)
    for i, (gv, rv, dt) in enumerate(zip(got, ref_vals, ref_dtypes)):
        rv = mr.to_dtype(rv, dt) if dt in mr.STORAGE else np.asarray(rv)
        assert_close(gv, rv, f"{op} output {i} ({dt})", acc=acc)


def _has_value_inference(op_type: str) -> bool:
    for cls in SSAOpRegistry.core_ops.get(op_type, {}).values():
        names = {n for k in cls.__mro__ if k not in (_MILOperation, object) for n in vars(k)}
        if "value_inference" in names or "materialized_val_inference" in names:
            return True
    return False


def test_value_inference_coverage() -> None:
    """Every op of the registry that coremltools can value-infer has value-inference cases."""
    tested = {p.values[0] for p in VI_CASES}
    need = {op for op in mr.OPS if _has_value_inference(op)}
    assert need - tested == set(), f"ops with value inference but no cases: {need - tested}"


# ----------------------------------------------------------------------------------------------
# onnxruntime cases
# ----------------------------------------------------------------------------------------------

ONNX_TYPES = {np.dtype(np.float32): TensorProto.FLOAT, np.dtype(np.int64): TensorProto.INT64,
              np.dtype(np.int32): TensorProto.INT32, np.dtype(np.bool_): TensorProto.BOOL}


def ort_run(nodes: list, feeds: dict[str, np.ndarray], outputs: list[tuple[str, int]],
            opset: int = 18) -> list[np.ndarray]:
    graph = helper.make_graph(
        nodes, "g",
        [helper.make_tensor_value_info(k, ONNX_TYPES[v.dtype], list(v.shape))
         for k, v in feeds.items()],
        [helper.make_tensor_value_info(n, t, None) for n, t in outputs])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 9
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    return sess.run([n for n, _ in outputs], feeds)


def onnx_pads(mil_pad: list[int]) -> list[int]:
    """MIL [b0, e0, b1, e1, ...] -> ONNX [b0, b1, ..., e0, e1, ...]."""
    return list(mil_pad[0::2]) + list(mil_pad[1::2])


ORT_CASES: list[Any] = []


def ortc(op: str, tag: str, fn) -> None:
    ORT_CASES.append(pytest.param(op, fn, id=f"{op}-{tag}"))


def _single(onnx_op: str, mil_inputs: dict[str, Any], onnx_inputs: list[tuple[str, np.ndarray]],
            attrs: dict[str, Any], n_out: int = 1, opset: int = 18,
            out_type: int = TensorProto.FLOAT):
    names = [n if a is not None else "" for n, a in onnx_inputs]
    node = helper.make_node(onnx_op, names, [f"y{i}" for i in range(n_out)], **attrs)
    feeds = {n: a for n, a in onnx_inputs if a is not None}
    return ort_run([node], feeds, [(f"y{i}", out_type) for i in range(n_out)], opset)


def _conv_case(seed: int, nd: int, pad_type: str, pad: list[int] | None, strides, dil, groups,
               cin: int, cout: int, k, bias: bool, size) -> None:
    def fn():
        g = rng(seed)
        x = f32(g, 2, cin, *size)
        w = f32(g, cout, cin // groups, *k)
        b = f32(g, cout) if bias else None
        mil = dict(x=x, weight=w, bias=b, strides=list(strides), dilations=list(dil),
                   groups=groups, pad_type=pad_type)
        attrs: dict[str, Any] = dict(strides=list(strides), dilations=list(dil), group=groups,
                                     kernel_shape=list(k))
        if pad_type == "custom":
            mil["pad"] = pad
            attrs["pads"] = onnx_pads(pad)
        elif pad_type != "valid" and any(d != 1 for d in dil):
            # onnxruntime has no SAME auto_pad with dilations: SAME_UPPER's pads, explicitly
            p = []
            for i in range(nd):
                eff = (k[i] - 1) * dil[i] + 1
                total = max(0, (-(-size[i] // strides[i]) - 1) * strides[i] + eff - size[i])
                before = total - total // 2 if pad_type == "same_lower" else total // 2
                p += [before, total - before]
            attrs["pads"] = onnx_pads(p)
        else:
            attrs["auto_pad"] = {"valid": "VALID", "same": "SAME_UPPER",
                                 "same_lower": "SAME_LOWER"}[pad_type]
        got = mr.run_op("conv", mil, out_dtypes=["fp32"])
        ref = _single("Conv", mil, [("x", x), ("w", w), ("b", b)], attrs)[0]
        return got, ref
    ortc("conv", f"{nd}d-{pad_type}-s{''.join(map(str, strides))}-d{''.join(map(str, dil))}-g{groups}"
         f"{'-bias' if bias else ''}-{seed}", fn)


def _conv_cases() -> None:
    _conv_case(1, 2, "valid", None, (1, 1), (1, 1), 1, 3, 4, (3, 3), True, (7, 8))
    _conv_case(2, 2, "custom", [1, 2, 0, 1], (2, 1), (1, 1), 1, 3, 5, (3, 2), True, (9, 6))
    _conv_case(3, 2, "same", None, (2, 2), (1, 1), 1, 2, 3, (3, 3), False, (7, 8))
    _conv_case(4, 2, "same", None, (1, 1), (1, 1), 1, 2, 3, (4, 2), True, (6, 5))
    _conv_case(5, 2, "same_lower", None, (1, 1), (1, 1), 1, 2, 3, (4, 2), True, (6, 5))
    _conv_case(6, 2, "same_lower", None, (2, 3), (1, 1), 1, 2, 2, (2, 4), False, (7, 9))
    _conv_case(7, 2, "custom", [2, 2, 1, 3], (1, 2), (2, 3), 1, 3, 4, (3, 2), True, (10, 11))
    _conv_case(8, 2, "valid", None, (1, 1), (1, 1), 2, 4, 6, (3, 3), True, (6, 6))
    _conv_case(9, 2, "custom", [1, 1, 1, 1], (1, 1), (1, 1), 4, 4, 8, (3, 3), True, (5, 5))
    _conv_case(10, 2, "same", None, (1, 1), (2, 2), 3, 3, 3, (3, 3), False, (8, 7))
    _conv_case(11, 1, "valid", None, (2,), (1,), 1, 3, 4, (3,), True, (11,))
    _conv_case(12, 1, "custom", [3, 1], (1,), (2,), 1, 2, 2, (4,), False, (9,))
    _conv_case(13, 1, "same", None, (3,), (1,), 2, 4, 2, (5,), True, (10,))
    _conv_case(14, 3, "custom", [1, 0, 0, 1, 1, 1], (1, 2, 1), (1, 1, 1), 1, 2, 3, (2, 3, 2),
               True, (4, 6, 5))
    _conv_case(15, 3, "same", None, (2, 1, 2), (1, 1, 1), 1, 2, 2, (3, 3, 3), False, (5, 4, 6))
    _conv_case(16, 3, "valid", None, (1, 1, 1), (2, 1, 1), 2, 2, 4, (2, 2, 2), True, (5, 3, 3))


def _conv_transpose_case(seed: int, tag: str, nd: int, pad_type: str, pad, strides, dil,
                         groups: int, cin: int, cog: int, k, bias: bool, size,
                         output_shape=None) -> None:
    def fn():
        g = rng(seed)
        x = f32(g, 2, cin, *size)
        w = f32(g, cin, cog, *k)
        b = f32(g, cog * groups) if bias else None
        mil = dict(x=x, weight=w, bias=b, strides=list(strides), dilations=list(dil),
                   groups=groups, pad_type=pad_type)
        full = [(size[i] - 1) * strides[i] + (k[i] - 1) * dil[i] + 1 for i in range(nd)]
        attrs: dict[str, Any] = dict(strides=list(strides), dilations=list(dil), group=groups,
                                     kernel_shape=list(k))
        if output_shape is not None:
            mil["output_shape"] = [2, cog * groups] + list(output_shape)
        if pad_type == "custom":
            mil["pad"] = pad
            onnx_p = list(pad)
            if output_shape is not None:   # extra rows appended at the end
                extra = [output_shape[i] - (full[i] - pad[2 * i] - pad[2 * i + 1]) for i in range(nd)]
                attrs["output_padding"] = extra
        elif pad_type == "valid":
            onnx_p = [0] * (2 * nd)
            if output_shape is not None:
                attrs["output_padding"] = [output_shape[i] - full[i] for i in range(nd)]
        else:  # same / same_lower: crop total = full - out, odd element after (same)
            outs = output_shape or [size[i] * strides[i] for i in range(nd)]
            onnx_p = []
            for i in range(nd):
                total = full[i] - outs[i]
                before = total - total // 2 if pad_type == "same_lower" else total // 2
                onnx_p += [before, total - before]
        attrs["pads"] = onnx_pads(onnx_p)
        got = mr.run_op("conv_transpose", mil, out_dtypes=["fp32"])
        ref = _single("ConvTranspose", mil, [("x", x), ("w", w), ("b", b)], attrs)[0]
        return got, ref
    ortc("conv_transpose", f"{nd}d-{tag}-{seed}", fn)


def _conv_transpose_cases() -> None:
    _conv_transpose_case(21, "valid", 2, "valid", None, (1, 1), (1, 1), 1, 3, 2, (3, 3), True, (4, 5))
    _conv_transpose_case(22, "valid-s2", 2, "valid", None, (2, 3), (1, 1), 1, 2, 3, (3, 2), False, (4, 3))
    _conv_transpose_case(23, "custom", 2, "custom", [1, 2, 0, 1], (2, 2), (1, 1), 1, 3, 2, (4, 3),
                         True, (3, 4))
    _conv_transpose_case(24, "custom-dil", 2, "custom", [1, 1, 2, 0], (1, 2), (2, 2), 1, 2, 2,
                         (3, 3), True, (4, 4))
    _conv_transpose_case(25, "groups", 2, "custom", [1, 1, 1, 1], (2, 2), (1, 1), 2, 4, 3, (3, 3),
                         True, (3, 3))
    _conv_transpose_case(26, "depthwise", 2, "valid", None, (2, 2), (1, 1), 3, 3, 1, (2, 2),
                         False, (3, 4))
    _conv_transpose_case(27, "same", 2, "same", None, (2, 2), (1, 1), 1, 2, 3, (3, 4), True, (3, 4))
    _conv_transpose_case(28, "same-output-shape", 2, "same", None, (2, 2), (1, 1), 1, 2, 2,
                         (3, 3), False, (3, 4), output_shape=[5, 7])
    _conv_transpose_case(29, "valid-output-shape", 2, "valid", None, (2, 2), (1, 1), 1, 2, 2,
                         (3, 3), True, (3, 3), output_shape=[8, 8])
    _conv_transpose_case(30, "custom-output-shape", 2, "custom", [1, 1, 1, 1], (3, 2), (1, 1), 1,
                         2, 2, (3, 3), True, (3, 3), output_shape=[8, 6])
    _conv_transpose_case(31, "valid", 1, "valid", None, (3,), (1,), 1, 2, 3, (4,), True, (5,))
    _conv_transpose_case(32, "custom", 1, "custom", [2, 1], (2,), (2,), 1, 3, 2, (3,), False, (6,))
    _conv_transpose_case(33, "custom", 3, "custom", [1, 0, 0, 1, 1, 1], (2, 1, 2), (1, 1, 1), 1,
                         2, 2, (2, 3, 2), True, (3, 3, 2))
    _conv_transpose_case(34, "same_lower", 2, "same_lower", None, (2, 1), (1, 1), 1, 2, 2, (3, 2),
                         True, (3, 3))


def _pool_case(op: str, seed: int, nd: int, pad_type: str, pad, k, strides, ceil: bool = False,
               exclude: bool = False, size=None) -> None:
    def fn():
        g = rng(seed)
        x = f32(g, 2, 3, *(size or [7] * nd))
        mil: dict[str, Any] = dict(x=x, kernel_sizes=list(k), strides=list(strides),
                                   pad_type=pad_type, ceil_mode=ceil)
        attrs: dict[str, Any] = dict(kernel_shape=list(k), strides=list(strides))
        if ceil:
            attrs["ceil_mode"] = 1
        if pad_type == "custom":
            mil["pad"] = pad
            attrs["pads"] = onnx_pads(pad)
        else:
            attrs["auto_pad"] = {"valid": "VALID", "same": "SAME_UPPER",
                                 "same_lower": "SAME_LOWER"}[pad_type]
        if op == "avg_pool":
            mil["exclude_padding_from_average"] = exclude
            attrs["count_include_pad"] = 0 if exclude else 1
            onnx_op = "AveragePool"
        elif op == "max_pool":
            onnx_op = "MaxPool"
        else:
            attrs["p"] = 2
            onnx_op = "LpPool"
        got = mr.run_op(op, mil, out_dtypes=["fp32"])
        ref = _single(onnx_op, mil, [("x", x)], attrs)[0]
        return got, ref
    ortc(op, f"{nd}d-{pad_type}-k{''.join(map(str, k))}-s{''.join(map(str, strides))}"
         f"{'-ceil' if ceil else ''}{'-excl' if exclude else ''}-{seed}", fn)


def _pool_cases() -> None:
    for op in ("avg_pool", "max_pool", "l2_pool"):
        excl_opts = (False, True) if op == "avg_pool" else (False,)
        for exclude in excl_opts:
            _pool_case(op, 41, 2, "valid", None, (3, 2), (2, 1), exclude=exclude)
            _pool_case(op, 42, 2, "custom", [1, 0, 2, 1], (3, 3), (1, 2), exclude=exclude)
            _pool_case(op, 43, 2, "same", None, (3, 2), (2, 2), exclude=exclude, size=[7, 6])
            _pool_case(op, 44, 1, "custom", [2, 1], (4,), (3,), exclude=exclude, size=[11])
            _pool_case(op, 45, 2, "custom", [1, 1, 1, 1], (3, 3), (2, 2), ceil=True,
                       exclude=exclude, size=[8, 9])
            _pool_case(op, 46, 2, "valid", None, (3, 3), (2, 2), ceil=True, exclude=exclude,
                       size=[8, 8])
            _pool_case(op, 47, 1, "custom", [1, 1], (2,), (2,), ceil=True, exclude=exclude,
                       size=[8])
            # ceil_mode windows starting past input + pad_before are dropped (5 -> 3, not 4)
            _pool_case(op, 50, 1, "custom", [1, 1], (2,), (2,), ceil=True, exclude=exclude,
                       size=[5])
            _pool_case(op, 51, 2, "custom", [1, 1, 2, 2], (2, 3), (2, 3), ceil=True,
                       exclude=exclude, size=[5, 7])
            if op != "l2_pool":
                _pool_case(op, 48, 3, "custom", [1, 0, 0, 1, 1, 1], (2, 3, 2), (1, 2, 2),
                           exclude=exclude, size=[4, 6, 5])
                _pool_case(op, 49, 2, "same_lower", None, (2, 3), (1, 1), exclude=exclude,
                           size=[5, 6])


def _norm_ort_cases() -> None:
    for seed, shape, gb in ((51, (2, 3, 5), True), (52, (2, 4, 3, 5), False),
                            (53, (1, 2, 3, 2, 4), True)):
        def bn(seed=seed, shape=shape, gb=gb):
            g = rng(seed)
            c = shape[1]
            x, mean, var = f32(g, *shape), f32(g, c), f32(g, c, lo=0.1, hi=2)
            gamma, beta = (f32(g, c), f32(g, c)) if gb else (None, None)
            mil = dict(x=x, mean=mean, variance=var, gamma=gamma, beta=beta,
                       epsilon=np.float32(1e-3))
            got = mr.run_op("batch_norm", mil, out_dtypes=["fp32"])
            ref = _single("BatchNormalization", mil,
                          [("x", x), ("s", gamma if gb else np.ones(c, np.float32)),
                           ("b", beta if gb else np.zeros(c, np.float32)), ("m", mean), ("v", var)],
                          dict(epsilon=1e-3))[0]
            return got, ref
        ortc("batch_norm", f"r{len(shape)}{'-gb' if gb else ''}", bn)
    for seed, shape, gb in ((54, (2, 3, 7), True), (55, (2, 3, 4, 5), True), (56, (1, 2, 4, 4), False)):
        def inn(seed=seed, shape=shape, gb=gb):
            g = rng(seed)
            c = shape[1]
            x = f32(g, *shape) * 2 + 1
            gamma, beta = (f32(g, c), f32(g, c)) if gb else (None, None)
            mil = dict(x=x, gamma=gamma, beta=beta)
            got = mr.run_op("instance_norm", mil, out_dtypes=["fp32"])
            ref = _single("InstanceNormalization", mil,
                          [("x", x), ("s", gamma if gb else np.ones(c, np.float32)),
                           ("b", beta if gb else np.zeros(c, np.float32))], dict(epsilon=1e-5))[0]
            return got, ref
        ortc("instance_norm", f"r{len(shape)}{'-gb' if gb else ''}", inn)
    for seed, shape, axis in ((57, (2, 3, 8), -1), (58, (2, 3, 4, 5), 2)):
        def ln(seed=seed, shape=shape, axis=axis):
            g = rng(seed)
            x = f32(g, *shape)
            norm = shape[axis:]
            gamma, beta = f32(g, *norm), f32(g, *norm)
            axes = list(range(axis % len(shape), len(shape)))
            mil = dict(x=x, axes=axes, gamma=gamma, beta=beta, epsilon=np.float32(1e-5))
            got = mr.run_op("layer_norm", mil, out_dtypes=["fp32"])
            ref = _single("LayerNormalization", mil, [("x", x), ("s", gamma), ("b", beta)],
                          dict(axis=axis, epsilon=1e-5))[0]
            return got, ref
        ortc("layer_norm", f"r{len(shape)}-axis{axis}", ln)
    # onnxruntime's LRN takes odd sizes only
    for seed, shape, size in ((59, (2, 5, 3, 3), 3), (60, (1, 6, 4, 2), 1), (61, (2, 3, 2, 2), 5)):
        def lrn(seed=seed, shape=shape, size=size):
            g = rng(seed)
            x = f32(g, *shape) * 3
            mil = dict(x=x, size=np.int32(size), alpha=np.float32(0.02), beta=np.float32(0.6),
                       k=np.float32(1.5))
            got = mr.run_op("local_response_norm", mil, out_dtypes=["fp32"])
            ref = _single("LRN", mil, [("x", x)], dict(size=size, alpha=0.02, beta=0.6,
                                                       bias=1.5))[0]
            return got, ref
        ortc("local_response_norm", f"r{len(shape)}-size{size}", lrn)


def _resize_ort(x: np.ndarray, out_hw: tuple[int, int], mode: str, ctm: str,
                roi: np.ndarray | None = None, nearest_mode: str = "floor") -> np.ndarray:
    sizes = np.array(list(x.shape[:-2]) + list(out_hw), np.int64)
    attrs: dict[str, Any] = dict(mode=mode, coordinate_transformation_mode=ctm)
    if mode == "nearest":
        attrs["nearest_mode"] = nearest_mode
    return _single("Resize", {}, [("x", x), ("roi", roi), ("scales", None), ("sizes", sizes)],
                   attrs)[0]


def _resize_cases() -> None:
    # resize_bilinear sampling modes vs ONNX Resize linear coordinate transformations;
    # OFFSET_CORNERS (grid delta/2 + i*delta, delta = (in-1)/out) is tf_crop_and_resize with
    # roi [1/(2 out), 1 - 1/(2 out)] on the resized axes
    ctm_of = {"STRICT_ALIGN_CORNERS": "align_corners", "ALIGN_CORNERS": "align_corners",
              "DEFAULT": "asymmetric", "UNALIGN_CORNERS": "half_pixel",
              "OFFSET_CORNERS": "tf_crop_and_resize"}
    sizes = [((1, 2, 4, 5), (7, 3)), ((2, 3, 3), (3, 8)), ((1, 1, 6, 6), (4, 9)),
             ((1, 2, 5, 4), (5, 4))]
    for mode, ctm in ctm_of.items():
        for si, (shape, out) in enumerate(sizes):
            if ctm == "tf_crop_and_resize" and (shape[-2] == out[0] or shape[-1] == out[1]):
                continue    # onnxruntime ignores the roi on an axis whose size is unchanged
            def rb(mode=mode, ctm=ctm, shape=shape, out=out, si=si):
                x = f32(rng(70 + si), *shape)
                got = mr.run_op("resize_bilinear", dict(x=x, target_size_height=out[0],
                                                        target_size_width=out[1],
                                                        sampling_mode=mode), out_dtypes=["fp32"])
                roi = None
                if ctm == "tf_crop_and_resize":
                    r = len(shape)
                    starts = [0.0] * (r - 2) + [1 / (2 * out[0]), 1 / (2 * out[1])]
                    ends = [1.0] * (r - 2) + [1 - 1 / (2 * out[0]), 1 - 1 / (2 * out[1])]
                    roi = np.array(starts + ends, np.float32)
                return got, _resize_ort(x, out, "linear", ctm, roi)
            ortc("resize_bilinear", f"{mode}-{si}", rb)
    for si, (shape, out) in enumerate([((1, 2, 3, 4), (6, 8)), ((2, 3, 3), (9, 6)),
                                       ((1, 1, 6, 8), (3, 4)), ((1, 2, 5, 7), (8, 3))]):
        def rn(shape=shape, out=out, si=si):
            x = f32(rng(80 + si), *shape)
            got = mr.run_op("resize_nearest_neighbor", dict(x=x, target_size_height=out[0],
                                                            target_size_width=out[1]),
                            out_dtypes=["fp32"])
            return got, _resize_ort(x, out, "nearest", "asymmetric")
        ortc("resize_nearest_neighbor", f"{si}", rn)
    for si, (shape, sh, sw) in enumerate([((1, 2, 3, 4), 2, 3), ((2, 3, 4), 1, 2),
                                          ((1, 1, 4, 6), 1.5, 2.5)]):
        def un(shape=shape, sh=sh, sw=sw, si=si):
            x = f32(rng(85 + si), *shape)
            kw = dict(x=x, scale_factor_height=sh, scale_factor_width=sw)
            got = mr.run_op("upsample_nearest_neighbor", kw, out_dtypes=["fp32"])
            out = (int(shape[-2] * sh), int(shape[-1] * sw))
            return got, _resize_ort(x, out, "nearest", "asymmetric")
        ortc("upsample_nearest_neighbor", f"{si}", un)
    for si, (shape, sh, sw, ios, align, half, ctm) in enumerate([
            ((1, 2, 3, 4), 2, 2, 15, True, None, "align_corners"),
            ((1, 2, 3, 4), 2, 1.5, 15, False, None, "half_pixel"),
            ((2, 3, 4), 3, 2, 16, False, False, "asymmetric"),
            ((1, 1, 4, 4), 1.5, 2, 16, False, True, "half_pixel"),
            ((1, 1, 4, 4), 2, 2, 16, True, False, "align_corners"),
            ((1, 2, 3, 5), 2, 2, 16, False, None, "half_pixel")]):
        def ub(shape=shape, sh=sh, sw=sw, ios=ios, align=align, half=half, ctm=ctm, si=si):
            x = f32(rng(90 + si), *shape)
            kw: dict[str, Any] = dict(x=x, scale_factor_height=float(sh),
                                      scale_factor_width=float(sw), align_corners=align)
            if half is not None:
                kw["half_pixel_centers"] = half
            got = mr.run_op("upsample_bilinear", kw, ios=ios, out_dtypes=["fp32"])
            out = (int(math.floor(shape[-2] * sh)), int(math.floor(shape[-1] * sw)))
            return got, _resize_ort(x, out, "linear", ctm)
        ortc("upsample_bilinear", f"{si}-{ctm}", ub)


def _misc_ort_cases() -> None:
    for seed, shape, b in ((101, (1, 8, 2, 3), 2), (102, (2, 18, 2, 2), 3)):
        def d2s(seed=seed, shape=shape, b=b):
            x = f32(rng(seed), *shape)
            got = mr.run_op("depth_to_space", dict(x=x, block_size=b), out_dtypes=["fp32"])
            return got, _single("DepthToSpace", {}, [("x", x)], dict(blocksize=b, mode="DCR"))[0]
        ortc("depth_to_space", f"b{b}", d2s)

        def s2d(seed=seed, shape=shape, b=b):
            n, c, h, w = shape
            x = f32(rng(seed + 10), n, c // (b * b), h * b, w * b)
            got = mr.run_op("space_to_depth", dict(x=x, block_size=b), out_dtypes=["fp32"])
            return got, _single("SpaceToDepth", {}, [("x", x)], dict(blocksize=b))[0]
        ortc("space_to_depth", f"b{b}", s2d)
    for seed, b in ((121, 2), (122, 3)):
        def ps(seed=seed, b=b):
            x = f32(rng(seed), 1, 2 * b * b, 3, 2)
            got = mr.run_op("pixel_shuffle", dict(x=x, upscale_factor=b), out_dtypes=["fp32"])
            return got, _single("DepthToSpace", {}, [("x", x)], dict(blocksize=b, mode="CRD"))[0]
        ortc("pixel_shuffle", f"b{b}", ps)
    for seed, shape, idx in ((131, (4, 3, 2), [[1], [3]]), (132, (3, 4, 5), [[0, 1], [2, 3], [1, 0]])):
        def gnd(seed=seed, shape=shape, idx=idx):
            x = f32(rng(seed), *shape)
            i = np.array(idx, np.int64)
            got = mr.run_op("gather_nd", dict(x=x, indices=i.astype(np.int32)), out_dtypes=["fp32"])
            return got, _single("GatherND", {}, [("x", x), ("i", i)], {})[0]
        ortc("gather_nd", f"{len(shape)}d", gnd)

        def snd(seed=seed, shape=shape, idx=idx):
            x = f32(rng(seed), *shape)
            i = np.array(idx, np.int64)
            u = f32(rng(seed + 1), *(i.shape[:-1] + shape[i.shape[-1]:]))
            got = mr.run_op("scatter_nd", dict(data=x, indices=i.astype(np.int32), updates=u, mode="update"), out_dtypes=["fp32"])
            return got, _single("ScatterND", {}, [("x", x), ("i", i), ("u", u)], {})[0]
        ortc("scatter_nd", f"{len(shape)}d", snd)
    for seed, reduction in ((141, "none"), (142, "add")):
        def sae(seed=seed, reduction=reduction):
            x = f32(rng(seed), 3, 4)
            i = np.array([[0, 3], [1, 1], [3, 0]], np.int64)
            u = f32(rng(seed + 1), 3, 2)
            mode = "update" if reduction == "none" else reduction
            got = mr.run_op("scatter_along_axis", dict(data=x, indices=i.astype(np.int32), updates=u, axis=1, mode=mode), out_dtypes=["fp32"])
            return got, _single("ScatterElements", {}, [("x", x), ("i", i), ("u", u)], dict(axis=1, reduction=reduction))[0]
        ortc("scatter_along_axis", reduction, sae)
    for seed, shape, dt in ((111, (2, 3, 4), "fp32"), (112, (7,), "fp32"), (113, (3, 5), "fp16")):
        def silu(seed=seed, shape=shape, dt=dt):
            x = f32(rng(seed), *shape) * 4
            xin = x.astype(np.float16) if dt == "fp16" else x
            got = mr.run_op("silu", dict(x=xin), out_dtypes=[dt])
            ref = ort_run([helper.make_node("Sigmoid", ["x"], ["s"]),
                           helper.make_node("Mul", ["x", "s"], ["y"])],
                          {"x": xin.astype(np.float32)}, [("y", TensorProto.FLOAT)])[0]
            return got, ref.astype(np.float16) if dt == "fp16" else ref
        ortc("silu", f"{dt}-{seed}", silu)
    for seed, shape, depth, axis, on, off in ((121, (2, 3), 5, -1, 1.0, 0.0),
                                              (122, (4,), 3, 0, 2.5, -1.0),
                                              (123, (2, 2), 4, 1, 1.0, 0.0)):
        def oh(seed=seed, shape=shape, depth=depth, axis=axis, on=on, off=off):
            ind = rng(seed).integers(0, depth, shape).astype(np.int32)
            kw = dict(indices=ind, one_hot_vector_size=np.int32(depth), axis=np.int32(axis),
                      on_value=np.float32(on), off_value=np.float32(off))
            got = mr.run_op("one_hot", kw, out_dtypes=["fp32"])
            ref = _single("OneHot", {}, [("i", ind.astype(np.int64)),
                                         ("d", np.array(depth, np.int64)),
                                         ("v", np.array([off, on], np.float32))],
                          dict(axis=axis))[0]
            return got, ref
        ortc("one_hot", f"axis{axis}", oh)
    for seed, shape, axis, excl, rev in ((131, (3, 4), 0, True, False), (132, (2, 5), 1, True, True),
                                         (133, (2, 3, 4), -1, False, True),
                                         (134, (4, 3), 0, True, True)):
        def cs(seed=seed, shape=shape, axis=axis, excl=excl, rev=rev):
            x = f32(rng(seed), *shape)
            got = mr.run_op("cumsum", dict(x=x, axis=np.int32(axis), exclusive=excl, reverse=rev),
                            out_dtypes=["fp32"])
            ref = _single("CumSum", {}, [("x", x), ("a", np.array(axis, np.int64))],
                          dict(exclusive=int(excl), reverse=int(rev)))[0]
            return got, ref
        ortc("cumsum", f"axis{axis}{'-excl' if excl else ''}{'-rev' if rev else ''}", cs)


def _matmul_ort_cases() -> None:
    """Rank-1 operands (numpy rules) and batch broadcasting, vs ONNX MatMul (numpy semantics)."""
    for si, (sa, sb) in enumerate([((2, 3, 4), (4,)), ((4,), (4,)), ((4,), (2, 4, 3)),
                                   ((3, 4), (4,)), ((2, 1, 3, 4), (5, 4, 2))]):
        def mm(sa=sa, sb=sb, si=si):
            g = rng(145 + si)
            x, y = f32(g, *sa), f32(g, *sb)
            got = mr.run_op("matmul", dict(x=x, y=y), out_dtypes=["fp32"])
            return got, _single("MatMul", {}, [("x", x), ("y", y)], {})[0]
        ortc("matmul", f"{'x'.join(map(str, sa))}-{'x'.join(map(str, sb))}", mm)



def _reorder(a: np.ndarray, blocks: list[int], n: int) -> np.ndarray:
    """ONNX gate blocks (axis 0 split into n) picked in MIL's order."""
    parts = np.split(a, n)
    return np.concatenate([parts[i] for i in blocks])


# ONNX gate order -> MIL's: LSTM (i, o, f, c) -> (i, f, o, z); GRU (z, r, h) -> (r, o, z);
# peepholes (i, o, f) -> (i, f, o).
LSTM_GATES, GRU_GATES, PEEPHOLE_GATES = [0, 2, 1, 3], [1, 2, 0], [0, 2, 1]


def _recurrent_ort_cases() -> None:
    """lstm, gru and rnn against ONNX LSTM, GRU (linear_before_reset = 0) and RNN: MIL weights are
    ONNX's split per direction and reordered, the bias is Wb + Rb; a `reverse` MIL layer yields
    its states in processing order, so ONNX's time-aligned Y is compared reversed."""
    s, b, i, hsz = 5, 2, 3, 4
    for op, onnx_op, gates, order in (("lstm", "LSTM", 4, LSTM_GATES), ("gru", "GRU", 3, GRU_GATES),
                                      ("rnn", "RNN", 1, [0])):
        for direction in ("forward", "reverse", "bidirectional"):
            if direction == "bidirectional" and op != "lstm":
                continue  # MIL gru and rnn have no bidirectional form
            for variant in ("plain", "full", "acts"):
                if variant == "acts" and (op != "lstm" or direction != "forward"):
                    continue

                def fn(op=op, onnx_op=onnx_op, gates=gates, order=order, direction=direction, variant=variant):
                    nd = 2 if direction == "bidirectional" else 1
                    g = rng(200 + len(op) * 10 + nd + (variant == "full") * 3)
                    x = f32(g, s, b, i)
                    w, r = f32(g, nd, gates * hsz, i) * 0.5, f32(g, nd, gates * hsz, hsz) * 0.5
                    full = variant == "full"
                    bias = f32(g, nd, 2 * gates * hsz) * 0.5 if full else None
                    h0 = f32(g, nd, b, hsz) if full else None
                    c0 = f32(g, nd, b, hsz) if full and op == "lstm" else None
                    p = f32(g, nd, 3 * hsz) * 0.5 if full and op == "lstm" else None
                    attrs: dict[str, Any] = dict(hidden_size=hsz, direction=direction)
                    mil_acts: dict[str, Any] = {}
                    if variant == "acts":
                        attrs.update(activations=["HardSigmoid", "Relu", "Affine"], activation_alpha=[0.2, 1.0],
                                     activation_beta=[0.5, 0.0])
                        mil_acts = dict(recurrent_activation="hard_sigmoid", cell_activation="relu", activation="linear")
                    onnx_in = [("x", x), ("w", w), ("r", r), ("b", bias), ("sl", None), ("h0", h0)]
                    if op == "lstm":
                        onnx_in += [("c0", c0), ("p", p)]
                    n_out = 3 if op == "lstm" else 2
                    y, yh, *yc = _single(onnx_op, {}, onnx_in, attrs, n_out=n_out)

                    def direction_inputs(d: int) -> dict[str, Any]:
                        out = dict(weight_ih=_reorder(w[d], order, gates), weight_hh=_reorder(r[d], order, gates))
                        if bias is not None:
                            out["bias"] = _reorder(bias[d, :gates * hsz] + bias[d, gates * hsz:], order, gates)
                        if p is not None:
                            out["peephole"] = _reorder(p[d], PEEPHOLE_GATES, 3)
                        return out
                    zeros = np.zeros((b, hsz), np.float32)
                    state = lambda v, d: zeros if v is None else v[d]  # noqa: E731
                    kw: dict[str, Any] = dict(x=x, direction=direction, output_sequence=True, **mil_acts,
                                              **direction_inputs(0))
                    if nd == 2:
                        kw.update({k + "_back": v for k, v in direction_inputs(1).items()})
                    kw["initial_h"] = np.concatenate([state(h0, d) for d in range(nd)], axis=-1)
                    if op == "lstm":
                        kw["initial_c"] = np.concatenate([state(c0, d) for d in range(nd)], axis=-1)
                    got = mr.run_op(op, kw, out_dtypes=["fp32"] * n_out)
                    # ONNX [s, D, b, H] -> MIL [s, b, D*H]; states [D, b, H] -> [b, D*H]
                    want_y = np.concatenate([y[:, d] for d in range(nd)], axis=-1)
                    if direction == "reverse":
                        want_y = want_y[::-1]
                    states = [np.concatenate([st[d] for d in range(nd)], axis=-1) for st in [yh, *yc]]
                    return np.concatenate([v.reshape(-1) for v in got]), \
                        np.concatenate([want_y.reshape(-1)] + [v.reshape(-1) for v in states])
                ortc(op, f"{direction}-{variant}", fn)


_matmul_ort_cases()
_recurrent_ort_cases()
_conv_cases()
_conv_transpose_cases()
def _resample_cases() -> None:
    # resample against ONNX GridSample (opset 16), mapped as the exporter maps it: zeros -> constant 0, reflection
    # -> reflection with align_corners and symmetric without. Grid values reach past [-1, 1] to exercise padding.
    padding_for = {"zeros": "constant", "border": "border"}
    for si, (sampling, pad, align) in enumerate([(s, p, a) for s in ("bilinear", "nearest")
                                                 for p in ("zeros", "border", "reflection") for a in (0, 1)]):
        def rs(sampling=sampling, pad=pad, align=align, si=si):
            x = f32(rng(300 + si), 2, 3, 5, 4)
            grid = f32(rng(320 + si), 2, 6, 7, 2, lo=-1.6, hi=1.6)
            mil_pad = padding_for.get(pad) or ("reflection" if align else "symmetric")
            got = mr.run_op("resample", dict(x=x, coordinates=grid, sampling_mode=sampling, padding_mode=mil_pad,
                                             padding_value=0.0, coordinates_mode="normalized_minus_one_to_one",
                                             align_corners=bool(align)), out_dtypes=["fp32"])
            ref = ort_run([helper.make_node("GridSample", ["x", "g"], ["y"], mode=sampling, padding_mode=pad,
                                            align_corners=align)], {"x": x, "g": grid}, [("y", TensorProto.FLOAT)],
                          opset=16)[0]
            return got, ref
        ortc("resample", f"{sampling}-{pad}-{align}", rs)


def test_resample_padding_examples() -> None:
    """The 1-D padding examples of iOS15/image_resizing.py's resample, for |1, 2, 3| padded by three each side."""
    idx = np.arange(-3, 6)
    image = np.array([1, 2, 3])
    for mode, want in [("border", [1, 1, 1, 1, 2, 3, 3, 3, 3]), ("reflection", [2, 3, 2, 1, 2, 3, 2, 1, 2]),
                       ("symmetric", [3, 2, 1, 1, 2, 3, 3, 2, 1]), ("constant", [0, 0, 0, 1, 2, 3, 0, 0, 0])]:
        j, inside = mr._pad_index(idx, 3, mode)
        assert list(np.where(inside, image[j], 0)) == want, mode


_pool_cases()
_norm_ort_cases()
_resize_cases()
_resample_cases()
_misc_ort_cases()


def _classify_cases() -> None:
    """classify (iOS15/classify.py): the label at onnxruntime's ArgMax of the flattened probabilities (the first
    index on a tie), and every label's probability; string and int64 classes, [1, N] and [N] probabilities."""
    for tag, classes, shape in (("str", ["a", "b", "c", "d", "e"], (1, 5)), ("int64", [7, -3, 0, 12, 5], (5,))):
        def fn(classes=classes, shape=shape):
            p = rng(141).random(shape).astype(np.float32)
            p.reshape(-1)[[1, 3]] = p.max() + 0.5  # a tie between two labels
            label, probs = mr.OPS["classify"](mr.Args({"probabilities": [(p, "fp32")], "classes": [(list(classes), "list")]}, 15, "classify"))
            key = label if isinstance(label, str) else int(label)
            got = np.array([classes.index(key)] + [probs[c] for c in classes], np.float64)
            index = _single("ArgMax", {}, [("x", p.reshape(-1))], dict(axis=0, keepdims=0), out_type=TensorProto.INT64)[0]
            return got, np.array([int(index)] + p.reshape(-1).tolist(), np.float64)
        ortc("classify", tag, fn)


_classify_cases()


@pytest.mark.parametrize("op,fn", ORT_CASES)
def test_onnxruntime(op: str, fn) -> None:
    got, ref = fn()
    assert_close(got, ref, op, acc=True)


def test_every_op_is_cross_checked() -> None:
    """Every op of the registry has value-inference or onnxruntime cases."""
    checked = {p.values[0] for p in VI_CASES} | {p.values[0] for p in ORT_CASES}
    assert set(mr.OPS) - checked == set(), f"unchecked ops: {set(mr.OPS) - checked}"


# ----------------------------------------------------------------------------------------------
# semantics stated by the MIL definitions themselves
# ----------------------------------------------------------------------------------------------

def test_resize_bilinear_grid_examples() -> None:
    """The grid points listed in resize_bilinear's docstring for Xin = 2."""
    doc = {
        ("UNALIGN_CORNERS", 5): [0., 0.1, 0.5, 0.9, 1.],
        ("STRICT_ALIGN_CORNERS", 5): [0., 0.25, 0.5, 0.75, 1.],
        ("ALIGN_CORNERS", 5): [0., 0.25, 0.5, 0.75, 1.],
        ("DEFAULT", 5): [0., 0.4, 0.8, 1., 1.],
        ("OFFSET_CORNERS", 5): [0.1, 0.3, 0.5, 0.7, 0.9],
        ("UNALIGN_CORNERS", 6): [0., 0., 0.33, 0.67, 1., 1.],
        ("STRICT_ALIGN_CORNERS", 6): [0., 0.2, 0.4, 0.6, 0.8, 1.],
        ("ALIGN_CORNERS", 6): [0., 0.2, 0.4, 0.6, 0.8, 1.],
        ("DEFAULT", 6): [0., 0.33, 0.67, 1., 1., 1.],
        ("OFFSET_CORNERS", 6): [0.08, 0.25, 0.42, 0.58, 0.75, 0.92],
    }
    for (mode, n_out), pts in doc.items():
        np.testing.assert_allclose(mr.resize_grid(mode, 2, n_out), pts, atol=0.006,
                                   err_msg=f"{mode} Xout={n_out}")
    # Xout = 1: ALIGN_CORNERS samples the middle; STRICT_ALIGN_CORNERS' formula is 0/0 there,
    # the evaluator samples pixel 0 (as TensorFlow's align_corners does)
    assert mr.resize_grid("ALIGN_CORNERS", 5, 1).tolist() == [2.0]
    assert mr.resize_grid("STRICT_ALIGN_CORNERS", 5, 1).tolist() == [0.0]
    # on a ramp 0, 1 the interpolated values are the grid points themselves
    x = np.tile(np.array([0, 1], np.float32), (1, 2, 1))
    for (mode, n_out), pts in doc.items():
        y = mr.run_op("resize_bilinear", dict(x=x, target_size_height=2, target_size_width=n_out,
                                              sampling_mode=mode))
        np.testing.assert_allclose(y[0, 0], mr.resize_grid(mode, 2, n_out), atol=1e-12)
        np.testing.assert_allclose(y[0, 1], pts, atol=0.006)


def test_layer_norm_default_axes() -> None:
    """layer_norm without axes normalizes over all dimensions."""
    x = f32(rng(141), 2, 3, 4)
    np.testing.assert_allclose(mr.run_op("layer_norm", dict(x=x)),
                               mr.run_op("layer_norm", dict(x=x, axes=[0, 1, 2])), rtol=0, atol=0)
    mu, sd = x.astype(np.float64).mean(), x.astype(np.float64).std()
    np.testing.assert_allclose(mr.run_op("layer_norm", dict(x=x)), (x - mu) / np.sqrt(sd ** 2 + 1e-5),
                               rtol=1e-6, atol=1e-7)


def test_concat_interleave() -> None:
    """concat's docstring example, and output[j::n] = values[j] along the axis (coremltools'
    value inference ignores interleave, so it cannot be the reference here)."""
    in1 = np.array([[1, 2], [3, 4], [5, 6]], np.float32)
    in2 = np.array([[7, 8], [9, 10], [11, 12]], np.float32)
    got = mr.run_op("concat", dict(values=[in1, in2], axis=0, interleave=True))
    np.testing.assert_array_equal(got, [[1, 2], [7, 8], [3, 4], [9, 10], [5, 6], [11, 12]])
    np.testing.assert_array_equal(mr.run_op("concat", dict(values=[in1, in2], axis=0)),
                                  np.concatenate([in1, in2]))
    g = rng(140)
    vals = [f32(g, 2, 3, 4) for _ in range(3)]
    for axis in (0, 1, -1):
        got = mr.run_op("concat", dict(values=vals, axis=axis, interleave=True))
        ax = axis % 3
        exp_shape = list(vals[0].shape)
        exp_shape[ax] *= 3
        exp = np.zeros(exp_shape, np.float32)
        for j, v in enumerate(vals):
            sl = [slice(None)] * 3
            sl[ax] = slice(j, None, 3)
            exp[tuple(sl)] = v
        np.testing.assert_array_equal(got, exp)


def test_lut_to_dense_doc_examples() -> None:
    """constexpr_lut_to_dense (iOS18) Case 1 and Case 2.1 / 2.2 of its docstring."""
    ind = np.array([2, 3, 3, 0, 1, 0, 3, 0, 2, 1, 0, 3], np.uint8).reshape(6, 2)
    lut = np.array([1.0, 5.0, 9.0, 13.0, 2.0, 10.0, 18.0, 26.0], np.float16).reshape(2, 1, 4, 1)
    got = mr.run_op("constexpr_lut_to_dense", dict(indices=ind, lut=lut), in_dtypes={"indices": "uint2"})
    np.testing.assert_array_equal(got, [[9, 13], [13, 1], [5, 1], [26, 2], [18, 10], [2, 26]])
    a, b = [10, 11, 12], [20, 21, 22]
    lut = np.array(a + b, np.int8).reshape(1, 1, 1, 2, 3)
    ind = np.array([[[0, 0], [1, 0]], [[1, 1], [0, 0]]], np.uint8)
    got = mr.run_op("constexpr_lut_to_dense", dict(indices=ind, lut=lut, vector_axis=np.int32(1)),
                    in_dtypes={"indices": "uint1"})
    exp1 = [[[a[0], a[0]], [a[1], a[1]], [a[2], a[2]], [b[0], a[0]], [b[1], a[1]], [b[2], a[2]]],
            [[b[0], b[0]], [b[1], b[1]], [b[2], b[2]], [a[0], a[0]], [a[1], a[1]], [a[2], a[2]]]]
    np.testing.assert_array_equal(got, exp1)
    got = mr.run_op("constexpr_lut_to_dense", dict(indices=ind, lut=lut, vector_axis=np.int32(2)),
                    in_dtypes={"indices": "uint1"})
    exp2 = [[a + a, b + a], [b + b, a + a]]
    np.testing.assert_array_equal(got, exp2)


def test_cast_and_division_rounding() -> None:
    """float -> int casts truncate toward zero; int32 real_div truncates, floor_div floors,
    mod takes the sign of the divisor; round is half-to-even."""
    x = np.array([-2.7, -2.5, -0.5, 0.5, 2.5, 2.7], np.float32)
    np.testing.assert_array_equal(mr.run_op("cast", dict(x=x, dtype="int32"), out_dtypes=["int32"]),
                                  [-2, -2, 0, 0, 2, 2])
    np.testing.assert_array_equal(mr.run_op("round", dict(x=x)), [-3, -2, -0, 0, 2, 3])
    a, b = np.array([-7, 7, -7, 7], np.int32), np.array([2, -2, -2, 2], np.int32)
    np.testing.assert_array_equal(mr.run_op("real_div", dict(x=a, y=b), out_dtypes=["int32"]),
                                  [-3, -3, 3, 3])
    np.testing.assert_array_equal(mr.run_op("floor_div", dict(x=a, y=b)), [-4, -4, 3, 3])
    np.testing.assert_array_equal(mr.run_op("mod", dict(x=a, y=b)), [1, -1, -1, 1])


def test_gather_negative_indices_by_opset() -> None:
    """iOS15/16 gather accepts indices in [-D, D); iOS17 calls negative indices out of bounds
    (undefined), so the evaluator refuses them there."""
    x = np.arange(12, dtype=np.float32).reshape(4, 3)
    ind = np.array([-1, 0], np.int32)
    for ios in (15, 16):
        np.testing.assert_array_equal(mr.run_op("gather", dict(x=x, indices=ind), ios=ios),
                                      x[[3, 0]])
        np.testing.assert_array_equal(
            mr.run_op("gather_along_axis", dict(x=x, indices=np.full((1, 3), -1, np.int32)),
                      ios=ios), x[[3]])
    for ios in (17, 18):
        with pytest.raises(mr.MILFormatError, match="negative"):
            mr.run_op("gather", dict(x=x, indices=ind), ios=ios)
        with pytest.raises(mr.MILFormatError, match="negative"):
            mr.run_op("gather_along_axis", dict(x=x, indices=np.full((1, 3), -1, np.int32)),
                      ios=ios)


def test_fp16_rounds_each_op() -> None:
    """fp16 programs: each op's result is rounded to fp16 (x + 1 - 1 loses x's low bits)."""
    x = np.array([1e-3, 3e-4, 0.1], np.float16)
    one = np.float16(1)
    y = mr.run_op("add", dict(x=x, y=one), out_dtypes=["fp16"])
    z = mr.run_op("sub", dict(x=y, y=one), out_dtypes=["fp16"])
    assert z.dtype == np.float16
    np.testing.assert_array_equal(z, (x.astype(np.float16) + one) - one)
    assert z[1] != x[1]


# ----------------------------------------------------------------------------------------------
# packages written by coremltools
# ----------------------------------------------------------------------------------------------

def save_program(prog, ios: int, path: Path, precision=ct.precision.FLOAT32) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = ct.convert(prog, convert_to="mlprogram", minimum_deployment_target=IOS[ios],
                           compute_precision=precision, skip_model_load=True)
    out = path / "m.mlpackage"
    if out.exists():
        shutil.rmtree(out)
    model.save(str(out))
    return out


def numpy_conv2d(x: np.ndarray, w: np.ndarray, b: np.ndarray, pad: int) -> np.ndarray:
    """Direct 2-D convolution, stride 1, symmetric zero padding, float64."""
    x = np.pad(x.astype(np.float64), [(0, 0), (0, 0), (pad, pad), (pad, pad)])
    n, _, h, wd = x.shape
    co, _, kh, kw = w.shape
    out = np.zeros((n, co, h - kh + 1, wd - kw + 1))
    for i in range(out.shape[2]):
        for j in range(out.shape[3]):
            patch = x[:, :, i:i + kh, j:j + kw]
            out[:, :, i, j] = np.tensordot(patch, w.astype(np.float64), axes=([1, 2, 3], [1, 2, 3]))
    return out + b.reshape(1, -1, 1, 1)


def _cnn(seed: int):
    g = rng(seed)
    x = f32(g, 2, 3, 8, 8)
    w1, b1 = f32(g, 4, 3, 3, 3) * 0.5, f32(g, 4)
    w2, b2 = f32(g, 5, 4 * 8 * 8) * 0.1, f32(g, 5)

    @mb.program(input_specs=[mb.TensorSpec(shape=(2, 3, 8, 8))], opset_version=ct.target.iOS16)
    def prog(x):
        y = mb.conv(x=x, weight=w1, bias=b1, pad_type="custom", pad=[1, 1, 1, 1])
        y = mb.relu(x=y)
        y = mb.reshape(x=y, shape=[2, -1])
        return mb.linear(x=y, weight=w2, bias=b2)

    h = np.maximum(numpy_conv2d(x, w1, b1, 1), 0).reshape(2, -1)
    expected = h @ w2.astype(np.float64).T + b2
    return prog, x, expected


def test_end_to_end_fp32(tmp_path: Path) -> None:
    prog, x, expected = _cnn(150)
    pkg = save_program(prog, 16, tmp_path)
    p = mr.load_program(pkg)
    assert p.ios == 16 and p.opset == "CoreML6"
    assert [o.type for o in p.operations if o.type != "const"] == ["conv", "relu", "reshape",
                                                                  "linear"]
    outs = mr.evaluate(pkg, {p.inputs[0].name: x})
    assert list(outs) == p.outputs and len(outs) == 1
    y = outs[p.outputs[0]]
    assert y.dtype == np.float32 and y.shape == (2, 5)
    scale = float(np.abs(expected).max())
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-5 * scale)


def test_end_to_end_fp16(tmp_path: Path) -> None:
    prog, x, expected = _cnn(151)
    pkg = save_program(prog, 16, tmp_path, precision=ct.precision.FLOAT16)
    p = mr.load_program(pkg)
    conv = next(o for o in p.operations if o.type == "conv")
    assert conv.outputs[0].dtype == "fp16"
    assert any(o.type == "cast" for o in p.operations)
    every = mr.run_program(p, {p.inputs[0].name: x}, keep=True)
    assert every[conv.outputs[0].name].dtype == np.float16
    y = every[p.outputs[0]]
    assert y.dtype == np.float32
    cos = float(np.dot(y.ravel(), expected.ravel())
                / (np.linalg.norm(y) * np.linalg.norm(expected)))
    assert cos >= 0.999, cos
    np.testing.assert_allclose(y, expected, rtol=0.05, atol=0.02 * float(np.abs(expected).max()))


def test_end_to_end_constexpr_ios16(tmp_path: Path) -> None:
    g = rng(160)
    q = g.integers(0, 256, (8, 6)).astype(np.uint8)
    zp = g.integers(0, 256, (8,)).astype(np.uint8)
    sc = f32(g, 8, lo=0.001, hi=0.01)
    lut = f32(g, 16)
    idx = g.integers(0, 16, 7 * 6).astype(np.uint8)
    packed = (idx[0::2] | (idx[1::2] << 4)).astype(np.uint8)
    q8 = g.integers(-128, 128, (6, 6)).astype(np.int8)
    x = f32(g, 3, 6)

    @mb.program(input_specs=[mb.TensorSpec(shape=(3, 6))], opset_version=ct.target.iOS16)
    def prog(x):
        w1 = mb.constexpr_affine_dequantize(quantized_data=q, zero_point=zp, scale=sc, axis=0)
        w2 = mb.constexpr_lut_to_dense(indices=packed, lut=lut, shape=np.array([7, 6], np.uint32))
        w3 = mb.constexpr_affine_dequantize(quantized_data=q8, zero_point=np.int8(3),
                                            scale=np.float32(0.02), axis=1)
        return mb.linear(x=x, weight=w1), mb.linear(x=x, weight=w2), mb.linear(x=x, weight=w3)

    pkg = save_program(prog, 16, tmp_path)
    p = mr.load_program(pkg)
    ce = [o for o in p.operations if o.type.startswith("constexpr_")]
    assert len(ce) == 3
    for o in ce:   # iOS16 form: parameters are attributes, not inputs
        assert not o.inputs and ("indices" in o.attributes or "quantized_data" in o.attributes)
    outs = mr.evaluate(pkg, {"x": x})
    w1 = (q.astype(np.float64) - zp[:, None]) * sc[:, None]
    w2 = lut[idx].reshape(7, 6)
    w3 = (q8.astype(np.float64) - 3) * np.float32(0.02)
    for name, w in zip(p.outputs, (w1, w2, w3)):
        np.testing.assert_allclose(outs[name], x @ w.T, rtol=1e-5, atol=1e-5)


def test_end_to_end_constexpr_ios18(tmp_path: Path) -> None:
    """Sub-byte blobs written by coremltools: int4/uint4/int8/uint8 data and uint1/2/3/4/6
    indices (63 elements each, so the sub-byte blobs end in a partial byte and carry
    padding_size_in_bits), parameters passed as op inputs bound to values (iOS18)."""
    g = rng(170)
    x = f32(g, 2, 9)
    ws: list[np.ndarray] = []
    specs = []
    for dt, lo, hi in ((INT4, -8, 8), (UINT[4], 0, 16), (np.int8, -128, 128), (np.uint8, 0, 256)):
        data = g.integers(lo, hi, (7, 9)).astype(dt)
        scale = f32(g, 7, 3, lo=0.01, hi=0.1)
        offset = g.integers(lo, hi, (7, 3)).astype(dt)
        specs.append(("bss", data, scale, offset))
        ws.append(np.repeat(scale.astype(np.float64), 3, 1)
                  * (data.astype(np.float64) - np.repeat(offset.astype(np.float64), 3, 1)))
    for nbits in (1, 2, 3, 4, 6):
        ind = g.integers(0, 2 ** nbits, (7, 9)).astype(UINT[nbits])
        lut = f32(g, 1, 3, 2 ** nbits, 1)
        specs.append(("lut", ind, lut, None))
        grp = (np.arange(9) // 3)[None, :]
        ws.append(lut[0, grp, ind.astype(np.int64), 0].astype(np.float64))

    @mb.program(input_specs=[mb.TensorSpec(shape=(2, 9))], opset_version=ct.target.iOS18)
    def prog(x):
        outs = []
        for kind, a, b, c in specs:
            if kind == "bss":
                w = mb.constexpr_blockwise_shift_scale(data=a, scale=b, offset=c)
            else:
                w = mb.constexpr_lut_to_dense(indices=a, lut=b)
            outs.append(mb.linear(x=x, weight=w))
        return tuple(outs)

    pkg = save_program(prog, 18, tmp_path)
    p = mr.load_program(pkg)
    assert p.ios == 18
    ce = [o for o in p.operations if o.type.startswith("constexpr_")]
    assert len(ce) == len(specs)
    for o in ce:   # iOS18 form: parameters are inputs bound to values, no attributes
        assert not o.attributes and all(b.name is None for bl in o.inputs.values() for b in bl)
    stored = [o.inputs["data" if "data" in o.inputs else "indices"][0].dtype for o in ce]
    assert stored == ["int4", "uint4", "int8", "uint8", "uint1", "uint2", "uint3", "uint4", "uint6"]
    outs = mr.evaluate(pkg, {"x": x})
    for name, w in zip(p.outputs, ws):
        np.testing.assert_allclose(outs[name], x.astype(np.float64) @ w.T, rtol=1e-5, atol=1e-5)


def test_unknown_op_and_bad_blob(tmp_path: Path) -> None:
    from coremltools.proto import Model_pb2

    prog, x, _ = _cnn(180)
    pkg = save_program(prog, 16, tmp_path)
    model_file = pkg / mr.MODEL_REL
    spec = Model_pb2.Model()
    spec.ParseFromString(model_file.read_bytes())
    block = spec.mlProgram.functions["main"].block_specializations["CoreML6"]
    next(o for o in block.operations if o.type == "relu").type = "no_such_op"
    model_file.write_bytes(spec.SerializeToString())
    with pytest.raises(NotImplementedError, match="no_such_op"):
        mr.evaluate(pkg, {"x": x})
    # a weight blob whose sentinel is damaged
    weights = pkg / mr.DATA_DIR_REL / "weights" / "weight.bin"
    buf = bytearray(weights.read_bytes())
    assert buf[64:68] == b"\xef\xbe\xad\xde"
    buf[64] ^= 0xFF
    weights.write_bytes(bytes(buf))
    with pytest.raises(mr.MILFormatError, match="sentinel"):
        mr.load_program(pkg)


def test_blob_reader_synthetic(tmp_path: Path) -> None:
    """Every blob dtype code, with values packed here LSB-first (independently of coremltools)."""
    g = rng(190)
    cases = []
    for code, name in mr.BLOB_DATATYPE.items():
        n = 11
        if name in mr.SUB_BYTE_BITS:
            bits = mr.SUB_BYTE_BITS[name]
            vals = g.integers(-(1 << (bits - 1)) if name == "int4" else 0,
                              (1 << (bits - 1)) if name == "int4" else (1 << bits), n)
            u = vals & ((1 << bits) - 1)
            stream = ((u[:, None] >> np.arange(bits)) & 1).astype(np.uint8).reshape(-1)
            raw = np.packbits(stream, bitorder="little").tobytes()
            expect = vals
        elif name == "bf16":
            expect = f32(g, n).view(np.uint32) & 0xFFFF0000
            raw = (expect >> 16).astype("<u2").tobytes()
            expect = expect.astype(np.uint32).view(np.float32)
        else:
            dt = mr.STORAGE[name]
            expect = (f32(g, n) * 10).astype(dt) if dt.kind == "f" else \
                g.integers(np.iinfo(dt).min, np.iinfo(dt).max, n, endpoint=True).astype(dt)
            raw = expect.astype(dt.newbyteorder("<")).tobytes()
        cases.append((name, raw, expect))
    blob = bytearray(struct.pack("<II", len(cases), 2) + bytes(56))
    offsets = []
    for name, raw, _ in cases:
        off = len(blob)
        data_off = off + 64
        meta = struct.pack("<IIQQQ", 0xDEADBEEF, {v: k for k, v in mr.BLOB_DATATYPE.items()}[name],
                           len(raw), data_off, 0) + bytes(32)
        blob += meta + raw + bytes((-len(raw)) % 64)
        offsets.append(off)
    (tmp_path / "weights").mkdir()
    (tmp_path / "weights" / "weight.bin").write_bytes(bytes(blob))
    reader = mr._BlobFiles(tmp_path)
    for (name, _, expect), off in zip(cases, offsets):
        got = reader.read("@model_path/weights/weight.bin", off, name, 11)
        np.testing.assert_array_equal(got, np.asarray(expect).astype(got.dtype), err_msg=name)
        if name != "fp32":
            with pytest.raises(mr.MILFormatError, match="holds"):
                reader.read("@model_path/weights/weight.bin", off,
                            "fp32" if name != "fp32" else "fp16", 11)
    with pytest.raises(mr.MILFormatError, match="needed"):
        reader.read("@model_path/weights/weight.bin", offsets[1], cases[1][0], 1000)


def test_immediate_values(tmp_path: Path) -> None:
    """Small constants stay immediate values in model.mlmodel, in the field coremltools picks
    per dtype (uint16/int16 in ints, uint8/fp16 in bytes, bool in bools)."""
    x = np.array([0.5, -1.25, 2.0, 3.5], np.float32)
    fp16_w = np.array([1.5, -2, 0.25, 4], np.float16)

    @mb.program(input_specs=[mb.TensorSpec(shape=(4,))], opset_version=ct.target.iOS17)
    def prog(x):
        a = mb.gather(x=x, indices=np.array([3, 0, 1], np.uint16))
        b = mb.gather(x=x, indices=np.array([2, 2], np.int8))
        c = mb.gather(x=x, indices=np.array([1], np.uint8))
        d = mb.reshape(x=x, shape=np.array([2, 2], np.int16))
        e = mb.select(cond=np.array([True, False, True, False]), a=x, b=np.float32(-1))
        f = mb.mul(x=mb.cast(x=x, dtype="fp16"), y=fp16_w)
        return a, b, c, d, e, f

    pkg = save_program(prog, 17, tmp_path)
    p = mr.load_program(pkg)
    seen = {b.dtype for o in p.operations for b in o.attributes.values()}
    assert {"uint16", "uint8", "int16", "bool", "fp16"} <= seen, seen  # (int8 indices -> int32)
    outs = [mr.evaluate(pkg, {"x": x})[n] for n in p.outputs]
    expect = [x[[3, 0, 1]], x[[2, 2]], x[[1]], x.reshape(2, 2), np.where([1, 0, 1, 0], x, -1),
              (x.astype(np.float16) * fp16_w).astype(np.float16)]
    for got, exp in zip(outs, expect):
        assert got.dtype == exp.dtype
        np.testing.assert_array_equal(got, exp)
