"""Oracle for shape inference and constant folding (`inspect --shapes`, `convert --input-shape`, `export`).

Two references:

* onnx.shape_inference.infer_shapes(model, strict_mode=True): wherever it gives a dtype, a rank or a dim value,
  mlpkg's inferred type must agree (a dim_param of an input symbol must come back as that symbol or a number;
  onnx's own generated `unk__N` names carry no information and are skipped).
* onnxruntime, the stronger one: every main-graph intermediate is exposed as a graph output and the model is run
  on concrete inputs; every tensor's actual shape and dtype must equal mlpkg's type with its symbols evaluated
  (`/` is floor division; a fresh `unk__N` symbol must stand for one size wherever it appears).

Both run over every fixture and over small models built here, one or more per op family, covering the opset
differences of Squeeze/Unsqueeze, Reduce*, Split, Slice, Resize, Pad, TopK and the window ops.

Folding: with dims pinned, the YOLO-like and transformer-like fixtures infer static shapes everywhere; converted
and exported, every value_info is static, no shape-chain op is left, and onnxruntime computes the same outputs as
for the original.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from conftest import FIXTURES, run

# Sizes given to symbolic input dims when a model runs; other symbols get DEFAULT_SIZE.
SYMBOL_SIZES = {"batch": 2, "seq": 3, "N": 2, "T": 5, "H": 9, "W": 11, "height": 20, "width": 28, "C": 4}
DEFAULT_SIZE = 3
ORT_CANNOT_RUN = {"custom_domain.onnx"}
FIXTURE_NAMES = sorted(p.name for p in FIXTURES.glob("*.onnx"))

# Where onnx (1.23) and onnxruntime (1.32) disagree, onnxruntime's actual shape is the truth mlpkg follows.
#   MaxPool/AveragePool with ceil_mode: onnxruntime drops a last window that would start in the end padding;
#   onnx's shape inference does not.
ONNX_KNOWN_DIFFERENCES = {("pool_ceil_pads", "y")}

_NP_TO_ONNX = {np.dtype(np.float32): "float", np.dtype(np.float64): "double", np.dtype(np.float16): "float16",
               np.dtype(np.int64): "int64", np.dtype(np.int32): "int32", np.dtype(np.int8): "int8",
               np.dtype(np.uint8): "uint8", np.dtype(np.bool_): "bool", np.dtype(np.int16): "int16",
               np.dtype(np.uint16): "uint16", np.dtype(np.uint32): "uint32", np.dtype(np.uint64): "uint64",
               np.dtype(object): "string"}
# Types onnxruntime's Python API cannot hand back.
NOT_RETURNABLE = {"bfloat16", "int4", "uint4", "complex64", "complex128"}


# ---------------------------------------------------------------------------
# mlpkg side


def cli(mlpkg: Path, *args: Any, cwd: Path):
    return run([str(mlpkg), *map(str, args)], cwd=cwd)


def inferred(mlpkg: Path, model: Path, pins: tuple[str, ...] = ()) -> dict:
    """`inspect --shapes --json` → {"values": {(graph, name): type}, "unresolved": [...]}."""
    args = ["inspect", model, "--shapes", "--json"]
    for p in pins:
        args += ["--input-shape", p]
    proc = cli(mlpkg, *args, cwd=model.parent)
    assert proc.returncode == 0, f"inspect failed: {proc.stderr}"
    doc = json.loads(proc.stdout)["shapes"]
    return {"values": {(v["graph"], v["name"]): v["type"] for v in doc["values"]},
            "unresolved": doc["unresolved"], "doc": doc}


_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*")


def evaluate_dim(d, env: dict[str, int]):
    """An int, ('fresh', name) for a bare unk__N, or None when it cannot be evaluated."""
    if d is None:
        return None
    if isinstance(d, int):
        return d
    if re.fullmatch(r"unk__\d+", d):
        return ("fresh", d)
    names = set(_NAME.findall(d)) - {"min", "max"}
    if not names <= set(env):
        return None
    return int(eval(d.replace("/", "//"), {"__builtins__": {}, "min": min, "max": max}, dict(env)))  # noqa: S307


def input_env(model: onnx.ModelProto, types: dict, graph="main") -> dict[str, int]:
    """Symbol → size for the feeds, from mlpkg's input types (fresh input symbols get DEFAULT_SIZE)."""
    env: dict[str, int] = {}
    for inp in runtime_inputs(model):
        t = types.get((graph, inp.name))
        if not t or t.get("kind") != "tensor" or t.get("shape") is None:
            continue
        for d in t["shape"]:
            if isinstance(d, str) and _NAME.fullmatch(d):
                env.setdefault(d, SYMBOL_SIZES.get(d, DEFAULT_SIZE))
    return env


def runtime_inputs(model: onnx.ModelProto):
    inits = {t.name for t in model.graph.initializer} | {t.values.name for t in model.graph.sparse_initializer}
    return [i for i in model.graph.input if i.name not in inits]


def feeds_for(model: onnx.ModelProto, types: dict, env: dict[str, int], seed=0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    feeds = {}
    for inp in runtime_inputs(model):
        t = types[("main", inp.name)]
        shape = [d if isinstance(d, int) else env.get(d, DEFAULT_SIZE) for d in t["shape"]]
        dt = t["dtype"]
        if dt == "float":
            feeds[inp.name] = rng.standard_normal(shape).astype(np.float32)
        elif dt == "float16":
            feeds[inp.name] = rng.standard_normal(shape).astype(np.float16)
        elif dt == "int64":
            high = 50 if "ids" in inp.name else 2
            feeds[inp.name] = rng.integers(0, high, shape).astype(np.int64) if "ids" in inp.name else np.ones(shape, np.int64)
        elif dt == "int32":
            feeds[inp.name] = rng.integers(0, 4, shape).astype(np.int32)
        elif dt == "bool":
            feeds[inp.name] = np.ones(shape, bool)
        elif dt in ("uint8", "int8"):
            feeds[inp.name] = rng.integers(0, 4, shape).astype(np.uint8 if dt == "uint8" else np.int8)
        else:
            raise AssertionError(f"no feed for {dt}")
    return feeds


# ---------------------------------------------------------------------------
# onnxruntime side


def session(model: onnx.ModelProto) -> ort.InferenceSession:
    so = ort.SessionOptions()
    so.log_severity_level = 3
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    return ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])


def actual_shapes(model: onnx.ModelProto, feeds: dict, types: dict) -> dict[str, tuple[str, tuple]]:
    """Every main-graph node output → (dtype, shape) as onnxruntime computes it."""
    m = onnx.ModelProto()
    m.CopyFrom(model)
    have = {o.name for o in m.graph.output}
    for node in m.graph.node:
        for o in node.output:
            if (types.get(("main", o)) or {}).get("dtype") in NOT_RETURNABLE:
                continue
            if o and o not in have:
                m.graph.output.append(onnx.ValueInfoProto(name=o))
                have.add(o)
    sess = session(m)
    names = [o.name for o in sess.get_outputs()]
    out = {}
    for name, value in zip(names, sess.run(None, feeds)):
        if isinstance(value, np.ndarray):
            out[name] = (_NP_TO_ONNX.get(value.dtype, str(value.dtype)), value.shape)
    return out


def check_against_runtime(types: dict, actual: dict, env: dict[str, int], where: str) -> list[str]:
    errors = []
    fresh: dict[str, int] = {}
    for name, (dtype, shape) in actual.items():
        t = types.get(("main", name))
        if t is None:
            errors.append(f"{where}: {name}: not in mlpkg's result")
            continue
        if t.get("kind") == "optional":  # onnxruntime hands back the element
            t = t["element"]
        if t.get("kind") != "tensor":
            errors.append(f"{where}: {name}: mlpkg says {t.get('kind')}, onnxruntime gives a tensor")
            continue
        if t.get("dtype") != dtype:
            errors.append(f"{where}: {name}: dtype {t.get('dtype')} != actual {dtype}")
        dims = t.get("shape")
        if dims is None:
            errors.append(f"{where}: {name}: rank unknown, actual {list(shape)}")
            continue
        if len(dims) != len(shape):
            errors.append(f"{where}: {name}: {dims} has rank {len(dims)}, actual {list(shape)}")
            continue
        for i, (d, a) in enumerate(zip(dims, shape)):
            v = evaluate_dim(d, env)
            if isinstance(v, tuple):
                if fresh.setdefault(v[1], a) != a:
                    errors.append(f"{where}: {name}[{i}]: {v[1]} was {fresh[v[1]]} elsewhere, here {a}")
            elif v is None:
                errors.append(f"{where}: {name}[{i}]: '{d}' cannot be evaluated with {env}")
            elif v != a:
                errors.append(f"{where}: {name}[{i}]: {d} = {v}, actual {a} ({dims} vs {list(shape)})")
    return errors


# ---------------------------------------------------------------------------
# onnx side


def onnx_types(model: onnx.ModelProto) -> dict:
    """(graph path, name) → onnx TypeProto after strict shape inference, in mlpkg's path naming."""
    inf = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    out = {}

    def walk(g: onnx.GraphProto, path: str):
        for v in list(g.input) + list(g.output) + list(g.value_info):
            out[(path, v.name)] = v.type
        for i, node in enumerate(g.node):
            label = node.name if node.name else f"#{i}({node.op_type})"
            for a in node.attribute:
                if a.type == onnx.AttributeProto.GRAPH:
                    walk(a.g, f"{path}/{label}.{a.name}")
                elif a.type == onnx.AttributeProto.GRAPHS:
                    for k, sub in enumerate(a.graphs):
                        walk(sub, f"{path}/{label}.{a.name}[{k}]")

    walk(inf.graph, "main")
    return out


def input_symbols(model: onnx.ModelProto) -> set[str]:
    return {d.dim_param for i in model.graph.input for d in i.type.tensor_type.shape.dim if d.dim_param}


def check_against_onnx(types: dict, reference: dict, model_name: str, symbols: set[str]) -> list[str]:
    """Dims named after input symbols must come back as those symbols (or numbers); other names onnx carries
    (a declared output's own dim_param, its generated unk__N) say nothing about the size."""
    errors = []
    for key, tp in reference.items():
        if (model_name, key[1]) in ONNX_KNOWN_DIFFERENCES:
            continue
        ours = types.get(key)
        if ours is None or not tp.HasField("tensor_type"):
            continue
        tt = tp.tensor_type
        where = f"{model_name} {key[0]}:{key[1]}"
        if ours.get("kind") != "tensor":
            errors.append(f"{where}: mlpkg says {ours.get('kind')}")
            continue
        if tt.elem_type and ours.get("dtype") != TensorProto.DataType.Name(tt.elem_type).lower():
            errors.append(f"{where}: dtype {ours.get('dtype')} != onnx {TensorProto.DataType.Name(tt.elem_type).lower()}")
        if not tt.HasField("shape"):
            continue
        dims = ours.get("shape")
        if dims is None:
            errors.append(f"{where}: rank unknown, onnx knows rank {len(tt.shape.dim)}")
            continue
        if len(dims) != len(tt.shape.dim):
            errors.append(f"{where}: rank {len(dims)} != onnx {len(tt.shape.dim)} ({dims})")
            continue
        for i, (d, od) in enumerate(zip(dims, tt.shape.dim)):
            if od.HasField("dim_value"):
                if d != od.dim_value:
                    errors.append(f"{where}[{i}]: {d!r} != onnx {od.dim_value} ({dims})")
            elif od.HasField("dim_param") and od.dim_param in symbols:
                if not isinstance(d, int) and d != od.dim_param:
                    errors.append(f"{where}[{i}]: {d!r} != onnx '{od.dim_param}' ({dims})")
    return errors


# ---------------------------------------------------------------------------
# fixtures


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_fixture_agrees_with_onnx(mlpkg, name):
    """Every dtype, rank and dim onnx's strict shape inference gives, mlpkg gives too."""
    path = FIXTURES / name
    model = onnx.load(str(path), load_external_data=False)
    try:
        reference = onnx_types(model)
    except Exception as e:  # noqa: BLE001 — strict mode refuses some fixtures (custom ops, missing shapes)
        pytest.skip(f"onnx strict shape inference gives no result: {str(e).splitlines()[0][:120]}")
    types = inferred(mlpkg, path)["values"]
    errors = check_against_onnx(types, reference, name, input_symbols(model))
    assert not errors, "\n".join(errors)


@pytest.mark.parametrize("name", [n for n in FIXTURE_NAMES if n not in ORT_CANNOT_RUN])
def test_fixture_agrees_with_onnxruntime(mlpkg, name):
    """Every main-graph intermediate's actual shape equals mlpkg's symbolic type, evaluated for the feeds."""
    path = FIXTURES / name
    model = onnx.load(str(path))
    result = inferred(mlpkg, path)
    types = result["values"]
    env = input_env(model, types)
    feeds = feeds_for(model, types, env)
    errors = check_against_runtime(types, actual_shapes(model, feeds, types), env, name)
    assert not errors, "\n".join(errors)


def test_known_fixtures_fully_inferred(mlpkg):
    """Every fixture but the one with a custom op infers every node."""
    for name in FIXTURE_NAMES:
        unresolved = inferred(mlpkg, FIXTURES / name)["unresolved"]
        if name == "custom_domain.onnx":
            assert [u["opType"] for u in unresolved] == ["FancyOp"], unresolved
        else:
            assert not unresolved, f"{name}: {unresolved}"


PINS = {
    "yolo_like.onnx": ("images=1,3,64,48",),
    "transformer_dynamic.onnx": ("input_ids=2,5", "attention_mask=2,5"),
    "transformer.onnx": ("tokens=1,7,64",),
    "cnn.onnx": ("input=4,3,32,32",),
}


@pytest.mark.parametrize("name", sorted(PINS))
def test_pinned_shapes_are_static_and_match_onnxruntime(mlpkg, name):
    path = FIXTURES / name
    model = onnx.load(str(path))
    result = inferred(mlpkg, path, PINS[name])
    types = result["values"]
    dynamic = [f"{k[1]}: {t}" for k, t in types.items()
               if t.get("kind") == "tensor" and (t.get("shape") is None or not all(isinstance(d, int) for d in t["shape"]))]
    assert not dynamic, f"{name} with {PINS[name]}: not static:\n" + "\n".join(dynamic)
    feeds = feeds_for(model, types, {})
    errors = check_against_runtime(types, actual_shapes(model, feeds, types), {}, name)
    assert not errors, "\n".join(errors)


SHAPE_CHAIN_OPS = {"Shape", "Size", "Range", "ConstantOfShape", "Equal"}


@pytest.mark.parametrize("name", sorted(PINS))
def test_pinned_convert_folds_to_static_and_keeps_outputs(mlpkg, tmp_path, name):
    """convert --input-shape … --weights fp32 → export: every value_info and output static, no shape-chain op left,
    and onnxruntime computes the original's outputs (to float32 rounding; folding is exact)."""
    path = FIXTURES / name
    pkg, out = tmp_path / "m.mlpkg", tmp_path / "m.onnx"
    pins = [a for p in PINS[name] for a in ("--input-shape", p)]
    proc = cli(mlpkg, "convert", path, "-o", pkg, "--weights", "fp32", *pins, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    proc = cli(mlpkg, "export", pkg, "-o", out, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    exported = onnx.load(str(out))
    onnx.checker.check_model(exported, full_check=True)
    errors = []
    intermediates = {o for n in exported.graph.node for o in n.output}
    annotated = {v.name for v in exported.graph.value_info}
    for v in list(exported.graph.value_info) + list(exported.graph.output) + list(exported.graph.input):
        dims = v.type.tensor_type.shape.dim
        if not v.type.tensor_type.HasField("shape") or not all(d.HasField("dim_value") for d in dims):
            errors.append(f"{v.name}: not static in the export: {v.type}")
    missing = intermediates - annotated - {o.name for o in exported.graph.output}
    if missing:
        errors.append(f"no value_info for {sorted(missing)}")
    left = sorted(n.op_type for n in exported.graph.node if n.op_type in SHAPE_CHAIN_OPS)
    if left:
        errors.append(f"shape-chain ops left after folding: {left}")
    original = onnx.load(str(path))
    types = inferred(mlpkg, path, PINS[name])["values"]
    feeds = feeds_for(original, types, {})
    want = session(original).run(None, feeds)
    got = session(exported).run(None, feeds)
    for o, a, b in zip(original.graph.output, want, got):
        if a.shape != b.shape or not np.allclose(a, b, rtol=1e-5, atol=1e-6):
            errors.append(f"output {o.name}: max |diff| {np.max(np.abs(a - b)) if a.shape == b.shape else 'shape'}")
    assert not errors, f"{name}:\n" + "\n".join(errors)


@pytest.mark.parametrize("name", ["yolo_like.onnx", "transformer_dynamic.onnx"])
def test_dynamic_convert_keeps_outputs_for_other_sizes(mlpkg, tmp_path, name):
    """Without pins, folding keeps the model dynamic: the export runs at two sizes like the original."""
    path = FIXTURES / name
    pkg, out = tmp_path / "m.mlpkg", tmp_path / "m.onnx"
    assert cli(mlpkg, "convert", path, "-o", pkg, "--weights", "fp32", cwd=tmp_path).returncode == 0
    assert cli(mlpkg, "export", pkg, "-o", out, cwd=tmp_path).returncode == 0
    original, exported = onnx.load(str(path)), onnx.load(str(out))
    types = inferred(mlpkg, path)["values"]
    for sizes in ({"batch": 1, "seq": 4, "height": 16, "width": 24}, {"batch": 3, "seq": 6, "height": 33, "width": 17}):
        feeds = feeds_for(original, types, sizes, seed=1)
        for o, a, b in zip(original.graph.output, session(original).run(None, feeds), session(exported).run(None, feeds)):
            assert a.shape == b.shape and np.allclose(a, b, rtol=1e-5, atol=1e-6), f"{name} {sizes} {o.name}"


def test_export_carries_inferred_value_info(mlpkg, tmp_path):
    """The package records every value's type and export writes them as value_info (symbolic dims as dim_param)."""
    pkg, out = tmp_path / "t.mlpkg", tmp_path / "t.onnx"
    assert cli(mlpkg, "convert", FIXTURES / "transformer_dynamic.onnx", "-o", pkg, "--no-fold", cwd=tmp_path).returncode == 0
    assert cli(mlpkg, "export", pkg, "-o", out, cwd=tmp_path).returncode == 0
    m = onnx.load(str(out))
    vi = {v.name: [d.dim_value if d.HasField("dim_value") else d.dim_param for d in v.type.tensor_type.shape.dim]
          for v in m.graph.value_info}
    assert vi["q_heads"] == ["batch", "seq", 4, 8]
    assert vi["scores"] == ["batch", 4, "seq", "seq"]
    assert vi["positions"] == ["seq"]
    original = onnx.load(str(FIXTURES / "transformer_dynamic.onnx"))
    outputs = {x.name for x in original.graph.output}
    missing = [o for n in original.graph.node for o in n.output if o not in outputs and o not in vi]
    assert not missing, f"no value_info for {missing}"
    manifest = json.loads((pkg / "manifest.json").read_text())
    assert len(manifest["graph"]["valueInfo"]) == len(vi)


# ---------------------------------------------------------------------------
# --input-shape errors


@pytest.mark.parametrize("pin,needle", [
    ("ghost=1,3", "no input 'ghost'"),
    ("input=1,3,32", "rank 4"),
    ("input=0,3,32,32", "positive"),
    ("input=-1,3,32,32", "positive"),
    ("input=2,4,32,32", "fixes it at 3"),
    ("input", "NAME=D0,D1"),
    ("input=1,3,3x,32", "NAME=D0,D1"),
])
@pytest.mark.parametrize("command", ["inspect", "convert"])
def test_input_shape_errors_are_usage_errors(mlpkg, tmp_path, pin, needle, command):
    args = [command, FIXTURES / "cnn.onnx", "--input-shape", pin]
    if command == "convert":
        args += ["-o", tmp_path / "x.mlpkg"]
    proc = cli(mlpkg, *args, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    first = proc.stderr.splitlines()[0]
    assert first.startswith("error:") and needle in first, proc.stderr
    assert not (tmp_path / "x.mlpkg").exists()


def test_symbolic_pin_renames(mlpkg):
    types = inferred(mlpkg, FIXTURES / "cnn.onnx", ("input=n,3,32,32",))["values"]
    assert types[("main", "logits")]["shape"] == ["n", 10]


# ---------------------------------------------------------------------------
# models built here: one or more per op family, with opset differences


def tensor(name, dtype, shape):
    return helper.make_tensor_value_info(name, dtype, shape)


def i64(name, values):
    return numpy_helper.from_array(np.array(values, dtype=np.int64), name)


def f32(name, values):
    return numpy_helper.from_array(np.array(values, dtype=np.float32), name)


def model(nodes, inputs, opset, inits=(), outputs=None):
    outs = outputs or [o for o in nodes[-1].output if o]
    g = helper.make_graph(nodes, "g", inputs, [onnx.ValueInfoProto(name=o) for o in outs], initializer=list(inits))
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 10 if opset >= 21 else 8
    return m


F, I = TensorProto.FLOAT, TensorProto.INT64
N = helper.make_node
RNG = np.random.default_rng(7)


def built_models() -> dict[str, onnx.ModelProto]:
    x4 = [tensor("x", F, ["N", 3, "H", "W"])]
    out: dict[str, onnx.ModelProto] = {}
    # Squeeze / Unsqueeze: axes attribute (11) vs input (13)
    out["squeeze_11"] = model([N("Squeeze", ["x"], ["y"], axes=[0, -2])], [tensor("x", F, [1, "T", 1, 5])], 11)
    out["squeeze_13"] = model([N("Squeeze", ["x", "ax"], ["y"])], [tensor("x", F, [1, "T", 1, 5])], 13, [i64("ax", [0, 2])])
    out["squeeze_all"] = model([N("Squeeze", ["x"], ["y"])], [tensor("x", F, [1, 4, 1, 5])], 13)
    out["unsqueeze_11"] = model([N("Unsqueeze", ["x"], ["y"], axes=[0, -1])], [tensor("x", F, ["T", 5])], 11)
    out["unsqueeze_13"] = model([N("Unsqueeze", ["x", "ax"], ["y"])], [tensor("x", F, ["T", 5])], 13, [i64("ax", [1, 3])])
    # Reductions: ReduceSum axes input from 13, the others from 18; noop_with_empty_axes
    out["reducesum_11"] = model([N("ReduceSum", ["x"], ["y"], axes=[1, -1], keepdims=0)], x4, 11)
    out["reducesum_13"] = model([N("ReduceSum", ["x", "ax"], ["y"], keepdims=1)], x4, 13, [i64("ax", [2])])
    out["reducemean_13"] = model([N("ReduceMean", ["x"], ["y"], axes=[-1])], x4, 13)
    out["reducemean_18"] = model([N("ReduceMean", ["x", "ax"], ["y"], keepdims=0)], x4, 18, [i64("ax", [0, 3])])
    out["reducemax_18_all"] = model([N("ReduceMax", ["x"], ["y"], keepdims=0)], x4, 18)
    out["reducel2_18_noop"] = model([N("ReduceL2", ["x", "ax"], ["y"], noop_with_empty_axes=1)], x4, 18, [i64("ax", [])])
    out["argmax"] = model([N("ArgMax", ["x"], ["y"], axis=-1, keepdims=0, select_last_index=1)], x4, 13)
    # Split: attribute (11), input (13), num_outputs with a shorter last part (18)
    sx = [tensor("x", F, ["N", 7, "T"])]
    out["split_11"] = model([N("Split", ["x"], ["a", "b"], axis=1, split=[3, 4])], sx, 11, outputs=["a", "b"])
    out["split_13"] = model([N("Split", ["x", "s"], ["a", "b", "c"], axis=1)], sx, 13, [i64("s", [1, 2, 4])], outputs=["a", "b", "c"])
    out["split_13_equal"] = model([N("Split", ["x"], ["a", "b"], axis=0)], [tensor("x", F, [6, "T"])], 13, outputs=["a", "b"])
    out["split_18"] = model([N("Split", ["x"], ["a", "b", "c"], axis=1, num_outputs=3)], sx, 18, outputs=["a", "b", "c"])
    # Slice: attributes (9), inputs with axes and steps (13), symbolic axes
    out["slice_9"] = model([N("Slice", ["x"], ["y"], starts=[1, 0], ends=[1000, -1], axes=[2, 3])], x4, 9)
    out["slice_13_steps"] = model([N("Slice", ["x", "s", "e", "a", "st"], ["y"])], x4, 13,
                                  [i64("s", [-1, 1]), i64("e", [-1000, 100]), i64("a", [3, 2]), i64("st", [-2, 3])])
    out["slice_13_sym"] = model([N("Slice", ["x", "s", "e", "a"], ["y"])], x4, 13,
                                [i64("s", [1, -2]), i64("e", [np.iinfo(np.int64).max, np.iinfo(np.int64).max]), i64("a", [2, 3])])
    # Resize: scales (10), sizes (11), scales without roi (13), axes + keep_aspect_ratio_policy (18)
    out["resize_10"] = model([N("Resize", ["x", "sc"], ["y"], mode="nearest")], x4, 10, [f32("sc", [1, 1, 2, 0.5])])
    out["resize_11"] = model([N("Resize", ["x", "roi", "sc", "sz"], ["y"], mode="nearest")],
                             [tensor("x", F, [1, 3, 8, 8])], 11, [f32("roi", []), f32("sc", []), i64("sz", [1, 3, 5, 12])])
    out["resize_13"] = model([N("Resize", ["x", "", "sc"], ["y"], mode="linear")], x4, 13, [f32("sc", [1, 1, 1.5, 2])])
    out["resize_18_policy"] = model([N("Resize", ["x", "", "", "sz"], ["y"], axes=[2, 3], keep_aspect_ratio_policy="not_larger")],
                                    [tensor("x", F, [1, 3, 8, 6])], 18, [i64("sz", [5, 5])])
    out["upsample_9"] = model([N("Upsample", ["x", "sc"], ["y"], mode="nearest")], [tensor("x", F, [1, 3, 4, 5])], 9,
                              [f32("sc", [1, 1, 2, 3])])
    # Pad: pads input (11), axes input (18), negative pads
    out["pad_11"] = model([N("Pad", ["x", "p"], ["y"])], x4, 11, [i64("p", [0, 0, 1, 2, 0, 0, 3, -1])])
    out["pad_18_axes"] = model([N("Pad", ["x", "p", "", "a"], ["y"], mode="reflect")], x4, 18, [i64("p", [1, 2, 1, 2]), i64("a", [2, -1])])
    # TopK: attribute (1), input (10), largest/sorted (11)
    out["topk_1"] = model([N("TopK", ["x"], ["v", "i"], k=2)], [tensor("x", F, [3, 5])], 1, outputs=["v", "i"])
    out["topk_11"] = model([N("TopK", ["x", "k"], ["v", "i"], axis=1, largest=0)], x4, 11, [i64("k", [2])], outputs=["v", "i"])
    # Pools and convolutions: pads, strides, dilations, auto_pad, ceil_mode
    out["pool_ceil_pads"] = model([N("MaxPool", ["x"], ["y"], kernel_shape=[2, 2], strides=[2, 2], ceil_mode=1, pads=[1, 1, 1, 1])],
                                  [tensor("x", F, [1, 1, 5, 5])], 12)
    out["pool_ceil"] = model([N("AveragePool", ["x"], ["y"], kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1)], x4, 19)
    out["pool_same"] = model([N("MaxPool", ["x"], ["y", "idx"], kernel_shape=[3, 2], strides=[2, 3], auto_pad="SAME_UPPER")], x4, 12,
                             outputs=["y", "idx"])
    out["pool_dilated"] = model([N("MaxPool", ["x"], ["y"], kernel_shape=[2, 2], dilations=[2, 3], pads=[0, 1, 1, 0])], x4, 12)
    out["lppool"] = model([N("LpPool", ["x"], ["y"], kernel_shape=[2, 2], strides=[2, 2])], x4, 18)
    out["global_pool"] = model([N("GlobalMaxPool", ["x"], ["y"])], x4, 13)
    w = lambda name, shape: numpy_helper.from_array(RNG.standard_normal(shape).astype(np.float32), name)  # noqa: E731
    out["conv_strided"] = model([N("Conv", ["x", "w"], ["y"], strides=[2, 3], pads=[1, 0, 2, 1], dilations=[1, 2])], x4, 11,
                                [w("w", (6, 3, 3, 3))])
    out["conv_group_same"] = model([N("Conv", ["x", "w", "b"], ["y"], group=3, auto_pad="SAME_LOWER", strides=[2, 2])], x4, 11,
                                   [w("w", (6, 1, 3, 3)), w("b", (6,))])
    out["conv_valid_1d"] = model([N("Conv", ["x", "w"], ["y"], auto_pad="VALID", strides=[2])], [tensor("x", F, ["N", 3, "T"])], 11,
                                 [w("w", (4, 3, 2))])
    out["conv_transpose"] = model([N("ConvTranspose", ["x", "w"], ["y"], strides=[2, 2], pads=[1, 0, 1, 1], output_padding=[1, 0])],
                                  x4, 11, [w("w", (3, 4, 3, 3))])
    out["conv_transpose_shape"] = model([N("ConvTranspose", ["x", "w"], ["y"], strides=[2, 2], output_shape=[10, 9])],
                                        [tensor("x", F, [1, 3, 5, 4])], 11, [w("w", (3, 2, 3, 3))])
    out["depth_space"] = model([N("SpaceToDepth", ["x"], ["s"], blocksize=2), N("DepthToSpace", ["s"], ["y"], blocksize=2, mode="CRD")],
                               [tensor("x", F, ["N", 3, 4, 6])], 13)
    # MatMul / Gemm / Einsum
    out["matmul_broadcast"] = model([N("MatMul", ["a", "b"], ["y"])], [tensor("a", F, ["N", 1, "T", 4]), tensor("b", F, [3, 4, 2])], 13)
    out["matmul_vector"] = model([N("MatMul", ["a", "b"], ["y"])], [tensor("a", F, [4]), tensor("b", F, ["N", 4, 2])], 13)
    out["gemm_trans"] = model([N("Gemm", ["a", "b", "c"], ["y"], transA=1, transB=1)],
                              [tensor("a", F, [4, "N"]), tensor("b", F, [5, 4])], 13, [w("c", (5,))])
    out["einsum"] = model([N("Einsum", ["a", "b"], ["y"], equation="bij,bjk->bik"), N("Einsum", ["y"], ["t"], equation="...ij->...ji"),
                           N("Einsum", ["a", "b"], ["z"], equation="bij,bjk")],
                          [tensor("a", F, ["N", 3, 4]), tensor("b", F, ["N", 4, 5])], 12, outputs=["t", "z"])
    # Gather family, scatter, one-hot, data-dependent counts
    out["gather_axis"] = model([N("Gather", ["x", "i"], ["y"], axis=-1)], x4, 13, [i64("i", [[0, -1], [1, 2]])])
    out["gather_elements"] = model([N("GatherElements", ["x", "i"], ["y"], axis=1)], [tensor("x", F, [3, 4])], 13,
                                   [i64("i", [[0, 1], [2, 3], [1, 0]])])
    out["gather_nd"] = model([N("GatherND", ["x", "i"], ["y"], batch_dims=1)], [tensor("x", F, [2, 3, 4])], 13, [i64("i", [[[1]], [[2]]])])
    out["scatter_nd"] = model([N("ScatterND", ["x", "i", "u"], ["y"])], [tensor("x", F, [4, 3])], 13,
                              [i64("i", [[1], [3]]), w("u", (2, 3))])
    out["onehot"] = model([N("OneHot", ["i", "d", "v"], ["y"], axis=1)], [tensor("i", I, ["N", 3])], 11,
                          [i64("d", 5), f32("v", [0, 1])])
    out["nonzero"] = model([N("NonZero", ["x"], ["y"]), N("Transpose", ["y"], ["t"])], [tensor("x", F, [3, 4])], 13, outputs=["t"])
    out["unique"] = model([N("Unique", ["x"], ["u", "idx", "inv", "cnt"], axis=0, sorted=1)], [tensor("x", F, [4, 2])], 11,
                          outputs=["u", "idx", "inv", "cnt"])
    out["compress"] = model([N("Compress", ["x", "c"], ["y"], axis=1)], [tensor("x", F, [2, 3])], 11,
                            [numpy_helper.from_array(np.array([True, False, True]), "c")])
    # Shape ops, generators, casts
    out["shape_slice"] = model([N("Shape", ["x"], ["s"], start=-3, end=-1), N("Size", ["x"], ["n"])], x4, 15, outputs=["s", "n"])
    out["reshape_chain"] = model([
        N("Shape", ["x"], ["s"]), N("Gather", ["s", "i0"], ["n"], axis=0), N("Unsqueeze", ["n", "ax0"], ["n1"]),
        N("Concat", ["n1", "m1"], ["shp"], axis=0), N("Reshape", ["x", "shp"], ["y"]),
        N("Mul", ["n", "two"], ["n2"]), N("Range", ["zero", "n2", "one"], ["r"]),
        N("Concat", ["n1", "three"], ["shp_c"], axis=0),
        N("ConstantOfShape", ["shp_c"], ["c"], value=numpy_helper.from_array(np.array([1.5], np.float32))),
        N("Expand", ["y", "shp3"], ["e"]), N("Tile", ["y", "rep"], ["t"]),
        N("Flatten", ["x"], ["f"], axis=-2)],
        x4, 13, [i64("i0", 0), i64("ax0", [0]), i64("m1", [-1]), i64("two", 2), i64("zero", 0), i64("one", 1),
                 i64("shp3", [4, 1, 1]), i64("rep", [2, 3]), i64("three", [3])], outputs=["y", "r", "c", "e", "t", "f"])
    out["reshape_zero"] = model([N("Reshape", ["x", "s"], ["y"], allowzero=0)], x4, 14, [i64("s", [0, -1, 0])])
    out["range_float"] = model([N("Range", ["a", "b", "c"], ["y"])], [], 11, [f32("a", 1.0), f32("b", 7.5), f32("c", 2.0)])
    out["cast"] = model([N("Cast", ["x"], ["c"], to=TensorProto.INT32), N("CastLike", ["c", "x"], ["y"])], x4, 15, outputs=["c", "y"])
    out["where_expand"] = model([N("Greater", ["x", "z"], ["m"]), N("Where", ["m", "x", "b"], ["y"])],
                                [tensor("x", F, ["N", 1, "W"]), tensor("b", F, [3, 1])], 16, [f32("z", 0.0)])
    out["transpose_default"] = model([N("Transpose", ["x"], ["y"])], x4, 13)
    out["eyelike_trilu"] = model([N("EyeLike", ["x"], ["e"], dtype=TensorProto.INT32), N("Trilu", ["x"], ["y"], upper=0)],
                                 [tensor("x", F, [3, 5])], 14, outputs=["e", "y"])
    out["cumsum"] = model([N("CumSum", ["x", "a"], ["y"])], x4, 14, [i64("a", 1)])
    # Normalizations and recurrences
    out["layernorm_stats"] = model([N("LayerNormalization", ["x", "g"], ["y", "m", "r"], axis=2)],
                                   [tensor("x", F, ["N", "T", 4, 5])], 17, [w("g", (4, 5))], outputs=["y", "m", "r"])
    out["batchnorm"] = model([N("BatchNormalization", ["x", "s", "b", "m", "v"], ["y"])], x4, 15,
                             [w("s", (3,)), w("b", (3,)), w("m", (3,)), f32("v", [1, 1, 1])])
    out["lstm_bidirectional"] = model([N("LSTM", ["x", "w", "r"], ["y", "h", "c"], hidden_size=5, direction="bidirectional")],
                                      [tensor("x", F, ["T", "N", 3])], 14, [w("w", (2, 20, 3)), w("r", (2, 20, 5))],
                                      outputs=["y", "h", "c"])
    out["lstm_layout1"] = model([N("LSTM", ["x", "w", "r"], ["y", "h", "c"], hidden_size=5, direction="bidirectional", layout=1)],
                                [tensor("x", F, ["N", "T", 3])], 14, [w("w", (2, 20, 3)), w("r", (2, 20, 5))], outputs=["y", "h", "c"])
    out["gru_rnn"] = model([N("GRU", ["x", "w", "r"], ["y", "h"], hidden_size=4), N("RNN", ["y2", "w2", "r2"], ["z"], hidden_size=2),
                            N("Squeeze", ["y", "a"], ["y2"])],
                           [tensor("x", F, ["T", 2, 3])], 13, [w("w", (1, 12, 3)), w("r", (1, 12, 4)), i64("a", [1]),
                                                              w("w2", (1, 2, 4)), w("r2", (1, 2, 2))], outputs=["h", "z"])
    # Control flow
    then_g = helper.make_graph([N("Add", ["x", "x"], ["t"])], "then", [], [tensor("t", F, None)])
    else_g = helper.make_graph([N("Mul", ["x", "x"], ["e"])], "else", [], [tensor("e", F, None)])
    out["if_join"] = model([N("If", ["c"], ["y"], then_branch=then_g, else_branch=else_g)],
                           [tensor("c", TensorProto.BOOL, []), tensor("x", F, ["N", 3])], 13)
    body = helper.make_graph([N("Identity", ["cin"], ["cout"]), N("Add", ["v", "one_f"], ["v2"]), N("Mul", ["v2", "v2"], ["sq"])],
                             "body", [tensor("i", I, []), tensor("cin", TensorProto.BOOL, []), tensor("v", F, None)],
                             [tensor("cout", TensorProto.BOOL, None), tensor("v2", F, None), tensor("sq", F, None)])
    out["loop_trip"] = model([N("Loop", ["m", "", "x"], ["vf", "scan"], body=body)], [tensor("x", F, ["N", 2])], 13,
                             [i64("m", 4), f32("one_f", 1.0)], outputs=["vf", "scan"])
    scan_body = helper.make_graph([N("Add", ["s", "e"], ["s2"]), N("Identity", ["s2"], ["o"])], "sb",
                                  [tensor("s", F, None), tensor("e", F, None)], [tensor("s2", F, None), tensor("o", F, None)])
    out["scan_axes"] = model([N("Scan", ["s0", "xs"], ["sf", "ys"], body=scan_body, num_scan_inputs=1, scan_input_axes=[1],
                                scan_output_axes=[-1])],
                             [tensor("s0", F, [3]), tensor("xs", F, [3, "T"])], 16, outputs=["sf", "ys"])
    # Quantization
    out["qdq"] = model([N("QuantizeLinear", ["x", "s", "z"], ["q"]), N("DequantizeLinear", ["q", "s", "z"], ["y"]),
                        N("DynamicQuantizeLinear", ["x"], ["dq", "ds", "dz"])], x4, 13,
                       [f32("s", 0.1), numpy_helper.from_array(np.array(3, np.int8), "z")], outputs=["y", "dq", "ds", "dz"])
    out.update(sweep_models())
    return out


UNARY = {  # op → opset (the newest the op's shape rule had to learn, or the op's first)
    "Abs": 13, "Acos": 7, "Acosh": 9, "Asin": 7, "Asinh": 9, "Atan": 7, "Atanh": 9, "Ceil": 13, "Cos": 7, "Cosh": 9,
    "Erf": 13, "Exp": 13, "Floor": 13, "Log": 13, "Neg": 13, "Reciprocal": 13, "Round": 11, "Sigmoid": 13, "Sign": 13,
    "Sin": 7, "Sinh": 9, "Softplus": 1, "Softsign": 1, "Sqrt": 13, "Tan": 7, "Tanh": 13, "Relu": 14, "LeakyRelu": 16,
    "Elu": 6, "Selu": 6, "Celu": 12, "ThresholdedRelu": 10, "HardSigmoid": 6, "HardSwish": 14, "Mish": 18, "Gelu": 20,
    "Identity": 16, "Softmax": 13, "LogSoftmax": 13, "Hardmax": 13, "Shrink": 9, "IsNaN": 13, "IsInf": 10,
    "MeanVarianceNormalization": 13, "LpNormalization": 1, "LRN": 13, "Dropout": 13,
}
BINARY = {"Add": 14, "Sub": 14, "Mul": 14, "Div": 14, "Pow": 15, "Max": 13, "Min": 13, "Sum": 13, "Mean": 13,
          "Equal": 13, "Greater": 13, "Less": 13, "GreaterOrEqual": 16, "LessOrEqual": 16}


def sweep_models() -> dict[str, onnx.ModelProto]:
    out: dict[str, onnx.ModelProto] = {}
    x3 = [tensor("x", F, ["N", 3, "W"])]
    for op, opset in UNARY.items():
        attrs = {"size": 3} if op == "LRN" else {}
        outs = ["y", "mask"] if op == "Dropout" else ["y"]
        out[f"unary_{op}"] = model([N(op, ["x"], outs, **attrs)], [tensor("x", F, ["N", 3, "W", 2])], opset, outputs=outs)
    for op, opset in BINARY.items():
        out[f"binary_{op}"] = model([N(op, ["x", "y"], ["z"])], [tensor("x", F, ["N", 1, "W"]), tensor("y", F, [3, 1])], opset)
    B = TensorProto.BOOL
    out["logic"] = model([N("And", ["a", "b"], ["c"]), N("Or", ["c", "a"], ["d"]), N("Xor", ["d", "b"], ["e"]), N("Not", ["e"], ["f"])],
                         [tensor("a", B, ["N", 1]), tensor("b", B, [4])], 7)
    i32 = lambda name, v: numpy_helper.from_array(np.array(v, np.int32), name)  # noqa: E731
    I32 = TensorProto.INT32
    out["integer_ops"] = model([N("Mod", ["x", "k"], ["m"]), N("BitwiseAnd", ["m", "k"], ["a"]), N("BitwiseOr", ["a", "k"], ["o"]),
                                N("BitwiseXor", ["o", "k"], ["x2"]), N("BitwiseNot", ["x2"], ["y"])],
                               [tensor("x", I32, ["N", 3])], 18, [i32("k", [3, 5, 7])])
    out["prelu"] = model([N("PRelu", ["x", "s"], ["y"])], x3, 16, [f32("s", [[0.1], [0.2], [0.3]])])
    out["clip_11"] = model([N("Clip", ["x", "lo", "hi"], ["y"])], x3, 11, [f32("lo", -1.0), f32("hi", 1.0)])
    out["clip_6"] = model([N("Clip", ["x"], ["y"], min=-1.0, max=1.0)], x3, 6)
    w = lambda name, shape: numpy_helper.from_array(RNG.standard_normal(shape).astype(np.float32), name)  # noqa: E731
    x4 = [tensor("x", F, ["N", 3, "H", "W"])]
    out["instance_group_norm"] = model([N("InstanceNormalization", ["x", "s", "b"], ["i"]),
                                        N("GroupNormalization", ["i", "s", "b"], ["y"], num_groups=3)],
                                       x4, 21, [w("s", (3,)), w("b", (3,))])
    out["cumsum_reverse"] = model([N("CumSum", ["x", "a"], ["c"], reverse=1),
                                   N("ReverseSequence", ["c", "lens"], ["y"], batch_axis=1, time_axis=0)],
                                  [tensor("x", F, ["T", 2, 3])], 14, [i64("a", 0), i64("lens", [1, 2])])
    out["grid_sample"] = model([N("GridSample", ["x", "g"], ["y"])], [tensor("x", F, ["N", 3, "H", "W"]), tensor("g", F, ["N", 5, 6, 2])], 16)
    out["affine_grid"] = model([N("AffineGrid", ["t", "size"], ["y"])], [tensor("t", F, [2, 2, 3])], 20, [i64("size", [2, 3, 5, 6])])
    out["roi_align"] = model([N("RoiAlign", ["x", "rois", "bi"], ["y"], output_height=3, output_width=2)],
                             [tensor("x", F, [1, 3, "H", "W"])], 16,
                             [f32("rois", [[0, 0, 2, 2], [1, 1, 3, 3]]), i64("bi", [0, 0])])
    out["max_roi_pool"] = model([N("MaxRoiPool", ["x", "rois"], ["y"], pooled_shape=[2, 2])], [tensor("x", F, [1, 3, 8, 8])], 1,
                                [f32("rois", [[0, 0, 0, 3, 3], [0, 2, 2, 5, 5]])])
    out["det"] = model([N("Det", ["x"], ["y"])], [tensor("x", F, ["N", 3, 3])], 11)
    out["center_crop_pad"] = model([N("CenterCropPad", ["x", "s"], ["y"], axes=[2, 3])], x4, 18, [i64("s", [4, 13])])
    out["window"] = model([N("HannWindow", ["n"], ["y"], output_datatype=TensorProto.DOUBLE)], [], 17, [i64("n", 7)])
    out["max_unpool"] = model([N("MaxPool", ["x"], ["p", "i"], kernel_shape=[2, 2], strides=[2, 2]),
                               N("MaxUnpool", ["p", "i"], ["y"], kernel_shape=[2, 2], strides=[2, 2])],
                              [tensor("x", F, ["N", 3, 8, 10])], 11)
    out["global_lp_arg"] = model([N("GlobalLpPool", ["x"], ["g"]), N("ArgMin", ["x"], ["a"], axis=1)], x4, 13, outputs=["g", "a"])
    out["scatter_elements"] = model([N("ScatterElements", ["x", "i", "u"], ["y"], axis=1)], [tensor("x", F, [3, 4])], 18,
                                    [i64("i", [[1], [0], [3]]), f32("u", [[1.0], [2.0], [3.0]])])
    out["random_like"] = model([N("RandomNormalLike", ["x"], ["r"]), N("RandomUniform", [], ["u"], shape=[2, 5]),
                                N("Bernoulli", ["x"], ["b"], dtype=TensorProto.INT32)],
                               [tensor("x", F, ["N", 3])], 15, outputs=["r", "u", "b"])
    out["multinomial"] = model([N("Multinomial", ["x"], ["y"], sample_size=4)], [tensor("x", F, ["N", 5])], 7)
    out["sequences"] = model([N("SequenceConstruct", ["x", "x"], ["s"]), N("SequenceAt", ["s", "k"], ["a"]),
                              N("SequenceLength", ["s"], ["n"]), N("SplitToSequence", ["x"], ["sp"], axis=1),
                              N("ConcatFromSequence", ["sp"], ["c"], axis=1, new_axis=1),
                              N("SequenceInsert", ["s", "x"], ["s2"]), N("SequenceErase", ["s2"], ["s3"]),
                              N("SequenceAt", ["s3", "k"], ["b"])],
                             [tensor("x", F, ["N", 3])], 11, [i64("k", 0)], outputs=["a", "n", "c", "b"])
    out["optional"] = model([N("Optional", ["x"], ["o"]), N("OptionalHasElement", ["o"], ["h"]), N("OptionalGetElement", ["o"], ["y"])],
                            [tensor("x", F, ["N", 3])], 18, outputs=["h", "y"])
    U8 = TensorProto.UINT8
    out["integer_matmul_conv"] = model([N("MatMulInteger", ["a", "b"], ["m"]), N("ConvInteger", ["x", "w"], ["c"])],
                                       [tensor("a", U8, ["N", 4]), tensor("x", U8, [1, 2, "H", "W"])], 10,
                                       [numpy_helper.from_array(np.ones((4, 3), np.uint8), "b"),
                                        numpy_helper.from_array(np.ones((5, 2, 3, 3), np.uint8), "w")], outputs=["m", "c"])
    out["space_depth_dcr"] = model([N("DepthToSpace", ["x"], ["y"], blocksize=2)], [tensor("x", F, ["N", 8, "H", "W"])], 13)
    out["tile_expand_sym"] = model([N("Shape", ["x"], ["s"]), N("Expand", ["one", "s"], ["e"]), N("Tile", ["x", "r"], ["t"]),
                                    N("Expand", ["x", "s2"], ["f"])],
                                   [tensor("x", F, ["N", 1, "W"])], 13, [f32("one", [1.0]), i64("r", [1, 2, 1]), i64("s2", [4, 1, 1, 1])],
                                   outputs=["e", "t", "f"])
    out["gather_shape_arith"] = model([
        N("Shape", ["x"], ["s"]), N("Gather", ["s", "i"], ["w"]), N("Mul", ["w", "two"], ["w2"]), N("Sub", ["w2", "one"], ["w3"]),
        N("Div", ["w3", "two"], ["w4"]), N("Unsqueeze", ["w4", "ax"], ["w5"]), N("Concat", ["m1", "w5"], ["shp"], axis=0),
        N("Slice", ["x", "zero1", "w5", "ax2"], ["y"]), N("Reshape", ["y", "shp"], ["z"])],
        [tensor("x", F, [2, "W"])], 13, [i64("i", 1), i64("two", 2), i64("one", 1), i64("ax", [0]), i64("m1", [-1]),
                                         i64("zero1", [0]), i64("ax2", [1])], outputs=["z"])
    for op in ("ReduceL1", "ReduceLogSum", "ReduceLogSumExp", "ReduceMin", "ReduceProd", "ReduceSumSquare"):
        out[f"reduce_{op}_18"] = model([N(op, ["x", "ax"], ["y"], keepdims=0)], x4, 18, [i64("ax", [1])])
    out["nms"] = model([N("NonMaxSuppression", ["b", "s", "m"], ["y"])], [tensor("b", F, [1, 6, 4]), tensor("s", F, [1, 2, 6])], 11,
                       [i64("m", 3)])
    out["bitshift"] = model([N("BitShift", ["x", "k"], ["y"], direction="LEFT")], [tensor("x", U8, ["N", 3])], 11,
                            [numpy_helper.from_array(np.array([1, 2, 3], np.uint8), "k")])
    u8 = lambda name, v: numpy_helper.from_array(np.array(v, np.uint8), name)  # noqa: E731
    out["qlinear"] = model([N("QLinearMatMul", ["a", "sa", "za", "b", "sb", "zb", "sy", "zy"], ["m"]),
                            N("QLinearConv", ["x", "sa", "za", "w", "sb", "zb", "sy", "zy"], ["c"], pads=[1, 1, 1, 1])],
                           [tensor("a", U8, ["N", 4]), tensor("x", U8, [1, 2, "H", "W"])], 10,
                           [f32("sa", 0.1), u8("za", 1), u8("b", np.ones((4, 3))), f32("sb", 0.2), u8("zb", 0), f32("sy", 0.3),
                            u8("zy", 2), u8("w", np.ones((5, 2, 3, 3)))], outputs=["m", "c"])
    out["random_normal"] = model([N("RandomNormal", [], ["r"], shape=[3, 4], dtype=TensorProto.DOUBLE),
                                  N("RandomUniformLike", ["x"], ["u"])], [tensor("x", F, ["N", 2])], 1, outputs=["r", "u"])
    out["scatter_9"] = model([N("Scatter", ["x", "i", "u"], ["y"], axis=0)], [tensor("x", F, [3, 4])], 10,
                             [i64("i", [[1, 0, 2, 0]]), f32("u", [[1.0, 2.0, 3.0, 4.0]])])
    out["sequence_empty"] = model([N("SequenceEmpty", [], ["s"], dtype=TensorProto.FLOAT), N("SequenceInsert", ["s", "x"], ["s2"]),
                                   N("SequenceAt", ["s2", "k"], ["y"])], [tensor("x", F, ["N", 3])], 11, [i64("k", 0)])
    out["windows"] = model([N("HammingWindow", ["n"], ["h"]), N("BlackmanWindow", ["n"], ["b"], periodic=0)], [], 17, [i64("n", 9)],
                           outputs=["h", "b"])
    out["rms_rotary"] = model([N("RMSNormalization", ["x", "g"], ["r"], axis=-1)], [tensor("x", F, ["N", "T", 8])], 23, [w("g", (8,))])
    out["swish"] = model([N("Swish", ["x"], ["y"])], x4, 24)
    out["deform_conv"] = model([N("DeformConv", ["x", "w", "off"], ["y"], kernel_shape=[3, 3])],
                               [tensor("x", F, [1, 2, 6, 6]), tensor("off", F, [1, 18, 4, 4])], 19, [w("w", (4, 2, 3, 3))])
    grow = helper.make_graph([N("Identity", ["cin"], ["cout"]), N("Concat", ["v", "v"], ["v2"], axis=1)], "grow",
                             [tensor("i", I, []), tensor("cin", TensorProto.BOOL, []), tensor("v", F, None)],
                             [tensor("cout", TensorProto.BOOL, None), tensor("v2", F, None)])
    out["loop_growing"] = model([N("Loop", ["m", "c", "x"], ["vf"], body=grow)], [tensor("x", F, ["N", 2])], 13,
                                [i64("m", 3), numpy_helper.from_array(np.array(True), "c")])
    scan8 = helper.make_graph([N("Add", ["s", "e"], ["s2"]), N("Identity", ["s2"], ["o"])], "sb8",
                              [tensor("s", F, None), tensor("e", F, None)], [tensor("s2", F, None), tensor("o", F, None)])
    out["scan_8_batched"] = model([N("Scan", ["", "s0", "xs"], ["sf", "ys"], body=scan8, num_scan_inputs=1)],
                                  [tensor("s0", F, [2, 3]), tensor("xs", F, [2, "T", 3])], 8, outputs=["sf", "ys"])
    return out


BUILT = built_models()
# onnxruntime 1.32 has no kernel for these forms (batch-first recurrences): onnx is the only reference.
ORT_CANNOT_RUN_BUILT = {"lstm_layout1"}
# Known limitations: mlpkg leaves these unknown (and lists the nodes) where onnxruntime knows more.
LIMITATIONS = {
    "sequence_empty": "an empty sequence's elements have no shape; what is inserted joins with that to an unknown shape",
}


@pytest.mark.parametrize("case", sorted(BUILT))
def test_built_model(mlpkg, tmp_path, case):
    """One op family (and opset version): mlpkg against onnx's strict inference and onnxruntime's actual shapes."""
    m = BUILT[case]
    path = tmp_path / f"{case}.onnx"
    onnx.save(m, str(path))
    result = inferred(mlpkg, path)
    types = result["values"]
    errors = []
    if case in LIMITATIONS:
        assert result["unresolved"], f"{case}: the limitation ({LIMITATIONS[case]}) is gone: update the test"
    elif result["unresolved"]:
        errors.append(f"unresolved: {result['unresolved']}")
    try:
        reference = onnx_types(m)
    except Exception:  # noqa: BLE001
        reference = None
    if reference is not None:
        errors += check_against_onnx(types, reference, case, input_symbols(m))
    if case not in ORT_CANNOT_RUN_BUILT and case not in LIMITATIONS:
        env = input_env(m, types)
        feeds = feeds_for(m, types, env)
        errors += check_against_runtime(types, actual_shapes(m, feeds, types), env, case)
    assert not errors, "\n".join(errors)


def test_built_models_cover_opset_differences():
    families = {name.split("_")[0] for name in BUILT}
    assert {"squeeze", "unsqueeze", "reducesum", "reducemean", "split", "slice", "resize", "pad", "topk"} <= families
