"""A Core ML model an app can use as it is (issue 26), read back with coremltools' spec reader:

* the interface: float inputs and outputs are fp32 by default on every target and for every weight format (fp16,
  int8, int4, lut4 — the compressed formats raise the target, which used to turn the interface into fp16), and
  fp16 only with `--io-dtype fp16` (iOS16 and later; below, a usage error); the program still type-checks in
  coremltools and computes what onnxruntime computes;
* metadata under the user's control: author (empty unless given; the ONNX producer stays in user-defined
  metadata), license, description, version, feature descriptions, `--rename` (MIL identifiers, unique, unknown
  names refused with the valid ones);
* rough edges: one spelling of compute units in every command, `-o` extensions mlpkg does not write, `convert
  --output-dir` creating its folder.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from conftest import FIXTURES, run
from mil_reference import evaluate

ct = pytest.importorskip("coremltools", reason="coremltools is a required test dependency (tests/requirements.txt)")
from coremltools.proto import FeatureTypes_pb2  # noqa: E402
from test_coreml import coremltools_types, program_ops, proto_type, cosine  # noqa: E402

FLOAT32 = FeatureTypes_pb2.ArrayFeatureType.FLOAT32
FLOAT16 = FeatureTypes_pb2.ArrayFeatureType.FLOAT16
PINS = ["--input-shape", "input=1,3,32,32"]

# Every weight format with the targets that can hold it (None: the default, the lowest target the weights need).
TARGETS = {"fp16": [None, "iOS15", "iOS16", "iOS17", "iOS18"], "int8": [None, "iOS16", "iOS17", "iOS18"],
           "int4": [None, "iOS18"], "lut4": [None, "iOS16", "iOS18"]}
SPEC = {"iOS15": 6, "iOS16": 7, "iOS17": 8, "iOS18": 9}
# lut4 (one table per tensor) is written in constexpr_lut_to_dense's iOS16 form: its default target is iOS16 (spec 7).
DEFAULT_SPEC = {"fp16": 6, "int8": 7, "int4": 9, "lut4": 7}
CASES = [(w, t) for w, targets in TARGETS.items() for t in targets]


def one_step(mlpkg: Path, tmp: Path, out: Path, *args: str, model: str = "cnn") -> None:
    r = run([str(mlpkg), "convert", str(FIXTURES / f"{model}.onnx"), "-o", str(out), *PINS, "--quiet", *args], tmp)
    assert r.returncode == 0, r.stderr


def features(spec) -> dict[str, int]:
    return {f.name: f.type.multiArrayType.dataType for f in list(spec.description.input) + list(spec.description.output)}


def check_types_and_numerics(mlpkg: Path, tmp: Path, out: Path, spec, compute: str = "fp16") -> None:
    """coremltools' loader rebuilds the program (its type inference agrees with every op), and the MIL program
    evaluated on the interface's own dtype agrees with onnxruntime on the source model."""
    inferred = coremltools_types(out, spec)
    for op in program_ops(spec):
        for o in op.outputs:
            assert inferred[o.name] == proto_type(o.type), f"{op.type} {o.name}"
    x = np.random.default_rng(0).standard_normal((1, 3, 32, 32)).astype(np.float32)
    want = ort.InferenceSession(str(FIXTURES / "cnn.onnx"), providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]
    dtype = np.float16 if spec.description.input[0].type.multiArrayType.dataType == FLOAT16 else np.float32
    have = evaluate(out, {spec.description.input[0].name: x.astype(dtype)})[spec.description.output[0].name]
    assert have.dtype == dtype
    assert cosine(np.asarray(have, np.float32), want) >= 0.99, "the interface casts changed the result"


@pytest.mark.parametrize("weights,target", CASES, ids=[f"{w}-{t or 'default'}" for w, t in CASES])
def test_interface_is_fp32_by_default(mlpkg, tmp_path, weights, target):
    out = tmp_path / "M.mlpackage"
    one_step(mlpkg, tmp_path, out, "--weights", weights, *(["--deployment-target", target] if target else []))
    spec = ct.utils.load_spec(str(out))
    assert spec.specificationVersion == (SPEC[target] if target else DEFAULT_SPEC[weights])
    assert features(spec) == {"input": FLOAT32, "logits": FLOAT32}
    check_types_and_numerics(mlpkg, tmp_path, out, spec)


@pytest.mark.parametrize("weights,target", [("fp16", None), ("fp16", "iOS16"), ("int8", "iOS17"), ("int4", "iOS18"), ("lut4", None)])
@pytest.mark.parametrize("compute", ["fp16", "fp32"])
def test_io_dtype_fp16(mlpkg, tmp_path, weights, target, compute):
    out = tmp_path / "H.mlpackage"
    one_step(mlpkg, tmp_path, out, "--weights", weights, "--io-dtype", "fp16", "--compute-precision", compute,
             *(["--deployment-target", target] if target else []))
    spec = ct.utils.load_spec(str(out))
    # fp16 features need iOS16: the default target rises to it.
    assert spec.specificationVersion == (SPEC[target] if target else max(DEFAULT_SPEC[weights], 7))
    assert features(spec) == {"input": FLOAT16, "logits": FLOAT16}
    check_types_and_numerics(mlpkg, tmp_path, out, spec, compute)


def test_io_dtype_fp16_below_ios16_is_a_usage_error(mlpkg, tmp_path):
    out = tmp_path / "H.mlpackage"
    r = run([str(mlpkg), "convert", str(FIXTURES / "cnn.onnx"), "-o", str(out), *PINS, "--io-dtype", "fp16",
             "--deployment-target", "iOS15"], tmp_path)
    assert r.returncode == 2 and "--io-dtype fp16 needs --deployment-target iOS16" in r.stderr, r.stderr
    assert not out.exists()
    pkg = tmp_path / "c.mlpkg"
    assert run([str(mlpkg), "convert", str(FIXTURES / "cnn.onnx"), "-o", str(pkg), "--quiet"], tmp_path).returncode == 0
    r = run([str(mlpkg), "export", str(pkg), "--format", "coreml", "-o", str(out), *PINS, "--io-dtype", "fp16",
             "--deployment-target", "macOS12", "--json"], tmp_path)
    assert r.returncode == 2 and json.loads(r.stdout)["error"]["kind"] == "usage"
    r = run([str(mlpkg), "export", str(pkg), "--format", "coreml", "-o", str(out), *PINS, "--io-dtype", "int8"], tmp_path)
    assert r.returncode == 2


def test_metadata_under_the_users_control(mlpkg, tmp_path):
    out = tmp_path / "M.mlpackage"
    one_step(mlpkg, tmp_path, out, "--author", "Jane Doe <jane@example.com>", "--license", "Apache-2.0",
             "--description", "Classifies 32×32 images.", "--version", "2.1.0",
             "--input-description", "input=An RGB image, 1×3×32×32, values in [0, 1]",
             "--output-description", "logits=Scores = log-odds of 10 classes", "--rename", "input=image",
             "--rename", "logits=scores")
    spec = ct.utils.load_spec(str(out))
    meta = spec.description.metadata
    assert (meta.author, meta.license, meta.shortDescription, meta.versionString) == (
        "Jane Doe <jane@example.com>", "Apache-2.0", "Classifies 32×32 images.", "2.1.0")
    assert [(f.name, f.shortDescription) for f in spec.description.input] == [("image", "An RGB image, 1×3×32×32, values in [0, 1]")]
    assert [(f.name, f.shortDescription) for f in spec.description.output] == [("scores", "Scores = log-odds of 10 classes")]
    fn = spec.mlProgram.functions["main"]
    assert [i.name for i in fn.inputs] == ["image"]
    assert list(fn.block_specializations[fn.opset].outputs) == ["scores"]
    user = dict(meta.userDefined)
    assert user["com.mlpkg.renamed"] == "input=image;logits=scores"
    check_types_and_numerics(mlpkg, tmp_path, out, spec)
    # A description may name the feature by its new name too.
    again = tmp_path / "N.mlpackage"
    one_step(mlpkg, tmp_path, again, "--rename", "input=image", "--input-description", "image=pixels")
    assert ct.utils.load_spec(str(again)).description.input[0].shortDescription == "pixels"


def test_author_is_empty_unless_given(mlpkg, tmp_path):
    """Xcode showed the ONNX exporter (the producer) as the author; it is provenance, kept in user-defined metadata."""
    out = tmp_path / "M.mlpackage"
    one_step(mlpkg, tmp_path, out)
    spec = ct.utils.load_spec(str(out))
    meta = spec.description.metadata
    assert meta.author == "" and meta.license == ""
    assert dict(meta.userDefined)["com.mlpkg.source.producer"] == "mlpkg-fixtures 1"
    assert meta.versionString == "3"  # the ONNX model_version, unless --version is given


@pytest.mark.parametrize("args,needle", [
    (["--rename", "nope=x"], "no input or output 'nope'; the model's inputs are 'input'; the model's outputs are 'logits'"),
    (["--rename", "input=2fast"], "not a MIL identifier"),
    (["--rename", "input=a-b"], "not a MIL identifier"),
    (["--rename", "input=logits"], "'logits' would name input 'input' and output 'logits'"),
    (["--rename", "input=x", "--rename", "logits=x"], "names must be unique"),
    (["--rename", "input=a", "--rename", "input=b"], "renamed twice"),
    (["--rename", "input"], "expected NAME=NEW"),
    (["--input-description", "logits=x"], "no input 'logits'; the model's inputs are 'input'"),
    (["--output-description", "=x"], "expected NAME=TEXT"),
    (["--input-description", "input=a", "--input-description", "input=b"], "described twice"),
])
def test_interface_names_are_checked(mlpkg, tmp_path, args, needle):
    out = tmp_path / "M.mlpackage"
    r = run([str(mlpkg), "convert", str(FIXTURES / "cnn.onnx"), "-o", str(out), *PINS, *args], tmp_path)
    assert r.returncode == 2, r.stderr
    errors = [l for l in r.stderr.splitlines() if l.startswith("error:")]
    assert len(errors) == 1 and needle in errors[0], r.stderr
    assert not out.exists()


def test_metadata_options_need_a_core_ml_output(mlpkg, tmp_path):
    r = run([str(mlpkg), "convert", str(FIXTURES / "cnn.onnx"), "-o", str(tmp_path / "m.mlpkg"), "--author", "x"], tmp_path)
    assert r.returncode == 2 and "--author apply to a Core ML output" in r.stderr
    pkg = tmp_path / "c.mlpkg"
    assert run([str(mlpkg), "convert", str(FIXTURES / "cnn.onnx"), "-o", str(pkg), "--quiet"], tmp_path).returncode == 0
    r = run([str(mlpkg), "export", str(pkg), "-o", str(tmp_path / "c.onnx"), "--rename", "input=x"], tmp_path)
    assert r.returncode == 2 and "--rename apply to --format coreml" in r.stderr


@pytest.mark.parametrize("spelling,recorded", [("cpu-and-neural-engine", "cpu-and-neural-engine"),
                                               ("cpu-and-ne", "cpu-and-neural-engine"), ("cpu-only", "cpu-only")])
def test_compute_units_one_spelling(mlpkg, tmp_path, spelling, recorded):
    # convert -o X.mlpackage records the recommendation, as export does.
    out = tmp_path / "M.mlpackage"
    one_step(mlpkg, tmp_path, out, "--compute-units", spelling)
    assert dict(ct.utils.load_spec(str(out)).description.metadata.userDefined)["com.mlpkg.computeUnits"] == recorded
    pkg = tmp_path / "c.mlpkg"
    assert run([str(mlpkg), "convert", str(FIXTURES / "cnn.onnx"), "-o", str(pkg), "--quiet"], tmp_path).returncode == 0
    out2 = tmp_path / "E.mlpackage"
    r = run([str(mlpkg), "export", str(pkg), "--format", "coreml", "-o", str(out2), *PINS, "--compute-units", spelling, "--quiet"], tmp_path)
    assert r.returncode == 0, r.stderr
    assert dict(ct.utils.load_spec(str(out2)).description.metadata.userDefined)["com.mlpkg.computeUnits"] == recorded
    # audit and convert --profile take the same spellings
    r = run([str(mlpkg), "audit", str(FIXTURES / "cnn.onnx"), "--profile", "cpu", "--compute-units", spelling, "--format", "json"], tmp_path)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["computeUnits"] == recorded
    r = run([str(mlpkg), "convert", str(FIXTURES / "cnn.onnx"), "-o", str(tmp_path / "p.mlpkg"), "--profile", "cpu",
             "--compute-units", spelling, "--quiet"], tmp_path)
    assert r.returncode == 0, r.stderr
    r = run([str(mlpkg), "audit", str(FIXTURES / "cnn.onnx"), "--compute-units", "cpu-and-tpu"], tmp_path)
    assert r.returncode == 2 and "cpu-and-neural-engine" in r.stderr and "cpu-and-ne," not in r.stderr


@pytest.mark.parametrize("argv,needle", [
    (["convert", "{cnn}", "-o", "Model.mlmodel"], "-o Model.mlpackage"),
    (["convert", "{cnn}", "-o", "out/Model.MLMODEL"], "-o out/Model.mlpackage"),
    (["convert", "{cnn}", "-o", "model.onnx"], "-o model.mlpkg, then `mlpkg export model.mlpkg -o model.onnx`"),
    (["export", "{pkg}", "-o", "Model.mlmodel"], "--format coreml -o Model.mlpackage"),
    (["export", "{pkg}", "--format", "coreml", "-o", "Model.mlmodel"], "-o Model.mlpackage"),
    (["export", "{pkg}", "--format", "coreml", "-o", "model.onnx"], "--format coreml writes a .mlpackage: -o model.mlpackage"),
    (["export", "{pkg}", "-o", "Model.mlpackage"], "add --format coreml"),
    (["export", "{pkg}", "-o", "again.mlpkg"], "-o again.onnx"),
])
def test_output_extensions_mlpkg_does_not_write(mlpkg, tmp_path, argv, needle):
    pkg = tmp_path / "c.mlpkg"
    assert run([str(mlpkg), "convert", str(FIXTURES / "cnn.onnx"), "-o", str(pkg), "--quiet"], tmp_path).returncode == 0
    before = sorted(p.name for p in tmp_path.iterdir())
    argv = [a.format(cnn=FIXTURES / "cnn.onnx", pkg=pkg) for a in argv]
    r = run([str(mlpkg), *argv], tmp_path)
    assert r.returncode == 2, r.stderr
    errors = [l for l in r.stderr.splitlines() if l.startswith("error:")]
    assert len(errors) == 1 and needle in errors[0], r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    r = run([str(mlpkg), *argv, "--json"], tmp_path)
    assert r.returncode == 2 and json.loads(r.stdout)["error"]["kind"] == "usage"


def test_output_dir_is_created_with_its_parents(mlpkg, tmp_path):
    r = run([str(mlpkg), "convert", str(FIXTURES / "cnn.onnx"), str(FIXTURES / "fp16.onnx"), "--output-dir", "a/b/c", "--quiet"], tmp_path)
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in (tmp_path / "a" / "b" / "c").iterdir()) == ["cnn.mlpkg", "fp16.mlpkg"]
    (tmp_path / "file").write_text("x")
    r = run([str(mlpkg), "convert", str(FIXTURES / "cnn.onnx"), "--output-dir", "file"], tmp_path)
    assert r.returncode == 1 and "exists and is not a folder" in r.stderr
    r = run([str(mlpkg), "convert", str(FIXTURES / "cnn.onnx"), "--output-dir", "file/sub"], tmp_path)
    assert r.returncode == 1 and "cannot create the folder" in r.stderr
