"""Crafted packages and ONNX files whose structure every reader must check before it reads by index (issue 28):
sparse tensors whose indices do not fit their values or their dense shape, lut tables shared by groups that do not
divide axis 0, and subgraphs nested deeper than ONNX readers can read back. Every command that opens such a file
exits 1 with one `error:` line naming the file and the tensor or node; none traps, none writes an output."""

from __future__ import annotations

import copy
import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from conftest import run

TRAP_MARKERS = ("Fatal error", "mlpkg stopped", "internal error")


def one_error_line(proc, *culprits: str) -> str:
    """Exit 1 and exactly one `error:` line on stderr, naming every culprit; never a trap."""
    assert proc.returncode == 1, (proc.returncode, proc.stderr[-2000:])
    assert not any(m in proc.stderr for m in TRAP_MARKERS), proc.stderr[-2000:]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), proc.stderr[-2000:]
    for c in culprits:
        assert c in lines[0], (c, lines[0])
    return lines[0]


def save_model(path: Path, nodes, inputs, outputs, inits=(), sparse=(), opset: int = 17) -> Path:
    graph = helper.make_graph(nodes, "g", inputs, outputs, list(inits), sparse_initializer=list(sparse))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    onnx.save_model(model, str(path))
    return path


def sparse_model(folder: Path, indices, dims=(4, 4), name: str = "model.onnx") -> Path:
    """y = x · S with S a sparse initializer of three values at `indices`."""
    values = numpy_helper.from_array(np.array([1.0, 2.0, 3.0], np.float32), "S")
    sparse = helper.make_sparse_tensor(values, numpy_helper.from_array(np.array(indices, np.int64), "S_indices"), list(dims))
    return save_model(folder / name, [helper.make_node("MatMul", ["x", "S"], ["y"], name="mm")],
                      [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                      [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])], sparse=[sparse])


def convert(mlpkg: Path, model: Path, out: Path, *options: str) -> Path:
    proc = run([str(mlpkg), "convert", str(model), "-o", str(out), *options], model.parent)
    assert proc.returncode == 0, proc.stderr
    return out


def rewrite(pkg: Path, edit) -> None:
    """Applies `edit(manifest, weights)` and writes both back (keys sorted, no white space, as mlpkg writes)."""
    manifest = json.loads((pkg / "manifest.json").read_text())
    weights = bytearray((pkg / "weights.bin").read_bytes())
    edit(manifest, weights)
    (pkg / "weights.bin").write_bytes(bytes(weights))
    (pkg / "manifest.json").write_text(json.dumps(manifest, sort_keys=True, separators=(",", ":")))


def every_reader(mlpkg: Path, pkg: Path, cwd: Path) -> dict[str, object]:
    """Runs verify, inspect, audit, export (ONNX and Core ML) on `pkg`; returns the processes by command."""
    return {
        "verify": run([str(mlpkg), "verify", str(pkg)], cwd),
        "inspect": run([str(mlpkg), "inspect", str(pkg)], cwd),
        "audit": run([str(mlpkg), "audit", str(pkg)], cwd),
        "export": run([str(mlpkg), "export", str(pkg), "-o", str(cwd / "out.onnx")], cwd),
        "export-coreml": run([str(mlpkg), "export", str(pkg), "--format", "coreml", "-o", str(cwd / "out.mlpackage")], cwd),
    }


# --- sparse tensors -----------------------------------------------------------------------------------------------

def drop_last_index(manifest: dict, weights: bytearray) -> None:
    """Sparse initializer 'S' keeps its three values but only two indices (a consistent, checksummed blob)."""
    record = manifest["tensors"][manifest["graph"]["sparseInitializers"][0]["indices"]]
    keep = record["shape"][0] - 1
    start = record["offset"]
    weights[start + keep * 8:start + record["length"]] = bytes(record["length"] - keep * 8)  # padding is zero
    record["shape"], record["length"] = [keep], keep * 8
    record["sha256"] = hashlib.sha256(weights[start:start + keep * 8]).hexdigest()


def test_sparse_package_with_fewer_indices_than_values_is_refused_by_every_reader(mlpkg, tmp_path):
    pkg = convert(mlpkg, sparse_model(tmp_path, [0, 5, 10]), tmp_path / "sparse.mlpkg", "--weights", "fp32")
    rewrite(pkg, drop_last_index)
    # Before: verify passed, audit and the Core ML export read past the blob (a trap), export wrote an ONNX file
    # onnxruntime refuses.
    for command, proc in every_reader(mlpkg, pkg, tmp_path).items():
        line = one_error_line(proc, "sparse.mlpkg", "'S'")
        assert "indices" in line, (command, line)
    assert not (tmp_path / "out.onnx").exists() and not (tmp_path / "out.mlpackage").exists()


def test_sparse_package_with_an_index_out_of_range_is_refused(mlpkg, tmp_path):
    pkg = convert(mlpkg, sparse_model(tmp_path, [0, 5, 10]), tmp_path / "sparse.mlpkg", "--weights", "fp32")

    def out_of_range(manifest, weights):
        record = manifest["tensors"][manifest["graph"]["sparseInitializers"][0]["indices"]]
        start = record["offset"] + 16
        weights[start:start + 8] = np.array([1 << 40], np.int64).tobytes()
        record["sha256"] = hashlib.sha256(weights[record["offset"]:record["offset"] + record["length"]]).hexdigest()

    rewrite(pkg, out_of_range)
    for proc in every_reader(mlpkg, pkg, tmp_path).values():
        one_error_line(proc, "sparse.mlpkg", "'S'", "1099511627776")


@pytest.mark.parametrize("indices, dims, culprit", [
    ([0, 5, 16], (4, 4), "outside [0, 16)"),              # past the dense tensor: onnxruntime refuses it at load
    ([5, 0, 10], (4, 4), "ascending"),                     # the ONNX checker requires sorted indices
    ([0, 5, 5], (4, 4), "ascending"),                      # a repeated position: which value counts?
    ([[0, 0], [1, 1], [2, 4]], (4, 4), "outside [0, 4)"),  # a coordinate past its dim
    ([0, 5], (4, 4), "do not fit 3 value(s)"),             # fewer indices than values
])
def test_sparse_onnx_initializer_is_checked_at_import(mlpkg, tmp_path, indices, dims, culprit):
    model = sparse_model(tmp_path, indices, dims)
    for argv in (["inspect", str(model)], ["convert", str(model), "-o", str(tmp_path / "o.mlpkg")]):
        one_error_line(run([str(mlpkg), *argv], tmp_path), "model.onnx", "'S'", culprit)
    assert not (tmp_path / "o.mlpkg").exists()


def test_sound_sparse_initializers_still_convert_and_export(mlpkg, tmp_path):
    import onnxruntime as ort
    model = sparse_model(tmp_path, [[0, 0], [1, 1], [2, 2]])
    pkg = convert(mlpkg, model, tmp_path / "ok.mlpkg", "--weights", "fp32")
    assert run([str(mlpkg), "verify", str(pkg)], tmp_path).returncode == 0
    assert run([str(mlpkg), "export", str(pkg), "-o", str(tmp_path / "ok.onnx")], tmp_path).returncode == 0
    x = np.ones((1, 4), np.float32)
    got = ort.InferenceSession(str(tmp_path / "ok.onnx")).run(None, {"x": x})[0]
    assert np.array_equal(got, [[1, 2, 3, 0]])


# --- lut groups ---------------------------------------------------------------------------------------------------

def test_lut_group_size_that_does_not_divide_axis_0_is_refused(mlpkg, tmp_path):
    w = np.random.default_rng(3).standard_normal((64, 32)).astype(np.float32)
    model = save_model(tmp_path / "lut.onnx", [helper.make_node("MatMul", ["x", "W"], ["y"], name="mm")],
                       [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 64])],
                       [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 32])],
                       [numpy_helper.from_array(w.T.copy().T, "W")])
    pkg = convert(mlpkg, model, tmp_path / "lut.mlpkg", "--weights", "lut4", "--granularity", "per-channel",
                  "--block-size", "16", "--min-elements", "1")

    def odd_groups(manifest, weights):
        (record,) = [t for t in manifest["tensors"] if t["encoding"]["kind"] == "lut"]
        assert record["encoding"]["groupSize"] == 16
        record["encoding"]["groupSize"] = 17  # ⌈64 / 17⌉ = 4 tables: the same table shape, but a partial last group

    rewrite(pkg, odd_groups)
    # Before: verify passed and export wrote a model onnxruntime refuses.
    for command in ("verify", "inspect", "export"):
        argv = [str(mlpkg), command, str(pkg)] + (["-o", str(tmp_path / "out.onnx")] if command == "export" else [])
        one_error_line(run(argv, tmp_path), "lut.mlpkg", "'W'", "does not divide")
    assert not (tmp_path / "out.onnx").exists()


# --- nesting ------------------------------------------------------------------------------------------------------

def if_model(path: Path) -> Path:
    """One If whose branches pass x through (the subgraph outputs untyped, as the nesting below needs)."""
    untyped = onnx.TypeProto()
    then = helper.make_graph([helper.make_node("Identity", ["x"], ["t"])], "then", [], [helper.make_value_info("t", untyped)])
    other = helper.make_graph([helper.make_node("Identity", ["x"], ["e"])], "else", [], [helper.make_value_info("e", untyped)])
    return save_model(path, [helper.make_node("If", ["c"], ["o"], name="if", then_branch=then, else_branch=other)],
                      [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1]),
                       helper.make_tensor_value_info("c", TensorProto.BOOL, [])],
                      [helper.make_tensor_value_info("o", TensorProto.FLOAT, [1])])


def nest(manifest: dict, levels: int, typed_innermost: bool = False) -> None:
    """Makes the main graph's If hold `levels` levels of subgraphs: each then-branch an If of the next level.
    Built in JSON: the `onnx` package itself cannot even hold 33 levels in memory."""
    main_if = manifest["graph"]["nodes"][0]
    then = next(a for a in main_if["attributes"] if a["name"] == "then_branch")
    leaf = then["g"]
    other = next(a for a in main_if["attributes"] if a["name"] == "else_branch")
    inner = copy.deepcopy(leaf)
    if typed_innermost:
        inner["outputs"][0]["type"] = {"dtype": "float", "kind": "tensor", "shape": [1]}
    for level in range(levels - 1, 0, -1):
        node = {"attributes": [{"g": inner, "name": "then_branch", "type": "GRAPH"}, copy.deepcopy(other)],
                "domain": "", "inputs": ["c"], "name": f"if{level}", "opType": "If", "outputs": [f"o{level}"]}
        inner = {"initializers": [], "inputs": [], "name": f"level{level}", "nodes": [node],
                 "outputs": [{"name": f"o{level}", "type": {"kind": "unknown"}}], "sparseInitializers": [], "valueInfo": []}
    then["g"] = inner


def nested_package(mlpkg: Path, folder: Path, levels: int, typed_innermost: bool = False) -> Path:
    pkg = convert(mlpkg, if_model(folder / f"if{levels}.onnx"), folder / f"nest{levels}.mlpkg")
    rewrite(pkg, lambda manifest, _: nest(manifest, levels, typed_innermost))
    return pkg


def test_32_levels_of_subgraphs_export_and_read_back(mlpkg, tmp_path):
    pkg = nested_package(mlpkg, tmp_path, 32)
    assert run([str(mlpkg), "verify", str(pkg)], tmp_path).returncode == 0
    proc = run([str(mlpkg), "export", str(pkg), "-o", str(tmp_path / "n32.onnx")], tmp_path)
    assert proc.returncode == 0, proc.stderr
    onnx.load(str(tmp_path / "n32.onnx"))  # the `onnx` package reads it back


def test_33_levels_of_subgraphs_are_refused(mlpkg, tmp_path):
    pkg = nested_package(mlpkg, tmp_path, 33)
    # Before: verify passed and export wrote a file the `onnx` package cannot parse (upb's depth limit).
    for command in ("verify", "inspect", "export"):
        argv = [str(mlpkg), command, str(pkg)] + (["-o", str(tmp_path / "n33.onnx")] if command == "export" else [])
        one_error_line(run(argv, tmp_path), "nest33.mlpkg", "if32", "32 levels")
    assert not (tmp_path / "n33.onnx").exists()


def test_export_refuses_types_nested_past_protobufs_limit(mlpkg, tmp_path):
    # 32 levels are accepted, but a typed value in the innermost graph nests 3 messages deeper than 100.
    pkg = nested_package(mlpkg, tmp_path, 32, typed_innermost=True)
    proc = run([str(mlpkg), "export", str(pkg), "-o", str(tmp_path / "typed.onnx")], tmp_path)
    one_error_line(proc, "typed.onnx", "levels deep")
    assert not (tmp_path / "typed.onnx").exists()
