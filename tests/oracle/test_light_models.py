"""The nine CNNs the onnx wheel ships in backend/test/data/light (AlexNet, DenseNet-121, Inception v1/v2, ResNet-50,
ShuffleNet, SqueezeNet, VGG-19, ZFNet-512): IR version 3 files, the ONNX model zoo's older style, where every weight
is a graph input backed by an initializer. Their weights are ConstantOfShape(0.02) of initializer shapes, so the
files are 4-214 KB while the networks are full size (1.2M-144M parameters).

* to Core ML in one step (`convert X.onnx -o X.mlpackage --compute-precision fp32`): coremltools opens the package
  (`MLModel(path, skip_model_load=True)`: its milproto loader re-infers every op's type) and the numpy MIL
  reference evaluation agrees with onnxruntime on the original at cosine >= 0.9999. Where mlpkg's Core ML exporter
  lacks a lowering, the case is an xfail(strict) naming the ops; any other failure (dynamic dims above all) fails.
  With every weight equal, all 1000 class scores are equal and the softmax is 0.001 everywhere whatever the image,
  so these files alone cannot tell right numerics from wrong: the same check runs on the five smaller networks
  with their ConstantOfShape weights replaced by seeded random initializers, still listed as graph inputs (IR 3,
  as zoo models are);
* the initializer inputs are constants (docs/IMPORT.md): the package's only input is the image, every value has a
  static shape, the audit finds nothing dynamic, and the package exported back to ONNX computes what the original
  does;
* `--keep-initializer-inputs` keeps them as inputs a caller may override, through to the exported ONNX;
* a Core ML export refused for dynamic input dims names the model given and prints the audit's `--input-shape` pins.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import helper, numpy_helper

from conftest import FIXTURES, run
from mil_reference import load_program, run_program

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ct = pytest.importorskip("coremltools", reason="coremltools is a required test dependency (tests/requirements.txt)")

LIGHT = Path(onnx.__file__).parent / "backend" / "test" / "data" / "light"
MODELS = ["bvlc_alexnet", "densenet121", "inception_v1", "inception_v2", "resnet50", "shufflenet", "squeezenet",
          "vgg19", "zfnet512"]
MIN_COSINE = 0.9999

# Ops mlpkg's Core ML exporter has no lowering for, per model (the audit's coreml-no-lowering blockers). Every light
# model makes its weights with ConstantOfShape: those of up to 2^16 elements are known to inference and fold, the
# larger ones stay nodes, and Conv/Gemm then lack a constant weight.
# Every lowering these models need exists now (ConstantOfShape weights are forwarded as constants, LRN lowers to
# local_response_norm); a model listed here would be an xfail(strict) naming the missing ops.
MISSING_LOWERINGS: dict[str, set[str]] = {name: set() for name in MODELS}


class MissingLowering(Exception):
    """The Core ML export stopped only at ops mlpkg has no lowering for (the expected failure)."""


def light(name: str) -> Path:
    path = LIGHT / f"light_{name}.onnx"
    assert path.is_file(), f"{path} is missing: the onnx wheel (tests/requirements.txt) ships it"
    return path


def xfail_missing(name: str):
    ops = " and ".join(sorted(MISSING_LOWERINGS[name]))
    return pytest.param(name, marks=pytest.mark.xfail(
        strict=True, raises=MissingLowering,
        reason=f"mlpkg's Core ML exporter has no lowering for {ops} (Sources/CoreMLExport; reported in issue 25)"))


def image(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((1, 3, 224, 224)).astype(np.float32)


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    a = a.astype(np.float64).ravel()
    b = b.astype(np.float64).ravel()
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def ort_run(model: Path, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    return ort.InferenceSession(str(model), providers=["CPUExecutionProvider"]).run(None, feeds)


def runtime_inputs(model: onnx.ModelProto) -> list[str]:
    initialized = {t.name for t in model.graph.initializer}
    return [i.name for i in model.graph.input if i.name not in initialized]


_audits: dict[Path, dict] = {}


def audit(mlpkg: Path, model: Path, cwd: Path) -> dict:
    """`mlpkg audit MODEL --format json` (once per model file)."""
    if model not in _audits:
        r = run([str(mlpkg), "audit", str(model), "--format", "json"], cwd)
        assert r.returncode == 0, r.stderr
        _audits[model] = json.loads(r.stdout)
    return _audits[model]


def missing_lowerings(report: dict) -> set[str]:
    ops: set[str] = set()
    for blocker in report["summary"].get("blockers") or []:
        if blocker["rule"] == "coreml-no-lowering":
            ops.update(re.findall(r"no Core ML lowering for (\w+)", blocker["action"]))
    return ops


def to_coreml_and_compare(mlpkg: Path, tmp: Path, src: Path, expected_missing: set[str]) -> None:
    """Converts `src` to Core ML (fp32 compute); a failure at exactly `expected_missing` raises MissingLowering.
    Then coremltools' type check and the MIL reference evaluation against onnxruntime on `src`."""
    out = tmp / (src.stem + ".mlpackage")
    r = run([str(mlpkg), "convert", str(src), "-o", str(out), "--compute-precision", "fp32", "--quiet"], tmp)
    if r.returncode != 0:
        errors = [l for l in r.stderr.splitlines() if l.startswith("error:")]
        assert r.returncode == 1 and len(errors) == 1, r.stderr
        assert "dynamic dims" not in errors[0], f"initializer inputs leaked into shapes again: {errors[0][:400]}"
        missing = missing_lowerings(audit(mlpkg, src, tmp))
        assert missing and missing == expected_missing, f"missing lowerings {sorted(missing)}: {errors[0][:400]}"
        raise MissingLowering(errors[0][:300])

    ct.models.MLModel(str(out), skip_model_load=True)  # coremltools rebuilds the program and checks every type
    program = load_program(out)
    assert len(program.inputs) == 1 and program.inputs[0].shape == (1, 3, 224, 224)
    x = image()
    expected = ort_run(src, {runtime_inputs(onnx.load(str(src), load_external_data=False))[0]: x})
    got = run_program(program, {program.inputs[0].name: x})
    assert len(program.outputs) == len(expected)
    for output, reference in zip(program.outputs, expected):
        value = np.asarray(got[output])
        c = cosine(value, reference)
        print(f"{src.stem} {output}: cosine {c:.7f}, max |diff| {np.abs(value - reference).max():.3g}")
        assert c >= MIN_COSINE, f"{src.stem} {output}: cosine {c} < {MIN_COSINE}"


@pytest.mark.parametrize("name", [xfail_missing(n) if MISSING_LOWERINGS.get(n) else n for n in MODELS])
def test_light_model_to_coreml(mlpkg, tmp_path, name):
    to_coreml_and_compare(mlpkg, tmp_path, light(name), MISSING_LOWERINGS[name])


# The networks small enough to convert and evaluate in a few seconds with their weights written out.
RANDOM_WEIGHTS = ["squeezenet", "shufflenet", "inception_v1", "densenet121", "inception_v2"]
RANDOM_MISSING: dict[str, set[str]] = {}


def with_random_weights(name: str, folder: Path) -> Path:
    """light_NAME.onnx with every ConstantOfShape of an initializer shape replaced by a seeded random float32
    initializer of that shape (normal / sqrt(fan-in); vectors in [0.5, 0.6], so BatchNormalization variances stay
    positive), each also listed as a graph input: IR 3, as the model zoo's models are."""
    path = folder / f"{name}_random.onnx"
    if path.exists():
        return path
    model = onnx.load(str(light(name)))
    graph = model.graph
    shapes = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    rng = np.random.default_rng(sum(name.encode()))
    nodes, weights = [], []
    for node in graph.node:
        if node.op_type != "ConstantOfShape" or node.input[0] not in shapes:
            nodes.append(node)
            continue
        dims = [int(d) for d in shapes[node.input[0]]]
        if len(dims) == 1:
            w = 0.5 + 0.1 * rng.random(dims)
        else:
            w = rng.standard_normal(dims) / np.sqrt(max(1, int(np.prod(dims[1:]))))
        weights.append(numpy_helper.from_array(w.astype(np.float32), node.output[0]))
    del graph.node[:]
    graph.node.extend(nodes)
    read = {i for n in nodes for i in n.input}
    kept = [t for t in graph.initializer if t.name in read]
    del graph.initializer[:]
    graph.initializer.extend(kept + weights)
    inputs = [i for i in graph.input if i.name not in shapes or i.name in read]
    del graph.input[:]
    graph.input.extend(inputs)
    graph.input.extend(helper.make_tensor_value_info(t.name, t.data_type, list(t.dims)) for t in weights)
    assert model.ir_version == 3
    onnx.save(model, str(path))
    return path


@pytest.fixture(scope="module")
def random_weights_folder(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("random_weights")


@pytest.mark.parametrize("name", [
    pytest.param(n, marks=pytest.mark.xfail(
        strict=True, raises=MissingLowering,
        reason="mlpkg's Core ML exporter has no lowering for LRN (Sources/CoreMLExport; reported in issue 25)"))
    if n in RANDOM_MISSING else n for n in RANDOM_WEIGHTS])
def test_light_model_with_random_weights_to_coreml(mlpkg, tmp_path, random_weights_folder, name):
    src = with_random_weights(name, random_weights_folder)
    to_coreml_and_compare(mlpkg, tmp_path, src, RANDOM_MISSING.get(name, set()))


@pytest.mark.parametrize("name", MODELS)
def test_light_model_initializer_inputs_are_constants(mlpkg, tmp_path, name):
    src = light(name)
    original = onnx.load(str(src))
    assert original.ir_version == 3 and len(original.graph.input) > 1  # the weights are listed as inputs
    pkg = tmp_path / f"{name}.mlpkg"
    r = run([str(mlpkg), "convert", str(src), "-o", str(pkg), "--weights", "fp32", "--quiet"], tmp_path)
    assert r.returncode == 0, r.stderr
    graph = json.loads((pkg / "manifest.json").read_text())["graph"]
    assert [v["name"] for v in graph["inputs"]] == runtime_inputs(original)
    dynamic = [v["name"] for v in graph["valueInfo"]
               if not all(isinstance(d, int) for d in (v["type"].get("shape") or [None]))]
    assert not dynamic, f"values without a static shape: {dynamic[:10]}"

    report = audit(mlpkg, src, tmp_path)
    assert "pinSuggestion" not in report["summary"]
    assert "dynamic dims" not in json.dumps(report)

    # Back to ONNX: initializers no longer listed as inputs need IR version 4 (onnxruntime refuses them in IR 3).
    back = tmp_path / f"{name}.onnx"
    r = run([str(mlpkg), "export", str(pkg), "-o", str(back), "--quiet"], tmp_path)
    assert r.returncode == 0, r.stderr
    exported = onnx.load(str(back))
    assert exported.ir_version == 4
    assert runtime_inputs(exported) == [i.name for i in exported.graph.input] == runtime_inputs(original)
    onnx.checker.check_model(exported)
    if name in RANDOM_WEIGHTS:  # onnxruntime materializes every ConstantOfShape: seconds for the 61M-144M ones
        x = {runtime_inputs(original)[0]: image(1)}
        for a, b in zip(ort_run(back, x), ort_run(src, x)):
            assert cosine(a, b) >= 0.999999


def test_keep_initializer_inputs(mlpkg, tmp_path, random_weights_folder):
    # The IR >= 4 reading: onnxruntime treats an IR 3 file's initializers as constants, but from IR 4 on an
    # initializer listed as an input is overridable, so the check runs on an IR 7 copy of SqueezeNet (random
    # weights: with the light model's own, every class scores alike whatever is overridden).
    original = onnx.load(str(with_random_weights("squeezenet", random_weights_folder)))
    original.ir_version = 7
    src = tmp_path / "squeezenet_ir7.onnx"
    onnx.save(original, src)
    listed = [i.name for i in original.graph.input]
    assert len(listed) > 1 and "conv1_b_0" in listed

    # Default: constants, whatever the IR version.
    pkg = tmp_path / "c.mlpkg"
    r = run([str(mlpkg), "convert", str(src), "-o", str(pkg), "--weights", "fp32", "--quiet"], tmp_path)
    assert r.returncode == 0, r.stderr
    assert [v["name"] for v in json.loads((pkg / "manifest.json").read_text())["graph"]["inputs"]] == ["data_0"]

    pkg = tmp_path / "k.mlpkg"
    r = run([str(mlpkg), "convert", str(src), "-o", str(pkg), "--weights", "fp32", "--keep-initializer-inputs", "--quiet"],
            tmp_path)
    assert r.returncode == 0, r.stderr
    manifest = json.loads((pkg / "manifest.json").read_text())
    assert [v["name"] for v in manifest["graph"]["inputs"]] == listed
    assert manifest["provenance"]["options"]["initializerInputs"] == "overridable"

    back = tmp_path / "k.onnx"
    r = run([str(mlpkg), "export", str(pkg), "-o", str(back), "--quiet"], tmp_path)
    assert r.returncode == 0, r.stderr
    assert [i.name for i in onnx.load(str(back)).graph.input] == listed
    session = ort.InferenceSession(str(back), providers=["CPUExecutionProvider"])
    assert "conv1_b_0" in {i.name for i in session.get_overridable_initializers()}
    # A caller may still override a weight: the exported model and the original answer alike.
    override = {"data_0": image(2), "conv1_b_0": np.full(64, 0.3, np.float32)}
    for a, b in zip(session.run(None, override), ort_run(src, override)):
        assert cosine(a, b) >= 0.999999
    default = ort_run(src, {"data_0": override["data_0"]})[0]
    assert not np.allclose(default, session.run(None, override)[0])

    # A Core ML model has no overridable inputs: a usage error.
    r = run([str(mlpkg), "convert", str(src), "-o", str(tmp_path / "k.mlpackage"), "--keep-initializer-inputs"], tmp_path)
    assert r.returncode == 2 and "--keep-initializer-inputs" in r.stderr, r.stderr
    assert not (tmp_path / "k.mlpackage").exists()


def test_dynamic_inputs_error_names_the_model_and_the_audit_pins(mlpkg, tmp_path):
    src = FIXTURES / "dynamic_dims.onnx"
    suggested = audit(mlpkg, src, tmp_path)["summary"]["pinSuggestion"]["suggested"]
    flags = " ".join(f"--input-shape {p}" for p in suggested)
    out = tmp_path / "D.mlpackage"
    r = run([str(mlpkg), "convert", str(src), "-o", str(out)], tmp_path)
    errors = [l for l in r.stderr.splitlines() if l.startswith("error:")]
    assert r.returncode == 1 and len(errors) == 1, r.stderr
    assert errors[0].startswith(f"error: {src}: ") and str(out) not in errors[0], errors[0]
    assert flags in errors[0], errors[0]

    pkg = tmp_path / "d.mlpkg"
    assert run([str(mlpkg), "convert", str(src), "-o", str(pkg), "--quiet"], tmp_path).returncode == 0
    r = run([str(mlpkg), "export", str(pkg), "--format", "coreml", "-o", str(out), "--json"], tmp_path)
    error = json.loads(r.stdout)["error"]
    assert r.returncode == 1 and error["file"] == str(pkg) and flags in error["message"], r.stdout
    assert not out.exists()

    # The flags work (cnn.onnx: one dynamic input, every node lowerable): with them the conversion succeeds.
    cnn = FIXTURES / "cnn.onnx"
    r = run([str(mlpkg), "convert", str(cnn), "-o", str(out)], tmp_path)
    assert r.returncode == 1 and f"error: {cnn}: " in r.stderr, r.stderr
    flags = re.search(r"pin them: ((?:--input-shape \S+ ?)+)", r.stderr).group(1).split()
    assert flags == ["--input-shape", "input=1,3,32,32"], r.stderr
    r = run([str(mlpkg), "convert", str(cnn), "-o", str(out), *flags, "--quiet"], tmp_path)
    assert r.returncode == 0, r.stderr
