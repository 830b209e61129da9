"""Core ML packages as inputs (issue 26): `mlpkg inspect` and `mlpkg verify` on `.mlpackage` folders that other
tools wrote, checked against coremltools' own reading of them.

The packages are built on Linux with coremltools' MIL builder (`mb.program` → `ct.convert(...,
convert_to="mlprogram", skip_model_load=True)` → `save`), at every target iOS15–iOS18, with fp16 and fp32
compute, and compressed by coremltools.optimize (int8, 4-bit palettization, int4 per block): so the blobs,
the constexpr ops and coremltools' own op versions are what another converter writes, not what mlpkg writes.

* `verify` accepts every one (exit 0) and checks every op by mlpkg's MIL definitions; an op mlpkg has no
  definition for is "not checked", never a fault;
* `inspect --json` agrees with coremltools' spec reader on the interface (names, dtypes, shapes), the
  specification version, the op histogram, the blobs and the metadata;
* a corrupted blob, a mistyped op, a broken container each fail `verify` with exit 1 and one `error:` line
  naming the package and the fault; `--json` lists every fault and carries the error object.
"""

from __future__ import annotations

import collections
import json
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest

from conftest import FIXTURES, run

ct = pytest.importorskip("coremltools", reason="coremltools is a required test dependency (tests/requirements.txt)")
from coremltools.converters.mil import Builder as mb  # noqa: E402
from coremltools.converters.mil.mil import types  # noqa: E402
from coremltools.proto import MIL_pb2  # noqa: E402

TARGETS = {"iOS15": ct.target.iOS15, "iOS16": ct.target.iOS16, "iOS17": ct.target.iOS17, "iOS18": ct.target.iOS18}
SPEC = {"iOS15": 6, "iOS16": 7, "iOS17": 8, "iOS18": 9}
ARRAY_DTYPE = {65568: "fp32", 65552: "fp16", 131104: "int32", 65600: "fp64", 131080: "int8"}


def build_program(target):
    """A program with the common op families: conv/norm/pool, linear/matmul, shape ops, gather, activations."""
    rng = np.random.default_rng(0)

    @mb.program(input_specs=[mb.TensorSpec(shape=(1, 3, 16, 16)), mb.TensorSpec(shape=(1, 4, 8)),
                             mb.TensorSpec(shape=(1, 5), dtype=types.int32)], opset_version=target)
    def prog(img, seq, ids):
        y = mb.conv(x=img, weight=rng.standard_normal((8, 3, 3, 3)).astype(np.float32), bias=np.zeros(8, np.float32),
                    pad_type="same")
        y = mb.batch_norm(x=y, mean=np.zeros(8, np.float32), variance=np.ones(8, np.float32), gamma=np.ones(8, np.float32),
                          beta=np.zeros(8, np.float32))
        y = mb.relu(x=y, name="act")
        y = mb.max_pool(x=y, kernel_sizes=[2, 2], strides=[2, 2], pad_type="valid")
        y = mb.reduce_mean(x=y, axes=[2, 3], keep_dims=False)
        y = mb.linear(x=y, weight=rng.standard_normal((10, 8)).astype(np.float32))
        y = mb.softmax(x=y, axis=-1, name="probs")
        s = mb.layer_norm(x=seq, axes=[-1], gamma=np.ones(8, np.float32), beta=np.zeros(8, np.float32))
        s = mb.matmul(x=s, y=rng.standard_normal((8, 16)).astype(np.float32))
        s = mb.gelu(x=s)
        s = mb.reshape(x=s, shape=[1, 4, 4, 4])
        s = mb.transpose(x=s, perm=[0, 2, 1, 3])
        a, b = mb.split(x=s, num_splits=2, axis=3)
        s = mb.concat(values=[b, a], axis=3)
        s = mb.slice_by_index(x=s, begin=[0, 0, 0, 0], end=[1, 4, 4, 2])
        s = mb.sigmoid_hard(x=mb.mul(x=s, y=s), alpha=0.2, beta=0.5, name="seq_out")
        e = mb.gather(x=rng.standard_normal((32, 6)).astype(np.float32), indices=ids, axis=0)
        e = mb.topk(x=e, k=2, axis=2)[0]
        e = mb.cumsum(x=e, axis=1, name="emb_out")
        return y, s, e

    return prog


def save(prog, target: str, compute: str, out: Path, compression: str | None = None) -> Path:
    precision = ct.precision.FLOAT16 if compute == "fp16" else ct.precision.FLOAT32
    model = ct.convert(prog, convert_to="mlprogram", minimum_deployment_target=TARGETS[target], compute_precision=precision,
                       skip_model_load=True)
    if compression:
        import coremltools.optimize.coreml as cto
        configs = {
            "int8": cto.OpLinearQuantizerConfig(mode="linear_symmetric", weight_threshold=10),
            "lut4": cto.OpPalettizerConfig(nbits=4, mode="uniform", weight_threshold=10),
            "int4": cto.OpLinearQuantizerConfig(mode="linear_symmetric", dtype="int4", granularity="per_block", block_size=4,
                                                weight_threshold=10),
        }
        config = cto.OptimizationConfig(global_config=configs[compression])
        model = (cto.palettize_weights if compression == "lut4" else cto.linear_quantize_weights)(model, config)
    model.save(str(out))
    return out


VARIANTS = [(t, c, None) for t in TARGETS for c in ("fp16", "fp32")] + [
    ("iOS16", "fp16", "int8"), ("iOS18", "fp16", "int8"), ("iOS18", "fp32", "lut4"), ("iOS18", "fp16", "int4")]


@pytest.fixture(scope="module")
def packages(tmp_path_factory):
    folder = tmp_path_factory.mktemp("coremltools")
    built = {}
    for target, compute, compression in VARIANTS:
        name = f"{target}-{compute}" + (f"-{compression}" if compression else "")
        built[name] = save(build_program(TARGETS[target]), target, compute, folder / f"{name}.mlpackage", compression)
    return built


def mlpkg_json(mlpkg, argv, cwd) -> tuple[int, dict]:
    r = run([str(mlpkg), *argv, "--json"], cwd)
    return r.returncode, json.loads(r.stdout)


def ops_of(spec):
    out = []

    def visit(block):
        for op in block.operations:
            out.append(op)
            for b in op.blocks:
                visit(b)

    for f in spec.mlProgram.functions.values():
        for b in f.block_specializations.values():
            visit(b)
    return out


@pytest.mark.parametrize("name", [f"{t}-{c}" + (f"-{x}" if x else "") for t, c, x in VARIANTS])
def test_verify_accepts_packages_coremltools_wrote(mlpkg, tmp_path, packages, name):
    path = packages[name]
    r = run([str(mlpkg), "verify", str(path)], tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(f"{path}: ok — ML Program") and r.stderr == "", r.stdout + r.stderr
    code, doc = mlpkg_json(mlpkg, ["verify", str(path)], tmp_path)
    spec = ct.utils.load_spec(str(path))
    assert code == 0 and doc["ok"] and doc["faults"] == [] and "error" not in doc
    assert doc["specificationVersion"] == spec.specificationVersion == SPEC[name.split("-")[0]]
    assert doc["operations"] == len(ops_of(spec))
    # Every op is checked against mlpkg's MIL definitions: these are ops mlpkg defines, at their coremltools versions.
    assert doc["notChecked"] == [] and doc["checked"] == doc["operations"], doc["notChecked"]


@pytest.mark.parametrize("name", ["iOS15-fp32", "iOS17-fp16", "iOS18-fp32-lut4", "iOS16-fp16-int8"])
def test_inspect_agrees_with_coremltools(mlpkg, tmp_path, packages, name):
    path = packages[name]
    spec = ct.utils.load_spec(str(path))
    code, doc = mlpkg_json(mlpkg, ["inspect", str(path)], tmp_path)
    assert code == 0, doc
    assert doc["format"] == "mlpackage" and doc["modelType"] == "mlProgram"
    assert doc["specificationVersion"] == spec.specificationVersion
    assert doc["deploymentTarget"].startswith(name.split("-")[0])
    for key, features in (("inputs", spec.description.input), ("outputs", spec.description.output)):
        assert [(f["name"], f["dtype"], f["shape"]) for f in doc[key]] == [
            (f.name, ARRAY_DTYPE[f.type.multiArrayType.dataType], list(f.type.multiArrayType.shape)) for f in features]
    histogram = collections.Counter(op.type for op in ops_of(spec))
    assert {c["type"]: c["count"] for c in doc["operations"]["byType"]} == dict(histogram)
    assert doc["operations"]["total"] == sum(histogram.values())
    assert doc["compression"] == [c for c in doc["operations"]["byType"] if c["type"].startswith("constexpr_")]
    # Blobs: the offsets coremltools' program reads are the blobs weight.bin holds (each read once here).
    offsets = set()
    for op in ops_of(spec):
        values = list(op.attributes.values()) + [b.value for a in op.inputs.values() for b in a.arguments if b.HasField("value")]
        offsets |= {v.blobFileValue.offset for v in values if v.WhichOneof("value") == "blobFileValue"}
    (weights,) = doc["weights"]
    assert weights["file"] == "weights/weight.bin"
    assert weights["blobs"] == len(offsets) == sum(t["blobs"] for t in weights["byType"])
    assert weights["bytes"] == (path / "Data/com.apple.CoreML/weights/weight.bin").stat().st_size
    assert {b["offset"] for b in weights["largest"]} <= offsets
    assert doc["metadata"]["userDefined"] == dict(spec.description.metadata.userDefined)
    (function,) = doc["functions"]
    assert function["name"] == "main" and function["opset"] == spec.mlProgram.functions["main"].opset
    # The text form has the same tables.
    r = run([str(mlpkg), "inspect", str(path)], tmp_path)
    assert r.returncode == 0 and "MIL ops:" in r.stdout and "Weights:" in r.stdout and "Inputs" in r.stdout


def test_inspect_and_verify_packages_mlpkg_wrote(mlpkg, tmp_path):
    """mlpkg's own exports, including a user's metadata and renamed features, read back through the same path."""
    out = tmp_path / "CNN.mlpackage"
    r = run([str(mlpkg), "convert", str(FIXTURES / "cnn.onnx"), "-o", str(out), "--weights", "int4", "--input-shape",
             "input=1,3,32,32", "--author", "Jane", "--rename", "input=image", "--input-description", "image=pixels", "--quiet"], tmp_path)
    assert r.returncode == 0, r.stderr
    code, doc = mlpkg_json(mlpkg, ["verify", str(out)], tmp_path)
    assert code == 0 and doc["ok"] and doc["notChecked"] == [], doc
    code, doc = mlpkg_json(mlpkg, ["inspect", str(out)], tmp_path)
    assert code == 0
    assert doc["inputs"] == [{"name": "image", "description": "pixels", "kind": "multiArray", "type": "fp32[1, 3, 32, 32]",
                              "dtype": "fp32", "shape": [1, 3, 32, 32], "optional": False}]
    assert doc["metadata"]["author"] == "Jane" and doc["specificationVersion"] == 9
    assert [c["type"] for c in doc["compression"]] == ["constexpr_blockwise_shift_scale"]


def test_an_op_mlpkg_does_not_define_is_not_checked(mlpkg, tmp_path):
    @mb.program(input_specs=[mb.TensorSpec(shape=(2, 6))], opset_version=ct.target.iOS16)
    def prog(x):
        return mb.relu(x=mb.cast(x=mb.argsort(x=x, axis=-1, ascending=True), dtype="fp32"), name="order")

    path = save(prog, "iOS16", "fp32", tmp_path / "A.mlpackage")
    code, doc = mlpkg_json(mlpkg, ["verify", str(path)], tmp_path)
    assert code == 0 and doc["ok"], doc
    assert [(s["type"], s["reason"]) for s in doc["notChecked"]] == [("argsort", "mlpkg has no MIL definition of argsort")]
    r = run([str(mlpkg), "verify", str(path)], tmp_path)
    assert r.returncode == 0 and "1 not checked (argsort ×1" in r.stdout


@pytest.fixture()
def victim(packages, tmp_path) -> Path:
    dst = tmp_path / "V.mlpackage"
    shutil.copytree(packages["iOS16-fp32"], dst)
    return dst


def weight_file(path: Path) -> Path:
    return path / "Data" / "com.apple.CoreML" / "weights" / "weight.bin"


def model_file(path: Path) -> Path:
    return path / "Data" / "com.apple.CoreML" / "model.mlmodel"


def edit_spec(path: Path, change) -> None:
    spec = ct.utils.load_spec(str(path))
    change(spec)
    model_file(path).write_bytes(spec.SerializeToString())


def blob_offsets(path: Path) -> list[int]:
    data = weight_file(path).read_bytes()
    count, _ = struct.unpack_from("<II", data, 0)
    offsets, at = [], 64
    for _ in range(count):
        offsets.append(at)
        size, start = struct.unpack_from("<QQ", data, at + 8)
        at = (start + size + 63) // 64 * 64
    return offsets


def mistype_relu(spec) -> None:
    op = next(op for op in ops_of(spec) if op.type == "relu")
    op.outputs[0].type.tensorType.dataType = MIL_pb2.FLOAT16


def wrong_blob_offset(spec) -> None:
    """The conv weight reads the linear weight's blob (another size)."""
    consts = [op for op in ops_of(spec) if op.type == "const" and op.attributes["val"].WhichOneof("value") == "blobFileValue"]
    consts[0].attributes["val"].blobFileValue.offset = consts[-1].attributes["val"].blobFileValue.offset


def corrupt_sentinel(path: Path) -> None:
    data = bytearray(weight_file(path).read_bytes())
    data[blob_offsets(path)[1]] ^= 0xFF
    weight_file(path).write_bytes(bytes(data))


def oversize_blob(path: Path) -> None:
    data = bytearray(weight_file(path).read_bytes())
    struct.pack_into("<Q", data, blob_offsets(path)[0] + 8, len(data) * 2)
    weight_file(path).write_bytes(bytes(data))


def truncate_weights(path: Path) -> None:
    data = weight_file(path).read_bytes()
    weight_file(path).write_bytes(data[: len(data) - 40])


def rename_description_input(spec) -> None:
    spec.description.input[0].name = "image"


CORRUPTIONS = {
    "blob sentinel": (corrupt_sentinel, ["weights/weight.bin", "blob 1: no metadata record at offset", "not 0xDEADBEEF"]),
    "blob size": (oversize_blob, ["weights/weight.bin", "blob 0 at offset 64", "run past the end of weight.bin"]),
    "truncated weight.bin": (truncate_weights, ["weights/weight.bin", "run past the end of weight.bin"]),
    "mistyped op": (lambda p: edit_spec(p, mistype_relu), ["MIL op relu 'act'", "declares 'act' as fp16[1, 8, 16, 16]",
                                                           "the MIL definition infers fp32[1, 8, 16, 16]"]),
    "wrong blob offset": (lambda p: edit_spec(p, wrong_blob_offset), ["op const", "the blob at offset", "fp32[8, 3, 3, 3] takes 864"]),
    "interface": (lambda p: edit_spec(p, rename_description_input), ["input 'image' is not an input of function main"]),
    "no manifest": (lambda p: (p / "Manifest.json").unlink(), ["has no Manifest.json"]),
    "manifest path": (lambda p: (p / "Manifest.json").write_text((p / "Manifest.json").read_text().replace(
        "com.apple.CoreML/weights", "com.apple.CoreML/weightz")), ["Data/com.apple.CoreML/weightz does not exist"]),
    "not protobuf": (lambda p: model_file(p).write_bytes(b"\xff" * 64), ["model.mlmodel", "truncated or corrupt"]),
}


@pytest.mark.parametrize("case", sorted(CORRUPTIONS))
def test_a_broken_package_fails_verify_with_one_error_line(mlpkg, tmp_path, victim, case):
    damage, needles = CORRUPTIONS[case]
    damage(victim)
    r = run([str(mlpkg), "verify", str(victim)], tmp_path)
    assert r.returncode == 1, r.stdout + r.stderr
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"error: {victim}: "), r.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    assert r.stdout == ""
    code, doc = mlpkg_json(mlpkg, ["verify", str(victim)], tmp_path)
    assert code == 1 and doc["ok"] is False and doc["faults"]
    assert doc["error"]["code"] == 1 and doc["error"]["message"] == doc["faults"][0]["message"]
    assert run([str(mlpkg), "verify", str(victim), "--quiet"], tmp_path).stdout == ""


def test_one_mistyped_op_is_one_fault(mlpkg, tmp_path, victim):
    """After a wrong declaration the inferred type is carried on: the ops that read it are not reported too."""
    edit_spec(victim, mistype_relu)
    code, doc = mlpkg_json(mlpkg, ["verify", str(victim)], tmp_path)
    assert code == 1 and len(doc["faults"]) == 1, doc["faults"]


def test_inspect_needs_only_a_readable_model(mlpkg, tmp_path, victim):
    corrupt_sentinel(victim)
    r = run([str(mlpkg), "inspect", str(victim)], tmp_path)
    assert r.returncode == 0 and "note: " in r.stderr and "mlpkg verify" in r.stderr
    model_file(victim).write_bytes(b"\xff" * 64)
    r = run([str(mlpkg), "inspect", str(victim)], tmp_path)
    assert r.returncode == 1 and r.stderr.startswith(f"error: {victim}: ")
    r = run([str(mlpkg), "inspect", str(victim), "--shapes"], tmp_path)
    assert r.returncode == 2
    r = run([str(mlpkg), "verify", str(tmp_path / "missing.mlpackage")], tmp_path)
    assert r.returncode == 1 and "no such file or folder" in r.stderr


def test_random_damage_never_crashes(mlpkg, tmp_path, packages):
    """Bytes flipped or cut anywhere in model.mlmodel or weight.bin: verify and inspect answer with exit 0 or 1 and
    one JSON document, never a crash (DESIGN.md: never a trap on bad input)."""
    rng = np.random.default_rng(26)
    source = packages["iOS18-fp16-int4"]
    for i in range(48):
        damaged = tmp_path / f"d{i}.mlpackage"
        shutil.copytree(source, damaged)
        target = model_file(damaged) if i % 3 else weight_file(damaged)
        data = bytearray(target.read_bytes())
        for _ in range(int(rng.integers(1, 9))):
            data[int(rng.integers(0, len(data)))] = int(rng.integers(0, 256))
        if i % 4 == 3:
            data = data[: int(rng.integers(0, len(data)))]
        target.write_bytes(bytes(data))
        for command in ("verify", "inspect"):
            r = run([str(mlpkg), command, str(damaged), "--json"], tmp_path)
            assert r.returncode in (0, 1), (command, i, r.returncode, r.stderr[-800:])
            json.loads(r.stdout)
            assert "Fatal error" not in r.stderr and "Stack dump" not in r.stderr, r.stderr[-800:]
        shutil.rmtree(damaged)
