"""End-to-end oracle for `mlpkg convert`, `verify` and `export`.

For every fixture onnxruntime can run, and for both weight encodings:

    convert MODEL.onnx -o P.mlpkg --weights W  ->  verify P.mlpkg  ->  export P.mlpkg -o OUT.onnx

then the exported model and the ORIGINAL model are run through onnxruntime
(CPUExecutionProvider) on the same deterministic random inputs and their outputs are
compared: exactly for fp32 packages, within FP16_REL_TOL (see below) for fp16 packages.
The package itself is checked against the manifest contract (offsets, lengths, SHA-256)
independently of `verify`, and the exported initializers are compared with the original
ones (this catches damage onnxruntime cannot see, e.g. to the unused int4/complex
initializers of typed_fields.onnx).

Further tests: determinism of convert, corruption detected by verify, atomic and safe
replacement of output paths, and `inspect` on a package.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, numpy_helper

from conftest import FIXTURES, MALFORMED, run
from onnx_oracle import all_graphs, dtype_bits, dtype_name

# ---------------------------------------------------------------------------
# fixture selection

ORT_CANNOT_RUN = {"custom_domain.onnx"}
RUNNABLE = sorted(p.name for p in FIXTURES.glob("*.onnx") if p.name not in ORT_CANNOT_RUN)
WEIGHTS = ("fp32", "fp16")

# Fixtures with float32 weights of >= 16 elements: their fp16 export must contain at least
# one float16 initializer feeding a Cast to float.
HAS_BIG_FLOAT_WEIGHTS = {"cnn.onnx", "transformer.onnx", "lstm.onnx", "gru.onnx",
                         "constant_weights.onnx", "external_data.onnx"}

# fp16 tolerance, relative to the largest magnitude of the reference output:
#   |exported - original| <= FP16_REL_TOL * max|original|   (elementwise, per output)
#
# Why: storing a float32 weight as float16 (round to nearest even) changes it by a
# relative error of at most u = 2^-11 ~ 4.9e-4. For a dot product y = sum(w_i x_i) the
# change is at most u * sum|w_i x_i|, which can exceed u*|y| for one element (cancellation)
# but stays of the order of u * max|y| over a whole output; a few stacked layers add their
# errors up roughly linearly. Measured on these fixtures with every float32 weight rounded
# to float16 in Python (all dense/sparse initializers, Constant values; 9 input seeds):
# the worst smooth case is cnn.onnx at 3.7e-4 of max|output| (external_data 3.4e-4,
# gru 3.6e-4, lstm 3.3e-4, function 1.7e-4, loop_scan 1.4e-4, transformer 8.3e-5,
# constant_weights 6.4e-5, dynamic_dims 1.9e-5; duplicate_opsets, if_branches, fp16,
# typed_fields 0). 2e-3 (~4u) leaves a >5x margin.
# Caveat, deliberately not relaxed: in qdq.onnx, rounding the 1-element *quantization
# scale* x_scale to float16 moves QuantizeLinear's rounding boundaries, so an element can
# land one quantization step off; with some input seeds that gave 3.6e-3 of max|output|.
# A package that keeps quantization scales (or tiny tensors) in float32 is exact there.
FP16_REL_TOL = 2e-3
# --dequantize export vs plain fp16 export: the same float32 weight values reach the
# arithmetic (Cast(float16 -> float) is exact), so they should agree to float32 round-off.
DEQUANT_REL_TOL = 1e-6

# symbolic dims get a fixed size per name; dims with neither value nor name get 3
SYMBOL_SIZES = {"batch": 2, "seq": 3}
OTHER_SYMBOL_SIZE = 2
UNKNOWN_DIM_SIZE = 3

# ---------------------------------------------------------------------------
# CLI helpers


def cli(mlpkg: Path, *args: Any, cwd: Path) -> Any:
    return run([str(mlpkg), *map(str, args)], cwd=cwd)


def describe(proc) -> str:
    return (f"`{' '.join(map(str, proc.args))}` exited {proc.returncode}\n"
            f"stdout: {proc.stdout[:2000]!r}\nstderr: {proc.stderr[:2000]!r}")


def assert_ok(proc) -> None:
    assert proc.returncode == 0, describe(proc)


def error_line(proc) -> str:
    """Asserts exit code exactly 1 and exactly one stderr line starting with `error:`;
    returns that line."""
    rc = proc.returncode
    assert rc >= 0, f"killed by signal {-rc} (crash)\n{describe(proc)}"
    assert rc == 1, f"expected exit code 1\n{describe(proc)}"
    err = proc.stderr
    body = err[:-1] if err.endswith("\n") else err
    assert body and "\n" not in body, f"stderr must be exactly one line\n{describe(proc)}"
    assert body.startswith("error:"), f"stderr must start with 'error:'\n{describe(proc)}"
    assert "Traceback" not in body and "Fatal error" not in body, describe(proc)
    return body


def one_json(proc) -> Any:
    try:
        return json.loads(proc.stdout)
    except json.JSONDecodeError as e:
        pytest.fail(f"stdout is not one JSON document ({e})\n{describe(proc)}", pytrace=False)


def snapshot(folder: Path) -> dict[str, bytes | str]:
    """Relative path -> bytes (files), 'dir' or 'link:TARGET', for everything under folder,
    hidden entries included."""
    out: dict[str, bytes | str] = {}
    for root, dirs, files in os.walk(folder):
        for d in dirs:
            p = Path(root, d)
            out[str(p.relative_to(folder))] = f"link:{os.readlink(p)}" if p.is_symlink() else "dir"
        for f in files:
            p = Path(root, f)
            out[str(p.relative_to(folder))] = (f"link:{os.readlink(p)}" if p.is_symlink()
                                               else p.read_bytes())
    return out


# ---------------------------------------------------------------------------
# cached convert / export (one run per fixture and mode for the whole module)


class Work:
    def __init__(self, mlpkg: Path, root: Path):
        self.mlpkg = mlpkg
        self.root = root
        self.packages: dict[tuple[str, str], Path] = {}
        self.exports: dict[tuple[str, str, bool], Path] = {}
        self.verified: set[tuple[str, str]] = set()

    def package(self, name: str, weights: str) -> Path:
        key = (name, weights)
        if key not in self.packages:
            out = self.root / "pkg" / weights / (Path(name).stem + ".mlpkg")
            out.parent.mkdir(parents=True, exist_ok=True)
            # --no-fold: the round trip must give back the source's graph; BatchNormalization folding (cnn,
            # bn_fold) changes it on purpose and is checked against onnxruntime in test_compression.
            proc = cli(self.mlpkg, "convert", FIXTURES / name, "-o", out, "--weights", weights, "--no-fold",
                       cwd=self.root)
            assert_ok(proc)
            assert out.is_dir(), f"convert exited 0 but {out} is not a directory"
            self.packages[key] = out
        return self.packages[key]

    def verify(self, name: str, weights: str) -> None:
        key = (name, weights)
        if key not in self.verified:
            pkg = self.package(name, weights)
            assert_ok(cli(self.mlpkg, "verify", pkg, cwd=self.root))
            self.verified.add(key)

    def export(self, name: str, weights: str, dequantize: bool = False) -> Path:
        key = (name, weights, dequantize)
        if key not in self.exports:
            self.verify(name, weights)
            pkg = self.package(name, weights)
            # own folder per export: the export may write files next to the model
            folder = self.root / "export" / f"{Path(name).stem}.{weights}{'.deq' if dequantize else ''}"
            folder.mkdir(parents=True, exist_ok=True)
            out = folder / "model.onnx"
            args = ["export", pkg, "-o", out] + (["--dequantize"] if dequantize else [])
            proc = cli(self.mlpkg, *args, cwd=self.root)
            assert_ok(proc)
            assert out.is_file(), f"export exited 0 but wrote no {out}"
            self.exports[key] = out
        return self.exports[key]


@pytest.fixture(scope="module")
def work(mlpkg, tmp_path_factory) -> Work:
    return Work(mlpkg, tmp_path_factory.mktemp("roundtrip"))


def load_manifest(pkg: Path) -> dict:
    raw = (pkg / "manifest.json").read_text(encoding="utf-8")
    return json.loads(raw)


# ---------------------------------------------------------------------------
# running models


def session(path: Path) -> ort.InferenceSession:
    so = ort.SessionOptions()
    so.log_severity_level = 3  # typed_fields.onnx: unused int4/complex initializers warn
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def feed_sets(name: str) -> list[dict[str, np.ndarray]]:
    """Deterministic inputs built from the ORIGINAL model's graph inputs (those not backed
    by an initializer). if_branches.onnx is run once with cond=True and once with False."""
    model = onnx.load(str(FIXTURES / name), load_external_data=False)
    inits = {t.name for t in model.graph.initializer}
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    feeds: dict[str, np.ndarray] = {}
    for vi in model.graph.input:
        if vi.name in inits:
            continue
        assert vi.type.HasField("tensor_type"), f"{name}: input {vi.name} is not a tensor"
        tt = vi.type.tensor_type
        assert tt.HasField("shape"), f"{name}: input {vi.name} has unknown rank"
        shape = []
        for d in tt.shape.dim:
            if d.HasField("dim_value"):
                shape.append(d.dim_value)
            elif d.HasField("dim_param"):
                shape.append(SYMBOL_SIZES.get(d.dim_param, OTHER_SYMBOL_SIZE))
            else:
                shape.append(UNKNOWN_DIM_SIZE)
        et = tt.elem_type
        if et == TensorProto.FLOAT:
            v = rng.standard_normal(shape).astype(np.float32)
        elif et == TensorProto.FLOAT16:
            v = rng.standard_normal(shape).astype(np.float16)
        elif et == TensorProto.INT64:
            v = rng.integers(0, 5, size=shape, dtype=np.int64)
        elif et == TensorProto.BOOL:
            v = rng.random(shape) < 0.5
            v = np.asarray(v, dtype=np.bool_)
        else:
            raise AssertionError(f"{name}: no input generator for {dtype_name(et)} ({vi.name})")
        feeds[vi.name] = v
    if name == "if_branches.onnx":
        return [{**feeds, "cond": np.array(c, dtype=np.bool_)} for c in (True, False)]
    return [feeds]


def output_names(name: str) -> list[str]:
    model = onnx.load(str(FIXTURES / name), load_external_data=False)
    return [o.name for o in model.graph.output]


_reference: dict[str, list[list[Any]]] = {}


def reference_outputs(name: str) -> list[list[Any]]:
    if name not in _reference:
        sess = session(FIXTURES / name)
        outs = output_names(name)
        _reference[name] = [sess.run(outs, f) for f in feed_sets(name)]
    return _reference[name]


def run_model(path: Path, name: str) -> list[list[Any]]:
    sess = session(path)
    outs = output_names(name)
    return [sess.run(outs, f) for f in feed_sets(name)]


def compare(exp: Any, act: Any, where: str, float_tol: float | None,
            errors: list[str], stats: list[tuple[str, float, float]] | None = None) -> None:
    """float_tol None: exact (NaN-aware). Otherwise floats within float_tol * max|exp|;
    non-float values always exact."""
    if exp is None or act is None:
        if (exp is None) != (act is None):
            errors.append(f"{where}: expected {type(exp).__name__}, got {type(act).__name__}")
        return
    if isinstance(exp, list) or isinstance(act, list):
        if not (isinstance(exp, list) and isinstance(act, list)) or len(exp) != len(act):
            errors.append(f"{where}: sequence mismatch ({type(exp).__name__} len "
                          f"{len(exp) if isinstance(exp, list) else '-'} vs {type(act).__name__} "
                          f"len {len(act) if isinstance(act, list) else '-'})")
            return
        for i, (e, a) in enumerate(zip(exp, act)):
            compare(e, a, f"{where}[{i}]", float_tol, errors, stats)
        return
    exp, act = np.asarray(exp), np.asarray(act)
    if exp.dtype != act.dtype or exp.shape != act.shape:
        errors.append(f"{where}: dtype/shape {act.dtype}{list(act.shape)}, "
                      f"expected {exp.dtype}{list(exp.shape)}")
        return
    if exp.dtype.kind in "fc":
        if float_tol is None:
            if not np.array_equal(exp, act, equal_nan=True):
                d = np.abs(exp.astype(np.float64) - act.astype(np.float64))
                errors.append(f"{where}: not exactly equal (max abs diff "
                              f"{np.nanmax(d) if d.size else 0:.3e})")
            return
        e64, a64 = exp.astype(np.float64), act.astype(np.float64)
        finite = np.isfinite(e64)
        if not np.array_equal(e64[~finite], a64[~finite], equal_nan=True):
            errors.append(f"{where}: NaN/inf elements differ")
        if not np.isfinite(a64[finite]).all():
            errors.append(f"{where}: non-finite values where the original is finite")
            return
        if not finite.any():
            return
        diff = np.abs(e64[finite] - a64[finite])
        scale = float(np.abs(e64[finite]).max())
        max_abs = float(diff.max())
        rel = max_abs / scale if scale else (0.0 if max_abs == 0 else math.inf)
        if stats is not None:
            stats.append((where, max_abs, rel))
        if max_abs > float_tol * scale:
            errors.append(f"{where}: max abs diff {max_abs:.3e} = {rel:.3e} of max|output| "
                          f"{scale:.3e}, tolerance {float_tol:.1e}")
        return
    if not np.array_equal(exp, act):
        errors.append(f"{where}: not equal ({exp.dtype})")


def compare_runs(name: str, exp_runs, act_runs, float_tol, stats=None) -> list[str]:
    errors: list[str] = []
    outs = output_names(name)
    for r, (er, ar) in enumerate(zip(exp_runs, act_runs)):
        tag = f"run {r}" if len(exp_runs) > 1 else ""
        for o, e, a in zip(outs, er, ar):
            compare(e, a, f"{tag} {o}".strip(), float_tol, errors, stats)
    return errors


# ---------------------------------------------------------------------------
# model structure helpers


def graphs(model: onnx.ModelProto):
    return list(all_graphs(model.graph))


def dense_initializers(model: onnx.ModelProto) -> dict[str, TensorProto]:
    out: dict[str, TensorProto] = {}
    for g in graphs(model):
        for t in g.initializer:
            out[t.name] = t
    return out


def cast_to_float_inputs(model: onnx.ModelProto) -> set[str]:
    """Names read by a Cast(to=FLOAT) node anywhere."""
    names = set()
    for g in graphs(model):
        for n in g.node:
            if n.op_type == "Cast" and n.domain in ("", "ai.onnx"):
                to = next((a.i for a in n.attribute if a.name == "to"), None)
                if to == TensorProto.FLOAT and n.input:
                    names.add(n.input[0])
    return names


def float16_constants(model: onnx.ModelProto) -> set[str]:
    """Outputs of Constant nodes (any graph) whose `value` is a float16 tensor."""
    out = set()
    for g in graphs(model):
        for n in g.node:
            if n.op_type == "Constant" and n.domain in ("", "ai.onnx"):
                for a in n.attribute:
                    if a.name == "value" and a.t.data_type == TensorProto.FLOAT16:
                        out.update(n.output)
    return out


def array_of(t: TensorProto, base: Path) -> np.ndarray:
    return numpy_helper.to_array(t, base_dir=str(base))


def same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    if a.dtype != b.dtype or a.shape != b.shape:
        return False
    if a.dtype == object:
        return [x for x in a.ravel()] == [x for x in b.ravel()]
    return a.tobytes() == b.tobytes()


def checker_ok(path: Path, full: bool) -> str | None:
    """None if onnx.checker accepts the model, else the first line of its complaint."""
    try:
        onnx.checker.check_model(str(path), full_check=full)
        return None
    except Exception as e:  # noqa: BLE001
        return str(e).splitlines()[0] if str(e) else type(e).__name__


# ---------------------------------------------------------------------------
# 1. round trip


def test_runnable_fixture_set():
    assert len(RUNNABLE) >= 14, f"fixtures missing (run fixtures/generate.py): {RUNNABLE}"


@pytest.mark.parametrize("weights", WEIGHTS)
@pytest.mark.parametrize("name", RUNNABLE)
def test_convert_then_verify(work, name, weights):
    """convert exits 0 and `verify` accepts the fresh package (exit 0)."""
    work.verify(name, weights)


@pytest.mark.parametrize("weights", WEIGHTS)
@pytest.mark.parametrize("name", RUNNABLE)
def test_manifest_layout(work, name, weights):
    """manifest.json and weights.bin agree with the format contract, checked here without
    `mlpkg verify`: header keys, offsets aligned to 64, blobs inside weights.bin and not
    overlapping, SHA-256 of each blob, lengths consistent with dtype/shape/encoding."""
    pkg = work.package(name, weights)
    for f in ("manifest.json", "weights.bin", "report.json"):
        assert (pkg / f).is_file(), f"{pkg} has no {f}"
    json.loads((pkg / "report.json").read_text(encoding="utf-8"))
    m = load_manifest(pkg)
    keys = list(m)
    assert keys[:2] == ["format", "formatVersion"], f"first manifest keys are {keys[:2]}"
    assert m["format"] == "mlpkg" and m["formatVersion"] == "1.0", (m["format"], m["formatVersion"])
    tensors = m.get("tensors")
    assert isinstance(tensors, list), "manifest has no tensors list"
    blob = (pkg / "weights.bin").read_bytes()
    errors = []
    spans = []
    names = [t.get("name") for t in tensors]
    if len(set(names)) != len(names):
        errors.append(f"duplicate tensor names: {sorted(n for n in set(names) if names.count(n) > 1)}")
    for t in tensors:
        n = t.get("name")
        off, ln, enc = t.get("offset"), t.get("length"), (t.get("encoding") or {}).get("kind")
        if not (isinstance(off, int) and isinstance(ln, int) and off >= 0 and ln >= 0):
            errors.append(f"{n}: bad offset/length {off!r}/{ln!r}")
            continue
        if off % 64:
            errors.append(f"{n}: offset {off} is not a multiple of 64")
        if off + ln > len(blob):
            errors.append(f"{n}: [{off}, {off + ln}) is past the end of weights.bin ({len(blob)})")
            continue
        spans.append((off, off + ln, n))
        digest = hashlib.sha256(blob[off:off + ln]).hexdigest()
        if str(t.get("sha256", "")).lower() != digest:
            errors.append(f"{n}: sha256 {t.get('sha256')!r} != {digest}")
        shape = t.get("shape")
        if not (isinstance(shape, list) and all(isinstance(d, int) and d >= 0 for d in shape)):
            errors.append(f"{n}: bad shape {shape!r}")
            continue
        count = math.prod(shape)
        dt = t.get("dtype")
        if enc == "float16":
            if dt != "float":
                errors.append(f"{n}: float16 encoding of dtype {dt!r} (only float32 expected)")
            if weights != "fp16":
                errors.append(f"{n}: float16 encoding in an fp32 package")
            if ln != 2 * count:
                errors.append(f"{n}: float16 length {ln} != 2 * {count}")
        elif enc == "raw":
            if dt != "string":
                try:
                    want = (count * dtype_bits(dt) + 7) // 8
                except KeyError:
                    errors.append(f"{n}: unknown dtype {dt!r}")
                    continue
                if ln != want:
                    errors.append(f"{n}: raw length {ln} != {want} for {dt}{shape}")
        else:
            errors.append(f"{n}: unknown encoding {t.get('encoding')!r}")
    spans.sort()
    for (s0, e0, n0), (s1, e1, n1) in zip(spans, spans[1:]):
        if s1 < e0:
            errors.append(f"blobs of {n0} and {n1} overlap")
    orig = onnx.load(str(FIXTURES / name), load_external_data=False)
    missing = sorted({t.name for t in orig.graph.initializer} - set(names))
    if missing:
        errors.append(f"main-graph initializers missing from the manifest: {missing}")
    if weights == "fp16" and name in HAS_BIG_FLOAT_WEIGHTS:
        if not any((t.get("encoding") or {}).get("kind") == "float16" for t in tensors):
            errors.append("fp16 package without any float16-encoded tensor")
    assert not errors, f"{name} ({weights}):\n  " + "\n  ".join(errors)


@pytest.mark.parametrize("weights", WEIGHTS)
@pytest.mark.parametrize("name", RUNNABLE)
def test_roundtrip_outputs(work, name, weights):
    """convert -> verify -> export, then run the export and the original in onnxruntime on
    the same inputs. fp32: every output exactly equal (NaN-aware). fp16: float outputs
    within 2e-3 * max|original output| (FP16_REL_TOL, justified at its definition);
    non-float outputs exactly equal."""
    exported = work.export(name, weights)
    expected = reference_outputs(name)
    actual = run_model(exported, name)
    tol = None if weights == "fp32" else FP16_REL_TOL
    stats: list[tuple[str, float, float]] = []
    errors = compare_runs(name, expected, actual, tol, stats)
    if weights == "fp16":
        for where, a, r in stats:
            print(f"fp16 error {name} {where}: max abs {a:.3e}, rel to max {r:.3e}")
    assert not errors, f"{name} ({weights}) exported model differs:\n  " + "\n  ".join(errors)


@pytest.mark.parametrize("name", RUNNABLE)
def test_dequantize_matches_fp16_export(work, name):
    """`export --dequantize` of an fp16 package computes with the same float32 weights as
    the plain fp16 export (float16 initializer + Cast): outputs within 1e-6 relative."""
    plain = run_model(work.export(name, "fp16"), name)
    deq = run_model(work.export(name, "fp16", dequantize=True), name)
    errors = compare_runs(name, plain, deq, DEQUANT_REL_TOL)
    assert not errors, f"{name}: --dequantize export differs from fp16 export:\n  " + "\n  ".join(errors)


EXPORT_MODES = [("fp32", False), ("fp16", False), ("fp16", True)]


@pytest.mark.parametrize("weights,dequantize", EXPORT_MODES,
                         ids=["fp32", "fp16", "fp16-dequantize"])
@pytest.mark.parametrize("name", RUNNABLE)
def test_export_passes_checker(work, name, weights, dequantize):
    """The export passes onnx.checker.check_model (full_check False, and True) whenever the
    original fixture does."""
    exported = work.export(name, weights, dequantize)
    errors = []
    for full in (False, True):
        if checker_ok(FIXTURES / name, full) is None:
            why = checker_ok(exported, full)
            if why is not None:
                errors.append(f"full_check={full}: {why}")
    assert not errors, f"{name} ({weights}{' --dequantize' if dequantize else ''}):\n  " + "\n  ".join(errors)


@pytest.mark.parametrize("name", RUNNABLE)
def test_fp16_export_structure(work, name):
    """fp16 export: float16 tensors feed Cast(to=float) — initializers, or the values of Constant
    nodes, which stay Constant nodes (at least one where the original has float32 weights of
    >= 16 elements). --dequantize export: no float16 tensor unless the original had that one."""
    orig = onnx.load(str(FIXTURES / name), load_external_data=False)
    orig_f16 = {n for n, t in dense_initializers(orig).items() if t.data_type == TensorProto.FLOAT16}

    plain = onnx.load(str(work.export(name, "fp16")), load_external_data=False)
    f16 = {n for n, t in dense_initializers(plain).items() if t.data_type == TensorProto.FLOAT16}
    casted = f16 & cast_to_float_inputs(plain)
    if name in HAS_BIG_FLOAT_WEIGHTS:
        const_casted = sorted(float16_constants(plain) & cast_to_float_inputs(plain))
        assert casted or const_casted, (f"{name}: fp16 export has no float16 initializer feeding Cast(to=float) "
                        f"(float16 initializers: {sorted(f16)}; float16 Constant nodes feeding "
                        f"Cast: {const_casted})")

    deq = onnx.load(str(work.export(name, "fp16", dequantize=True)), load_external_data=False)
    deq_f16 = {n for n, t in dense_initializers(deq).items() if t.data_type == TensorProto.FLOAT16}
    extra = sorted(deq_f16 - orig_f16)
    assert not extra, f"{name}: --dequantize export still has float16 initializers {extra}"
    # the same for float16 tensors held by Constant nodes
    extra = sorted(float16_constants(deq) - float16_constants(orig))
    assert not extra, f"{name}: --dequantize export still has float16 Constant values {extra}"


@pytest.mark.parametrize("weights,dequantize", [("fp32", False), ("fp16", True)],
                         ids=["fp32", "fp16-dequantize"])
@pytest.mark.parametrize("name", RUNNABLE)
def test_export_initializer_values(work, name, weights, dequantize):
    """Every dense initializer of the original (all graphs) comes back under its name with
    its dtype and shape: bit-identical from an fp32 package; from an fp16 package exported
    with --dequantize, float32 tensors stored as float16 come back as float32(float16(x))
    and all others bit-identical. Covers tensors onnxruntime never reads (typed_fields'
    unused int4/complex initializers)."""
    orig_path = FIXTURES / name
    orig = onnx.load(str(orig_path), load_external_data=False)
    exported_path = work.export(name, weights, dequantize)
    exp_model = onnx.load(str(exported_path), load_external_data=False)
    got = dense_initializers(exp_model)
    encodings = {t["name"]: (t.get("encoding") or {}).get("kind")
                 for t in load_manifest(work.package(name, weights))["tensors"]}
    errors = []
    for n, t in dense_initializers(orig).items():
        if n not in got:
            errors.append(f"{n}: missing from the export")
            continue
        a = array_of(t, orig_path.parent)
        b = array_of(got[n], exported_path.parent)
        if encodings.get(n) == "float16":
            a = a.astype(np.float16).astype(np.float32)
        if not same_bits(a, b):
            errors.append(f"{n}: {b.dtype}{list(b.shape)} differs from expected {a.dtype}{list(a.shape)}"
                          f" (manifest encoding {encodings.get(n)})")
    assert not errors, f"{name} ({weights}{' --dequantize' if dequantize else ''}):\n  " + "\n  ".join(errors)


# ---------------------------------------------------------------------------
# 2. determinism

PACKAGE_FILES = ("manifest.json", "weights.bin", "report.json")


@pytest.mark.parametrize("name", ["cnn.onnx", "transformer.onnx", "yolo_like.onnx", "transformer_dynamic.onnx"])
def test_convert_is_deterministic(mlpkg, tmp_path, name):
    outs = []
    for i in (1, 2):
        out = tmp_path / f"run{i}" / "model.mlpkg"
        out.parent.mkdir()
        assert_ok(cli(mlpkg, "convert", FIXTURES / name, "-o", out, "--weights", "fp16", cwd=tmp_path))
        outs.append(out)
    a, b = outs
    assert sorted(os.listdir(a)) == sorted(os.listdir(b))
    for f in PACKAGE_FILES:
        assert (a / f).read_bytes() == (b / f).read_bytes(), f"{name}: {f} differs between two converts"


# ---------------------------------------------------------------------------
# 3. corruption


@pytest.fixture()
def cnn_pkg(mlpkg, tmp_path) -> Path:
    out = tmp_path / "cnn.mlpkg"
    assert_ok(cli(mlpkg, "convert", FIXTURES / "cnn.onnx", "-o", out, "--weights", "fp32", cwd=tmp_path))
    return out


def test_verify_json_on_sound_package(mlpkg, cnn_pkg, tmp_path):
    proc = cli(mlpkg, "verify", cnn_pkg, "--json", cwd=tmp_path)
    assert_ok(proc)
    doc = one_json(proc)
    assert doc.get("ok") is True and doc.get("faults") == [], doc


def test_flipped_byte_names_tensor(mlpkg, cnn_pkg, tmp_path):
    tensors = load_manifest(cnn_pkg)["tensors"]
    assert len(tensors) >= 2
    t = tensors[1]
    name = t["name"]
    assert t["length"] > 0
    pos = t["offset"] + t["length"] // 2
    wb = cnn_pkg / "weights.bin"
    data = bytearray(wb.read_bytes())
    data[pos] ^= 0xFF
    wb.write_bytes(bytes(data))

    line = error_line(cli(mlpkg, "verify", cnn_pkg, cwd=tmp_path))
    assert name in line, f"error line must name tensor {name!r}: {line!r}"

    proc = cli(mlpkg, "verify", cnn_pkg, "--json", cwd=tmp_path)
    assert proc.returncode == 1, describe(proc)
    doc = one_json(proc)
    assert doc.get("ok") is False, doc
    faults = doc.get("faults")
    assert isinstance(faults, list) and faults, doc
    for f in faults:
        assert isinstance(f, dict) and isinstance(f.get("message"), str), f
        assert f.get("tensor") is None or isinstance(f.get("tensor"), str), f
    assert any(f.get("tensor") == name for f in faults), f"no fault with tensor {name!r}: {faults}"


def test_truncated_weights(mlpkg, cnn_pkg, tmp_path):
    wb = cnn_pkg / "weights.bin"
    data = wb.read_bytes()
    wb.write_bytes(data[:len(data) // 2])
    error_line(cli(mlpkg, "verify", cnn_pkg, cwd=tmp_path))
    proc = cli(mlpkg, "verify", cnn_pkg, "--json", cwd=tmp_path)
    assert proc.returncode == 1, describe(proc)
    assert one_json(proc).get("ok") is False


def set_format_version(pkg: Path, version: str) -> None:
    mf = pkg / "manifest.json"
    text = mf.read_text(encoding="utf-8")
    new, n = re.subn(r'("formatVersion"\s*:\s*)"1\.0"', lambda m: f'{m.group(1)}"{version}"', text, count=1)
    assert n == 1, f'no "formatVersion": "1.0" in {mf}'
    mf.write_text(new, encoding="utf-8")


def test_major_version_refused(mlpkg, cnn_pkg, tmp_path):
    set_format_version(cnn_pkg, "2.0")
    line = error_line(cli(mlpkg, "verify", cnn_pkg, cwd=tmp_path))
    assert "2.0" in line, f"error must mention the version 2.0: {line!r}"
    error_line(cli(mlpkg, "inspect", cnn_pkg, cwd=tmp_path))
    out = tmp_path / "out.onnx"
    error_line(cli(mlpkg, "export", cnn_pkg, "-o", out, cwd=tmp_path))
    assert not out.exists(), "export refused the package but still wrote the output"


def test_newer_minor_version_accepted(mlpkg, cnn_pkg, tmp_path):
    set_format_version(cnn_pkg, "1.7")
    assert_ok(cli(mlpkg, "verify", cnn_pkg, cwd=tmp_path))


def test_manifest_not_json(mlpkg, cnn_pkg, tmp_path):
    (cnn_pkg / "manifest.json").write_text('{"format": "mlpkg", "formatVersion": "1.0", "tens', encoding="utf-8")
    error_line(cli(mlpkg, "verify", cnn_pkg, cwd=tmp_path))


# ---------------------------------------------------------------------------
# 4. atomicity and safety


def test_convert_replaces_existing_package(mlpkg, tmp_path):
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    pkg = out_dir / "model.mlpkg"
    assert_ok(cli(mlpkg, "convert", FIXTURES / "cnn.onnx", "-o", pkg, "--weights", "fp32", cwd=tmp_path))
    (pkg / "stale-marker.txt").write_text("from the old package")
    assert_ok(cli(mlpkg, "convert", FIXTURES / "transformer.onnx", "-o", pkg, "--weights", "fp32",
                  cwd=tmp_path))
    assert not (pkg / "stale-marker.txt").exists(), "old package content survived the replacement"
    names = {t["name"] for t in load_manifest(pkg)["tensors"]}
    assert "conv1.weight" not in names and "q_proj.weight" in names, sorted(names)
    assert_ok(cli(mlpkg, "verify", pkg, cwd=tmp_path))
    fresh = tmp_path / "fresh.mlpkg"
    assert_ok(cli(mlpkg, "convert", FIXTURES / "transformer.onnx", "-o", fresh, "--weights", "fp32",
                  cwd=tmp_path))
    assert snapshot(pkg) == snapshot(fresh), "replaced package differs from a fresh convert"
    assert sorted(os.listdir(out_dir)) == ["model.mlpkg"], f"leftovers: {sorted(os.listdir(out_dir))}"


def test_failed_convert_keeps_existing_package(mlpkg, tmp_path):
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    pkg = out_dir / "model.mlpkg"
    assert_ok(cli(mlpkg, "convert", FIXTURES / "cnn.onnx", "-o", pkg, "--weights", "fp32", cwd=tmp_path))
    before = snapshot(out_dir)
    proc = cli(mlpkg, "convert", MALFORMED / "truncated.onnx", "-o", pkg, "--weights", "fp32",
               cwd=tmp_path)
    error_line(proc)
    after = snapshot(out_dir)
    assert sorted(after) == sorted(before), (f"output folder listing changed: added "
                                             f"{sorted(set(after) - set(before))}, removed "
                                             f"{sorted(set(before) - set(after))}")
    changed = sorted(k for k in before if before[k] != after[k])
    assert not changed, f"existing package changed: {changed}"


def test_output_is_regular_file(mlpkg, tmp_path):
    target = tmp_path / "notes.mlpkg"
    content = b"not a package\n"
    target.write_bytes(content)
    error_line(cli(mlpkg, "convert", FIXTURES / "cnn.onnx", "-o", target, "--weights", "fp32",
                   cwd=tmp_path))
    assert target.is_file() and target.read_bytes() == content, "the existing file was changed"
    assert sorted(os.listdir(tmp_path)) == ["notes.mlpkg"], f"leftovers: {sorted(os.listdir(tmp_path))}"


def test_output_folder_missing(mlpkg, tmp_path):
    out = tmp_path / "no" / "such" / "dir" / "model.mlpkg"
    error_line(cli(mlpkg, "convert", FIXTURES / "cnn.onnx", "-o", out, "--weights", "fp32", cwd=tmp_path))
    assert not (tmp_path / "no").exists(), "convert created the missing folders"


def test_convert_json_is_one_document(mlpkg, tmp_path):
    proc = cli(mlpkg, "convert", FIXTURES / "cnn.onnx", "-o", tmp_path / "m.mlpkg", "--weights", "fp16",
               "--json", cwd=tmp_path)
    assert_ok(proc)
    one_json(proc)


@pytest.mark.parametrize("args", [
    ["convert", "cnn.onnx", "--weights", "fp16"],                      # no -o
    ["convert", "cnn.onnx", "-o", "x.mlpkg", "--weights", "fp8"],      # bad --weights value
    ["verify"],                                                        # no package
    ["export", "x.mlpkg"],                                             # no -o
], ids=["convert-no-o", "convert-bad-weights", "verify-no-arg", "export-no-o"])
def test_usage_errors_exit_2(mlpkg, tmp_path, args):
    args = [FIXTURES / a if a == "cnn.onnx" else a for a in args]
    proc = cli(mlpkg, *args, cwd=tmp_path)
    assert proc.returncode == 2, describe(proc)
    assert os.listdir(tmp_path) == [], f"usage error left files: {os.listdir(tmp_path)}"


# ---------------------------------------------------------------------------
# 5. inspect on a package

INSPECT_FIELDS = ("opCounts", "nodes", "inputs", "outputs")


@pytest.mark.parametrize("weights", WEIGHTS)
@pytest.mark.parametrize("name", ["cnn.onnx", "if_branches.onnx"])
def test_inspect_package_matches_source(work, name, weights):
    src = cli(work.mlpkg, "inspect", FIXTURES / name, "--json", cwd=work.root)
    assert_ok(src)
    pkg = cli(work.mlpkg, "inspect", work.package(name, weights), "--json", cwd=work.root)
    assert_ok(pkg)
    a, b = one_json(src), one_json(pkg)
    diffs = [f"{k}: package {b.get(k, '<missing>')!r} != source {a.get(k)!r}"
             for k in INSPECT_FIELDS if a.get(k) != b.get(k, "<missing>")]
    assert not diffs, f"{name} ({weights}):\n  " + "\n  ".join(diffs)


@pytest.mark.parametrize("weights,dims", [("fp16", [2**62]), ("fp32", [2**61]), ("int8", [2**62, 4])],
                         ids=["float16-2^62", "raw-2^61", "int8-2^64"])
def test_shape_whose_size_overflows_is_a_fault(mlpkg, tmp_path, weights, dims):
    """Issue 16 items 4 and 5: a tensor whose byte size does not fit in 64 bits trapped (float16) or passed verify
    (raw, the length check was skipped). Every reader must name the tensor and exit 1."""
    pkg = tmp_path / "p.mlpkg"
    assert_ok(cli(mlpkg, "convert", FIXTURES / "cnn.onnx", "-o", pkg, "--weights", weights, cwd=tmp_path))
    manifest = load_manifest(pkg)
    kind = {"fp16": "float16", "fp32": "raw", "int8": "linear"}[weights]
    victim = next(t for t in manifest["tensors"] if (t.get("encoding") or {}).get("kind") == kind and t["dtype"] == "float")
    victim["shape"] = dims
    (pkg / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    for argv in (["verify", pkg], ["inspect", pkg], ["export", pkg, "-o", tmp_path / "o.onnx"], ["audit", pkg],
                 ["export", pkg, "--format", "coreml", "-o", tmp_path / "o.mlpackage"]):
        line = error_line(cli(mlpkg, *argv, cwd=tmp_path))
        assert victim["name"] in line or "tensor" in line, line
    assert not (tmp_path / "o.onnx").exists() and not (tmp_path / "o.mlpackage").exists()


def test_symlinked_weights_are_refused(mlpkg, cnn_pkg, tmp_path):
    """Issue 16 item 9: a symlinked weights.bin was followed out of the package."""
    outside = tmp_path / "elsewhere.bin"
    (cnn_pkg / "weights.bin").rename(outside)
    (cnn_pkg / "weights.bin").symlink_to(outside)
    for argv in (["verify", cnn_pkg], ["export", cnn_pkg, "-o", tmp_path / "o.onnx"], ["inspect", cnn_pkg]):
        line = error_line(cli(mlpkg, *argv, cwd=tmp_path))
        assert "weights.bin" in line and "symbolic link" in line, line


def test_oversized_report_is_refused_unread(mlpkg, cnn_pkg, tmp_path):
    """Issue 16 item 6: verify read report.json whole with no cap (a sparse 1 GiB file cost 1.6 GB of memory)."""
    report = cnn_pkg / "report.json"
    with open(report, "r+b") as f:
        f.truncate(1 << 30)  # sparse: no disk used
    proc = cli(mlpkg, "verify", cnn_pkg, cwd=tmp_path)
    assert proc.returncode == 1 and "report.json" in proc.stderr and "limit" in proc.stderr, describe(proc)


def test_duplicate_manifest_key_is_an_error(mlpkg, cnn_pkg, tmp_path):
    """Issue 16 item 9: duplicate JSON keys were accepted (first wins; most readers take the last)."""
    mf = cnn_pkg / "manifest.json"
    text = mf.read_text(encoding="utf-8")
    # Repeat the first tensor's name key with another value, escaped so a naive text comparison would miss it.
    new, n = re.subn(r'("name"\s*:\s*"[^"]*")', r'\1,"n\\u0061me":"other"', text, count=1)
    assert n == 1
    mf.write_text(new, encoding="utf-8")
    for argv in (["verify", cnn_pkg], ["inspect", cnn_pkg], ["export", cnn_pkg, "-o", tmp_path / "o.onnx"]):
        line = error_line(cli(mlpkg, *argv, cwd=tmp_path))
        assert "twice" in line and "'name'" in line, line


def test_overlapping_blobs_are_refused_by_every_reader(mlpkg, tmp_path):
    """Issue 16 item 9: overlapping blobs were refused by verify but accepted by export, inspect and audit."""
    pkg = tmp_path / "p.mlpkg"
    assert_ok(cli(mlpkg, "convert", FIXTURES / "cnn.onnx", "-o", pkg, "--weights", "fp32", cwd=tmp_path))
    manifest = load_manifest(pkg)
    tensors = sorted(manifest["tensors"], key=lambda t: t["length"])
    small, big = tensors[0], tensors[-1]
    # Point the smallest tensor into the biggest one's bytes (with a matching checksum, so only the overlap is wrong).
    import hashlib
    data = (pkg / "weights.bin").read_bytes()
    small["offset"] = big["offset"]
    small["sha256"] = hashlib.sha256(data[big["offset"]:big["offset"] + small["length"]]).hexdigest()
    (pkg / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    for argv in (["verify", pkg], ["inspect", pkg], ["audit", pkg], ["export", pkg, "-o", tmp_path / "o.onnx"]):
        line = error_line(cli(mlpkg, *argv, cwd=tmp_path))
        assert "overlap" in line, line


def test_outputs_never_land_inside_their_input(mlpkg, cnn_pkg, tmp_path):
    """Issue 16 item 9: `export -o PKG/weights.bin` overwrote the package being read."""
    before = (cnn_pkg / "weights.bin").read_bytes()
    for argv in (["export", cnn_pkg, "-o", cnn_pkg / "weights.bin"], ["export", cnn_pkg, "-o", cnn_pkg / "new.onnx"],
                 ["audit", cnn_pkg, "--format", "json", "-o", cnn_pkg / "report.json"],
                 ["export", cnn_pkg, "--format", "coreml", "-o", cnn_pkg / "M.mlpackage"]):
        line = error_line(cli(mlpkg, *argv, cwd=tmp_path))
        assert "inside the input" in line, line
    assert (cnn_pkg / "weights.bin").read_bytes() == before
    assert_ok(cli(mlpkg, "verify", cnn_pkg, cwd=tmp_path))
