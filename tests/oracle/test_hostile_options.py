"""Hostile option files and values (issue 28): a `--config` with a key given twice is refused (JSON readers disagree
on which one counts; mlpkg silently took the first), and a huge value quoted in an error — a 20 MB setting, a long
tensor name — is cut, so an error stays one short line on stderr and in the `--json` error object."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from conftest import FIXTURES, run

MODEL = FIXTURES / "cnn.onnx"


def usage_error(proc, *culprits: str) -> str:
    """Exit 2: one `error:` line (then the usage hint), naming every culprit."""
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-2000:])
    lines = proc.stderr.splitlines()
    assert lines[0].startswith("error:") and len(lines) == 2 and lines[1].startswith("Run 'mlpkg --help'"), proc.stderr[-2000:]
    for c in culprits:
        assert c in lines[0], (c, lines[0][:2000])
    return lines[0]


@pytest.mark.parametrize("text, key", [
    ('{"names": {"conv1.weight": {"weights": "int8"}, "conv1.weight": {"weights": "fp32"}}}', "conv1.weight"),
    ('{"default": {"weights": "int8", "weights": "int4"}}', "weights"),
    ('{"opTypes": {"Conv": {"weights": "int8"}}, "opTypes": {"Conv": {"weights": "fp32"}}}', "opTypes"),
    ('{"names": {"conv1.weight": {}, "conv1.w\\u0065ight": {}}}', "conv1.weight"),  # escaped spellings are one key
])
def test_config_with_a_key_given_twice_is_refused(mlpkg, tmp_path, text, key):
    config = tmp_path / "dup.json"
    config.write_text(text)
    out = tmp_path / "out.mlpkg"
    # Before: accepted, the first of the two settings silently won.
    usage_error(run([str(mlpkg), "convert", str(MODEL), "-o", str(out), "--config", str(config)], tmp_path),
                "dup.json", f"'{key}'", "twice")
    assert not out.exists()


def test_huge_config_value_gives_a_short_error_line(mlpkg, tmp_path):
    config = tmp_path / "huge.json"
    config.write_text(json.dumps({"default": {"weights": "A" * 20_000_000}}))
    proc = run([str(mlpkg), "convert", str(MODEL), "-o", str(tmp_path / "out.mlpkg"), "--config", str(config)], tmp_path)
    line = usage_error(proc, "huge.json", "is not a format", "…' (20000000 characters)")
    assert len(line) < 600, len(line)  # was 20 MB
    proc = run([str(mlpkg), "convert", str(MODEL), "-o", str(tmp_path / "out.mlpkg"), "--config", str(config), "--json"],
               tmp_path)
    assert proc.returncode == 2 and len(proc.stdout) < 1000, len(proc.stdout)
    assert "(20000000 characters)" in json.loads(proc.stdout)["error"]["message"]


def test_huge_tensor_name_gives_a_short_error_line(mlpkg, tmp_path):
    name = "S" * 1_000_000
    values = numpy_helper.from_array(np.array([1.0, 2.0], np.float32), name)
    sparse = helper.make_sparse_tensor(values, numpy_helper.from_array(np.array([1, 99], np.int64), "i"), [4])
    graph = helper.make_graph([helper.make_node("Add", ["x", name], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4])], sparse_initializer=[sparse])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path = tmp_path / "long.onnx"
    onnx.save_model(model, str(path))
    proc = run([str(mlpkg), "inspect", str(path)], tmp_path)
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "long.onnx" in lines[0], proc.stderr[:2000]
    assert len(lines[0]) < 600 and "…' (1000000 characters)" in lines[0], lines[0][:2000]


def test_apostrophes_in_words_are_not_quotes(mlpkg, tmp_path):
    # A message with an apostrophe inside a word and a short quoted name is left whole.
    config = tmp_path / "c.json"
    config.write_text(json.dumps({"default": {"weights": "int9"}}))
    line = usage_error(run([str(mlpkg), "convert", str(MODEL), "-o", str(tmp_path / "o.mlpkg"), "--config", str(config)],
                           tmp_path), "'int9' is not a format")
    assert "characters)" not in line
