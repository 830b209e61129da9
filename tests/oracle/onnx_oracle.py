"""Reference implementation of `mlpkg inspect --json`, computed with the `onnx` package.

Only the `onnx` protobuf classes are used to read the file; every number
(element sizes, byte counts, merges) is computed here, independently of the
Swift implementation, from the contract in the lead's brief:

* parameters = dense and sparse initializers of the main graph and of every
  subgraph, plus the value of every Constant node in those graphs (not in
  function bodies);
* count = product of dims (1 for a scalar); bytes = ceil(count * bits / 8);
  strings: sum of UTF-8 byte lengths; sparse: count = stored values,
  bytes = values bytes + indices bytes, dtype = values dtype.
"""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path
from typing import Any, Iterator

import onnx
from onnx import AttributeProto, GraphProto, ModelProto, SparseTensorProto, TensorProto, TypeProto

# ---------------------------------------------------------------------------
# dtypes

_BITS = {
    "float": 32, "uint8": 8, "int8": 8, "uint16": 16, "int16": 16, "int32": 32,
    "int64": 64, "bool": 8, "float16": 16, "double": 64, "uint32": 32, "uint64": 64,
    "complex64": 64, "complex128": 128, "bfloat16": 16,
    "uint4": 4, "int4": 4, "float4e2m1": 4, "uint2": 2, "int2": 2,
}


def dtype_name(elem_type: int) -> str | None:
    if elem_type == 0:
        return None
    return TensorProto.DataType.Name(elem_type).lower()


def dtype_bits(name: str) -> int:
    """Bits per element of a fixed-size dtype (not string)."""
    if name in _BITS:
        return _BITS[name]
    if name.startswith("float8"):
        return 8
    if name.startswith("float6"):
        return 6
    raise KeyError(f"no element size known for dtype {name!r}")


def nbytes(name: str, count: int) -> int:
    return (count * dtype_bits(name) + 7) // 8


# ---------------------------------------------------------------------------
# parameters


def tensor_param(t: TensorProto) -> tuple[str, int, int]:
    """(dtype, element count, bytes) of a dense tensor."""
    dt = dtype_name(t.data_type)
    count = math.prod(t.dims)
    if dt == "string":
        return dt, count, sum(len(s) for s in t.string_data)
    return dt, count, nbytes(dt, count)


def sparse_param(s: SparseTensorProto) -> tuple[str, int, int]:
    dt, count, vbytes = tensor_param(s.values)
    _, _, ibytes = tensor_param(s.indices)
    return dt, count, vbytes + ibytes


def constant_params(node: onnx.NodeProto) -> list[tuple[str, int, int]]:
    out = []
    for a in node.attribute:
        if a.name == "value":
            out.append(tensor_param(a.t))
        elif a.name == "sparse_value":
            out.append(sparse_param(a.sparse_tensor))
        elif a.name == "value_float":
            out.append(("float", 1, 4))
        elif a.name == "value_floats":
            out.append(("float", len(a.floats), 4 * len(a.floats)))
        elif a.name == "value_int":
            out.append(("int64", 1, 8))
        elif a.name == "value_ints":
            out.append(("int64", len(a.ints), 8 * len(a.ints)))
        elif a.name == "value_string":
            out.append(("string", 1, len(a.s)))
        elif a.name == "value_strings":
            out.append(("string", len(a.strings), sum(len(s) for s in a.strings)))
    return out


def is_constant(node: onnx.NodeProto) -> bool:
    return node.op_type == "Constant" and node.domain in ("", "ai.onnx")


# ---------------------------------------------------------------------------
# graph walk


def subgraphs_of(node: onnx.NodeProto) -> Iterator[GraphProto]:
    for a in node.attribute:
        if a.type == AttributeProto.GRAPH or a.HasField("g"):
            yield a.g
        if a.type == AttributeProto.GRAPHS or len(a.graphs):
            yield from a.graphs


def all_graphs(g: GraphProto) -> Iterator[GraphProto]:
    """The graph itself, then every subgraph reachable through attributes."""
    yield g
    for node in g.node:
        for sub in subgraphs_of(node):
            yield from all_graphs(sub)


# ---------------------------------------------------------------------------
# types


def shape_json(tt) -> list | None:
    if not tt.HasField("shape"):
        return None
    dims = []
    for d in tt.shape.dim:
        which = d.WhichOneof("value")
        if which == "dim_value":
            dims.append(d.dim_value)
        elif which == "dim_param":
            dims.append(d.dim_param)
        else:
            dims.append(None)
    return dims


def type_json(tp: TypeProto) -> dict[str, Any]:
    which = tp.WhichOneof("value")
    if which == "tensor_type":
        tt = tp.tensor_type
        return {"kind": "tensor", "dtype": dtype_name(tt.elem_type), "shape": shape_json(tt)}
    if which == "sparse_tensor_type":
        tt = tp.sparse_tensor_type
        return {"kind": "sparse_tensor", "dtype": dtype_name(tt.elem_type),
                "shape": shape_json(tt)}
    if which == "sequence_type":
        return {"kind": "sequence", "element": type_json(tp.sequence_type.elem_type)}
    if which == "map_type":
        return {"kind": "map", "key": dtype_name(tp.map_type.key_type),
                "value": type_json(tp.map_type.value_type)}
    if which == "optional_type":
        return {"kind": "optional", "element": type_json(tp.optional_type.elem_type)}
    return {"kind": "unknown"}


# ---------------------------------------------------------------------------
# the expected report


def norm_domain(d: str) -> str:
    return "" if d == "ai.onnx" else d


def expected_report(path: Path) -> dict[str, Any]:
    m: ModelProto = onnx.load(str(path), load_external_data=False)
    g = m.graph

    # opset imports, merged
    opsets: dict[str, int] = {}
    for o in m.opset_import:
        d = norm_domain(o.domain)
        if d in opsets and opsets[d] != o.version:
            raise ValueError(f"conflicting opset versions for domain {d!r}")
        opsets[d] = o.version

    # inputs / outputs
    init_names = {t.name for t in g.initializer} | {s.values.name for s in g.sparse_initializer}
    inputs = [{"name": v.name, "type": type_json(v.type)}
              for v in g.input if v.name not in init_names]
    outputs = [{"name": v.name, "type": type_json(v.type)} for v in g.output]

    # nodes, ops, subgraphs, parameters
    graphs = list(all_graphs(g))
    op_counts: dict[tuple[str, str], int] = defaultdict(int)
    total = 0
    init_count = 0
    params: list[tuple[str, int, int]] = []
    named: list[dict[str, Any]] = []   # dense initializers, for largestTensors checks
    ext_files: dict[str, dict[str, int]] = {}

    def note_external(t: TensorProto) -> None:
        if t.data_location != TensorProto.EXTERNAL:
            return
        kv = {e.key: e.value for e in t.external_data}
        loc = kv.get("location", "")
        entry = ext_files.setdefault(loc, {"tensors": 0, "bytes": 0})
        entry["tensors"] += 1
        entry["bytes"] += tensor_param(t)[2]

    for gr in graphs:
        total += len(gr.node)
        init_count += len(gr.initializer)
        for t in gr.initializer:
            params.append(tensor_param(t))
            named.append({"name": t.name, "dtype": dtype_name(t.data_type),
                          "shape": list(t.dims), "bytes": tensor_param(t)[2],
                          "external": t.data_location == TensorProto.EXTERNAL,
                          "encoding": "raw"})
            note_external(t)
        for s in gr.sparse_initializer:
            params.append(sparse_param(s))
            note_external(s.values)
            note_external(s.indices)
        for node in gr.node:
            op_counts[(norm_domain(node.domain), node.op_type)] += 1
            if is_constant(node):
                params.extend(constant_params(node))
                for a in node.attribute:
                    if a.name == "value":
                        note_external(a.t)

    by_dtype: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    for dt, count, b in params:
        e = by_dtype[dt]
        e[0] += 1
        e[1] += count
        e[2] += b

    return {
        "file": path.name,
        "irVersion": m.ir_version,
        "producer": {"name": m.producer_name, "version": m.producer_version},
        "domain": m.domain,
        "modelVersion": m.model_version,
        "opsetImports": [{"domain": d, "version": opsets[d]} for d in sorted(opsets)],
        "inputs": inputs,
        "outputs": outputs,
        "nodes": {"total": total, "mainGraph": len(g.node)},
        "opCounts": [{"domain": d, "opType": op, "count": c}
                     for (d, op), c in sorted(op_counts.items())],
        "subgraphCount": len(graphs) - 1,
        "initializerCount": init_count,
        "parameters": {
            "count": sum(p[1] for p in params),
            "bytes": sum(p[2] for p in params),
            "byDtype": [{"dtype": dt, "tensors": v[0], "count": v[1], "bytes": v[2]}
                        for dt, v in sorted(by_dtype.items())],
        },
        "externalDataFiles": [{"location": loc, **v} for loc, v in sorted(ext_files.items())],
        "functions": [{"domain": f.domain, "name": f.name, "nodes": len(f.node)}
                      for f in m.functions],
        "metadata": {p.key: p.value for p in m.metadata_props},
        # not part of the tool's output: helpers for the largestTensors check
        "_paramBytes": sorted((p[2] for p in params), reverse=True),
        "_initializers": named,
    }


# ---------------------------------------------------------------------------
# diffing


def diff(expected: Any, actual: Any, path: str = "") -> list[str]:
    """Human-readable list of differences; empty when equal.

    Dicts are compared key by key (missing and extra keys are reported),
    lists element by element, everything else with ==, with bool and int
    kept apart (True must not match 1)."""
    out: list[str] = []
    if isinstance(expected, dict) and isinstance(actual, dict):
        for k in expected:
            sub = f"{path}.{k}" if path else k
            if k not in actual:
                out.append(f"{sub}: missing (expected {expected[k]!r})")
            else:
                out.extend(diff(expected[k], actual[k], sub))
        for k in actual:
            if k not in expected:
                sub = f"{path}.{k}" if path else k
                out.append(f"{sub}: unexpected key (got {actual[k]!r})")
        return out
    if isinstance(expected, list) and isinstance(actual, list):
        for i, (e, a) in enumerate(zip(expected, actual)):
            out.extend(diff(e, a, f"{path}[{i}]"))
        if len(expected) != len(actual):
            out.append(f"{path}: expected {len(expected)} entries, got {len(actual)}"
                       f" (expected {expected!r}, got {actual!r})")
        return out
    def is_num(x: Any) -> bool:
        return isinstance(x, (int, float)) and not isinstance(x, bool)

    if is_num(expected) and is_num(actual):
        same = expected == actual
    else:
        same = type(expected) is type(actual) and expected == actual
    if not same:
        out.append(f"{path}: expected {expected!r}, got {actual!r}")
    return out
