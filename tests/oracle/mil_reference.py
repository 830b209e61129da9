"""A numpy reference evaluator for Core ML ML Program (MIL) packages — test-only.

    prog = load_program("model.mlpackage")          # parse model.mlmodel + weights/weight.bin
    outs = evaluate("model.mlpackage", {"x": x})    # run main's block with numpy

Written from the MIL op definitions in coremltools (converters/mil/mil/ops/defs/iOS15..iOS18:
parameter names, defaults and shapes there are the contract), MIL.proto and the MIL blob
storage format; no coremltools code is used at run time except its generated protobuf classes
(coremltools.proto.Model_pb2) to parse model.mlmodel.

Package layout read here:
    P.mlpackage/Data/com.apple.CoreML/model.mlmodel      Model proto, mlProgram.functions["main"]
    P.mlpackage/Data/com.apple.CoreML/weights/weight.bin blob storage ("@model_path/weights/...")

Blob storage (little endian): a 64-byte header {uint32 count, uint32 version (= 2), reserved};
a blob referenced by (fileName, offset) has a 64-byte metadata record at `offset`:
{uint32 sentinel 0xDEADBEEF, uint32 dtype, uint64 sizeInBytes, uint64 dataOffset (absolute),
uint64 padding_size_in_bits, reserved}; the values are at dataOffset. Sub-byte values are a
little-endian bit stream (element i occupies bits [i*n, (i+1)*n), byte 0 bit 0 first; for
4-bit types element 2i is the low nibble of byte i).

Evaluation model: operations run in block order, one numpy function per op type (OPS). Float16
(and bfloat16) values are stored as such, upcast to float32 (or computed in float64 where that
is simpler) for the arithmetic, and each op's result is rounded to the dtype its output is
declared with in the program (so fp16 programs see one rounding per op, like fp16 compute);
float32 stays float32, int32 int32, bool bool. A float result cast to an integer output
truncates toward zero (as coremltools' value inference does, e.g. real_div on int32). Every
result's shape is checked against the declared output shape where that is static.

An unknown op type raises NotImplementedError(op_type). `run_op` runs one op function on
given inputs (used by the tests to compare each op with coremltools' value inference and with
onnxruntime).

Where the MIL definitions leave room, this evaluator chooses (and test_mil_reference.py pins):
  * conv/pool pad_type `same`: total pad max(0, s*ceil(i/s) - i + k_eff - s), the odd element
    after (as ONNX SAME_UPPER); `same_lower` puts it before. conv's docstring contradicts itself
    here; coremltools' type inference only fixes the total.
  * conv_transpose: `same` crops F - out (F the full transposed output, out = in*stride or
    output_shape) like `same` pads; with output_shape, `valid` keeps [0, out) and `custom`
    starts at pad[2i] (zeros past F), as TensorFlow's conv2d_transpose.
  * pool ceil_mode: the last window is dropped when it starts at or past input + pad_before and
    there is padding (coremltools' shape rule); avg_pool's divisor counts the window positions
    inside the padded extent (or the input, exclude_padding_from_average), as PyTorch.
  * resize_nearest_neighbor samples input floor(i * in / out) (upsample_nearest_neighbor with
    scale out/in); the definition does not say. All readings agree for whole-number upsampling.
  * upsample_nearest_neighbor samples floor(i / scale).
  * topk/argsort: stable (lower index first among equal values).
  * gather/gather_along_axis: negative indices wrap before iOS17 and are refused from iOS17 on.
  * one_hot: indices outside [0, size) give an all-off vector.
  * lstm/gru/rnn with direction `reverse` return their states in processing order (row 0 is the
    last time step); a bidirectional lstm's backward half is aligned with the time steps. gru
    applies the reset gate before the recurrent product. lstm's clip bounds the cell state.
    Activations take their default parameters (hard_sigmoid: 0.2 x + 0.5 clipped to [0, 1]).
    These are what coremltools' numpy references in iOS14/test_recurrent.py check on device.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np

MODEL_REL = Path("Data") / "com.apple.CoreML" / "model.mlmodel"
DATA_DIR_REL = Path("Data") / "com.apple.CoreML"
BLOB_SENTINEL = 0xDEADBEEF
BLOB_STORAGE_VERSION = 2


class MILFormatError(Exception):
    """The package, the proto or a weight blob does not have the expected form."""


# ----------------------------------------------------------------------------------------------
# dtypes
# ----------------------------------------------------------------------------------------------

# MIL.proto DataType enum value -> dtype name (the names MIL uses in `cast`'s dtype strings)
MIL_DATATYPE = {
    1: "bool", 2: "string", 10: "fp16", 11: "fp32", 12: "fp64", 13: "bf16",
    21: "int8", 22: "int16", 23: "int32", 24: "int64", 25: "int4",
    31: "uint8", 32: "uint16", 33: "uint32", 34: "uint64", 35: "uint4", 36: "uint2",
    37: "uint1", 38: "uint6", 39: "uint3",
}

# blob_metadata.dtype -> dtype name
BLOB_DATATYPE = {
    1: "fp16", 2: "fp32", 3: "uint8", 4: "int8", 5: "bf16", 6: "int16", 7: "uint16",
    8: "int4", 9: "uint1", 10: "uint2", 11: "uint4", 12: "uint3", 13: "uint6",
    14: "int32", 15: "uint32",
}

# dtype name -> numpy storage dtype (sub-byte integers are held one per int8/uint8;
# bf16 values are held as float32 holding bfloat16-representable values)
STORAGE = {
    "bool": np.dtype(np.bool_), "fp16": np.dtype(np.float16), "fp32": np.dtype(np.float32),
    "fp64": np.dtype(np.float64), "bf16": np.dtype(np.float32),
    "int8": np.dtype(np.int8), "int16": np.dtype(np.int16), "int32": np.dtype(np.int32),
    "int64": np.dtype(np.int64), "int4": np.dtype(np.int8),
    "uint8": np.dtype(np.uint8), "uint16": np.dtype(np.uint16), "uint32": np.dtype(np.uint32),
    "uint64": np.dtype(np.uint64), "uint1": np.dtype(np.uint8), "uint2": np.dtype(np.uint8),
    "uint3": np.dtype(np.uint8), "uint4": np.dtype(np.uint8), "uint6": np.dtype(np.uint8),
}
# aliases accepted in `cast`'s dtype string
DTYPE_ALIASES = {"float16": "fp16", "float32": "fp32", "float64": "fp64", "float": "fp32",
                 "double": "fp64", "bfloat16": "bf16"}

SUB_BYTE_BITS = {"int4": 4, "uint1": 1, "uint2": 2, "uint3": 3, "uint4": 4, "uint6": 6}
FLOAT_NAMES = ("fp16", "fp32", "fp64", "bf16")


def dtype_name(name: str) -> str:
    n = DTYPE_ALIASES.get(name, name)
    if n not in STORAGE:
        raise MILFormatError(f"unknown dtype {name!r}")
    return n


def numpy_dtype_name(dt: np.dtype) -> str:
    """MIL dtype name of a numpy array's dtype (sub-byte types cannot be told apart here)."""
    dt = np.dtype(dt)
    table = {np.dtype(np.bool_): "bool", np.dtype(np.float16): "fp16",
             np.dtype(np.float32): "fp32", np.dtype(np.float64): "fp64",
             np.dtype(np.int8): "int8", np.dtype(np.int16): "int16",
             np.dtype(np.int32): "int32", np.dtype(np.int64): "int64",
             np.dtype(np.uint8): "uint8", np.dtype(np.uint16): "uint16",
             np.dtype(np.uint32): "uint32", np.dtype(np.uint64): "uint64"}
    if dt in table:
        return table[dt]
    if dt.kind in ("U", "S", "O"):
        return "string"
    raise MILFormatError(f"no MIL dtype for numpy {dt}")


def element_bits(name: str) -> int:
    if name in SUB_BYTE_BITS:
        return SUB_BYTE_BITS[name]
    if name == "bf16":
        return 16
    return STORAGE[name].itemsize * 8


def round_to_bf16(x: np.ndarray) -> np.ndarray:
    """Round float32 values to the nearest bfloat16 (ties to even), returned as float32."""
    f = np.ascontiguousarray(x, dtype=np.float32)
    u = f.view(np.uint32).astype(np.uint64)
    nan = np.isnan(f)
    r = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16) << 16
    out = (r & 0xFFFFFFFF).astype(np.uint32).view(np.float32).copy()
    out[nan] = np.nan
    return out


def to_dtype(value: Any, name: str) -> np.ndarray:
    """`value` in dtype `name`'s storage: float -> int truncates toward zero, x -> bool is
    x != 0, float -> fp16/bf16 rounds to nearest even."""
    name = dtype_name(name)
    a = np.asarray(value)
    if name == "bool":
        return a.astype(np.bool_) if a.dtype != np.bool_ else a
    if name == "bf16":
        return round_to_bf16(a.astype(np.float32))
    target = STORAGE[name]
    if target.kind in "iu" and a.dtype.kind == "f":
        a = np.trunc(a)
    return a.astype(target)


def unpack_bits(buf: bytes | np.ndarray, count: int, bits: int, signed: bool) -> np.ndarray:
    """`count` `bits`-bit values from a little-endian bit stream (element i in bits
    [i*bits, (i+1)*bits), LSB first); signed values are two's complement in `bits` bits."""
    b = np.frombuffer(bytes(buf), dtype=np.uint8) if not isinstance(buf, np.ndarray) else buf
    need = (count * bits + 7) // 8
    if b.size < need:
        raise MILFormatError(f"{b.size} bytes hold fewer than {count} {bits}-bit values")
    stream = np.unpackbits(b[:need], bitorder="little")[: count * bits]
    v = (stream.reshape(count, bits).astype(np.int32) << np.arange(bits, dtype=np.int32)).sum(1)
    if signed:
        v = np.where(v >= (1 << (bits - 1)), v - (1 << bits), v)
        return v.astype(np.int8)
    return v.astype(np.uint8)


def values_from_bytes(raw: bytes, name: str, count: int) -> np.ndarray:
    """`count` values of dtype `name` stored contiguously in `raw` (packed if sub-byte)."""
    if name in SUB_BYTE_BITS:
        return unpack_bits(raw, count, SUB_BYTE_BITS[name], signed=(name == "int4"))
    if name == "bf16":
        if len(raw) < 2 * count:
            raise MILFormatError(f"{len(raw)} bytes hold fewer than {count} bf16 values")
        u = np.frombuffer(raw, dtype="<u2", count=count).astype(np.uint32) << 16
        return u.view(np.float32).copy()
    if name == "string":
        raise MILFormatError("strings cannot be stored as bytes")
    dt = STORAGE[name].newbyteorder("<") if STORAGE[name].itemsize > 1 else STORAGE[name]
    if len(raw) < dt.itemsize * count:
        raise MILFormatError(f"{len(raw)} bytes hold fewer than {count} {name} values")
    return np.frombuffer(raw, dtype=dt, count=count).astype(STORAGE[name])


# ----------------------------------------------------------------------------------------------
# program structure
# ----------------------------------------------------------------------------------------------

@dataclass
class TensorSpec:
    name: str
    dtype: str                      # MIL dtype name ("fp32", "int32", "bool", ...)
    shape: tuple[int | None, ...]   # None: unknown dimension

    @property
    def static(self) -> bool:
        return all(d is not None for d in self.shape)


@dataclass
class Binding:
    """One argument of an op input: a reference to a variable or an immediate/blob value."""
    name: str | None = None
    value: Any = None               # np.ndarray (or str) when name is None
    dtype: str | None = None        # dtype of `value`


@dataclass
class Block:
    """A nested block of a control-flow op (MIL.proto Block): typed inputs (a while_loop's loop
    variables as the block names them), operations, outputs by name."""
    inputs: list[TensorSpec]
    operations: list["Operation"]
    outputs: list[str]


@dataclass
class Operation:
    type: str
    name: str
    inputs: dict[str, list[Binding]]
    attributes: dict[str, Binding]   # besides "name"
    outputs: list[TensorSpec]
    blocks: list[Block] = field(default_factory=list)

    @property
    def n_blocks(self) -> int:
        return len(self.blocks)


@dataclass
class Program:
    path: Path
    opset: str                       # e.g. "CoreML6"
    ios: int                         # iOS version of the opset (CoreML5 -> 15, CoreML8 -> 18)
    inputs: list[TensorSpec]
    outputs: list[str]
    operations: list[Operation]
    output_specs: dict[str, TensorSpec] = field(default_factory=dict)


def opset_ios_version(opset: str) -> int:
    digits = "".join(c for c in opset if c.isdigit())
    if not opset.startswith("CoreML") or not digits:
        raise MILFormatError(f"unrecognized opset {opset!r}")
    return int(digits) + 10


class _BlobFiles:
    def __init__(self, data_dir: Path):
        self.data_dir = data_dir
        self.cache: dict[str, bytes] = {}

    def _file(self, file_name: str) -> bytes:
        if file_name not in self.cache:
            prefix = "@model_path/"
            if not file_name.startswith(prefix):
                raise MILFormatError(f"blob file name {file_name!r} is not under @model_path/")
            rel = Path(file_name[len(prefix):])
            if rel.is_absolute() or ".." in rel.parts:
                raise MILFormatError(f"blob file name {file_name!r} escapes the package")
            p = self.data_dir / rel
            if not p.is_file():
                raise MILFormatError(f"blob file {p} does not exist")
            buf = p.read_bytes()
            if len(buf) < 64:
                raise MILFormatError(f"{p}: {len(buf)} bytes, shorter than the storage header")
            _count, version = struct.unpack_from("<II", buf, 0)
            if version != BLOB_STORAGE_VERSION:
                raise MILFormatError(f"{p}: storage version {version}, expected 2")
            self.cache[file_name] = buf
        return self.cache[file_name]

    def read(self, file_name: str, offset: int, name: str, count: int) -> np.ndarray:
        buf = self._file(file_name)
        if offset < 64 or offset + 64 > len(buf):
            raise MILFormatError(f"blob offset {offset} outside {file_name} ({len(buf)} bytes)")
        sentinel, code, size, data_off, pad_bits = struct.unpack_from("<IIQQQ", buf, offset)
        if sentinel != BLOB_SENTINEL:
            raise MILFormatError(f"no blob sentinel at offset {offset} of {file_name}")
        if code not in BLOB_DATATYPE:
            raise MILFormatError(f"unknown blob dtype {code} at offset {offset}")
        bname = BLOB_DATATYPE[code]
        if bname != name:
            raise MILFormatError(f"blob at offset {offset} holds {bname}, the value is {name}")
        need = (count * element_bits(name) + 7) // 8
        if size < need:
            raise MILFormatError(f"blob at offset {offset}: {size} bytes < {need} needed")
        if data_off + size > len(buf):
            raise MILFormatError(f"blob at offset {offset}: data runs past the end of the file")
        if pad_bits and size * 8 - pad_bits != count * element_bits(name):
            raise MILFormatError(f"blob at offset {offset}: padding_size_in_bits {pad_bits} "
                                 f"does not match {count} x {element_bits(name)} bits in {size} bytes")
        return values_from_bytes(buf[data_off:data_off + size], name, count)


def _tensor_type(vt, what: str) -> tuple[str, tuple[int | None, ...]]:
    kind = vt.WhichOneof("type")
    if kind != "tensorType":
        raise NotImplementedError(f"{what}: value type {kind} (only tensors are supported)")
    tt = vt.tensorType
    if tt.dataType not in MIL_DATATYPE:
        raise MILFormatError(f"{what}: unknown dataType {tt.dataType}")
    dims: list[int | None] = []
    for d in tt.dimensions:
        dk = d.WhichOneof("dimension")
        dims.append(int(d.constant.size) if dk == "constant" else None)
    if tt.rank != len(dims) and not (tt.rank == 0 and not dims):
        raise MILFormatError(f"{what}: rank {tt.rank} but {len(dims)} dimensions")
    return MIL_DATATYPE[tt.dataType], tuple(dims)


def _decode_value(v, blobs: _BlobFiles, what: str) -> tuple[Any, str]:
    """A MIL Value (immediate or blob) as (numpy array or str, dtype name); a list literal (classify's
    `classes`) as (Python list of its elements, "list")."""
    if v.type.WhichOneof("type") == "listType" and v.immediateValue.WhichOneof("value") == "list":
        items = [_decode_value(e, blobs, f"{what} element {k}")[0] for k, e in enumerate(v.immediateValue.list.values)]
        length = v.type.listType.length
        if length.WhichOneof("dimension") == "constant" and int(length.constant.size) != len(items):
            raise MILFormatError(f"{what}: list of {len(items)} elements declared {length.constant.size}")
        return [x.item() if isinstance(x, np.ndarray) else x for x in items], "list"
    name, shape = _tensor_type(v.type, what)
    if any(d is None for d in shape):
        raise MILFormatError(f"{what}: a value needs a static shape, got {shape}")
    count = int(np.prod(shape, dtype=np.int64)) if shape else 1
    kind = v.WhichOneof("value")
    if kind == "blobFileValue":
        arr = blobs.read(v.blobFileValue.fileName, int(v.blobFileValue.offset), name, count)
        return arr.reshape(shape), name
    if kind != "immediateValue":
        raise MILFormatError(f"{what}: value has neither an immediate nor a blob value")
    iv = v.immediateValue
    if iv.WhichOneof("value") != "tensor":
        raise NotImplementedError(f"{what}: immediate {iv.WhichOneof('value')} values")
    tv = iv.tensor
    field_ = tv.WhichOneof("value")
    if name == "string":
        vals = [s.decode("utf-8") if isinstance(s, bytes) else s for s in tv.strings.values]
        if len(vals) != count:
            raise MILFormatError(f"{what}: {len(vals)} strings for shape {shape}")
        return (vals[0] if not shape else np.array(vals, dtype=object).reshape(shape)), name
    if field_ is None:
        arr = np.zeros(0, dtype=STORAGE[name])
    elif field_ == "bytes":
        arr = values_from_bytes(tv.bytes.values, name, count)
    else:
        src = {"floats": (tv.floats.values, np.float32), "ints": (tv.ints.values, np.int64),
               "bools": (tv.bools.values, np.bool_), "longInts": (tv.longInts.values, np.int64),
               "doubles": (tv.doubles.values, np.float64)}
        if field_ not in src:
            raise MILFormatError(f"{what}: immediate field {field_} for dtype {name}")
        vals, npdt = src[field_]
        arr = to_dtype(np.array(list(vals), dtype=npdt), name)
    if arr.size != count:
        raise MILFormatError(f"{what}: {arr.size} values for shape {shape}")
    return arr.reshape(shape), name


def _load_ops(operations, blobs: "_BlobFiles", out_specs: dict[str, TensorSpec],
              where: str = "") -> list[Operation]:
    """The ops of one block (nested blocks loaded recursively; their variables join out_specs)."""
    ops: list[Operation] = []
    for i, op in enumerate(operations):
        name_attr = op.attributes.get("name") if "name" in op.attributes else None
        op_name = f"{where}#{i}"
        if name_attr is not None:
            nm, _ = _decode_value(name_attr, blobs, f"op {where}#{i} ({op.type}) attribute name")
            op_name = str(nm)
        what = f"op {op_name} ({op.type})"
        ins: dict[str, list[Binding]] = {}
        for pname, arg in op.inputs.items():
            bl = []
            for j, b in enumerate(arg.arguments):
                kind = b.WhichOneof("binding")
                if kind == "name":
                    bl.append(Binding(name=b.name))
                elif kind == "value":
                    val, dt = _decode_value(b.value, blobs, f"{what} input {pname}[{j}]")
                    bl.append(Binding(value=val, dtype=dt))
                else:
                    raise MILFormatError(f"{what}: input {pname}[{j}] has no binding")
            ins[pname] = bl
        attrs: dict[str, Binding] = {}
        for aname, av in op.attributes.items():
            if aname == "name":
                continue
            val, dt = _decode_value(av, blobs, f"{what} attribute {aname}")
            attrs[aname] = Binding(value=val, dtype=dt)
        outs = []
        for nv in op.outputs:
            if nv.type.WhichOneof("type") == "dictionaryType":  # classify's label -> probability dictionary
                outs.append(TensorSpec(nv.name, "dict", ()))
                out_specs[nv.name] = outs[-1]
                continue
            dt, shape = _tensor_type(nv.type, f"{what} output {nv.name}")
            outs.append(TensorSpec(nv.name, dt, shape))
            out_specs[nv.name] = TensorSpec(nv.name, dt, shape)
        blocks = []
        for k, blk in enumerate(op.blocks):
            b_inputs = []
            for nv in blk.inputs:
                dt, shape = _tensor_type(nv.type, f"{what} block {k} input {nv.name}")
                b_inputs.append(TensorSpec(nv.name, dt, shape))
                out_specs[nv.name] = b_inputs[-1]
            b_ops = _load_ops(blk.operations, blobs, out_specs, f"{op_name}/{k}/")
            blocks.append(Block(b_inputs, b_ops, list(blk.outputs)))
        ops.append(Operation(op.type, op_name, ins, attrs, outs, blocks))
    return ops


def load_program(mlpackage_path: str | Path, function: str = "main") -> Program:
    """Parse one function of `P.mlpackage` (`main`, or a multifunction model's function by name) into a Program
    with all immediate and blob values decoded (weights read from Data/com.apple.CoreML/weights/)."""
    from coremltools.proto import Model_pb2  # noqa: PLC0415 (import is slow and noisy)

    root = Path(mlpackage_path)
    model_path = root / MODEL_REL
    if not model_path.is_file():
        raise MILFormatError(f"{model_path} does not exist")
    model = Model_pb2.Model()
    model.ParseFromString(model_path.read_bytes())
    if model.WhichOneof("Type") != "mlProgram":
        raise MILFormatError(f"{model_path}: not an ML Program (Type={model.WhichOneof('Type')})")
    if function not in model.mlProgram.functions:
        raise MILFormatError(f"{model_path}: no function {function!r}")
    fn = model.mlProgram.functions[function]
    opset = fn.opset
    if opset not in fn.block_specializations:
        raise MILFormatError(f"{model_path}: no block specialization for opset {opset!r}")
    block = fn.block_specializations[opset]
    blobs = _BlobFiles(root / DATA_DIR_REL)

    inputs = []
    for nv in fn.inputs:
        dt, shape = _tensor_type(nv.type, f"input {nv.name}")
        inputs.append(TensorSpec(nv.name, dt, shape))

    out_specs: dict[str, TensorSpec] = {s.name: s for s in inputs}
    ops = _load_ops(block.operations, blobs, out_specs)
    return Program(root, opset, opset_ios_version(opset), inputs, list(block.outputs), ops,
                   out_specs)


# ----------------------------------------------------------------------------------------------
# evaluation
# ----------------------------------------------------------------------------------------------

class Args:
    """The inputs of one op: name -> list of (value, dtype name). `a["x"]` is the single value
    of input x in compute form (fp16/bf16 upcast to float32); `a.raw("x")` as stored."""

    def __init__(self, values: dict[str, list[tuple[Any, str]]], ios: int = 18,
                 op_name: str = "", out_specs: Sequence[TensorSpec] | None = None):
        self.values = values
        self.ios = ios
        self.op_name = op_name
        self.out_specs = list(out_specs) if out_specs is not None else []

    @staticmethod
    def _compute(v: Any, dt: str) -> Any:
        if isinstance(v, np.ndarray) and dt in ("fp16", "bf16"):
            return v.astype(np.float32)
        return v

    def has(self, k: str) -> bool:
        return k in self.values

    def _single(self, k: str) -> tuple[Any, str]:
        if k not in self.values:
            raise KeyError(f"op {self.op_name}: missing input {k!r}")
        lst = self.values[k]
        if len(lst) != 1:
            raise MILFormatError(f"op {self.op_name}: input {k!r} has {len(lst)} arguments")
        return lst[0]

    def __getitem__(self, k: str) -> Any:
        v, dt = self._single(k)
        return self._compute(v, dt)

    def get(self, k: str, default: Any = None) -> Any:
        return self[k] if k in self.values else default

    def raw(self, k: str) -> Any:
        return self._single(k)[0]

    def dtype(self, k: str) -> str:
        return self._single(k)[1]

    def list(self, k: str) -> list[Any]:
        if k not in self.values:
            raise KeyError(f"op {self.op_name}: missing input {k!r}")
        return [self._compute(v, dt) for v, dt in self.values[k]]

    def scalar(self, k: str, default: Any = None) -> Any:
        """A rank-0 (or single-element) input as a Python scalar, or `default` if absent."""
        if k not in self.values:
            return default
        v = self[k]
        if isinstance(v, str):
            return v
        a = np.asarray(v)
        if a.size != 1:
            raise MILFormatError(f"op {self.op_name}: input {k!r} is not a scalar ({a.shape})")
        return a.reshape(()).item()

    def ints(self, k: str, default: Sequence[int] | None = None) -> list[int] | None:
        if k not in self.values:
            return None if default is None else list(default)
        return [int(v) for v in np.asarray(self[k]).reshape(-1)]

    def bools(self, k: str, default: Sequence[bool] | None = None) -> list[bool] | None:
        if k not in self.values:
            return None if default is None else list(default)
        return [bool(v) for v in np.asarray(self[k]).reshape(-1)]


def _finish(result: Any, spec: TensorSpec, op: str) -> Any:
    if spec.dtype == "dict":
        if not isinstance(result, dict):
            raise MILFormatError(f"op {op}: output {spec.name} is declared a dictionary")
        return result
    if spec.dtype == "string":
        if not isinstance(result, str) and not (isinstance(result, np.ndarray)
                                                and result.dtype.kind in "OUS"):
            raise MILFormatError(f"op {op}: output {spec.name} is declared string")
        return result
    arr = to_dtype(result, spec.dtype)
    if spec.static and tuple(arr.shape) != tuple(spec.shape):
        raise MILFormatError(f"op {op}: output {spec.name} computed with shape {arr.shape}, "
                             f"declared {spec.shape}")
    if len(arr.shape) != len(spec.shape):
        raise MILFormatError(f"op {op}: output {spec.name} computed with rank {arr.ndim}, "
                             f"declared {len(spec.shape)}")
    return arr


def run_program(prog: Program, feeds: dict[str, Any],
                keep: bool = False) -> dict[str, np.ndarray]:
    """Run `prog` on `feeds` (name -> array, cast to each input's declared dtype). Returns the
    block outputs, or every variable when `keep` is true."""
    env: dict[str, tuple[Any, str]] = {}
    for spec in prog.inputs:
        if spec.name not in feeds:
            raise KeyError(f"no feed for input {spec.name!r}")
        arr = to_dtype(np.asarray(feeds[spec.name]), spec.dtype)
        if len(arr.shape) != len(spec.shape) or any(
                d is not None and d != s for d, s in zip(spec.shape, arr.shape)):
            raise ValueError(f"feed {spec.name!r} has shape {arr.shape}, declared {spec.shape}")
        env[spec.name] = (arr, spec.dtype)
    with np.errstate(all="ignore"):
        _run_ops(prog.operations, env, prog.ios)
    if keep:
        return {k: v for k, (v, _) in env.items()}
    missing = [n for n in prog.outputs if n not in env]
    if missing:
        raise MILFormatError(f"block outputs {missing} are never defined")
    return {n: env[n][0] for n in prog.outputs}


MAX_LOOP_ITERATIONS = 1 << 20


def _run_block(block: Block, env: dict[str, tuple[Any, str]], values: list[tuple[Any, str]],
               ios: int, op: Operation) -> list[tuple[Any, str]]:
    """Run a nested block in a copy of `env` (the outer scope) with its inputs bound to `values`."""
    if len(values) != len(block.inputs):
        raise MILFormatError(f"op {op.name}: block takes {len(block.inputs)} inputs, given {len(values)}")
    scope = dict(env)
    for spec, (v, _) in zip(block.inputs, values):
        scope[spec.name] = (_finish(v, spec, op.name), spec.dtype)
    _run_ops(block.operations, scope, ios)
    missing = [n for n in block.outputs if n not in scope]
    if missing:
        raise MILFormatError(f"op {op.name}: block outputs {missing} are never defined")
    return [scope[n] for n in block.outputs]


def _control_flow(op: Operation, vals: dict[str, list[tuple[Any, str]]],
                  env: dict[str, tuple[Any, str]], ios: int) -> list[tuple[Any, str]]:
    """while_loop and cond (iOS15/control_flow.py). while_loop: run blocks[0] (the condition) on
    the loop variables; while it returns true run blocks[1] (the body), whose outputs are the next
    loop variables; return the last ones. cond: run blocks[0] if pred else blocks[1]."""
    if len(op.blocks) != 2:
        raise MILFormatError(f"op {op.name}: {op.type} with {len(op.blocks)} blocks")
    if op.type == "cond":
        (pred, _), = vals["pred"]
        return _run_block(op.blocks[0] if bool(np.asarray(pred).reshape(-1)[0]) else op.blocks[1],
                          env, [], ios, op)
    loop_vars = list(vals["loop_vars"])
    for _ in range(MAX_LOOP_ITERATIONS):
        (c, _), = _run_block(op.blocks[0], env, loop_vars, ios, op)
        if not bool(np.asarray(c).reshape(-1)[0]):
            return loop_vars
        loop_vars = _run_block(op.blocks[1], env, loop_vars, ios, op)
    raise MILFormatError(f"op {op.name}: while_loop still running after {MAX_LOOP_ITERATIONS} iterations")


def _run_ops(operations: list[Operation], env: dict[str, tuple[Any, str]], ios: int) -> None:
    """Run ops in order, adding their outputs to env."""
    for op in operations:
        fn = OPS.get(op.type)
        if fn is None and op.type not in ("while_loop", "cond"):
            raise NotImplementedError(op.type)
        vals: dict[str, list[tuple[Any, str]]] = {}
        for pname, bl in op.inputs.items():
            lst = []
            for b in bl:
                if b.name is not None:
                    if b.name not in env:
                        raise MILFormatError(f"op {op.name}: {pname} refers to undefined "
                                             f"variable {b.name!r}")
                    lst.append(env[b.name])
                else:
                    lst.append((b.value, b.dtype))
            vals[pname] = lst
        for aname, b in op.attributes.items():
            vals.setdefault(aname, [(b.value, b.dtype)])
        if op.blocks:
            outs = tuple(v for v, _ in _control_flow(op, vals, env, ios))
        else:
            res = fn(Args(vals, ios, op.name, op.outputs))
            outs = res if isinstance(res, tuple) else (res,)
        if len(outs) != len(op.outputs):
            raise MILFormatError(f"op {op.name}: {len(outs)} results for "
                                 f"{len(op.outputs)} declared outputs")
        for spec, r in zip(op.outputs, outs):
            env[spec.name] = (_finish(r, spec, op.name), spec.dtype)


def evaluate(mlpackage_path: str | Path, feeds: dict[str, Any]) -> dict[str, np.ndarray]:
    """Load `mlpackage_path` and run its main function on `feeds`; returns the block outputs
    keyed by name, each in its declared dtype."""
    return run_program(load_program(mlpackage_path), feeds)


def _as_input(v: Any, dt: str | None) -> tuple[Any, str]:
    if isinstance(v, str):
        return v, "string"
    if isinstance(v, np.generic):
        a = np.asarray(v)
        name = dt or numpy_dtype_name(a.dtype)
        return a.astype(STORAGE[name]), name
    if isinstance(v, bool):
        return np.asarray(v, dtype=np.bool_), "bool"
    if isinstance(v, int):
        return np.asarray(v, dtype=np.int32), dt or "int32"
    if isinstance(v, float):
        return np.asarray(v, dtype=np.float32), dt or "fp32"
    a = np.asarray(v)
    if isinstance(v, (list, tuple)):
        if a.dtype.kind == "i":
            a = a.astype(np.int32)
        elif a.dtype.kind == "f":
            a = a.astype(np.float32)
    name = dt or numpy_dtype_name(a.dtype)
    if name != "string":
        a = a.astype(STORAGE[name]) if a.dtype != STORAGE[name] else a
    return a, name


def run_op(op_type: str, inputs: dict[str, Any], ios: int = 18,
           out_dtypes: Sequence[str] | None = None,
           in_dtypes: dict[str, str] | None = None,
           list_inputs: Iterable[str] = ("values",)) -> Any:
    """Run OPS[op_type] on `inputs` (name -> numpy array / Python scalar / str; inputs named
    in `list_inputs` take a list of arrays). Results are cast to `out_dtypes` when given.
    Returns one array, or a tuple for multi-output ops."""
    fn = OPS.get(op_type)
    if fn is None:
        raise NotImplementedError(op_type)
    in_dtypes = in_dtypes or {}
    vals: dict[str, list[tuple[Any, str]]] = {}
    for k, v in inputs.items():
        if v is None:
            continue
        if k in list_inputs:
            vals[k] = [_as_input(e, in_dtypes.get(k)) for e in v]
        else:
            vals[k] = [_as_input(v, in_dtypes.get(k))]
    with np.errstate(all="ignore"):
        res = fn(Args(vals, ios, op_type))
    if out_dtypes is None:
        return res
    outs = res if isinstance(res, tuple) else (res,)
    if len(outs) != len(out_dtypes):
        raise ValueError(f"{op_type}: {len(outs)} results, {len(out_dtypes)} dtypes given")
    cast = tuple(to_dtype(r, d) for r, d in zip(outs, out_dtypes))
    return cast if isinstance(res, tuple) else cast[0]


# ----------------------------------------------------------------------------------------------
# helpers for the op functions
# ----------------------------------------------------------------------------------------------

def _is_float(a: np.ndarray) -> bool:
    return np.asarray(a).dtype.kind == "f"


def _acc(a: Any) -> np.ndarray:
    """float64 for float arrays (accumulation), unchanged otherwise."""
    a = np.asarray(a)
    return a.astype(np.float64) if a.dtype.kind == "f" else a


def _norm_axis(axis: int, rank: int) -> int:
    ax = axis + rank if axis < 0 else axis
    if not 0 <= ax < max(rank, 1):
        raise MILFormatError(f"axis {axis} out of range for rank {rank}")
    return ax


def _axes(a: Args, rank: int, name: str = "axes") -> tuple[int, ...] | None:
    ax = a.ints(name)
    if ax is None:
        return None
    return tuple(sorted(_norm_axis(v, rank) for v in ax))


def _default_eps(a: Args, default: float) -> float:
    """`epsilon` if given, else `default` rounded to x's dtype (fp16 turns 1e-45 into 0)."""
    if a.has("epsilon"):
        return float(a.scalar("epsilon"))
    return float(to_dtype(np.float64(default), a.dtype("x")))


_ERF = np.frompyfunc(math.erf, 1, 1)


def _erf(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return np.asarray(_ERF(x), dtype=np.float64).reshape(x.shape)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


# ----------------------------------------------------------------------------------------------
# elementwise
# ----------------------------------------------------------------------------------------------

def _binary(fn: Callable[[Any, Any], Any]) -> Callable[[Args], Any]:
    return lambda a: fn(a["x"], a["y"])


def _real_div(a: Args) -> np.ndarray:
    x, y = a["x"], a["y"]
    q = np.true_divide(x, y)
    if not _is_float(x) and not _is_float(y):
        return np.trunc(q)          # int32 / int32 is declared int32: truncated
    return q


def _pow(a: Args) -> np.ndarray:
    x, y = a["x"], a["y"]
    if not _is_float(x) and not _is_float(y) and np.any(np.asarray(y) < 0):
        return np.power(np.asarray(x, np.float64), y)
    return np.power(x, y)


def _select(a: Args) -> np.ndarray:
    return np.where(np.asarray(a["cond"]).astype(bool), a["a"], a["b"])


def _cast(a: Args) -> np.ndarray:
    x = np.asarray(a["x"])
    return to_dtype(x, dtype_name(a.scalar("dtype")))


def _log(a: Args) -> np.ndarray:
    return np.log(a["x"] + np.float32(_default_eps(a, 1e-45)))


def _rsqrt(a: Args) -> np.ndarray:
    return 1.0 / np.sqrt(a["x"] + np.float32(_default_eps(a, 1e-12)))


def _inverse(a: Args) -> np.ndarray:
    return np.reciprocal(a["x"] + np.float32(_default_eps(a, 1e-4)))


def _gelu(a: Args) -> np.ndarray:
    x = _acc(a["x"])
    mode = a.scalar("mode", "EXACT")
    if mode == "EXACT":
        return 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)))
    if mode == "TANH_APPROXIMATION":
        return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))
    if mode == "SIGMOID_APPROXIMATION":
        return x * _sigmoid(1.702 * x)
    raise MILFormatError(f"gelu: unknown mode {mode!r}")


def _softplus(a: Args) -> np.ndarray:
    x = a["x"]
    return np.log1p(np.exp(-np.abs(x))) + np.maximum(x, 0)


def _elu(a: Args) -> np.ndarray:
    x = a["x"]
    return np.where(x > 0, x, a.scalar("alpha") * np.expm1(np.minimum(x, 0)))


def _leaky_relu(a: Args) -> np.ndarray:
    x = a["x"]
    return np.where(x >= 0, x, x * np.float32(a.scalar("alpha")))


def _channel_param(p: np.ndarray, rank: int) -> np.ndarray:
    """A per-channel [C] vector shaped to broadcast along axis 1 of a rank-`rank` tensor."""
    p = np.asarray(p).reshape(-1)
    return p.reshape((1, p.size) + (1,) * (rank - 2))


def _prelu(a: Args) -> np.ndarray:
    x = a["x"]
    al = _channel_param(a["alpha"], x.ndim)
    return np.where(x > 0, x, x * al)


def _clip(a: Args) -> np.ndarray:
    return np.minimum(np.maximum(a["x"], a["alpha"]), a["beta"])


def _sigmoid_hard(a: Args) -> np.ndarray:
    x = _acc(a["x"])
    return np.minimum(np.maximum(a.scalar("alpha") * x + a.scalar("beta"), 0.0), 1.0)


def _softplus_parametric(a: Args) -> np.ndarray:
    x = _acc(a["x"])
    al = _channel_param(_acc(a["alpha"]), x.ndim)
    be = _channel_param(_acc(a["beta"]), x.ndim)
    return al * np.log1p(np.exp(be * x))


# ----------------------------------------------------------------------------------------------
# linear algebra
# ----------------------------------------------------------------------------------------------

def _matmul(a: Args) -> np.ndarray:
    x, y = _acc(a["x"]), _acc(a["y"])
    if a.scalar("transpose_x", False) and x.ndim >= 2:
        x = np.swapaxes(x, -1, -2)
    if a.scalar("transpose_y", False) and y.ndim >= 2:
        y = np.swapaxes(y, -1, -2)
    return np.matmul(x, y)


def _linear(a: Args) -> np.ndarray:
    x, w = _acc(a["x"]), _acc(a["weight"])
    if w.ndim != 2:
        raise MILFormatError(f"linear: weight must be rank 2, got {w.shape}")
    out = np.matmul(x, w.T)
    if a.has("bias"):
        out = out + _acc(a["bias"])
    return out


def _einsum(a: Args) -> np.ndarray:
    x, y = (_acc(v) for v in a.list("values"))
    eq = a.scalar("equation")
    if x.ndim != y.ndim or x.ndim not in (3, 4):
        raise NotImplementedError(f"einsum on ranks {x.ndim}, {y.ndim}")
    # documented forms: "nchw,nwhu->nchu" (rank 4) and "chw,whr->chr" (rank 3); H (and N) may
    # broadcast between the operands
    xs, ys = list(x.shape), list(y.shape)
    xs[-2] = ys[-2] = max(x.shape[-2], y.shape[-2])
    if x.ndim == 4:
        xs[0] = ys[0] = max(x.shape[0], y.shape[0])
    return np.einsum(eq, np.broadcast_to(x, xs), np.broadcast_to(y, ys))


# ----------------------------------------------------------------------------------------------
# recurrent layers (iOS15/recurrent.py; the behaviour below that the docstrings leave open is
# the one coremltools' own numpy references in mil/ops/tests/iOS14/test_recurrent.py check
# against Core ML)
# ----------------------------------------------------------------------------------------------

# Activations by their MIL names, each with "its standard default values" (test_recurrent.py):
# scaled_tanh is tanh, hard_sigmoid (lstm) / sigmoid_hard (rnn) is min(max(0.2 x + 0.5, 0), 1),
# linear is the identity.
_RNN_ACTIVATIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "sigmoid": _sigmoid,
    "tanh": np.tanh,
    "scaled_tanh": np.tanh,
    "relu": lambda v: np.maximum(v, 0),
    "hard_sigmoid": lambda v: np.minimum(np.maximum(0.2 * v + 0.5, 0), 1),
    "sigmoid_hard": lambda v: np.minimum(np.maximum(0.2 * v + 0.5, 0), 1),
    "linear": lambda v: v,
}


def _rnn_activation(a: Args, name: str, default: str) -> Callable[[np.ndarray], np.ndarray]:
    act = str(a.scalar(name, default)).lower()
    if act not in _RNN_ACTIVATIONS:
        raise MILFormatError(f"op {a.op_name}: {name} {act!r}")
    return _RNN_ACTIVATIONS[act]


def _rnn_steps(a: Args, x: np.ndarray, reverse: bool) -> list[int]:
    if x.ndim != 3:
        raise MILFormatError(f"op {a.op_name}: x must be [s, b, I], got {x.shape}")
    return list(range(x.shape[0] - 1, -1, -1)) if reverse else list(range(x.shape[0]))


def _rnn_sequence(a: Args, outs: list[np.ndarray]) -> np.ndarray:
    """Every step's state in processing order (a `reverse` layer's first row is the last time
    step), or the last one alone, as [steps, b, H]."""
    return np.stack(outs) if a.scalar("output_sequence", False) else outs[-1][None]


def _lstm_layer(a: Args, x, h, c, w_ih, w_hh, bias, peephole, reverse):
    """One direction: gates in MIL's order (input, forget, output, cell); peepholes (input,
    forget, output) read the previous cell state for i and f, the new one for o; `clip` bounds
    the cell state after each update (test_recurrent.py's reference)."""
    f_rec = _rnn_activation(a, "recurrent_activation", "sigmoid")
    f_cell = _rnn_activation(a, "cell_activation", "tanh")
    f_out = _rnn_activation(a, "activation", "tanh")
    clip = a.scalar("clip")
    hidden = w_hh.shape[1]
    b = np.zeros(4 * hidden) if bias is None else bias
    p = np.zeros(3 * hidden) if peephole is None else peephole
    p_i, p_f, p_o = np.split(p, 3)
    outs = []
    for t in _rnn_steps(a, x, reverse):
        g_i, g_f, g_o, g_z = np.split(x[t] @ w_ih.T + h @ w_hh.T + b, 4, axis=-1)
        i = f_rec(g_i + p_i * c)
        f = f_rec(g_f + p_f * c)
        c = f * c + i * f_cell(g_z)
        if clip is not None:
            c = np.clip(c, -clip, clip)
        h = f_rec(g_o + p_o * c) * f_out(c)
        outs.append(h)
    return outs, h, c


def _lstm(a: Args) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A bidirectional lstm's backward half is aligned with the input's time steps (its row t
    is the state after reading x[t]; without output_sequence its final state); `reverse` alone
    yields its states in processing order, like every unidirectional layer here."""
    x = _acc(a["x"])
    direction = a.scalar("direction", "forward")
    h0, c0 = _acc(a["initial_h"]), _acc(a["initial_c"])
    opt = lambda k: None if not a.has(k) else _acc(a[k])  # noqa: E731
    if direction != "bidirectional":
        outs, h, c = _lstm_layer(a, x, h0, c0, _acc(a["weight_ih"]), _acc(a["weight_hh"]), opt("bias"),
                                 opt("peephole"), direction == "reverse")
        return _rnn_sequence(a, outs), h, c
    hidden = h0.shape[-1] // 2
    fwd, hf, cf = _lstm_layer(a, x, h0[:, :hidden], c0[:, :hidden], _acc(a["weight_ih"]),
                              _acc(a["weight_hh"]), opt("bias"), opt("peephole"), False)
    bwd, hb, cb = _lstm_layer(a, x, h0[:, hidden:], c0[:, hidden:], _acc(a["weight_ih_back"]),
                              _acc(a["weight_hh_back"]), opt("bias_back"), opt("peephole_back"), True)
    if a.scalar("output_sequence", False):
        y = np.concatenate([np.stack(fwd), np.stack(bwd[::-1])], axis=-1)
    else:
        y = np.concatenate([fwd[-1], bwd[-1]], axis=-1)[None]
    return y, np.concatenate([hf, hb], axis=-1), np.concatenate([cf, cb], axis=-1)


def _gru(a: Args) -> tuple[np.ndarray, np.ndarray]:
    """Gates in MIL's order (reset, output, update); the reset gate scales the state before the
    recurrent product, o = activation(W_o x + R_o (r * h) + b_o), and h = (1 - z) * o + z * h
    (test_recurrent.py's reference; ONNX GRU with linear_before_reset = 0)."""
    x = _acc(a["x"])
    w_ih, w_hh, h = _acc(a["weight_ih"]), _acc(a["weight_hh"]), _acc(a["initial_h"])
    hidden = w_hh.shape[1]
    b = _acc(a["bias"]) if a.has("bias") else np.zeros(3 * hidden)
    f_rec = _rnn_activation(a, "recurrent_activation", "sigmoid")
    f_out = _rnn_activation(a, "activation", "tanh")
    w_r, w_o, w_z = np.split(w_ih, 3)
    r_r, r_o, r_z = np.split(w_hh, 3)
    b_r, b_o, b_z = np.split(b, 3)
    outs = []
    for t in _rnn_steps(a, x, a.scalar("direction", "forward") == "reverse"):
        r = f_rec(x[t] @ w_r.T + h @ r_r.T + b_r)
        z = f_rec(x[t] @ w_z.T + h @ r_z.T + b_z)
        o = f_out(x[t] @ w_o.T + (r * h) @ r_o.T + b_o)
        h = (1 - z) * o + z * h
        outs.append(h)
    return _rnn_sequence(a, outs), h


def _rnn(a: Args) -> tuple[np.ndarray, np.ndarray]:
    x = _acc(a["x"])
    w_ih, w_hh, h = _acc(a["weight_ih"]), _acc(a["weight_hh"]), _acc(a["initial_h"])
    b = _acc(a["bias"]) if a.has("bias") else np.zeros(w_ih.shape[0])
    act = _rnn_activation(a, "activation", "tanh")
    outs = []
    for t in _rnn_steps(a, x, a.scalar("direction", "forward") == "reverse"):
        h = act(x[t] @ w_ih.T + h @ w_hh.T + b)
        outs.append(h)
    return _rnn_sequence(a, outs), h


# ----------------------------------------------------------------------------------------------
# convolution and pooling
# ----------------------------------------------------------------------------------------------

def _same_pads(in_sizes: Sequence[int], eff_k: Sequence[int], strides: Sequence[int],
               lower: bool) -> list[tuple[int, int]]:
    """MIL `same`/`same_lower`: total = max(0, s*ceil(i/s) - i + k_eff - s); `same` puts the
    odd element after (bottom/right), `same_lower` before."""
    pads = []
    for i, k, s in zip(in_sizes, eff_k, strides):
        total = max(0, s * (-(-i // s)) - i + k - s)
        small, big = total // 2, total - total // 2
        pads.append((big, small) if lower else (small, big))
    return pads


def _spatial_pads(a: Args, pad_type: str, in_sizes: Sequence[int], eff_k: Sequence[int],
                  strides: Sequence[int]) -> list[tuple[int, int]]:
    nd = len(in_sizes)
    if pad_type == "valid":
        return [(0, 0)] * nd
    if pad_type == "custom":
        p = a.ints("pad", [0] * (2 * nd))
        if len(p) != 2 * nd:
            raise MILFormatError(f"pad has {len(p)} values for {nd} spatial dimensions")
        return [(p[2 * i], p[2 * i + 1]) for i in range(nd)]
    if pad_type in ("same", "same_lower"):
        return _same_pads(in_sizes, eff_k, strides, pad_type == "same_lower")
    raise MILFormatError(f"unknown pad_type {pad_type!r}")


def _conv(a: Args) -> np.ndarray:
    x, w = _acc(a["x"]), _acc(a["weight"])
    nd = x.ndim - 2
    if nd not in (1, 2, 3) or w.ndim != x.ndim:
        raise MILFormatError(f"conv: x {x.shape}, weight {w.shape}")
    strides = a.ints("strides", [1] * nd)
    dil = a.ints("dilations", [1] * nd)
    groups = int(a.scalar("groups", 1))
    k = w.shape[2:]
    eff = [(kk - 1) * d + 1 for kk, d in zip(k, dil)]
    pads = _spatial_pads(a, a.scalar("pad_type", "valid"), x.shape[2:], eff, strides)
    n, cin = x.shape[:2]
    cout, cg = w.shape[:2]
    if cin != cg * groups or cout % groups:
        raise MILFormatError(f"conv: C_in {cin}, weight {w.shape}, groups {groups}")
    xp = np.pad(x, [(0, 0), (0, 0)] + [tuple(p) for p in pads])
    out_sp = [(xp.shape[2 + i] - eff[i]) // strides[i] + 1 for i in range(nd)]
    if any(o <= 0 for o in out_sp):
        raise MILFormatError(f"conv: empty output {out_sp}")
    xg = xp.reshape((n, groups, cg) + xp.shape[2:])
    wg = w.reshape((groups, cout // groups, cg) + tuple(k))
    out = np.zeros((n, groups, cout // groups) + tuple(out_sp), dtype=np.result_type(x, w))
    for kidx in np.ndindex(*k):
        sl = tuple(slice(kidx[i] * dil[i], kidx[i] * dil[i] + (out_sp[i] - 1) * strides[i] + 1,
                         strides[i]) for i in range(nd))
        patch = xg[(slice(None),) * 3 + sl].reshape(n, groups, cg, -1)
        wk = wg[(slice(None),) * 3 + kidx]
        # (g, o, c) @ (n, g, c, positions): a batched matrix product (BLAS), not an element loop.
        out += np.matmul(wk[None], patch).reshape(out.shape)
    out = out.reshape((n, cout) + tuple(out_sp))
    if a.has("bias"):
        out = out + _channel_param(_acc(a["bias"]), out.ndim)
    return out


def _conv_transpose(a: Args) -> np.ndarray:
    """Full transposed convolution F (size (in-1)*s + (k-1)*d + 1 per dimension), then the
    window [before, before + out) of it (zeros outside F), then bias. Without output_shape:
    valid -> F; custom -> before = pad[2i], out = F - pad[2i] - pad[2i+1]; same -> out = in*s
    and the total crop F - out split as for conv's `same` (odd element at the end; `same_lower`
    at the start). With output_shape, out = output_shape[2:] and `before` is pad[2i] (custom),
    0 (valid) or half of F - out (same / same_lower), as TensorFlow's conv2d_transpose."""
    x, w = _acc(a["x"]), _acc(a["weight"])
    nd = x.ndim - 2
    strides = a.ints("strides", [1] * nd)
    dil = a.ints("dilations", [1] * nd)
    groups = int(a.scalar("groups", 1))
    pad_type = a.scalar("pad_type", "valid")
    n, cin = x.shape[:2]
    if w.shape[0] != cin or cin % groups:
        raise MILFormatError(f"conv_transpose: C_in {cin}, weight {w.shape}, groups {groups}")
    cog = w.shape[1]
    cout = cog * groups
    k = w.shape[2:]
    full = [(x.shape[2 + i] - 1) * strides[i] + (k[i] - 1) * dil[i] + 1 for i in range(nd)]
    cig = cin // groups
    xg = x.reshape((n, groups, cig) + x.shape[2:])
    wg = w.reshape((groups, cig, cog) + tuple(k))
    f = np.zeros((n, groups, cog) + tuple(full), dtype=np.result_type(x, w))
    for kidx in np.ndindex(*k):
        wk = wg[(slice(None),) * 3 + kidx]
        contrib = np.matmul(np.swapaxes(wk, 1, 2)[None], xg.reshape(n, groups, cig, -1)).reshape(
            (n, groups, cog) + x.shape[2:])
        sl = tuple(slice(kidx[i] * dil[i], kidx[i] * dil[i] + (x.shape[2 + i] - 1) * strides[i] + 1,
                         strides[i]) for i in range(nd))
        f[(slice(None),) * 3 + sl] += contrib
    f = f.reshape((n, cout) + tuple(full))
    out_shape = a.ints("output_shape")
    before: list[int] = []
    outs: list[int] = []
    for i in range(nd):
        if out_shape is not None:
            o = out_shape[2 + i]
            if pad_type == "custom":
                b = a.ints("pad")[2 * i]
            elif pad_type == "valid":
                b = 0
            elif pad_type in ("same", "same_lower"):
                total = max(0, full[i] - o)
                b = total - total // 2 if pad_type == "same_lower" else total // 2
            else:
                raise MILFormatError(f"unknown pad_type {pad_type!r}")
        elif pad_type == "valid":
            b, o = 0, full[i]
        elif pad_type == "custom":
            p = a.ints("pad")
            b, o = p[2 * i], full[i] - p[2 * i] - p[2 * i + 1]
        elif pad_type in ("same", "same_lower"):
            o = x.shape[2 + i] * strides[i]
            total = full[i] - o
            b = total - total // 2 if pad_type == "same_lower" else total // 2
        else:
            raise MILFormatError(f"unknown pad_type {pad_type!r}")
        before.append(b)
        outs.append(o)
    if out_shape is not None and tuple(out_shape[:2]) != (n, cout):
        raise MILFormatError(f"conv_transpose: output_shape {out_shape} but N, C_out = {n}, {cout}")
    out = np.zeros((n, cout) + tuple(outs), dtype=f.dtype)
    src, dst = [slice(None)] * 2, [slice(None)] * 2
    for i in range(nd):
        lo, hi = max(before[i], 0), min(before[i] + outs[i], full[i])
        if hi <= lo:
            return out + (_channel_param(_acc(a["bias"]), out.ndim) if a.has("bias") else 0)
        src.append(slice(lo, hi))
        dst.append(slice(lo - before[i], hi - before[i]))
    out[tuple(dst)] = f[tuple(src)]
    if a.has("bias"):
        out = out + _channel_param(_acc(a["bias"]), out.ndim)
    return out


def _pool_geometry(a: Args, x: np.ndarray):
    nd = x.ndim - 2
    k = a.ints("kernel_sizes")
    if k is None or len(k) != nd:
        raise MILFormatError(f"pool: kernel_sizes {k} for {nd} spatial dimensions")
    strides = a.ints("strides", [1] * nd)
    pad_type = str(a.scalar("pad_type", "valid")).lower()
    ceil_mode = bool(a.scalar("ceil_mode", False))
    pads = _spatial_pads(a, pad_type, x.shape[2:], k, strides)
    outs = []
    for i in range(nd):
        n_in, (pb, pa) = x.shape[2 + i], pads[i]
        if not ceil_mode:
            o = (n_in + pb + pa - k[i]) // strides[i] + 1
        else:
            o = (n_in + pb + pa - k[i] + strides[i] - 1) // strides[i] + 1
            if pb + pa > 0 and (o - 1) * strides[i] >= n_in + pb:
                o -= 1
        if o <= 0:
            raise MILFormatError(f"pool: empty output along spatial dimension {i}")
        outs.append(o)
    return k, strides, pads, outs


def _pool_windows(x: np.ndarray, k, strides, pads, outs, fill: float):
    """Yield, for every kernel offset, the strided slice of x padded with `fill` (before-pads
    and enough after-padding to cover ceil-mode windows)."""
    nd = x.ndim - 2
    ext = [(pads[i][0], max(pads[i][1], (outs[i] - 1) * strides[i] + k[i] - x.shape[2 + i]
                            - pads[i][0])) for i in range(nd)]
    xp = np.pad(x, [(0, 0), (0, 0)] + ext, constant_values=fill)
    for kidx in np.ndindex(*k):
        sl = tuple(slice(kidx[i], kidx[i] + (outs[i] - 1) * strides[i] + 1, strides[i])
                   for i in range(nd))
        yield xp[(slice(None), slice(None)) + sl]


def _max_pool(a: Args) -> np.ndarray:
    x = _acc(a["x"])
    k, s, pads, outs = _pool_geometry(a, x)
    acc = None
    for win in _pool_windows(x, k, s, pads, outs, -np.inf):
        acc = win.copy() if acc is None else np.maximum(acc, win)
    return acc


def _avg_pool(a: Args) -> np.ndarray:
    """Sum of the window over the zero-padded input, divided by the number of window positions
    inside the input (exclude_padding_from_average) or inside the padded extent [-pad_before,
    in + pad_after) (ceil_mode windows may reach past it; those positions never count)."""
    x = _acc(a["x"])
    k, s, pads, outs = _pool_geometry(a, x)
    total = None
    for win in _pool_windows(x, k, s, pads, outs, 0.0):
        total = win.copy() if total is None else total + win
    exclude = bool(a.scalar("exclude_padding_from_average", False))
    count = np.ones((1, 1) + (1,) * len(k))
    for i, (n_in, (pb, pa)) in enumerate(zip(x.shape[2:], pads)):
        start = np.arange(outs[i]) * s[i] - pb
        end = start + k[i]
        if exclude:
            c = np.minimum(end, n_in) - np.maximum(start, 0)
        else:
            c = np.minimum(end, n_in + pa) - start
        shape = [1] * (len(k) + 2)
        shape[2 + i] = outs[i]
        count = count * c.reshape(shape)
    return total / count


def _l2_pool(a: Args) -> np.ndarray:
    x = _acc(a["x"])
    k, s, pads, outs = _pool_geometry(a, x)
    total = None
    for win in _pool_windows(x, k, s, pads, outs, 0.0):
        total = win * win if total is None else total + win * win
    return np.sqrt(total)


# ----------------------------------------------------------------------------------------------
# normalization
# ----------------------------------------------------------------------------------------------

def _batch_norm(a: Args) -> np.ndarray:
    x = _acc(a["x"])
    r = x.ndim
    mean, var = _channel_param(_acc(a["mean"]), r), _channel_param(_acc(a["variance"]), r)
    eps = float(a.scalar("epsilon", 1e-5))
    y = (x - mean) / np.sqrt(var + eps)
    if a.has("gamma"):
        y = y * _channel_param(_acc(a["gamma"]), r)
    if a.has("beta"):
        y = y + _channel_param(_acc(a["beta"]), r)
    return y


def _instance_norm(a: Args) -> np.ndarray:
    x = _acc(a["x"])
    ax = tuple(range(2, x.ndim))
    eps = float(a.scalar("epsilon", 1e-5))
    mu = x.mean(axis=ax, keepdims=True)
    var = ((x - mu) ** 2).mean(axis=ax, keepdims=True)
    y = (x - mu) / np.sqrt(var + eps)
    if a.has("gamma"):
        y = y * _channel_param(_acc(a["gamma"]), x.ndim)
    if a.has("beta"):
        y = y + _channel_param(_acc(a["beta"]), x.ndim)
    return y


def _layer_norm(a: Args) -> np.ndarray:
    x = _acc(a["x"])
    axes = _axes(a, x.ndim) or tuple(range(x.ndim))
    eps = float(a.scalar("epsilon", 1e-5))
    mu = x.mean(axis=axes, keepdims=True)
    var = ((x - mu) ** 2).mean(axis=axes, keepdims=True)
    y = (x - mu) / np.sqrt(var + eps)
    pshape = [x.shape[i] if i in axes else 1 for i in range(x.ndim)]
    if a.has("gamma"):
        y = y * _acc(a["gamma"]).reshape(pshape)
    if a.has("beta"):
        y = y + _acc(a["beta"]).reshape(pshape)
    return y


def _l2_norm(a: Args) -> np.ndarray:
    x = _acc(a["x"])
    eps = float(a.scalar("epsilon", 1e-6))
    ax = tuple(range(max(x.ndim - 3, 0), x.ndim))
    return x / np.sqrt((x * x).sum(axis=ax, keepdims=True) + eps)


def _local_response_norm(a: Args) -> np.ndarray:
    """x / (k + alpha/size * sum of x^2 over channels [c - (size-1)//2, c + size//2])^beta."""
    x = _acc(a["x"])
    size = int(a.scalar("size"))
    alpha = float(a.scalar("alpha", 1e-4))
    beta = float(a.scalar("beta", 0.75))
    kk = float(a.scalar("k", 1.0))
    c = x.shape[1]
    sq = x * x
    sums = np.zeros_like(x)
    lo_off, hi_off = (size - 1) // 2, size // 2
    for ch in range(c):
        lo, hi = max(0, ch - lo_off), min(c, ch + hi_off + 1)
        sums[:, ch] = sq[:, lo:hi].sum(axis=1)
    return x / (kk + alpha / size * sums) ** beta


def _scaled_dot_product_attention(a: Args) -> np.ndarray:
    """softmax(q·kᵀ / √E + mask)·v over the last axis (iOS18/transformers.py); a bool mask's False entries
    become -inf."""
    q, k, v = _acc(a["query"]), _acc(a["key"]), _acc(a["value"])
    scores = np.matmul(q, np.swapaxes(k, -1, -2)) / math.sqrt(q.shape[-1])
    if a.has("attn_mask"):
        m = np.asarray(a["attn_mask"])
        scores = scores + (np.where(m, 0.0, -np.inf) if m.dtype == np.bool_ else _acc(m))
    e = np.exp(scores - scores.max(axis=-1, keepdims=True))
    return np.matmul(e / e.sum(axis=-1, keepdims=True), v)


def _softmax(a: Args) -> np.ndarray:
    x = _acc(a["x"])
    ax = _norm_axis(int(a.scalar("axis", -1)), x.ndim)
    e = np.exp(x - x.max(axis=ax, keepdims=True))
    return e / e.sum(axis=ax, keepdims=True)


# ----------------------------------------------------------------------------------------------
# reductions
# ----------------------------------------------------------------------------------------------

def _reduce(fn: Callable[..., np.ndarray], acc: bool = True) -> Callable[[Args], Any]:
    def op(a: Args) -> np.ndarray:
        x = a["x"]
        x = _acc(x) if acc else x
        axes = _axes(a, x.ndim)
        return fn(x, axes, bool(a.scalar("keep_dims", False)))
    return op


def _log_sum_exp(x, axes, keep):
    m = np.max(x, axis=axes, keepdims=True)
    s = np.log(np.sum(np.exp(x - m), axis=axes, keepdims=True)) + m
    return s if keep else np.squeeze(s, axis=axes if axes is not None else None)


def _reduce_arg(fn: Callable[..., np.ndarray]) -> Callable[[Args], Any]:
    def op(a: Args) -> np.ndarray:
        x = a["x"]
        ax = _norm_axis(int(a.scalar("axis", -1)), x.ndim)
        r = fn(x, axis=ax)
        if a.scalar("keep_dims", False):
            r = np.expand_dims(r, ax)
        return r.astype(np.int32)
    return op


REDUCTIONS: dict[str, Callable[..., np.ndarray]] = {
    "reduce_mean": lambda x, ax, k: np.mean(x, axis=ax, keepdims=k),
    "reduce_sum": lambda x, ax, k: np.sum(x, axis=ax, keepdims=k),
    "reduce_max": lambda x, ax, k: np.max(x, axis=ax, keepdims=k),
    "reduce_min": lambda x, ax, k: np.min(x, axis=ax, keepdims=k),
    "reduce_prod": lambda x, ax, k: np.prod(x, axis=ax, keepdims=k),
    "reduce_l1_norm": lambda x, ax, k: np.sum(np.abs(x), axis=ax, keepdims=k),
    "reduce_l2_norm": lambda x, ax, k: np.sqrt(np.sum(x * x, axis=ax, keepdims=k)),
    "reduce_log_sum": lambda x, ax, k: np.log(np.sum(x, axis=ax, keepdims=k)),
    "reduce_log_sum_exp": _log_sum_exp,
    "reduce_sum_square": lambda x, ax, k: np.sum(x * x, axis=ax, keepdims=k),
}


# ----------------------------------------------------------------------------------------------
# shape / data movement
# ----------------------------------------------------------------------------------------------

def _reshape(a: Args) -> np.ndarray:
    x = np.asarray(a["x"])
    shape = a.ints("shape")
    if 0 in shape:
        if a.ios >= 17:
            # iOS17: each 0 copies the dimension of x aligned from the right; 1 when none
            rs = list(reversed(shape))
            xs = list(reversed(x.shape))
            rs = [(xs[i] if i < len(xs) else 1) if v == 0 else v for i, v in enumerate(rs)]
            shape = list(reversed(rs))
        else:
            if len(shape) != x.ndim:
                raise MILFormatError(f"reshape: 0 in shape {shape} needs len == rank {x.ndim}")
            shape = [x.shape[i] if v == 0 else v for i, v in enumerate(shape)]
    if shape.count(-1) > 1:
        raise MILFormatError(f"reshape: more than one -1 in {shape}")
    return x.reshape(shape)


def _transpose(a: Args) -> np.ndarray:
    return np.transpose(a["x"], a.ints("perm"))


def _concat(a: Args) -> np.ndarray:
    vals = [np.asarray(v) for v in a.list("values")]
    if all(v.ndim == 0 for v in vals):
        return np.stack(vals)
    ax = _norm_axis(int(a.scalar("axis")), vals[0].ndim)
    if a.scalar("interleave", False):
        # output[..., i*n + j, ...] = values[j][..., i, ...]
        st = np.stack(vals, axis=ax + 1)
        shp = list(vals[0].shape)
        shp[ax] *= len(vals)
        return st.reshape(shp)
    return np.concatenate(vals, axis=ax)


def _stack(a: Args) -> np.ndarray:
    vals = [np.asarray(v) for v in a.list("values")]
    return np.stack(vals, axis=int(a.scalar("axis")))


def _split(a: Args) -> tuple[np.ndarray, ...]:
    x = np.asarray(a["x"])
    ax = _norm_axis(int(a.scalar("axis")), x.ndim)
    sizes = a.ints("split_sizes")
    if sizes is None:
        n = int(a.scalar("num_splits"))
        if x.shape[ax] % n:
            raise MILFormatError(f"split: {x.shape[ax]} not divisible by {n}")
        sizes = [x.shape[ax] // n] * n
    if sum(sizes) != x.shape[ax]:
        raise MILFormatError(f"split: sizes {sizes} do not sum to {x.shape[ax]}")
    cuts = np.cumsum(sizes)[:-1]
    return tuple(np.split(x, cuts, axis=ax))


def _slice_by_index(a: Args) -> np.ndarray:
    x = np.asarray(a["x"])
    r = x.ndim
    begin, end = a.ints("begin"), a.ints("end")
    stride = a.ints("stride", [1] * r)
    bm = a.bools("begin_mask", [False] * r)
    em = a.bools("end_mask", [False] * r)
    sm = a.bools("squeeze_mask", [False] * r)
    idx: list[Any] = []
    for i in range(r):
        if sm[i]:
            j = 0 if bm[i] else begin[i]
            j = j + x.shape[i] if j < 0 else j
            if not 0 <= j < x.shape[i]:
                raise MILFormatError(f"slice_by_index: squeezed index {begin[i]} out of range")
            idx.append(j)
        else:
            idx.append(slice(None if bm[i] else begin[i], None if em[i] else end[i], stride[i]))
    return np.asarray(x[tuple(idx)])


def _slice_by_size(a: Args) -> np.ndarray:
    x = np.asarray(a["x"])
    begin, size = a.ints("begin"), a.ints("size")
    idx = []
    for i in range(x.ndim):
        b = begin[i] + x.shape[i] if begin[i] < 0 else begin[i]
        e = x.shape[i] if size[i] == -1 else b + size[i]
        if e > x.shape[i] or b < 0:
            raise MILFormatError(f"slice_by_size: [{b}, {e}) outside dimension {x.shape[i]}")
        idx.append(slice(b, e))
    return x[tuple(idx)]


def _squeeze(a: Args) -> np.ndarray:
    x = np.asarray(a["x"])
    axes = _axes(a, x.ndim)
    if axes is None:
        axes = tuple(i for i, d in enumerate(x.shape) if d == 1)
    return np.squeeze(x, axis=tuple(i for i in axes if x.shape[i] == 1))


def _expand_dims(a: Args) -> np.ndarray:
    x = np.asarray(a["x"])
    ax = a.ints("axes")
    out_rank = x.ndim + len(ax)
    shape = list(x.shape)
    for v in sorted(v + out_rank if v < 0 else v for v in ax):
        shape.insert(v, 1)
    return x.reshape(shape)


def _wrap_indices(a: Args, ind: np.ndarray, dim: int) -> np.ndarray:
    """iOS15/16: indices in [-dim, dim), negative ones counted from the end. iOS17+: only
    [0, dim) (the iOS17 gather ops call negative indices out of bounds, with undefined
    results), so negative indices are refused."""
    if np.any(ind < 0):
        if a.ios >= 17:
            raise MILFormatError(f"op {a.op_name}: negative gather indices are out of bounds "
                                 f"from iOS17 on")
        ind = np.where(ind < 0, ind + dim, ind)
    if np.any((ind < 0) | (ind >= dim)):
        raise MILFormatError(f"op {a.op_name}: gather index out of range for dimension {dim}")
    return ind


def _gather(a: Args) -> np.ndarray:
    x = np.asarray(a["x"])
    ind = np.asarray(a["indices"]).astype(np.int64)
    ax = _norm_axis(int(a.scalar("axis", 0)), x.ndim)
    bd = int(a.scalar("batch_dims", 0))
    ind = _wrap_indices(a, ind, x.shape[ax])
    if bd == 0:
        return np.take(x, ind, axis=ax)
    batch = x.shape[:bd]
    if ind.shape[:bd] != batch:
        raise MILFormatError(f"gather: batch dims {x.shape[:bd]} vs {ind.shape[:bd]}")
    parts = [np.take(x[b], ind[b], axis=ax - bd) for b in np.ndindex(*batch)]
    return np.stack(parts).reshape(batch + parts[0].shape)


def _gather_nd(a: Args) -> np.ndarray:
    """out[i...] = x[indices[i..., 0], ..., indices[i..., k-1], ...] (iOS15: no batch_dims)."""
    x, ind = a["x"], np.asarray(a["indices"]).astype(np.int64)
    k = ind.shape[-1]
    flat = ind.reshape(-1, k)
    rows = [x[tuple(r)] for r in flat]
    return np.stack(rows).reshape(ind.shape[:-1] + x.shape[k:])


_SCATTER_MODES = {"update": lambda old, new: new, "add": np.add, "sub": np.subtract, "mul": np.multiply,
                  "div": np.divide, "max": np.maximum, "min": np.minimum}


def _scatter_nd(a: Args) -> np.ndarray:
    """output = data; output[indices[i...]] = mode(output[...], updates[i...]), in index order."""
    out = np.array(a["data"], copy=True)
    ind = np.asarray(a["indices"]).astype(np.int64)
    upd = np.asarray(a["updates"])
    fn = _SCATTER_MODES[str(a.scalar("mode", "add"))]
    k = ind.shape[-1]
    flat, ups = ind.reshape(-1, k), upd.reshape((-1,) + out.shape[k:])
    for r, u in zip(flat, ups):
        out[tuple(r)] = fn(out[tuple(r)], u)
    return out


def _scatter_along_axis(a: Args) -> np.ndarray:
    """output = data; output[..., indices[i], ...] (along axis) = mode(old, updates[i]), in element order."""
    out = np.array(a["data"], copy=True)
    ind = np.asarray(a["indices"]).astype(np.int64)
    upd = np.asarray(a["updates"])
    axis = _norm_axis(int(a.scalar("axis", 0)), out.ndim)
    fn = _SCATTER_MODES[str(a.scalar("mode", "add"))]
    for pos in np.ndindex(*ind.shape):
        target = list(pos)
        target[axis] = ind[pos]
        out[tuple(target)] = fn(out[tuple(target)], upd[pos])
    return out


def _pixel_shuffle(a: Args) -> np.ndarray:
    """PyTorch's pixel_shuffle (ONNX DepthToSpace CRD): out[n, c, h*r + i, w*r + j] = x[n, c*r*r + i*r + j, h, w]."""
    x, r = a["x"], int(a["upscale_factor"])
    n, c, h, w = x.shape
    return x.reshape(n, c // (r * r), r, r, h, w).transpose(0, 1, 4, 2, 5, 3).reshape(n, c // (r * r), h * r, w * r)


def _gather_along_axis(a: Args) -> np.ndarray:
    x = np.asarray(a["x"])
    ind = np.asarray(a["indices"]).astype(np.int64)
    ax = _norm_axis(int(a.scalar("axis", 0)), x.ndim)
    ind = _wrap_indices(a, ind, x.shape[ax])
    return np.take_along_axis(x, ind, axis=ax)


def _pad(a: Args) -> np.ndarray:
    x = np.asarray(a["x"])
    p = a.ints("pad")
    n = len(p) // 2
    if len(p) % 2 or n > x.ndim:
        raise MILFormatError(f"pad: {len(p)} values for rank {x.ndim}")
    widths = [(0, 0)] * (x.ndim - n) + [(p[2 * i], p[2 * i + 1]) for i in range(n)]
    mode = a.scalar("mode", "constant")
    if mode == "constant":
        return np.pad(x, widths, mode="constant", constant_values=a.scalar("constant_val", 0.0))
    if mode == "reflect":
        return np.pad(x, widths, mode="reflect")
    if mode == "replicate":
        return np.pad(x, widths, mode="edge")
    raise MILFormatError(f"pad: unknown mode {mode!r}")


def _tile(a: Args) -> np.ndarray:
    return np.tile(a["x"], a.ints("reps"))


def _reverse(a: Args) -> np.ndarray:
    x = np.asarray(a["x"])
    axes = _axes(a, x.ndim)
    return np.flip(x, axis=axes if axes is not None else tuple(range(x.ndim)))


def _flatten2d(a: Args) -> np.ndarray:
    x = np.asarray(a["x"])
    ax = int(a.scalar("axis", 1))
    ax = ax + x.ndim if ax < 0 else ax
    return x.reshape(int(np.prod(x.shape[:ax])), int(np.prod(x.shape[ax:])))


def _band_part(a: Args) -> np.ndarray:
    x = np.asarray(a["x"])
    lo, hi = int(a.scalar("lower", -1)), int(a.scalar("upper", -1))
    m, n = x.shape[-2:]
    i, j = np.arange(m)[:, None], np.arange(n)[None, :]
    keep = ((lo < 0) | (i - j <= lo)) & ((hi < 0) | (j - i <= hi))
    return np.where(keep, x, np.zeros((), dtype=x.dtype))


def _depth_to_space(a: Args) -> np.ndarray:
    """DCR order: out[n, c, h*b + i, w*b + j] = x[n, (i*b + j)*C' + c, h, w]."""
    x = np.asarray(a["x"])
    b = int(a.scalar("block_size"))
    n, c, h, w = x.shape
    y = x.reshape(n, b, b, c // (b * b), h, w).transpose(0, 3, 4, 1, 5, 2)
    return y.reshape(n, c // (b * b), h * b, w * b)


def _space_to_depth(a: Args) -> np.ndarray:
    """Inverse of depth_to_space: out[n, (i*b + j)*C + c, h, w] = x[n, c, h*b + i, w*b + j]."""
    x = np.asarray(a["x"])
    b = int(a.scalar("block_size"))
    n, c, h, w = x.shape
    y = x.reshape(n, c, h // b, b, w // b, b).transpose(0, 3, 5, 1, 2, 4)
    return y.reshape(n, c * b * b, h // b, w // b)


def _fill(a: Args) -> np.ndarray:
    v = a.get("value", np.float32(0.0))
    return np.full(a.ints("shape"), v, dtype=np.asarray(v).dtype)


def _fill_like(a: Args) -> np.ndarray:
    v = a.get("value", np.float32(0.0))
    return np.full(np.asarray(a["ref_tensor"]).shape, v, dtype=np.asarray(v).dtype)


def _range_1d(a: Args) -> np.ndarray:
    start, end, step = a.scalar("start"), a.scalar("end"), a.scalar("step")
    if step == 0:
        raise MILFormatError("range_1d: step 0")
    if all(isinstance(v, int) for v in (start, end, step)):
        return np.arange(start, end, step, dtype=np.int64)
    n = max(0, math.ceil((end - start) / step))
    return start + np.arange(n, dtype=np.float64) * step


def _shape(a: Args) -> np.ndarray:
    return np.array(np.asarray(a["x"]).shape, dtype=np.int32)


def _topk(a: Args) -> Any:
    """Stable: among equal values the lower index comes first."""
    x = np.asarray(a["x"])
    k = int(a.scalar("k", 1))
    ax = _norm_axis(int(a.scalar("axis", -1)), x.ndim)
    asc = bool(a.scalar("ascending", False))
    key = x.astype(np.float64) if x.dtype.kind == "f" else x.astype(np.int64)
    order = np.argsort(key if asc else -key, axis=ax, kind="stable")
    idx = np.take(order, np.arange(k), axis=ax)
    vals = np.take_along_axis(x, idx, axis=ax)
    if not a.scalar("return_indices", True):
        return vals
    return vals, idx.astype(np.int32)


def _argsort(a: Args) -> np.ndarray:
    x = np.asarray(a["x"])
    ax = _norm_axis(int(a.scalar("axis", -1)), x.ndim)
    key = x.astype(np.float64) if x.dtype.kind == "f" else x.astype(np.int64)
    asc = bool(a.scalar("ascending", False))
    return np.argsort(key if asc else -key, axis=ax, kind="stable").astype(np.int32)


def _cumsum(a: Args) -> np.ndarray:
    x = _acc(a["x"])
    ax = _norm_axis(int(a.scalar("axis", 0)), x.ndim)
    rev = bool(a.scalar("reverse", False))
    d = np.flip(x, axis=ax) if rev else x
    c = np.cumsum(d, axis=ax)
    if a.scalar("exclusive", False):
        zero = np.zeros_like(np.take(c, [0], axis=ax))
        c = np.concatenate([zero, np.take(c, np.arange(c.shape[ax] - 1), axis=ax)], axis=ax)
    return np.flip(c, axis=ax) if rev else c


def _one_hot(a: Args) -> np.ndarray:
    """Indices outside [0, size) give an all-off vector."""
    ind = np.asarray(a["indices"]).astype(np.int64)
    depth = int(a.scalar("one_hot_vector_size"))
    ax = int(a.scalar("axis", -1))
    ax = ax + ind.ndim + 1 if ax < 0 else ax
    on = a.get("on_value", np.int32(1))
    off = a.get("off_value", np.int32(0))
    rshape = [1] * (ind.ndim + 1)
    rshape[ax] = depth
    hit = np.expand_dims(ind, ax) == np.arange(depth).reshape(rshape)
    return np.where(hit, on, off)


def _non_zero(a: Args) -> np.ndarray:
    return np.argwhere(np.asarray(a["x"]) != 0).astype(np.int32)


# ----------------------------------------------------------------------------------------------
# resizing
# ----------------------------------------------------------------------------------------------

def resize_grid(mode: str, n_in: int, n_out: int) -> np.ndarray:
    """Sampling positions (in input pixel coordinates, clamped to [0, n_in - 1]) of the output
    pixels for resize_bilinear's sampling_mode (also used by upsample_bilinear)."""
    i = np.arange(n_out, dtype=np.float64)
    if mode in ("STRICT_ALIGN_CORNERS", "ALIGN_CORNERS"):
        if n_out == 1:
            g = np.array([(n_in - 1) / 2.0 if mode == "ALIGN_CORNERS" else 0.0])
        else:
            g = i * (n_in - 1) / (n_out - 1)
    elif mode == "DEFAULT":
        g = i * n_in / n_out
    elif mode == "OFFSET_CORNERS":
        delta = max(1, n_in - 1) / n_out
        g = 0.5 * delta + i * delta
    elif mode == "UNALIGN_CORNERS":
        g = (i + 0.5) * n_in / n_out - 0.5
    else:
        raise MILFormatError(f"unknown sampling_mode {mode!r}")
    return np.clip(g, 0, n_in - 1)


def _interp_axis(x: np.ndarray, axis: int, grid: np.ndarray) -> np.ndarray:
    n_in = x.shape[axis]
    i0 = np.clip(np.floor(grid).astype(np.int64), 0, n_in - 1)
    i1 = np.minimum(i0 + 1, n_in - 1)
    w = grid - i0
    shape = [1] * x.ndim
    shape[axis] = grid.size
    w = w.reshape(shape)
    return np.take(x, i0, axis=axis) * (1 - w) + np.take(x, i1, axis=axis) * w


def _bilinear(x: np.ndarray, h_out: int, w_out: int, mode: str) -> np.ndarray:
    x = _acc(x)
    y = _interp_axis(x, -2, resize_grid(mode, x.shape[-2], h_out))
    return _interp_axis(y, -1, resize_grid(mode, x.shape[-1], w_out))


def _nearest(x: np.ndarray, idx_h: np.ndarray, idx_w: np.ndarray) -> np.ndarray:
    y = np.take(x, np.clip(idx_h, 0, x.shape[-2] - 1), axis=-2)
    return np.take(y, np.clip(idx_w, 0, x.shape[-1] - 1), axis=-1)


def _upsample_nearest_neighbor(a: Args) -> np.ndarray:
    """out = floor(in * scale); output pixel i reads input floor(i / scale)."""
    x = np.asarray(a["x"])
    sh, sw = float(a.scalar("scale_factor_height", 1)), float(a.scalar("scale_factor_width", 1))
    ho, wo = int(math.floor(x.shape[-2] * sh)), int(math.floor(x.shape[-1] * sw))
    ih = np.floor(np.arange(ho) / sh).astype(np.int64)
    iw = np.floor(np.arange(wo) / sw).astype(np.int64)
    return _nearest(x, ih, iw)


def _resize_nearest_neighbor(a: Args) -> np.ndarray:
    """Output pixel i reads input floor(i * in / out) (upsample_nearest_neighbor with
    scale = out / in)."""
    x = np.asarray(a["x"])
    ho, wo = int(a.scalar("target_size_height")), int(a.scalar("target_size_width"))
    ih = (np.arange(ho) * x.shape[-2]) // ho
    iw = (np.arange(wo) * x.shape[-1]) // wo
    return _nearest(x, ih, iw)


def _pad_index(i: np.ndarray, size: int, mode: str) -> tuple[np.ndarray, np.ndarray]:
    """Index i of a padded 1-D image of `size` pixels mapped inside it, and whether it is inside at all (for
    "constant"). The definition's examples for |1, 2, 3|: border 1, 1, 1, 1, 2, 3, 3, 3, 3; reflection (edges not
    repeated) 2, 3, 2, 1, 2, 3, 2, 1, 2; symmetric (edges repeated) 3, 2, 1, 1, 2, 3, 3, 2, 1."""
    inside = (i >= 0) & (i < size)
    if mode == "constant":
        return np.clip(i, 0, size - 1), inside
    if mode == "border":
        return np.clip(i, 0, size - 1), np.ones_like(inside)
    if mode == "reflection":
        if size == 1:
            return np.zeros_like(i), np.ones_like(inside)
        period = 2 * (size - 1)
        m = np.mod(i, period)
        return np.where(m < size, m, period - m), np.ones_like(inside)
    if mode == "symmetric":
        period = 2 * size
        m = np.mod(i, period)
        return np.where(m < size, m, period - 1 - m), np.ones_like(inside)
    raise MILFormatError(f"resample: padding_mode {mode!r}")


def _resample(a: Args) -> np.ndarray:
    """x [B, C, H, W] sampled at coordinates [B, H2, W2, 2] given as (x, y) = (w, h). normalized_minus_one_to_one
    maps -1 and 1 to the corner pixels' centers (align_corners) or to their outer edges (otherwise); bilinear weighs
    the four neighbouring pixels, each taken from the padded image; nearest takes the pixel at the rounded position
    (the definition does not say how ties round: half to even here, as PyTorch's grid_sample does)."""
    x = np.asarray(a["x"])
    grid = np.asarray(a["coordinates"], np.float64)
    sampling, padding = str(a.scalar("sampling_mode")), str(a.scalar("padding_mode"))
    mode = str(a.scalar("coordinates_mode"))
    align = bool(a.scalar("align_corners"))
    pad_value = float(a.scalar("padding_value", 0.0))
    b, c, h, w = x.shape
    gx, gy = grid[..., 0], grid[..., 1]
    if mode == "normalized_minus_one_to_one":
        if align:
            px, py = (gx + 1) / 2 * (w - 1), (gy + 1) / 2 * (h - 1)
        else:
            px, py = ((gx + 1) * w - 1) / 2, ((gy + 1) * h - 1) / 2
    elif mode == "normalized_zero_to_one":
        px, py = (gx * (w - 1), gy * (h - 1)) if align else (gx * w - 0.5, gy * h - 0.5)
    elif mode == "unnormalized":
        px, py = gx, gy
    else:
        raise MILFormatError(f"resample: coordinates_mode {mode!r}")
    xs = x.astype(np.float64)
    batch = np.arange(b)[:, None, None]

    def pick(iy: np.ndarray, ix: np.ndarray) -> np.ndarray:
        jy, in_y = _pad_index(iy, h, padding)
        jx, in_x = _pad_index(ix, w, padding)
        vals = xs[batch, :, jy, jx]                      # [B, H2, W2, C]
        return np.where((in_y & in_x)[..., None], vals, pad_value)

    if sampling == "nearest":
        out = pick(np.rint(py).astype(np.int64), np.rint(px).astype(np.int64))
    elif sampling == "bilinear":
        x0, y0 = np.floor(px).astype(np.int64), np.floor(py).astype(np.int64)
        fx, fy = (px - x0)[..., None], (py - y0)[..., None]
        out = (pick(y0, x0) * (1 - fx) * (1 - fy) + pick(y0, x0 + 1) * fx * (1 - fy)
               + pick(y0 + 1, x0) * (1 - fx) * fy + pick(y0 + 1, x0 + 1) * fx * fy)
    else:
        raise MILFormatError(f"resample: sampling_mode {sampling!r}")
    return np.transpose(out, (0, 3, 1, 2)).astype(x.dtype)


def _upsample_bilinear(a: Args) -> np.ndarray:
    """align_corners (default true) -> STRICT_ALIGN_CORNERS grid; otherwise half-pixel
    centers (UNALIGN_CORNERS grid) unless iOS16's half_pixel_centers is false (DEFAULT grid).
    The output size is floor(in * scale) and the grid is computed from in/out sizes."""
    x = np.asarray(a["x"])
    sh, sw = float(a.scalar("scale_factor_height", 1)), float(a.scalar("scale_factor_width", 1))
    ho, wo = int(math.floor(x.shape[-2] * sh)), int(math.floor(x.shape[-1] * sw))
    align = bool(a.scalar("align_corners", True))
    half = bool(a.scalar("half_pixel_centers", not align))
    if align and half:
        raise MILFormatError("upsample_bilinear: align_corners and half_pixel_centers both true")
    mode = "STRICT_ALIGN_CORNERS" if align else ("UNALIGN_CORNERS" if half else "DEFAULT")
    return _bilinear(x, ho, wo, mode)


def _resize_bilinear(a: Args) -> np.ndarray:
    x = np.asarray(a["x"])
    ho = int(a.scalar("target_size_height", 1))
    wo = int(a.scalar("target_size_width", 1))
    return _bilinear(x, ho, wo, a.scalar("sampling_mode", "DEFAULT"))


# ----------------------------------------------------------------------------------------------
# constexpr (compressed weights)
# ----------------------------------------------------------------------------------------------

def _axis_param(p: np.ndarray, rank: int, axis: int) -> np.ndarray:
    p = np.asarray(p)
    if p.ndim == 0:
        return p
    shape = [1] * rank
    shape[axis] = p.size
    return p.reshape(shape)


def _constexpr_affine_dequantize(a: Args) -> np.ndarray:
    q = np.asarray(a["quantized_data"]).astype(np.float64)
    ax = _norm_axis(int(a.scalar("axis")), q.ndim)
    zp = _axis_param(np.asarray(a["zero_point"]).astype(np.float64), q.ndim, ax)
    sc = _axis_param(_acc(a["scale"]), q.ndim, ax)
    return (q - zp) * sc


def _quantization_axis(a: Args, rank: int) -> int | None:
    return _norm_axis(int(a.scalar("axis")), rank) if a.has("axis") else None


def _quantize(a: Args) -> np.ndarray:
    """iOS17 quantize: clip(round(x / scale) + zero_point) into int8 or uint8 (round half to even, numpy's
    around, as coremltools' quantize_by_scale_and_zp); scale and zero point scalars or vectors along axis."""
    x = _acc(a["input"]).astype(np.float32)
    out = dtype_name(a.scalar("output_dtype"))
    if out not in ("int8", "uint8"):
        raise MILFormatError(f"quantize: output_dtype {out!r}")
    ax = _quantization_axis(a, x.ndim)
    sc = np.asarray(a["scale"], np.float32)
    sc = sc if ax is None else _axis_param(sc, x.ndim, ax)
    q = np.around(x / sc)
    if a.has("zero_point"):
        zp = np.asarray(a["zero_point"]).astype(np.float32)
        q = q + (zp if ax is None else _axis_param(zp, x.ndim, ax))
    lo, hi = (-128, 127) if out == "int8" else (0, 255)
    return np.clip(q, lo, hi).astype(STORAGE[out])


def _dequantize(a: Args) -> np.ndarray:
    """iOS17 dequantize: scale * (q - zero_point), in the scale's float type."""
    q = np.asarray(a["input"]).astype(np.float64)
    ax = _quantization_axis(a, q.ndim)
    if a.has("zero_point"):
        zp = np.asarray(a["zero_point"]).astype(np.float64)
        q = q - (zp if ax is None else _axis_param(zp, q.ndim, ax))
    sc = _acc(a["scale"]).astype(np.float64)
    return q * (sc if ax is None else _axis_param(sc, q.ndim, ax))


def _constexpr_cast(a: Args) -> np.ndarray:
    return to_dtype(a["source_val"], dtype_name(a.scalar("output_dtype")))


def _repeat_blocks(p: np.ndarray, shape: Sequence[int]) -> np.ndarray:
    p = np.asarray(p)
    if p.ndim != len(shape):
        raise MILFormatError(f"block parameter rank {p.ndim} != data rank {len(shape)}")
    for d, (n, m) in enumerate(zip(shape, p.shape)):
        if n % m:
            raise MILFormatError(f"data dim {d} ({n}) not a multiple of parameter dim ({m})")
        if n != m:
            p = np.repeat(p, n // m, axis=d)
    return p


def _constexpr_blockwise_shift_scale(a: Args) -> np.ndarray:
    """output = scale * (data - offset), each scale/offset element covering a block of
    data.shape[i] / scale.shape[i] elements along every dimension i."""
    data = np.asarray(a["data"]).astype(np.float64)
    sc = _repeat_blocks(_acc(a["scale"]), data.shape)
    if a.has("offset"):
        data = data - _repeat_blocks(np.asarray(a["offset"]).astype(np.float64), data.shape)
    return sc * data


def _constexpr_lut_to_dense(a: Args) -> np.ndarray:
    lut = np.asarray(a["lut"])
    if a.has("shape"):
        # iOS16: indices = packed uint8 bytes (LSB first), lut = [2^nbits], shape = [K] uint32
        shape = a.ints("shape")
        n = lut.size
        nbits = n.bit_length() - 1
        if lut.ndim != 1 or n != 1 << nbits or nbits not in (1, 2, 4, 6, 8):
            raise MILFormatError(f"constexpr_lut_to_dense: lut of shape {lut.shape}")
        count = int(np.prod(shape))
        packed = np.asarray(a.raw("indices"), dtype=np.uint8).reshape(-1)
        if packed.size != -(-count * nbits // 8):
            raise MILFormatError(f"constexpr_lut_to_dense: {packed.size} index bytes for "
                                 f"{count} {nbits}-bit indices")
        idx = unpack_bits(packed, count, nbits, signed=False)
        return lut[idx].reshape(shape)
    # iOS18: indices [*S] uintN, lut [*G, 2^N, VECTOR_SIZE] with S[i] % G[i] == 0
    ind = np.asarray(a["indices"]).astype(np.int64)
    k = ind.ndim
    if lut.ndim != k + 2:
        raise MILFormatError(f"constexpr_lut_to_dense: lut rank {lut.ndim}, indices rank {k}")
    groups = []
    for d in range(k):
        if ind.shape[d] % lut.shape[d]:
            raise MILFormatError(f"indices dim {d} ({ind.shape[d]}) not a multiple of "
                                 f"lut dim ({lut.shape[d]})")
        blk = ind.shape[d] // lut.shape[d]
        shp = [1] * k
        shp[d] = ind.shape[d]
        groups.append((np.arange(ind.shape[d]) // blk).reshape(shp))
    if np.any(ind >= lut.shape[-2]):
        raise MILFormatError("constexpr_lut_to_dense: index past the palette")
    vecs = lut[tuple(groups) + (ind, slice(None))]        # [*S, VECTOR_SIZE]
    vs = lut.shape[-1]
    if vs == 1:
        return vecs[..., 0]
    va = _norm_axis(int(a.scalar("vector_axis")), k)
    moved = np.moveaxis(vecs, -1, va + 1)                 # [..., S[va], VS, ...]
    shape = list(ind.shape)
    shape[va] *= vs
    return moved.reshape(shape)


# ----------------------------------------------------------------------------------------------
# the registry
# ----------------------------------------------------------------------------------------------

def _unary(fn: Callable[[np.ndarray], np.ndarray]) -> Callable[[Args], Any]:
    return lambda a: fn(a["x"])


def _classify(a: Args) -> tuple[Any, dict]:
    """iOS15 classify (coremltools/converters/mil/mil/ops/defs/iOS15/classify.py): the label of the largest
    probability (the first on ties, as argmax), and a dictionary from every label to its probability (fp64)."""
    probs = np.asarray(a["probabilities"], dtype=np.float32).reshape(-1)
    if a.dtype("probabilities") != "fp32":
        raise MILFormatError(f"op {a.op_name}: classify takes fp32 probabilities, got {a.dtype('probabilities')}")
    classes = a.raw("classes")
    if not isinstance(classes, list) or len(classes) != probs.size:
        raise MILFormatError(f"op {a.op_name}: {len(classes)} classes for {probs.size} probabilities")
    label = classes[int(np.argmax(probs))]
    label = label if isinstance(label, str) else np.asarray(label, dtype=np.int64)
    return label, {c: float(p) for c, p in zip(classes, probs)}


OPS: dict[str, Callable[[Args], Any]] = {
    "classify": _classify,
    "const": lambda a: a.raw("val"),
    "identity": lambda a: a.raw("x"),
    "cast": _cast,
    # elementwise binary (numpy broadcasting)
    "add": _binary(np.add),
    "sub": _binary(np.subtract),
    "mul": _binary(np.multiply),
    "real_div": _real_div,
    "floor_div": _binary(np.floor_divide),
    "pow": _pow,
    "maximum": _binary(np.maximum),
    "minimum": _binary(np.minimum),
    "mod": _binary(np.mod),                # floored: the result has the sign of y
    "equal": _binary(np.equal),
    "not_equal": _binary(np.not_equal),
    "less": _binary(np.less),
    "less_equal": _binary(np.less_equal),
    "greater": _binary(np.greater),
    "greater_equal": _binary(np.greater_equal),
    "logical_and": _binary(np.logical_and),
    "logical_or": _binary(np.logical_or),
    "logical_xor": _binary(np.logical_xor),
    "logical_not": _unary(np.logical_not),
    "select": _select,
    # elementwise unary
    "relu": _unary(lambda x: np.maximum(x, 0)),
    "relu6": _unary(lambda x: np.minimum(np.maximum(x, 0), 6)),
    "sigmoid": _unary(lambda x: _sigmoid(_acc(x))),
    "tanh": _unary(np.tanh),
    "exp": _unary(np.exp),
    "exp2": _unary(np.exp2),
    "log": _log,
    "sqrt": _unary(np.sqrt),
    "rsqrt": _rsqrt,
    "inverse": _inverse,
    "abs": _unary(np.abs),
    "sign": _unary(np.sign),
    "floor": _unary(np.floor),
    "ceil": _unary(np.ceil),
    "round": _unary(np.round),             # half to even
    "sin": _unary(np.sin),
    "cos": _unary(np.cos),
    "tan": _unary(np.tan),
    "asin": _unary(np.arcsin),
    "acos": _unary(np.arccos),
    "atan": _unary(np.arctan),
    "sinh": _unary(np.sinh),
    "cosh": _unary(np.cosh),
    "atanh": _unary(np.arctanh),
    "erf": _unary(_erf),
    "square": _unary(lambda x: x * x),
    "gelu": _gelu,
    "silu": _unary(lambda x: _acc(x) * _sigmoid(_acc(x))),
    "softplus": _softplus,
    "softsign": _unary(lambda x: x / (1 + np.abs(x))),
    "elu": _elu,
    "leaky_relu": _leaky_relu,
    "prelu": _prelu,
    "clip": _clip,
    "threshold": lambda a: np.maximum(a["x"], a["alpha"]),
    "thresholded_relu": lambda a: np.where(a["x"] >= a.scalar("alpha"), a["x"], 0),
    "sigmoid_hard": _sigmoid_hard,
    "clamped_relu": lambda a: np.where(a["x"] >= 0, np.minimum(a["x"], a.scalar("beta")),
                                       np.minimum(a["x"] * a.scalar("alpha"), a.scalar("beta"))),
    "scaled_tanh": lambda a: a.scalar("alpha") * np.tanh(_acc(a["x"]) * a.scalar("beta")),
    "linear_activation": lambda a: a.scalar("alpha") * _acc(a["x"]) + a.scalar("beta"),
    "softplus_parametric": _softplus_parametric,
    # linear algebra
    "matmul": _matmul,
    "linear": _linear,
    "einsum": _einsum,

    "lstm": _lstm,
    "gru": _gru,
    "rnn": _rnn,
    # convolution / pooling
    "conv": _conv,
    "conv_transpose": _conv_transpose,
    "avg_pool": _avg_pool,
    "max_pool": _max_pool,
    "l2_pool": _l2_pool,
    # normalization
    "batch_norm": _batch_norm,
    "instance_norm": _instance_norm,
    "layer_norm": _layer_norm,
    "l2_norm": _l2_norm,
    "local_response_norm": _local_response_norm,
    "softmax": _softmax,
    "scaled_dot_product_attention": _scaled_dot_product_attention,
    # reductions
    **{name: _reduce(fn) for name, fn in REDUCTIONS.items()},
    "reduce_argmax": _reduce_arg(np.argmax),
    "reduce_argmin": _reduce_arg(np.argmin),
    # shape / data movement
    "reshape": _reshape,
    "transpose": _transpose,
    "concat": _concat,
    "stack": _stack,
    "split": _split,
    "slice_by_index": _slice_by_index,
    "slice_by_size": _slice_by_size,
    "squeeze": _squeeze,
    "expand_dims": _expand_dims,
    "tile": _tile,
    "reverse": _reverse,
    "flatten2d": _flatten2d,
    "band_part": _band_part,
    "gather": _gather,
    "gather_nd": _gather_nd,
    "scatter_nd": _scatter_nd,
    "scatter_along_axis": _scatter_along_axis,
    "pixel_shuffle": _pixel_shuffle,
    "gather_along_axis": _gather_along_axis,
    "pad": _pad,
    "depth_to_space": _depth_to_space,
    "space_to_depth": _space_to_depth,
    "fill": _fill,
    "fill_like": _fill_like,
    "range_1d": _range_1d,
    "shape": _shape,
    "topk": _topk,
    "argsort": _argsort,
    "cumsum": _cumsum,
    "one_hot": _one_hot,
    "non_zero": _non_zero,
    # resizing
    "upsample_nearest_neighbor": _upsample_nearest_neighbor,
    "resample": _resample,
    "resize_nearest_neighbor": _resize_nearest_neighbor,
    "upsample_bilinear": _upsample_bilinear,
    "resize_bilinear": _resize_bilinear,
    # compressed constants
    "constexpr_affine_dequantize": _constexpr_affine_dequantize,
    "quantize": _quantize,
    "dequantize": _dequantize,
    "constexpr_cast": _constexpr_cast,
    "constexpr_blockwise_shift_scale": _constexpr_blockwise_shift_scale,
    "constexpr_lut_to_dense": _constexpr_lut_to_dense,
}
