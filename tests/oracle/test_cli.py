"""Command-line contract details (issue 17's first items): a mistyped command gets a suggestion and exit 2; --quiet
prints nothing but errors, notes included."""

from __future__ import annotations

import pytest

from conftest import FIXTURES, run


@pytest.mark.parametrize("typo,expected", [("convrt", "convert"), ("inspct", "inspect"), ("audt", "audit"),
                                           ("expor", "export"), ("verfy", "verify")])
def test_mistyped_command_suggests_the_nearest(mlpkg, tmp_path, typo, expected):
    proc = run([str(mlpkg), typo, "model.onnx"], tmp_path)
    assert proc.returncode == 2
    first = proc.stderr.splitlines()[0]
    assert first == (f"error: unknown command '{typo}'; did you mean '{expected}'? "
                     "(commands: inspect, convert, verify, export, run, compare, audit, profiles)")


def test_unknown_command_without_a_close_name(mlpkg, tmp_path):
    proc = run([str(mlpkg), "frobnicate"], tmp_path)
    assert proc.returncode == 2 and "did you mean" not in proc.stderr and "unknown command 'frobnicate'" in proc.stderr


def test_quiet_export_prints_nothing_even_notes(mlpkg, tmp_path):
    pkg = tmp_path / "t.mlpkg"
    assert run([str(mlpkg), "convert", str(FIXTURES / "transformer.onnx"), "-o", str(pkg), "--weights", "int4",
                "--quiet"], tmp_path).returncode == 0
    # The ONNX export raises the opset for DequantizeLinear, which is a note without --quiet.
    loud = run([str(mlpkg), "export", str(pkg), "-o", str(tmp_path / "a.onnx")], tmp_path)
    assert loud.returncode == 0 and "note:" in loud.stderr
    for argv in (["-o", str(tmp_path / "b.onnx")],
                 ["--format", "coreml", "-o", str(tmp_path / "B.mlpackage"), "--input-shape", "tokens=1,8,64"]):
        proc = run([str(mlpkg), "export", str(pkg), *argv, "--quiet"], tmp_path)
        assert proc.returncode == 0 and proc.stdout == "" and proc.stderr == "", (argv, proc.stderr)
