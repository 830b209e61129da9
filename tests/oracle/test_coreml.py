"""Core ML export (`mlpkg export --format coreml`) checked against independent oracles:

* coremltools opens every exported `.mlpackage` (`MLModel(path, skip_model_load=True)`) and its milproto loader
  rebuilds the ML Program with coremltools' own op definitions and type inference; every op output's dtype and
  shape that coremltools infers must equal the one mlpkg wrote;
* weights read back through coremltools' blob reader equal the package's stored tensors bit for bit (fp16
  values, int8/int4 levels, scales, zero points);
* numerics: a numpy evaluation of the emitted MIL ops (tests/oracle/mil_reference.py, itself checked against
  coremltools' value inference and onnxruntime) agrees with onnxruntime running the ONNX that `mlpkg export`
  writes from the same package (so both sides use the same stored weights): cosine >= 0.99999 with fp32 compute,
  >= 0.999 with fp16 compute, per output;
* exporting the same package twice gives byte-identical directories; refusals exit 1 and name node and reason;
* the audit's Core ML verdict per node equals the exporter's outcome.
"""

from __future__ import annotations

import hashlib
import re
import json
import os
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from conftest import FIXTURES, run
from mil_reference import evaluate
from mlpkg_reader import Package

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ct = pytest.importorskip("coremltools", reason="coremltools is a required test dependency (tests/requirements.txt)")
from coremltools.converters.mil.frontend.milproto import load as milproto_load  # noqa: E402
from coremltools.converters.mil.mil import types as mil_types  # noqa: E402
from coremltools.libmilstoragepython import _BlobStorageReader as BlobReader  # noqa: E402
from coremltools.proto import MIL_pb2  # noqa: E402

# fixture -> input pins (static shapes Core ML needs)
MODELS = {
    "cnn": {"input": [1, 3, 32, 32]},
    "transformer": {"tokens": [1, 8, 64]},
    "yolo_like": {"images": [1, 3, 64, 64]},
    "transformer_dynamic": {"input_ids": [1, 8], "attention_mask": [1, 8]},
    "external_data": {"x": [2, 64]},
    "duplicate_opsets": {},
    "function": {},  # model-local function calls, inlined before lowering
    "lstm": {"X": [4, 1, 16]},  # MIL lstm
    "gru": {"X": [4, 1, 16]},  # linear_before_reset=1: a while_loop over the 4 steps
    "loop_scan": {},  # a Loop with a scan output and a Scan: a while_loop each
}

# Recurrent weights (LSTM/GRU/RNN W, R, B, P) are split per direction and reordered into MIL's gate order at export
# time: W and R keep their encoding, rows picked from the stored integers or indices (test_coreml_recurrent_compressed),
# B and P are written as floats. Their blobs are therefore not the package's blobs byte for byte (docs/COREML.md).
RECURRENT = {"LSTM", "GRU", "RNN"}

# (weights, target or None for the default, compute precision); "-asym" converts with --asymmetric (uint8/uint4
# levels with zero points, carried as the constexpr's zero_point / offset).
VARIANTS = [
    ("fp32", None, "fp32"),
    ("fp32", None, "fp16"),
    ("fp16", None, "fp16"),
    ("fp16", "iOS16", "fp32"),
    ("int8", None, "fp32"),
    ("int8", "iOS17", "fp16"),
    ("int8", "iOS18", "fp16"),
    ("int8-asym", None, "fp32"),
    ("int8-asym", "iOS18", "fp32"),
    ("int4", None, "fp32"),  # asymmetric uint4 with offsets: the default below 8 bits
    ("int4", None, "fp16"),
    ("int4-sym", None, "fp32"),
    ("int3", None, "fp32"),  # packed at 3 bits in the package, uint4 in Core ML
    ("int6", None, "fp16"),  # packed at 6 bits, uint8 in Core ML
    # palettized (issue 14): constexpr_lut_to_dense with uint4/uint3 indices; "-grouped" gives one table per 4
    # slices of axis 0 (--granularity per-channel --block-size 4)
    ("lut4", None, "fp32"),
    ("lut4", None, "fp16"),
    ("lut3", None, "fp32"),
    ("lut4-grouped", None, "fp32"),
]


def pin_args(pins: dict[str, list[int]]) -> list[str]:
    out: list[str] = []
    for name, dims in pins.items():
        out += ["--input-shape", f"{name}=" + ",".join(map(str, dims))]
    return out


def convert(mlpkg: Path, tmp: Path, model: str, weights: str) -> Path:
    pkg = tmp / f"{model}.{weights}.mlpkg"
    if not pkg.exists():
        fmt, _, variant = weights.partition("-")
        extra = {"": [], "asym": ["--asymmetric"], "sym": ["--symmetric"],
                 "grouped": ["--granularity", "per-channel", "--block-size", "4"]}[variant]
        r = run([str(mlpkg), "convert", str(FIXTURES / f"{model}.onnx"), "-o", str(pkg), "--weights", fmt, *extra, "--quiet"], tmp)
        assert r.returncode == 0, r.stderr
    return pkg


def export(mlpkg: Path, tmp: Path, pkg: Path, out: Path, pins, target, compute) -> Path:
    argv = [str(mlpkg), "export", str(pkg), "--format", "coreml", "-o", str(out), "--compute-precision", compute,
            *pin_args(pins), "--quiet"]
    if target:
        argv += ["--deployment-target", target]
    r = run(argv, tmp)
    assert r.returncode == 0, r.stderr
    return out


def load_spec(path: Path):
    model = ct.models.MLModel(str(path), skip_model_load=True)
    return model.get_spec()


def program_ops(spec):
    """Every op of main's block, each followed by the ops of its nested blocks (while_loop, cond)."""
    fn = spec.mlProgram.functions["main"]

    def walk(ops):
        for op in ops:
            yield op
            for block in op.blocks:
                yield from walk(block.operations)
    return list(walk(fn.block_specializations[fn.opset].operations))


def proto_type(vt) -> tuple[int, tuple[int, ...]]:
    t = vt.tensorType
    return t.dataType, tuple(int(d.constant.size) for d in t.dimensions)


BUILTIN_TO_PROTO = {
    mil_types.fp16: MIL_pb2.FLOAT16, mil_types.fp32: MIL_pb2.FLOAT32, mil_types.int32: MIL_pb2.INT32,
    mil_types.bool: MIL_pb2.BOOL, mil_types.int8: MIL_pb2.INT8, mil_types.uint8: MIL_pb2.UINT8,
    mil_types.int4: MIL_pb2.INT4, mil_types.uint4: MIL_pb2.UINT4, mil_types.str: MIL_pb2.STRING,
    mil_types.uint1: MIL_pb2.UINT1, mil_types.uint2: MIL_pb2.UINT2, mil_types.uint3: MIL_pb2.UINT3,
    mil_types.uint6: MIL_pb2.UINT6, mil_types.uint32: MIL_pb2.UINT32,  # uint32: the iOS16 constexpr_lut_to_dense shape
}


def coremltools_types(path: Path, spec) -> dict[str, tuple[int, tuple[int, ...]]]:
    """Rebuild the program with coremltools' milproto loader (its op definitions type-check every op) and return
    the dtype and shape coremltools infers for every variable."""
    prog = milproto_load.load(spec, specification_version=spec.specificationVersion,
                              file_weights_dir=str(path / "Data" / "com.apple.CoreML" / "weights"))
    inferred: dict[str, tuple[int, tuple[int, ...]]] = {}

    def walk(ops):
        for op in ops:
            for v in op.outputs:
                inferred[v.name] = (BUILTIN_TO_PROTO[v.dtype], tuple(int(d) for d in v.shape))
            for block in op.blocks:
                walk(block.operations)
    walk(prog.functions["main"].operations)
    return inferred


def onnx_feeds(onnx_path: Path, pins: dict[str, list[int]], seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    feeds = {}
    for i in sess.get_inputs():
        shape = pins.get(i.name) or [d if isinstance(d, int) else 1 for d in i.shape]
        if i.type == "tensor(float)":
            feeds[i.name] = rng.standard_normal(shape).astype(np.float32)
        elif i.type == "tensor(int64)":
            high = 2 if "mask" in i.name else 16
            feeds[i.name] = rng.integers(0, high, size=shape).astype(np.int64)
            if "mask" in i.name:
                feeds[i.name][..., 0] = 1
        else:
            raise AssertionError(f"no feed generator for {i.type}")
    return feeds


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    a = a.astype(np.float64).ravel()
    b = b.astype(np.float64).ravel()
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    if na == 0 and nb == 0:
        return 1.0
    return float(a @ b / (na * nb))


CASES = [(m, w, t, c) for m in MODELS for (w, t, c) in VARIANTS]


@pytest.mark.parametrize("model,weights,target,compute", CASES, ids=[f"{m}-{w}-{t or 'default'}-{c}" for m, w, t, c in CASES])
def test_export_loads_typechecks_and_matches_onnxruntime(mlpkg, tmp_path_factory, model, weights, target, compute):
    tmp = tmp_path_factory.mktemp("coreml")
    pins = MODELS[model]
    pkg = convert(mlpkg, tmp, model, weights)
    out = export(mlpkg, tmp, pkg, tmp / "Model.mlpackage", pins, target, compute)

    # 1. coremltools opens it and rebuilds the program; every op output's type equals what mlpkg wrote.
    spec = load_spec(out)
    inferred = coremltools_types(out, spec)
    written = 0
    for op in program_ops(spec):
        for o in op.outputs:
            assert o.name in inferred, f"{op.type} output {o.name} missing after coremltools' load"
            assert inferred[o.name] == proto_type(o.type), f"{op.type} {o.name}: coremltools infers {inferred[o.name]}, mlpkg wrote {proto_type(o.type)}"
            written += 1
    assert written > 0

    # mlpkg's own reader of .mlpackage folders (`verify`, the path any tool's package takes) checks every op.
    verified = json.loads(run([str(mlpkg), "verify", str(out), "--json"], tmp).stdout)
    assert verified["ok"] and verified["notChecked"] == [] and verified["checked"] == verified["operations"], verified

    # 2. Every compressed tensor of the package (float16 values, quantized levels, scales, zero points) of at least
    #    10 elements is in weight.bin bit for bit, read through coremltools' blob reader.
    blobs = read_blobs(out, spec)
    package = Package(pkg)
    recurrent = {i for name, i in package.value_tensors().items()
                 if any(op in RECURRENT for op, _, _ in package.consumers().get(name, []))}
    compressed = [i for i, t in enumerate(package.tensors)
                  if (t.get("encoding") or {}).get("kind") in ("float16", "linear", "lut") and int(np.prod(t["shape"])) >= 10
                  and i not in recurrent]
    referenced: set[int] = set()
    for i in compressed:
        enc = package.tensors[i]["encoding"]
        referenced.add(i)
        if enc.get("kind") in ("linear", "lut"):
            for key in ("scale", "zeroPoint", "lut"):
                j = enc.get(key)
                if j is not None and int(np.prod(package.tensors[j]["shape"])) >= 10:
                    referenced.add(j)
    for i in sorted(referenced):
        data = package.blob(i)
        t = package.tensors[i]
        enc_i = t.get("encoding") or {}
        if enc_i.get("kind") == "linear" and enc_i.get("bits"):
            # Packed widths are written in their storage type's layout (one byte, or two per byte for 4-bit).
            levels = package.quantized(i).q.reshape(-1).astype(np.int64)
            if enc_i["storage"] in ("int4", "uint4"):
                nib = (levels & 0x0F).astype(np.uint8)
                if nib.size % 2:
                    nib = np.concatenate([nib, np.zeros(1, np.uint8)])
                data = (nib[0::2] | (nib[1::2] << 4)).astype(np.uint8).tobytes()
            else:
                data = (levels & 0xFF).astype(np.uint8).tobytes()
        if data not in blobs and t["dtype"] == "float16" and compute == "fp32":
            # fp32 compute widens float16 scales (exactly) so weights are rebuilt in fp32, as the package decodes them.
            data = np.frombuffer(data, "<f2").astype("<f4").tobytes()
        if data not in blobs and t["dtype"] == "float" and enc_i.get("kind") in (None, "raw") and compute == "fp16" and i not in compressed:
            # fp16 compute rounds float32 scales and tables to fp16 once, so the constexpr yields the compute type.
            data = np.frombuffer(data, "<f4").astype("<f2").tobytes()
        if data not in blobs and len(t["shape"]) == 2 and len(data) // int(np.prod(t["shape"])) in (1, 2, 4) \
                and len(data) % int(np.prod(t["shape"])) == 0:
            # A MatMul weight [K, N] fused into MIL's linear is stored as its transpose [N, K] (float values, or
            # 8-bit levels with their blockwise scales, bit for bit).
            width = {1: "<u1", 2: "<f2", 4: "<f4"}[len(data) // int(np.prod(t["shape"]))]
            data = np.frombuffer(data, width).reshape(t["shape"]).T.tobytes()
        assert data in blobs, f"{t['name']} ({len(data)} bytes) is not stored bit for bit in weight.bin"

    # 3. Numerics: the MIL program evaluated op by op agrees with onnxruntime on the same stored weights.
    # The reference is the package's weights decoded to float32 (--dequantize): onnxruntime would otherwise fuse
    # DequantizeLinear + MatMul into kernels that also quantize the activations, which is not what Core ML computes.
    ref_onnx = tmp / "reference.onnx"
    r = run([str(mlpkg), "export", str(pkg), "-o", str(ref_onnx), "--dequantize", "--quiet"], tmp)
    assert r.returncode == 0, r.stderr
    threshold = 0.99999 if compute == "fp32" else 0.999
    for seed in (0, 1):
        feeds = onnx_feeds(ref_onnx, pins, seed)
        expected = ort.InferenceSession(str(ref_onnx), providers=["CPUExecutionProvider"]).run(None, feeds)
        names = [o.name for o in ort.InferenceSession(str(ref_onnx), providers=["CPUExecutionProvider"]).get_outputs()]
        core_feeds = {k: (v.astype(np.int32) if v.dtype == np.int64 else v) for k, v in feeds.items()}
        got = evaluate(out, core_feeds)
        for name, want in zip(names, expected):
            assert name in got, f"output {name} missing from the Core ML model"
            have = np.asarray(got[name])
            assert have.shape == want.shape, f"{name}: shape {have.shape} vs onnxruntime {want.shape}"
            if want.dtype.kind in "iub":
                np.testing.assert_array_equal(have.astype(np.int64), want.astype(np.int64))
            else:
                c = cosine(have, want)
                assert c >= threshold, f"{name}: cosine {c:.7f} < {threshold} ({weights} weights, {compute} compute)"


def read_blobs(path: Path, spec) -> set[bytes]:
    """The raw bytes of every blob the program references, read with coremltools' blob reader."""
    reader = BlobReader(str(path / "Data" / "com.apple.CoreML" / "weights" / "weight.bin"))
    readers = {
        MIL_pb2.FLOAT16: reader.read_fp16_data, MIL_pb2.FLOAT32: reader.read_float_data,
        MIL_pb2.INT8: reader.read_int8_data, MIL_pb2.UINT8: reader.read_uint8_data,
        MIL_pb2.INT4: reader.read_int4_data, MIL_pb2.UINT4: reader.read_uint4_data,
        MIL_pb2.INT32: reader.read_int32_data,
        MIL_pb2.UINT1: reader.read_uint1_data, MIL_pb2.UINT2: reader.read_uint2_data,
        MIL_pb2.UINT3: reader.read_uint3_data, MIL_pb2.UINT6: reader.read_uint6_data,
    }
    sub_byte = {MIL_pb2.INT4: 4, MIL_pb2.UINT4: 4, MIL_pb2.UINT1: 1, MIL_pb2.UINT2: 2, MIL_pb2.UINT3: 3, MIL_pb2.UINT6: 6}
    out: set[bytes] = set()

    def visit(value) -> None:
        if value.WhichOneof("value") == "blobFileValue":
            dt, shape = proto_type(value.type)
            arr = np.asarray(readers[dt](value.blobFileValue.offset))
            if dt in sub_byte:
                # coremltools unpacks sub-byte values; pack them again LSB-first (the package's order) to compare.
                bits = sub_byte[dt]
                n = int(np.prod(shape))
                v = (arr.astype(np.int64).reshape(-1)[:n] & ((1 << bits) - 1)).astype(np.uint8)
                stream = np.unpackbits(v[:, None], axis=1, bitorder="little")[:, :bits].reshape(-1)
                out.add(np.packbits(stream, bitorder="little").tobytes())
            else:
                out.add(arr.tobytes())

    for op in program_ops(spec):
        for _, v in op.attributes.items():
            visit(v)
        for _, arg in op.inputs.items():
            for b in arg.arguments:
                if b.WhichOneof("binding") == "value":
                    visit(b.value)
    return out


def tree_digest(path: Path) -> dict[str, str]:
    return {str(p.relative_to(path)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(path.rglob("*")) if p.is_file()}


def test_export_is_deterministic(mlpkg, tmp_path):
    pkg = convert(mlpkg, tmp_path, "transformer", "int4")
    a = export(mlpkg, tmp_path, pkg, tmp_path / "a.mlpackage", MODELS["transformer"], None, "fp16")
    b = export(mlpkg, tmp_path, pkg, tmp_path / "b.mlpackage", MODELS["transformer"], None, "fp16")
    assert tree_digest(a) == tree_digest(b)
    manifest = json.loads((a / "Manifest.json").read_text())
    assert manifest["rootModelIdentifier"] in manifest["itemInfoEntries"]
    # Exporting again over the same target replaces it with the same bytes.
    export(mlpkg, tmp_path, pkg, a, MODELS["transformer"], None, "fp16")
    assert tree_digest(a) == tree_digest(b)


def test_interface_and_metadata(mlpkg, tmp_path):
    pkg = convert(mlpkg, tmp_path, "transformer_dynamic", "int8")
    out = export(mlpkg, tmp_path, pkg, tmp_path / "M.mlpackage", MODELS["transformer_dynamic"], None, "fp16")
    spec = load_spec(out)
    assert spec.specificationVersion == 7  # int8 per-channel needs iOS16: the default target
    ins = {f.name: (f.type.multiArrayType.dataType, list(f.type.multiArrayType.shape)) for f in spec.description.input}
    assert ins == {"input_ids": (ct.proto.FeatureTypes_pb2.ArrayFeatureType.INT32, [1, 8]),
                   "attention_mask": (ct.proto.FeatureTypes_pb2.ArrayFeatureType.INT32, [1, 8])}
    outs = [f.name for f in spec.description.output]
    assert outs == ["hidden", "last"]
    meta = dict(spec.description.metadata.userDefined)
    assert meta["com.mlpkg.source"] == "transformer_dynamic.onnx"
    assert len(meta["com.mlpkg.source.sha256"]) == 64
    assert meta["com.mlpkg.computePrecision"] == "fp16"
    assert meta["com.mlpkg.deploymentTarget"] == "iOS16"


@pytest.mark.parametrize("model,weights,args,expected", [
    ("cnn", "int8", ["--deployment-target", "iOS15", "--input-shape", "input=1,3,32,32"], ["conv2.weight", "iOS16"]),
    ("cnn", "int4", ["--deployment-target", "iOS17", "--input-shape", "input=1,3,32,32"], ["iOS18"]),
    ("cnn", "fp16", [], ["input", "--input-shape"]),
    ("custom_domain", "fp16", [], ["FancyOp", "com.example"]),
    ("constant_weights", "fp16", [], ["label", "string"]),
])
def test_refusals_name_node_and_reason(mlpkg, tmp_path, model, weights, args, expected):
    pkg = convert(mlpkg, tmp_path, model, weights)
    out = tmp_path / "X.mlpackage"
    r = run([str(mlpkg), "export", str(pkg), "--format", "coreml", "-o", str(out), *args], tmp_path)
    assert r.returncode == 1, r.stdout + r.stderr
    lines = [l for l in r.stderr.splitlines() if l.startswith("error:")]
    assert len(lines) == 1, r.stderr
    for word in expected:
        assert word in lines[0], lines[0]
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".X.mlpackage")], "a temporary was left behind"


def test_dequantize_stores_floats(mlpkg, tmp_path):
    pkg = convert(mlpkg, tmp_path, "cnn", "int4")
    out = tmp_path / "D.mlpackage"
    r = run([str(mlpkg), "export", str(pkg), "--format", "coreml", "-o", str(out), "--dequantize",
             "--deployment-target", "iOS15", "--input-shape", "input=1,3,32,32", "--quiet"], tmp_path)
    assert r.returncode == 0, r.stderr
    spec = load_spec(out)
    assert spec.specificationVersion == 6
    assert not [op.type for op in program_ops(spec) if op.type.startswith("constexpr_")]


def test_refuses_to_replace_unrelated_folder(mlpkg, tmp_path):
    pkg = convert(mlpkg, tmp_path, "cnn", "fp16")
    victim = tmp_path / "keep.mlpackage"
    victim.mkdir()
    (victim / "notes.txt").write_text("mine")
    r = run([str(mlpkg), "export", str(pkg), "--format", "coreml", "-o", str(victim), "--input-shape", "input=1,3,32,32"], tmp_path)
    assert r.returncode == 1
    assert (victim / "notes.txt").read_text() == "mine"


def test_convert_to_mlpackage_in_one_step(mlpkg, tmp_path):
    """`convert model.onnx -o X.mlpackage` gives the same bytes as `convert --for coreml` + export, and leaves no
    temporary (the one-step conversion chooses formats for Core ML, and records it as --for coreml does)."""
    one = tmp_path / "One.mlpackage"
    r = run([str(mlpkg), "convert", str(FIXTURES / "transformer.onnx"), "-o", str(one), "--weights", "int4",
             "--input-shape", "tokens=1,8,64", "--quiet"], tmp_path)
    assert r.returncode == 0, r.stderr
    pkg = tmp_path / "t.mlpkg"
    r = run([str(mlpkg), "convert", str(FIXTURES / "transformer.onnx"), "-o", str(pkg), "--weights", "int4", "--for", "coreml",
             "--input-shape", "tokens=1,8,64", "--quiet"], tmp_path)
    assert r.returncode == 0, r.stderr
    two = export(mlpkg, tmp_path, pkg, tmp_path / "Two.mlpackage", MODELS["transformer"], None, "fp16")
    assert tree_digest(one) == tree_digest(two)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["One.mlpackage", "Two.mlpackage", "t.mlpkg"]


def test_compute_units_recorded(mlpkg, tmp_path):
    pkg = convert(mlpkg, tmp_path, "cnn", "fp16")
    out = tmp_path / "C.mlpackage"
    r = run([str(mlpkg), "export", str(pkg), "--format", "coreml", "-o", str(out), "--compute-units", "cpu-and-neural-engine",
             "--input-shape", "input=1,3,32,32", "--quiet"], tmp_path)
    assert r.returncode == 0, r.stderr
    assert dict(load_spec(out).description.metadata.userDefined)["com.mlpkg.computeUnits"] == "cpu-and-neural-engine"


AUDIT_PINS = {**MODELS, "lstm": {"X": [4, 1, 16]}, "gru": {"X": [4, 1, 16]}, "qdq": {"x": [1, 16]}, "fp16": {"x": [1, 8]},
              "if_branches": {}, "loop_scan": {}, "custom_domain": {}, "constant_weights": {},
              "typed_fields": {}}


@pytest.mark.parametrize("model", sorted(AUDIT_PINS))
def test_audit_core_ml_verdict_equals_exporter_outcome(mlpkg, tmp_path, model):
    """The audit's Core ML-level refusals (lowering rules, `mil-…` and `coreml-…`) name exactly the nodes the exporter
    refuses (none when it succeeds)."""
    pins = pin_args(AUDIT_PINS[model])
    proc = run([str(mlpkg), "audit", str(FIXTURES / f"{model}.onnx"), "--format", "json", *pins], tmp_path)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    # Refused where a precondition is known to fail (a failure) or rests on an unknown type (not checked).
    audited = {n["name"] for n in report["nodes"] if not n["graph"]
               and any(f["rule"].startswith(("mil-", "coreml-"))
                       for f in n["verdicts"]["neural-engine"]["failures"] + n["verdicts"]["neural-engine"]["unchecked"])}
    pkg = tmp_path / "m.mlpkg"
    r = run([str(mlpkg), "convert", str(FIXTURES / f"{model}.onnx"), "-o", str(pkg), "--weights", "fp32", "--quiet"], tmp_path)
    assert r.returncode == 0, r.stderr
    r = run([str(mlpkg), "export", str(pkg), "--format", "coreml", "-o", str(tmp_path / "M.mlpackage"), *pins, "--quiet"], tmp_path)
    if r.returncode == 0:
        refused = set()
    else:
        assert r.returncode == 1, r.stderr
        refused = set(re.findall(r"node \d+ '([^']*)' \(", r.stderr))
    assert audited == refused, f"audit: {sorted(audited)}; exporter: {sorted(refused)}; {r.stderr}"
