"""Image inputs, image outputs and classifiers in Core ML exports (issue 26, item 2), read back with coremltools:

* `--image-input NAME[=rgb|bgr|gray|gray-fp16] --scale S --bias …`: the description declares an ImageFeatureType
  (size from the pinned [1, C, H, W], colour space), and the program's first ops are the preprocessing coremltools
  writes for `ct.ImageType(scale=, bias=)` (a `mul` by the scale, an `add` of the bias), evaluated against
  onnxruntime on the preprocessed pixels;
* `--image-output NAME`: [1, 3, H, W] → RGB, [1, 1, H, W] → GRAYSCALE, other shapes refused;
* `--class-labels [NAME=]FILE`: the `classify` op with the labels, `predictedFeatureName` / `predictedProbabilitiesName`,
  `classLabel` (string or int64) and the probabilities dictionary; coremltools' loader type-checks the program and
  the MIL reference evaluation gives the label onnxruntime's probabilities pick;
* bad options: one `error:` line, exit 2 (exit 1 for an unreadable labels file), nothing written.

Models are built here (a few hundred bytes each), weights from a fixed seed.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from conftest import FIXTURES, run
from mil_reference import evaluate

ct = pytest.importorskip("coremltools", reason="coremltools is a required test dependency (tests/requirements.txt)")
from coremltools.converters.mil.frontend.milproto import load as milproto_load  # noqa: E402
from coremltools.proto import FeatureTypes_pb2  # noqa: E402
from test_coreml import program_ops  # noqa: E402

IMAGE = FeatureTypes_pb2.ImageFeatureType
LABELS = ["cat", "dog", "bird", "fish"]


def classifier_model(path: Path, channels: int = 3, size: int = 8, extra_output: bool = False) -> Path:
    """image [1, C, size, size] → 1×1 Conv (4 filters) → mean over H, W → Softmax → probs [1, 4]; optionally a
    first output `pooled` (the logits) so the probabilities are not the first output."""
    rng = np.random.default_rng(7)
    w = numpy_helper.from_array(rng.standard_normal((4, channels, 1, 1)).astype(np.float32) * 0.05, "w")
    b = numpy_helper.from_array(rng.standard_normal(4).astype(np.float32) * 0.1, "b")
    nodes = [helper.make_node("Conv", ["image", "w", "b"], ["conv"]),
             helper.make_node("ReduceMean", ["conv"], ["pooled"], axes=[2, 3], keepdims=0),
             helper.make_node("Softmax", ["pooled"], ["probs"], axis=1)]
    outputs = [helper.make_tensor_value_info("probs", TensorProto.FLOAT, [1, 4])]
    if extra_output:
        outputs.insert(0, helper.make_tensor_value_info("pooled", TensorProto.FLOAT, [1, 4]))
    graph = helper.make_graph(nodes, "classifier", [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, channels, size, size])],
                              outputs, [w, b])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), path)
    return path


def image_out_model(path: Path, channels: int) -> Path:
    """x [1, 3, 6, 5] → Sigmoid → Slice of the first `channels` channels: y [1, channels, 6, 5]."""
    starts = numpy_helper.from_array(np.array([0], np.int64), "starts")
    ends = numpy_helper.from_array(np.array([channels], np.int64), "ends")
    axes = numpy_helper.from_array(np.array([1], np.int64), "axes")
    nodes = [helper.make_node("Sigmoid", ["x"], ["s"]), helper.make_node("Slice", ["s", "starts", "ends", "axes"], ["y"])]
    graph = helper.make_graph(nodes, "image_out", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 6, 5])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, channels, 6, 5])], [starts, ends, axes])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), path)
    return path


def labels_file(tmp: Path, labels: list[str], name: str = "labels.txt") -> Path:
    p = tmp / name
    p.write_text("".join(f"{l}\n" for l in labels))
    return p


def convert(mlpkg: Path, tmp: Path, model: Path, out: Path, *args: str):
    return run([str(mlpkg), "convert", str(model), "-o", str(out), "--quiet", *args], tmp)


def ops_by_type(spec) -> list:
    return [op for op in program_ops(spec) if op.type != "const"]


def const_value(spec, name: str) -> np.ndarray:
    for op in program_ops(spec):
        if op.type == "const" and op.outputs[0].name == name:
            t = op.attributes["val"].immediateValue.tensor
            shape = [int(d.constant.size) for d in op.outputs[0].type.tensorType.dimensions]
            return np.array(list(t.floats.values), np.float32).reshape(shape)
    raise AssertionError(f"no const {name}")


def reference(model: Path, pixels: np.ndarray) -> np.ndarray:
    return ort.InferenceSession(str(model), providers=["CPUExecutionProvider"]).run(None, {"image": pixels})[-1]


@pytest.mark.parametrize("space", ["rgb", "bgr"])
def test_image_classifier_reads_back_and_computes(mlpkg, tmp_path, space):
    model = classifier_model(tmp_path / "m.onnx")
    out = tmp_path / "C.mlpackage"
    scale, bias_rgb = 1 / 128, [-1.0, -0.5, 0.25]
    r = convert(mlpkg, tmp_path, model, out, "--image-input", f"image={space}", "--scale", str(scale),
                "--bias", ",".join(map(str, bias_rgb)), "--class-labels", str(labels_file(tmp_path, LABELS)), "--compute-precision", "fp32")
    assert r.returncode == 0, r.stderr
    ct.models.MLModel(str(out), skip_model_load=True)  # coremltools opens it as a model
    spec = ct.utils.load_spec(str(out))
    image = spec.description.input[0]
    assert image.name == "image" and image.type.WhichOneof("Type") == "imageType"
    assert (image.type.imageType.width, image.type.imageType.height) == (8, 8)
    assert image.type.imageType.colorSpace == (IMAGE.BGR if space == "bgr" else IMAGE.RGB)
    d = spec.description
    assert (d.predictedFeatureName, d.predictedProbabilitiesName) == ("classLabel", "classLabel_probs")
    assert [o.name for o in d.output] == ["classLabel", "classLabel_probs"]
    assert d.output[0].type.WhichOneof("Type") == "stringType"
    assert d.output[1].type.dictionaryType.WhichOneof("KeyType") == "stringKeyType"
    # The program starts with the preprocessing, in the input's fp32: x · scale, then + bias in channel order.
    ops = ops_by_type(spec)
    assert [op.type for op in ops[:2]] == ["mul", "add"]
    assert ops[0].inputs["x"].arguments[0].name == "image" and ops[1].inputs["x"].arguments[0].name == ops[0].outputs[0].name
    assert ops[0].outputs[0].type.tensorType.dataType == 11  # FLOAT32
    assert const_value(spec, ops[0].inputs["y"].arguments[0].name).item() == pytest.approx(scale)
    channel_bias = bias_rgb[::-1] if space == "bgr" else bias_rgb
    np.testing.assert_array_equal(const_value(spec, ops[1].inputs["y"].arguments[0].name),
                                  np.array(channel_bias, np.float32).reshape(1, 3, 1, 1))
    classify = ops[-1]
    assert classify.type == "classify"
    assert [v.immediateValue.tensor.strings.values[0] for v in classify.inputs["classes"].arguments[0].value.immediateValue.list.values] == LABELS
    # coremltools' own loader rebuilds the program and type-checks every op, classify included.
    prog = milproto_load.load(spec, specification_version=spec.specificationVersion,
                              file_weights_dir=str(out / "Data" / "com.apple.CoreML" / "weights"))
    assert [op.op_type for op in prog.functions["main"].operations][-1] == "classify"
    # Numerics: the program on raw pixels = onnxruntime on the preprocessed tensor.
    pixels = np.random.default_rng(1).integers(0, 256, (1, 3, 8, 8)).astype(np.float32)
    want = reference(model, pixels * np.float32(scale) + np.array(channel_bias, np.float32).reshape(1, 3, 1, 1))[0]
    have = evaluate(out, {"image": pixels})
    assert have["classLabel"] == LABELS[int(np.argmax(want))]
    np.testing.assert_allclose([have["classLabel_probs"][l] for l in LABELS], want, rtol=1e-4, atol=1e-6)


def test_integer_labels_and_a_named_probability_output(mlpkg, tmp_path):
    model = classifier_model(tmp_path / "m.onnx", extra_output=True)
    out = tmp_path / "I.mlpackage"
    labels = labels_file(tmp_path, ["10", "-2", "30", "7"])
    r = convert(mlpkg, tmp_path, model, out, "--class-labels", f"probs={labels}")
    assert r.returncode == 0, r.stderr
    spec = ct.utils.load_spec(str(out))
    d = spec.description
    assert [o.name for o in d.output] == ["classLabel", "classLabel_probs", "pooled"]
    assert d.output[0].type.WhichOneof("Type") == "int64Type"
    assert d.output[1].type.dictionaryType.WhichOneof("KeyType") == "int64KeyType"
    assert d.output[2].type.multiArrayType.dataType == FeatureTypes_pb2.ArrayFeatureType.FLOAT32
    assert d.input[0].type.WhichOneof("Type") == "multiArrayType"  # no --image-input: a multi-array
    milproto_load.load(spec, specification_version=spec.specificationVersion,
                       file_weights_dir=str(out / "Data" / "com.apple.CoreML" / "weights"))
    x = np.random.default_rng(2).standard_normal((1, 3, 8, 8)).astype(np.float32)
    want = reference(model, x)[0]
    have = evaluate(out, {"image": x})
    assert int(have["classLabel"]) == [10, -2, 30, 7][int(np.argmax(want))]
    np.testing.assert_allclose([have["classLabel_probs"][k] for k in [10, -2, 30, 7]], want, rtol=2e-2, atol=1e-3)


@pytest.mark.parametrize("space,target,color,dtype", [("gray", None, IMAGE.GRAYSCALE, 11),
                                                      ("gray-fp16", None, IMAGE.GRAYSCALE_FLOAT16, 10)])
def test_grayscale_inputs(mlpkg, tmp_path, space, target, color, dtype):
    model = classifier_model(tmp_path / "g.onnx", channels=1)
    out = tmp_path / "G.mlpackage"
    r = convert(mlpkg, tmp_path, model, out, "--image-input", f"image={space}", "--scale", "2", "--bias", "0.5")
    assert r.returncode == 0, r.stderr
    spec = ct.utils.load_spec(str(out))
    t = spec.description.input[0].type.imageType
    assert (t.width, t.height, t.colorSpace) == (8, 8, color)
    assert spec.specificationVersion == (7 if space == "gray-fp16" else 6)  # GRAYSCALE_FLOAT16 raises the target to iOS16
    fn = spec.mlProgram.functions["main"]
    assert fn.inputs[0].type.tensorType.dataType == dtype
    ops = ops_by_type(spec)
    assert [op.type for op in ops[:2]] == ["mul", "add"]
    assert ops[1].outputs[0].type.tensorType.dataType == dtype  # preprocessing in the input's own type
    pixels = np.random.default_rng(3).integers(0, 256, (1, 1, 8, 8)).astype(np.float32)
    want = reference(model, pixels * 2 + 0.5)
    have = evaluate(out, {"image": pixels.astype(np.float16 if dtype == 10 else np.float32)})["probs"]
    np.testing.assert_allclose(np.asarray(have, np.float32), want, rtol=2e-2, atol=2e-3)


@pytest.mark.parametrize("channels,color", [(3, IMAGE.RGB), (1, IMAGE.GRAYSCALE)])
def test_image_output(mlpkg, tmp_path, channels, color):
    model = image_out_model(tmp_path / "o.onnx", channels)
    out = tmp_path / "O.mlpackage"
    r = convert(mlpkg, tmp_path, model, out, "--image-output", "y", "--io-dtype", "fp16")
    assert r.returncode == 0, r.stderr
    spec = ct.utils.load_spec(str(out))
    y = spec.description.output[0]
    assert y.type.WhichOneof("Type") == "imageType"
    assert (y.type.imageType.width, y.type.imageType.height, y.type.imageType.colorSpace) == (5, 6, color)
    # An image output is fp32 in the program whatever --io-dtype says; the other features follow --io-dtype.
    block = spec.mlProgram.functions["main"].block_specializations[spec.mlProgram.functions["main"].opset]
    out_types = {o.name: o.type.tensorType.dataType for op in block.operations for o in op.outputs}
    assert out_types["y"] == 11
    assert spec.description.input[0].type.multiArrayType.dataType == FeatureTypes_pb2.ArrayFeatureType.FLOAT16


def one_error_line(r, code: int, *needles: str) -> None:
    assert r.returncode == code, (r.returncode, r.stderr)
    lines = [l for l in r.stderr.splitlines() if l.startswith("error:")]  # a usage error adds the --help hint
    assert len(lines) == 1 and r.stderr.startswith("error:"), r.stderr
    for n in needles:
        assert n in lines[0], lines[0]


@pytest.mark.parametrize("args,needles", [
    (["--image-input", "image=gray"], ["'image' has shape [1, 3, 8, 8]", "[1, 1, H, W]"]),
    (["--image-input", "nope"], ["no input 'nope'", "'image'"]),
    (["--image-input", "image=cmyk"], ["expected NAME[=rgb|bgr|gray|gray-fp16]"]),
    (["--scale", "2"], ["--scale and --bias apply to image inputs"]),
    (["--image-input", "image", "--bias", "1,2"], ["expected R,G,B or one number"]),
    (["--image-input", "image=gray-fp16", "--deployment-target", "iOS15"], ["iOS16"]),
    (["--image-output", "probs"], ["'probs' has shape [1, 4]", "[1, 3, H, W]"]),
    (["--class-labels", "FIVE"], ["5 labels", "output 'probs' has shape [1, 4]"]),
    (["--class-labels", "nope=LABELS"], ["no output 'nope'"]),
    (["--profile", "neural-engine"], ["--profile and --profile-file apply to .mlpkg outputs", "mlpkg audit"]),
])
def test_bad_options_are_usage_errors(mlpkg, tmp_path, args, needles):
    model = classifier_model(tmp_path / "m.onnx")
    labels = {"FIVE": str(labels_file(tmp_path, LABELS + ["eel"], "five.txt")), "nope=LABELS": f"nope={labels_file(tmp_path, LABELS)}"}
    out = tmp_path / "X.mlpackage"
    r = convert(mlpkg, tmp_path, model, out, *[labels.get(a, a) for a in args])
    one_error_line(r, 2, *needles)
    assert not out.exists()


@pytest.mark.parametrize("content,needle", [(None, "cannot read the class labels file"), ("a\nb\na\nc\n", "label 'a' is on lines 1 and 3"),
                                            ("a\n\nb\nc\n", "line 2 is empty"), ("", "no labels")])
def test_bad_labels_file_is_bad_input(mlpkg, tmp_path, content, needle):
    model = classifier_model(tmp_path / "m.onnx")
    labels = tmp_path / "bad.txt"
    if content is not None:
        labels.write_text(content)
    out = tmp_path / "X.mlpackage"
    r = convert(mlpkg, tmp_path, model, out, "--class-labels", str(labels))
    one_error_line(r, 1, "bad.txt", needle)
    assert not out.exists()
    r = convert(mlpkg, tmp_path, model, out, "--class-labels", str(labels), "--json")
    assert r.returncode == 1 and json.loads(r.stdout)["error"]["file"] == str(labels)


def test_export_and_one_step_write_the_same_classifier(mlpkg, tmp_path):
    model = classifier_model(tmp_path / "m.onnx")
    labels = labels_file(tmp_path, LABELS)
    opts = ["--image-input", "image=bgr", "--scale", "0.5", "--bias", "1,2,3", "--class-labels", str(labels)]
    one, two, pkg = tmp_path / "one.mlpackage", tmp_path / "two.mlpackage", tmp_path / "m.mlpkg"
    assert convert(mlpkg, tmp_path, model, one, *opts).returncode == 0
    # `--for coreml` on the two-step leg: the one-step conversion records it in the provenance.
    assert convert(mlpkg, tmp_path, model, pkg, "--for", "coreml").returncode == 0
    r = run([str(mlpkg), "export", str(pkg), "--format", "coreml", "-o", str(two), "--quiet", *opts], tmp_path)
    assert r.returncode == 0, r.stderr
    rel = Path("Data/com.apple.CoreML/model.mlmodel")
    assert (one / rel).read_bytes() == (two / rel).read_bytes()
    r = run([str(mlpkg), "export", str(pkg), "-o", str(tmp_path / "m2.onnx"), "--class-labels", str(labels)], tmp_path)
    one_error_line(r, 2, "--class-labels apply to --format coreml")


def test_pinned_dynamic_input_as_an_image(mlpkg, tmp_path):
    """fixtures/cnn.onnx's input is [batch, 3, 32, 32]: the pinned shape gives the image size, and its logits output
    takes ten integer labels."""
    out = tmp_path / "P.mlpackage"
    labels = labels_file(tmp_path, [str(k) for k in range(10)])
    r = convert(mlpkg, tmp_path, FIXTURES / "cnn.onnx", out, "--input-shape", "input=1,3,32,32", "--image-input", "input",
                "--class-labels", str(labels))
    assert r.returncode == 0, r.stderr
    spec = ct.utils.load_spec(str(out))
    t = spec.description.input[0].type.imageType
    assert (t.width, t.height, t.colorSpace) == (32, 32, IMAGE.RGB)
    assert [o.name for o in spec.description.output] == ["classLabel", "classLabel_probs"]
    assert not [op for op in ops_by_type(spec) if op.type in ("mul", "add") and op.inputs["x"].arguments[0].name == "input"]  # no scale, no bias
    x = np.random.default_rng(4).integers(0, 256, (1, 3, 32, 32)).astype(np.float32)
    want = ort.InferenceSession(str(FIXTURES / "cnn.onnx"), providers=["CPUExecutionProvider"]).run(None, {"input": x})[0][0]
    assert int(evaluate(out, {"input": x})["classLabel"]) == int(np.argmax(want))


def test_every_core_ml_flag_is_documented_with_an_example(mlpkg, tmp_path):
    """docs/COREML.md has a table row and an `mlpkg …` example line for every option of export's Core ML group (and
    the Core ML options outside it), as `mlpkg export --help` lists them."""
    import re

    from conftest import REPO_ROOT

    help_text = run([str(mlpkg), "export", "--help"], tmp_path).stdout
    group = help_text.split("CORE ML (--FORMAT COREML):", 1)[1].split("\n\n", 1)[0]
    flags = set(re.findall(r"^\s+(--[a-z0-9-]+)", group, re.M)) | {"--compute-units", "--input-shape", "--dequantize"}
    assert {"--image-input", "--scale", "--bias", "--image-output", "--class-labels", "--io-dtype"} <= flags
    doc = (REPO_ROOT / "docs" / "COREML.md").read_text(encoding="utf-8")
    rows = [l for l in doc.splitlines() if l.startswith("| `--")]
    examples = [l for l in doc.splitlines() if re.match(r"^\s*(mlpkg |--)", l)]
    for flag in sorted(flags):
        assert any(re.search(re.escape(flag) + r"\b(?!-)", r.split("|")[1]) for r in rows), f"{flag}: no table row"
        assert any(re.search(re.escape(flag) + r"(?![a-z-])", e) for e in examples), f"{flag}: no example"


def test_inspect_and_verify_read_classifiers_from_mlpkg_and_coremltools(mlpkg, tmp_path):
    """`inspect` names the classifier's outputs and the image input; `verify` accepts the package with classify
    not checked — for mlpkg's package and for one coremltools writes (MIL builder, ImageType and ClassifierConfig)."""
    from coremltools.converters.mil import Builder as mb

    model = classifier_model(tmp_path / "m.onnx")
    ours = tmp_path / "ours.mlpackage"
    assert convert(mlpkg, tmp_path, model, ours, "--image-input", "image=bgr", "--class-labels", str(labels_file(tmp_path, LABELS))).returncode == 0

    @mb.program(input_specs=[mb.TensorSpec(shape=(1, 3, 8, 8))], opset_version=ct.target.iOS15)
    def prog(x):
        return mb.softmax(x=mb.reduce_mean(x=x, axes=[2, 3], keep_dims=False), axis=-1, name="probs")

    theirs = tmp_path / "theirs.mlpackage"
    ct.convert(prog, convert_to="mlprogram", minimum_deployment_target=ct.target.iOS15,
               inputs=[ct.ImageType(name="x", shape=(1, 3, 8, 8), scale=1 / 255, bias=[-1, -2, -3], color_layout=ct.colorlayout.BGR)],
               classifier_config=ct.ClassifierConfig(["a", "b", "c"])).save(str(theirs))
    for path, image in ((ours, "image"), (theirs, "x")):
        r = run([str(mlpkg), "inspect", str(path), "--json"], tmp_path)
        assert r.returncode == 0, r.stderr
        doc = json.loads(r.stdout)
        assert doc["classifier"] == {"label": "classLabel", "probabilities": "classLabel_probs"}
        assert [(f["name"], f["type"]) for f in doc["inputs"]] == [(image, "image 8×8 BGR")]
        r = run([str(mlpkg), "verify", str(path), "--json"], tmp_path)
        assert r.returncode == 0, r.stdout + r.stderr
        doc = json.loads(r.stdout)
        assert doc["ok"] and [n["type"] for n in doc["notChecked"]] == ["classify"]
    r = run([str(mlpkg), "inspect", str(ours)], tmp_path)
    assert "classifier: predicted label 'classLabel', probabilities 'classLabel_probs'" in r.stdout
    r = run([str(mlpkg), "inspect", "--json", str(convert_plain(mlpkg, tmp_path, model))], tmp_path)
    assert "classifier" not in json.loads(r.stdout)


def convert_plain(mlpkg: Path, tmp: Path, model: Path) -> Path:
    out = tmp / "plain.mlpackage"
    assert convert(mlpkg, tmp, model, out).returncode == 0
    return out


@pytest.mark.parametrize("flag,value", [("--image-input", "{big}"), ("--image-output", "{big}"), ("--class-labels", "{big}=LABELS"),
                                        ("--image-input", "{big}=cmyk"), ("--bias", "1,{big}")])
def test_a_huge_value_in_an_error_is_cut(mlpkg, tmp_path, flag, value):
    """A 100 kB name quoted in an error stays a short line (as every option's errors, docs/HARDENING.md)."""
    model = classifier_model(tmp_path / "m.onnx")
    value = value.replace("{big}", "y" * 100_000).replace("LABELS", str(labels_file(tmp_path, LABELS)))
    extra = [] if flag == "--image-input" else ["--image-input", "image"]
    r = convert(mlpkg, tmp_path, model, tmp_path / "X.mlpackage", *extra, flag, value)
    one_error_line(r, 2)
    assert len(r.stderr) < 1000
