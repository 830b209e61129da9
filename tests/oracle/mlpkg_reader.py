"""An independent reader for `.mlpkg` packages, written from docs/FORMAT.md and the linear
quantization encoding, with numpy only (no code shared with the Swift implementation).

Used by tests/oracle/test_quantized.py and by bench/bench.py (weight SNR of a package).

Linear encoding of a tensor-table entry (dtype "float"):

    "encoding": {"kind": "linear", "storage": "int8"|"uint8"|"int4"|"uint4",
                 "axis": int (absent: per-tensor), "blockSize": int (absent: not blocked),
                 "scale": INDEX, "zeroPoint": INDEX (absent: zero)}

The blob holds the quantized values (4-bit storage two per byte, element 2i in the low
nibble). The scale tensor is float32 with shape [] (per-tensor), [dims[axis]] (per-channel) or
the weight's shape with dims[axis] replaced by ceil(dims[axis] / blockSize) (per-block, the
ONNX DequantizeLinear blocked layout); the zero point has the scale's shape and the storage
dtype. Dequantized value: scale * (q - zeroPoint), computed in float32.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np

# element types a reader of weight packages needs; 4-bit types are unpacked to one byte each
NUMPY_DTYPES: dict[str, Any] = {
    "float": np.float32, "float16": np.float16, "double": np.float64,
    "int8": np.int8, "uint8": np.uint8, "int16": np.int16, "uint16": np.uint16,
    "int32": np.int32, "uint32": np.uint32, "int64": np.int64, "uint64": np.uint64,
    "bool": np.bool_,
}
STORAGE_BITS = {"int8": 8, "uint8": 8, "int4": 4, "uint4": 4}
# representable range of each storage dtype
STORAGE_RANGE = {"int8": (-128, 127), "uint8": (0, 255), "int4": (-8, 7), "uint4": (0, 15)}
LINEAR_KINDS = ("linear",)


class PackageFormatError(Exception):
    pass


def unpack_4bit(buf: bytes, count: int, signed: bool) -> np.ndarray:
    """`count` 4-bit values, element 2i in the low nibble of byte i, as int8 (signed, two's
    complement in the nibble) or uint8."""
    if len(buf) < (count + 1) // 2:
        raise PackageFormatError(f"4-bit blob of {len(buf)} bytes too short for {count} elements")
    b = np.frombuffer(buf, dtype=np.uint8, count=(count + 1) // 2)
    out = np.empty(2 * b.size, dtype=np.uint8)
    out[0::2] = b & 0x0F
    out[1::2] = b >> 4
    out = out[:count]
    if signed:
        s = out.astype(np.int8)
        s[s > 7] -= 16
        return s
    return out


def expand_param(p: np.ndarray, shape: tuple[int, ...], axis: int | None,
                 block: int | None) -> np.ndarray:
    """Broadcast a scale/zero-point tensor to the weight's shape (per-tensor, per-channel along
    `axis`, or blocked along `axis` with `block` elements per block)."""
    p = np.asarray(p)
    if axis is None:
        return np.broadcast_to(p.reshape(()), shape)
    if block is None:
        s = [1] * len(shape)
        s[axis] = shape[axis]
        return np.broadcast_to(p.reshape(s), shape)
    rep = np.repeat(p, block, axis=axis)
    sl = [slice(None)] * len(shape)
    sl[axis] = slice(0, shape[axis])
    return rep[tuple(sl)]


def expected_param_shape(shape: list[int], axis: int | None, block: int | None) -> list[int]:
    if axis is None:
        return []
    if block is None:
        return [shape[axis]]
    s = list(shape)
    s[axis] = math.ceil(s[axis] / block)
    return s


def dequantize(q: np.ndarray, scale: np.ndarray, zero_point: np.ndarray | None,
               axis: int | None, block: int | None) -> np.ndarray:
    """float32(scale * (q - zp)), the ONNX DequantizeLinear formula, elementwise in float32."""
    shape = q.shape
    s = expand_param(np.asarray(scale, dtype=np.float32), shape, axis, block)
    qi = q.astype(np.int32)
    if zero_point is not None:
        qi = qi - expand_param(np.asarray(zero_point).astype(np.int32), shape, axis, block)
    return (s * qi.astype(np.float32)).astype(np.float32)


def snr_db(w: np.ndarray, w_hat: np.ndarray) -> float:
    """10·log10(Σw² / Σ(w − ŵ)²) in float64 (inf when exact)."""
    w = np.asarray(w, dtype=np.float64)
    e = np.sum((w - np.asarray(w_hat, dtype=np.float64)) ** 2)
    if e == 0:
        return math.inf
    return 10.0 * math.log10(float(np.sum(w * w)) / float(e))


def normalize_axis(axis: int, rank: int) -> int:
    return axis + rank if axis < 0 else axis


@dataclass
class QuantizedTensor:
    index: int
    name: str
    shape: tuple[int, ...]
    storage: str
    q: np.ndarray                 # integer values, weight shape (int8 or uint8 array)
    scale: np.ndarray             # float32, scale tensor's own shape
    zero_point: np.ndarray | None  # storage values, scale shape; None when absent
    axis: int | None              # normalised to [0, rank)
    block: int | None
    scale_index: int
    zero_point_index: int | None

    @property
    def bits(self) -> int:
        return STORAGE_BITS[self.storage]

    def dequantize(self) -> np.ndarray:
        return dequantize(self.q, self.scale, self.zero_point, self.axis, self.block)

    def expanded_scale(self) -> np.ndarray:
        return expand_param(self.scale, self.shape, self.axis, self.block)

    def expanded_zero_point(self) -> np.ndarray:
        if self.zero_point is None:
            return np.zeros(self.shape, dtype=np.int32)
        return expand_param(self.zero_point.astype(np.int32), self.shape, self.axis, self.block)


def iter_graphs(graph: dict) -> Iterator[dict]:
    """A manifest graph and every subgraph reachable through GRAPH/GRAPHS attributes."""
    yield graph
    for node in graph.get("nodes", []):
        for a in node.get("attributes", []):
            if "g" in a:
                yield from iter_graphs(a["g"])
            for g in a.get("graphs", []) or []:
                yield from iter_graphs(g)


class Package:
    def __init__(self, path: Path | str):
        self.path = Path(path)
        self.manifest = json.loads((self.path / "manifest.json").read_text(encoding="utf-8"))
        if self.manifest.get("format") != "mlpkg":
            raise PackageFormatError(f"format is {self.manifest.get('format')!r}, not 'mlpkg'")
        major = int(str(self.manifest.get("formatVersion", "0.0")).split(".")[0])
        if major > 1:
            raise PackageFormatError(f"format version {self.manifest['formatVersion']} is newer than this reader")
        wfile = (self.manifest.get("weights") or {}).get("file", "weights.bin")
        self.weights = np.memmap(self.path / wfile, dtype=np.uint8, mode="r") \
            if (self.path / wfile).stat().st_size else np.zeros(0, np.uint8)
        report = self.path / "report.json"
        self.report = json.loads(report.read_text(encoding="utf-8")) if report.is_file() else None
        self.tensors: list[dict] = self.manifest["tensors"]

    # -- raw access ------------------------------------------------------------------------

    def blob(self, i: int) -> bytes:
        t = self.tensors[i]
        off, ln = t["offset"], t["length"]
        if off + ln > self.weights.size:
            raise PackageFormatError(f"{t['name']}: blob [{off}, {off + ln}) past the end of weights.bin")
        return self.weights[off:off + ln].tobytes()

    def encoding(self, i: int) -> dict:
        return self.tensors[i].get("encoding") or {}

    def is_linear(self, i: int) -> bool:
        return self.encoding(i).get("kind") in LINEAR_KINDS

    def stored_array(self, i: int, dtype: str | None = None) -> np.ndarray:
        """Values of a raw/float16 tensor (4-bit dtypes unpacked, one per byte), or the stored
        quantized values of a linear tensor read as `dtype` (its storage)."""
        t = self.tensors[i]
        shape = tuple(t["shape"])
        n = math.prod(shape)
        kind = self.encoding(i).get("kind")
        data = self.blob(i)
        if kind == "float16":
            if len(data) != 2 * n:
                raise PackageFormatError(f"{t['name']}: float16 length {len(data)} != {2 * n}")
            return np.frombuffer(data, dtype="<f2").astype(np.float32).reshape(shape)
        dt = dtype or t["dtype"]
        if dt in ("int4", "uint4"):
            return unpack_4bit(data, n, signed=(dt == "int4")).reshape(shape)
        if dt not in NUMPY_DTYPES:
            raise PackageFormatError(f"{t['name']}: no reader for dtype {dt}")
        npdt = np.dtype(NUMPY_DTYPES[dt]).newbyteorder("<")
        if len(data) != n * npdt.itemsize:
            raise PackageFormatError(f"{t['name']}: {dt} length {len(data)} != {n * npdt.itemsize}")
        return np.frombuffer(data, dtype=npdt).astype(npdt.newbyteorder("=")).reshape(shape)

    def palettized(self, i: int) -> tuple[np.ndarray, np.ndarray, int | None, int]:
        """A `lut` tensor (format 1.2): (indices in the weight's shape, the table as float32 [G, 2^bits] — G = 1 for
        one table —, groupSize, bits). Indices are `bits` each, packed from the least significant bit of byte 0;
        element e of slice r along axis 0 uses table r // groupSize."""
        t = self.tensors[i]
        enc = self.encoding(i)
        if enc.get("kind") != "lut":
            raise PackageFormatError(f"{t['name']}: encoding {enc.get('kind')!r} is not lut")
        bits, group = int(enc["bits"]), enc.get("groupSize")
        shape = tuple(t["shape"])
        n = math.prod(shape)
        if t["length"] != (n * bits + 7) // 8:
            raise PackageFormatError(f"{t['name']}: {bits}-bit index length {t['length']} != {(n * bits + 7) // 8}")
        stream = np.unpackbits(np.frombuffer(self.blob(i), np.uint8), bitorder="little")[: n * bits]
        weights = (1 << np.arange(bits)).astype(np.int64)
        indices = (stream.reshape(n, bits).astype(np.int64) * weights).sum(axis=1).reshape(shape)
        lut_record = self.tensors[enc["lut"]]
        table = self.stored_array(enc["lut"]).astype(np.float32).reshape(-1, 1 << bits)
        rows = shape[0] if shape else 1
        expected_groups = 1 if group is None else -(-rows // group)
        if table.shape[0] != expected_groups or lut_record["shape"][-1] != 1 << bits:
            raise PackageFormatError(f"{t['name']}: table of shape {lut_record['shape']}")
        return indices, table, group, bits

    def decode_palettized(self, i: int) -> np.ndarray:
        indices, table, group, _ = self.palettized(i)
        shape = indices.shape
        rows = shape[0] if shape else 1
        per_row = indices.size // max(rows, 1)
        row_of = np.repeat(np.arange(rows), per_row).reshape(shape)
        return table[(row_of // group) if group else 0, indices].astype(np.float32)

    def quantized(self, i: int) -> QuantizedTensor:
        t = self.tensors[i]
        enc = self.encoding(i)
        if enc.get("kind") not in LINEAR_KINDS:
            raise PackageFormatError(f"{t['name']}: encoding {enc.get('kind')!r} is not linear")
        storage = enc.get("storage")
        if storage not in STORAGE_BITS:
            raise PackageFormatError(f"{t['name']}: unknown storage {storage!r}")
        shape = tuple(t["shape"])
        n = math.prod(shape)
        # format 1.2: `bits` (2, 3 for 4-bit storage; 5-7 for 8-bit) packs the integers at that width, an LSB-first
        # bit stream, two's complement for signed storage.
        bits = enc.get("bits") or STORAGE_BITS[storage]
        want = (n * bits + 7) // 8
        if t["length"] != want:
            raise PackageFormatError(f"{t['name']}: {bits}-bit {storage} length {t['length']} != {want}")
        if bits != STORAGE_BITS[storage]:
            stream = np.unpackbits(np.frombuffer(self.blob(i), np.uint8), bitorder="little")[: n * bits]
            v = (stream.reshape(n, bits).astype(np.int64) * (1 << np.arange(bits))).sum(axis=1)
            if storage in ("int8", "int4"):
                v = np.where(v >= 1 << (bits - 1), v - (1 << bits), v)
            q = v.astype(np.int8 if storage in ("int8", "int4") else np.uint8).reshape(shape)
        else:
            q = self.stored_array(i, storage)
        axis = enc.get("axis")
        if axis is not None:
            axis = normalize_axis(int(axis), len(shape))
        block = enc.get("blockSize")
        if block is not None and axis is None:
            raise PackageFormatError(f"{t['name']}: blockSize without axis")
        si = enc.get("scale")
        if not isinstance(si, int) or not 0 <= si < len(self.tensors):
            raise PackageFormatError(f"{t['name']}: bad scale index {si!r}")
        scale = self.stored_array(si)
        zi = enc.get("zeroPoint")
        zp = None
        if zi is not None:
            if not isinstance(zi, int) or not 0 <= zi < len(self.tensors):
                raise PackageFormatError(f"{t['name']}: bad zeroPoint index {zi!r}")
            zp = self.stored_array(zi)
        return QuantizedTensor(i, t["name"], shape, storage, q, scale, zp, axis, block, si, zi)

    def array(self, i: int) -> np.ndarray:
        """The float32 (or other dtype) values the graph sees for tensor i."""
        if self.is_linear(i):
            return self.quantized(i).dequantize()
        return self.stored_array(i)

    # -- graph -----------------------------------------------------------------------------

    def graphs(self) -> list[dict]:
        return list(iter_graphs(self.manifest["graph"]))

    def value_tensors(self) -> dict[str, int]:
        """Graph value name -> tensor index, for initializers (by tensor name) and Constant
        node values (by the node's output name), over the main graph and all subgraphs."""
        out: dict[str, int] = {}
        for g in self.graphs():
            for i in g.get("initializers", []):
                out[self.tensors[i]["name"]] = i
            for node in g.get("nodes", []):
                if node.get("opType") == "Constant" and node.get("domain", "") in ("", "ai.onnx"):
                    for a in node.get("attributes", []):
                        if a.get("name") == "value" and "t" in a and node.get("outputs"):
                            out[node["outputs"][0]] = a["t"]
        return out

    def consumers(self) -> dict[str, list[tuple[str, int, dict]]]:
        """Value name -> [(opType, input slot, {attribute name: int value})] over all graphs."""
        out: dict[str, list[tuple[str, int, dict]]] = {}
        for g in self.graphs():
            for node in g.get("nodes", []):
                attrs = {a["name"]: a.get("i") for a in node.get("attributes", []) if "i" in a}
                for slot, name in enumerate(node.get("inputs", [])):
                    if name:
                        out.setdefault(name, []).append((node.get("opType"), slot, attrs))
        return out

    def linear_tensors(self) -> dict[str, QuantizedTensor]:
        """Graph value name -> QuantizedTensor for every linear-encoded tensor the graph uses."""
        return {name: self.quantized(i) for name, i in self.value_tensors().items() if self.is_linear(i)}
