"""`mlpkg run` and `mlpkg compare` (issue 27, item 2): the Swift reference evaluator against the numpy MIL reference
(tests/oracle/mil_reference.py) and onnxruntime on every fixture that converts to Core ML and on every per-op case of
test_coreml_ops.py (its case list, imported); then compare's statistics and its --min-cosine gate (exit 3), and the
command line's refusals.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from conftest import FIXTURES, run
from mil_reference import evaluate
from test_coreml import MODELS, cosine, pin_args
from test_coreml_ops import CASES, export_case, feeds_for


def feeds_for_model(model: str, pins: dict[str, list[int]], seed: int) -> dict[str, np.ndarray]:
    """Random inputs of the pinned shapes for a fixture, in the types onnxruntime takes."""
    sess = ort.InferenceSession(str(FIXTURES / f"{model}.onnx"), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(seed)
    feeds = {}
    for i in sess.get_inputs():
        shape = pins.get(i.name) or [d if isinstance(d, int) else 1 for d in i.shape]
        if "int" in i.type:
            feeds[i.name] = rng.integers(0, 2, size=shape).astype(np.int64)
        elif "float16" in i.type:
            feeds[i.name] = rng.standard_normal(shape).astype(np.float16)
        else:
            feeds[i.name] = rng.standard_normal(shape).astype(np.float32)
    return feeds


def mlpkg_run(mlpkg: Path, tmp: Path, package: Path, feeds: dict[str, np.ndarray], *extra: str) -> dict[str, np.ndarray]:
    """Runs `mlpkg run` with one .npy per input; returns the outputs it writes to an .npz."""
    argv = [str(mlpkg), "run", str(package)]
    for name, value in feeds.items():
        f = tmp / f"in_{name}.npy"
        np.save(f, value.astype(np.int32) if value.dtype == np.int64 else value)
        argv += ["--input", f"{name}={f}"]
    out = tmp / f"{package.stem}.out.npz"
    r = run(argv + ["-o", str(out), "--quiet", *extra], tmp)
    assert r.returncode == 0, r.stderr
    with np.load(out) as z:
        return {k: z[k] for k in z.files}


def agree(have: np.ndarray, want: np.ndarray, threshold: float, what: str) -> None:
    have = np.asarray(have)
    if want.ndim == 0:
        have = have.reshape(())
    assert have.shape == want.shape, f"{what}: {have.shape} vs {want.shape}"
    if want.dtype.kind in "iub":
        np.testing.assert_array_equal(have.astype(np.int64), want.astype(np.int64), err_msg=what)
    else:
        c = cosine(have.astype(np.float64), want.astype(np.float64))
        assert c >= threshold, f"{what}: cosine {c:.7f} < {threshold}"


@pytest.mark.parametrize("model", sorted(MODELS))
def test_run_matches_reference_and_onnxruntime_on_fixtures(mlpkg, tmp_path, model):
    pins = MODELS[model]
    package = tmp_path / f"{model}.mlpackage"
    r = run([str(mlpkg), "convert", str(FIXTURES / f"{model}.onnx"), "-o", str(package), "--weights", "fp32",
             "--compute-precision", "fp32", *pin_args(pins), "--quiet"], tmp_path)
    assert r.returncode == 0, r.stderr
    feeds = feeds_for_model(model, pins, 0)
    got = mlpkg_run(mlpkg, tmp_path, package, feeds)
    reference = evaluate(package, {k: (v.astype(np.int32) if v.dtype == np.int64 else v) for k, v in feeds.items()})
    sess = ort.InferenceSession(str(FIXTURES / f"{model}.onnx"), providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    want = dict(zip(names, sess.run(None, feeds)))
    assert sorted(got) == sorted(reference)
    for name in got:
        agree(got[name], np.asarray(reference[name]), 0.99999, f"{model} {name} vs mil_reference")
        if name in want:
            agree(got[name], want[name], 0.99999, f"{model} {name} vs onnxruntime")


# Compressed weights, decoded as Core ML decodes them (the numpy reference decodes them independently), in fp16
# compute: both round every fp16 op output.
@pytest.mark.parametrize("weights,extra", [("int8", []), ("int4", []), ("lut4", []),
                                           ("int4", ["--asymmetric"]), ("int8", ["--deployment-target", "iOS18"])])
def test_run_decodes_compressed_weights_like_the_reference(mlpkg, tmp_path, weights, extra):
    package = tmp_path / f"cnn.{weights}.mlpackage"
    r = run([str(mlpkg), "convert", str(FIXTURES / "cnn.onnx"), "-o", str(package), "--weights", weights, *extra,
             "--input-shape", "input=1,3,32,32", "--quiet"], tmp_path)
    assert r.returncode == 0, r.stderr
    feeds = feeds_for_model("cnn", MODELS["cnn"], 1)
    got = mlpkg_run(mlpkg, tmp_path, package, feeds)
    reference = evaluate(package, feeds)
    for name in got:
        assert got[name].dtype == np.asarray(reference[name]).dtype
        agree(got[name], np.asarray(reference[name]), 0.9999, f"{weights} {name}")


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_run_matches_onnxruntime_per_op(mlpkg, tmp_path, case):
    package = export_case(mlpkg, tmp_path, case, "fp32")
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(case.reference().SerializeToString(), options, providers=["CPUExecutionProvider"])
    feeds = feeds_for(case, 0)
    want = sess.run(None, feeds)
    got = mlpkg_run(mlpkg, tmp_path, package, feeds)
    for (name, _), expected in zip(case.outputs, want):
        agree(got[name], expected, 0.99999, f"{case.name} {name}")


def test_run_output_is_byte_identical_and_fp16_rounds(mlpkg, tmp_path):
    package = tmp_path / "t.mlpackage"
    r = run([str(mlpkg), "convert", str(FIXTURES / "transformer.onnx"), "-o", str(package), "--weights", "fp16",
             "--input-shape", "tokens=1,8,64", "--quiet"], tmp_path)
    assert r.returncode == 0, r.stderr
    feeds = feeds_for_model("transformer", MODELS["transformer"], 2)
    np.savez(tmp_path / "in.npz", **feeds)
    outs = []
    for i in range(2):
        out = tmp_path / f"o{i}.npz"
        r = run([str(mlpkg), "run", str(package), "--inputs", str(tmp_path / "in.npz"), "-o", str(out), "--quiet"], tmp_path)
        assert r.returncode == 0, r.stderr
        outs.append(out.read_bytes())
    assert outs[0] == outs[1]
    reference = evaluate(package, feeds)
    with np.load(tmp_path / "o0.npz") as z:
        for name in z.files:
            # fp16 compute: the declared fp32 outputs follow the numpy reference, which rounds every fp16 op too.
            agree(z[name], np.asarray(reference[name]), 0.99999, name)
    # --compute fp32 runs the same program without the rounding: closer to onnxruntime than fp16 compute is.
    fp32 = mlpkg_run(mlpkg, tmp_path, package, feeds, "--compute", "fp32")
    want = ort.InferenceSession(str(FIXTURES / "transformer.onnx"), providers=["CPUExecutionProvider"]).run(None, feeds)[0]
    with np.load(tmp_path / "o0.npz") as z:
        half = z[z.files[0]]
    assert cosine(list(fp32.values())[0], want) > cosine(half, want)


def test_run_refuses_missing_inputs_and_deflated_archives(mlpkg, tmp_path):
    package = tmp_path / "cnn.mlpackage"
    r = run([str(mlpkg), "convert", str(FIXTURES / "cnn.onnx"), "-o", str(package), "--input-shape", "input=1,3,32,32",
             "--quiet"], tmp_path)
    assert r.returncode == 0, r.stderr
    r = run([str(mlpkg), "run", str(package)], tmp_path)
    assert r.returncode == 2 and "error:" in r.stderr and "'input'" in r.stderr and "--input" in r.stderr, r.stderr
    x = np.zeros((1, 3, 32, 32), np.float32)
    np.savez_compressed(tmp_path / "c.npz", input=x)
    r = run([str(mlpkg), "run", str(package), "--inputs", str(tmp_path / "c.npz"), "-o", str(tmp_path / "o.npz")], tmp_path)
    assert r.returncode == 1 and "np.savez" in r.stderr and not (tmp_path / "o.npz").exists(), r.stderr
    np.save(tmp_path / "bad.npy", np.zeros((1, 3, 16, 16), np.float32))
    r = run([str(mlpkg), "run", str(package), "--input", f"input={tmp_path / 'bad.npy'}", "-o", str(tmp_path / "o.npz")], tmp_path)
    assert r.returncode == 1 and "bad.npy" in r.stderr and "[1, 3, 16, 16]" in r.stderr, r.stderr
    r = run([str(mlpkg), "run", str(package), "--input", f"nope={tmp_path / 'bad.npy'}"], tmp_path)
    assert r.returncode == 2 and "nope" in r.stderr, r.stderr
    assert not (tmp_path / "o.npz").exists()
    # Written archives are plain zips numpy and zipfile read.
    np.save(tmp_path / "x.npy", x)
    r = run([str(mlpkg), "run", str(package), "--input", f"input={tmp_path / 'x.npy'}", "-o", str(tmp_path / "o.npz"), "--quiet"], tmp_path)
    assert r.returncode == 0, r.stderr
    assert zipfile.ZipFile(tmp_path / "o.npz").testzip() is None


def test_compare_reports_and_gates(mlpkg, tmp_path):
    onnx_model = FIXTURES / "transformer.onnx"
    int4 = tmp_path / "t4.mlpackage"
    r = run([str(mlpkg), "convert", str(onnx_model), "-o", str(int4), "--weights", "int4", "--input-shape", "tokens=1,8,64",
             "--quiet"], tmp_path)
    assert r.returncode == 0, r.stderr
    r = run([str(mlpkg), "compare", str(onnx_model), str(int4), "--samples", "3", "--json"], tmp_path)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    (out,) = doc["outputs"]
    assert doc["samples"] == 3 and 0.99 < out["cosine"] < 1 and out["snr"] > 10 and out["maxAbsError"] > 0
    assert out["rows"] == 3 * 8 and 0 <= out["top1"] <= out["top5"] <= 1
    # Gate: exit 3 below the bar, 0 above it.
    r = run([str(mlpkg), "compare", str(onnx_model), str(int4), "--samples", "2", "--min-cosine", "0.99999999"], tmp_path)
    assert r.returncode == 3 and "error:" in r.stderr and "output" in r.stderr and "--min-cosine" in r.stderr, r.stderr
    r = run([str(mlpkg), "compare", str(onnx_model), str(int4), "--samples", "2", "--min-cosine", "0.9", "--quiet"], tmp_path)
    assert r.returncode == 0 and r.stdout == "", r.stderr
    # Two .mlpackages and given inputs: fp32 against itself agrees exactly.
    fp32 = tmp_path / "t32.mlpackage"
    r = run([str(mlpkg), "convert", str(onnx_model), "-o", str(fp32), "--weights", "fp32", "--compute-precision", "fp32",
             "--input-shape", "tokens=1,8,64", "--quiet"], tmp_path)
    assert r.returncode == 0, r.stderr
    np.savez(tmp_path / "d.npz", tokens=np.random.default_rng(3).standard_normal((1, 8, 64)).astype(np.float32))
    r = run([str(mlpkg), "compare", str(fp32), str(fp32), "--inputs", str(tmp_path / "d.npz"), "--json"], tmp_path)
    assert r.returncode == 0, r.stderr
    (same,) = json.loads(r.stdout)["outputs"]
    assert same["cosine"] == pytest.approx(1.0) and same["maxAbsError"] == 0 and same["snr"] is None


def test_compare_statistics_match_numpy(mlpkg, tmp_path):
    """cosine, SNR and max |err| as compare prints them, recomputed from `mlpkg run`'s outputs of both packages."""
    onnx_model = FIXTURES / "cnn.onnx"
    paths = {}
    for weights in ("fp32", "int4"):
        paths[weights] = tmp_path / f"c{weights}.mlpackage"
        extra = ["--compute-precision", "fp32"] if weights == "fp32" else []
        r = run([str(mlpkg), "convert", str(onnx_model), "-o", str(paths[weights]), "--weights", weights, *extra,
                 "--input-shape", "input=1,3,32,32", "--quiet"], tmp_path)
        assert r.returncode == 0, r.stderr
    x = np.random.default_rng(5).standard_normal((1, 3, 32, 32)).astype(np.float32)
    np.savez(tmp_path / "d.npz", input=x)
    r = run([str(mlpkg), "compare", str(paths["fp32"]), str(paths["int4"]), "--inputs", str(tmp_path / "d.npz"), "--json"], tmp_path)
    assert r.returncode == 0, r.stderr
    (out,) = json.loads(r.stdout)["outputs"]
    ref = mlpkg_run(mlpkg, tmp_path, paths["fp32"], {"input": x})[out["name"]].astype(np.float64)
    got = mlpkg_run(mlpkg, tmp_path, paths["int4"], {"input": x})[out["name"]].astype(np.float64)
    assert out["cosine"] == pytest.approx(cosine(got, ref), abs=1e-9)
    assert out["snr"] == pytest.approx(10 * np.log10(np.sum(ref**2) / np.sum((ref - got) ** 2)), abs=1e-6)
    assert out["maxAbsError"] == pytest.approx(np.max(np.abs(ref - got)), rel=1e-6)
    assert out["top1"] == float(np.argmax(ref[0]) == np.argmax(got[0]))


def test_verify_run_finds_the_first_fp16_overflow(mlpkg, tmp_path):
    """x · 300 · 300 exceeds fp16's 65504 at the second Mul: fp16 compute overflows there, fp32 compute does not."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    g = helper.make_graph(
        [helper.make_node("Mul", ["x", "k"], ["a"], name="first"), helper.make_node("Mul", ["a", "k"], ["b"], name="second"),
         helper.make_node("Sub", ["b", "b"], ["y"], name="third")],
        "overflow", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 16])],
        [numpy_helper.from_array(np.array(300, np.float32), "k")])
    model = tmp_path / "overflow.onnx"
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), model)
    for compute in ("fp16", "fp32"):
        out = tmp_path / f"o{compute}.mlpackage"
        r = run([str(mlpkg), "convert", str(model), "-o", str(out), "--compute-precision", compute, "--quiet"], tmp_path)
        assert r.returncode == 0, r.stderr
    np.savez(tmp_path / "d.npz", x=np.full((1, 16), 2.0, np.float32))
    r = run([str(mlpkg), "verify", str(tmp_path / "ofp16.mlpackage"), "--run", "--inputs", str(tmp_path / "d.npz")], tmp_path)
    assert r.returncode == 1 and r.stderr.count("error:") == 1, r.stderr
    # The second Mul (ONNX output 'b') is named after its output in the program.
    assert "op mul 'b'" in r.stderr and "16 value(s) overflow" in r.stderr, r.stderr
    r = run([str(mlpkg), "verify", str(tmp_path / "ofp32.mlpackage"), "--run", "--inputs", str(tmp_path / "d.npz")], tmp_path)
    assert r.returncode == 0 and "finite" in r.stdout, r.stderr
    r = run([str(mlpkg), "verify", str(tmp_path / "ofp16.mlpackage"), "--inputs", str(tmp_path / "d.npz")], tmp_path)
    assert r.returncode == 2, r.stderr


def test_one_step_conversion_prints_output_accuracy(mlpkg, tmp_path):
    """convert -o X.mlpackage with compressed weights prints compare's cosine on its 3 random inputs (same seed: the
    same number `compare --samples 3` prints); fp16 weights, --quiet and --json print no such line."""
    onnx_model = FIXTURES / "transformer.onnx"
    out = tmp_path / "t4.mlpackage"
    r = run([str(mlpkg), "convert", str(onnx_model), "-o", str(out), "--weights", "int4", "--input-shape", "tokens=1,8,64"], tmp_path)
    assert r.returncode == 0, r.stderr
    (line,) = [l for l in r.stdout.splitlines() if l.startswith("output accuracy")]
    printed = float(line.split("output cosine ")[1].split(",")[0])
    doc = json.loads(run([str(mlpkg), "compare", str(onnx_model), str(out), "--samples", "3", "--json"], tmp_path).stdout)
    assert printed == pytest.approx(doc["outputs"][0]["cosine"], abs=1e-6) and 0.99 < printed < 1
    for extra in (["--weights", "fp16"], ["--weights", "int4", "--quiet"]):
        r = run([str(mlpkg), "convert", str(onnx_model), "-o", str(tmp_path / "x.mlpackage"), *extra, "--input-shape", "tokens=1,8,64"], tmp_path)
        assert r.returncode == 0 and "output accuracy" not in r.stdout, r.stderr


def test_export_of_a_compressed_package_prints_output_accuracy(mlpkg, tmp_path):
    pkg = tmp_path / "t8.mlpkg"
    r = run([str(mlpkg), "convert", str(FIXTURES / "transformer.onnx"), "-o", str(pkg), "--weights", "int8", "--quiet"], tmp_path)
    assert r.returncode == 0, r.stderr
    out = tmp_path / "t8.mlpackage"
    r = run([str(mlpkg), "export", str(pkg), "--format", "coreml", "-o", str(out), "--input-shape", "tokens=1,8,64"], tmp_path)
    assert r.returncode == 0, r.stderr
    (line,) = [l for l in r.stdout.splitlines() if l.startswith("output accuracy vs the package's decoded weights")]
    doc = json.loads(run([str(mlpkg), "compare", str(pkg), str(out), "--samples", "3", "--json"], tmp_path).stdout)
    assert float(line.split("output cosine ")[1].split(",")[0]) == pytest.approx(doc["outputs"][0]["cosine"], abs=1e-6)
