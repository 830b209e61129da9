"""Batch isolation (issue 28): `convert A.onnx B.onnx … --output-dir D` converts each model in a child mlpkg, so a
model that crashes the converter fails alone — the others are converted, every model gets its status line, the
summary and the `--json` document are printed, and the exit status is 1. After Ctrl-C the error line lists exactly
the packages that were written.

The crash and the long conversion are stood in for by the test-only variables MLPKG_TEST_TRAP_ON and
MLPKG_TEST_HANG_ON (Sources/mlpkg/Convert.swift, `TestHooks`): no real model may still crash mlpkg."""

from __future__ import annotations

import json
import os
import select
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from conftest import FIXTURES, RUN_TIMEOUT

NAMES = ["m1", "m2", "m3", "m4", "m5"]


def models(folder: Path, names=NAMES) -> list[str]:
    for name in names:
        shutil.copy(FIXTURES / "cnn.onnx", folder / f"{name}.onnx")
    (folder / "out").mkdir()
    return [f"{name}.onnx" for name in names]


def batch(mlpkg: Path, folder: Path, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([str(mlpkg), "convert", *args, "--output-dir", "out"], cwd=folder, capture_output=True,
                          text=True, timeout=RUN_TIMEOUT, stdin=subprocess.DEVNULL, env={**os.environ, **env})


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_a_crashing_model_fails_alone(mlpkg, tmp_path, jobs):
    names = models(tmp_path)
    proc = batch(mlpkg, tmp_path, *names, "--jobs", jobs, env={"MLPKG_TEST_TRAP_ON": "m3.onnx"})
    assert proc.returncode == 1, (proc.returncode, proc.stderr)
    # Five status lines: four on stdout, the failure on stderr; then the summary.
    ok = [line for line in proc.stdout.splitlines() if line.startswith("ok ")]
    assert sorted(line.split()[1] for line in ok) == ["m1.onnx", "m2.onnx", "m4.onnx", "m5.onnx"], proc.stdout
    assert proc.stdout.splitlines()[-1] == "converted 4 of 5 model(s) into out; 1 failed", proc.stdout
    errors = proc.stderr.strip().splitlines()
    assert len(errors) == 1 and errors[0].startswith("error: m3.onnx: "), proc.stderr
    assert "crashed" in errors[0] and "mlpkg stopped" not in errors[0]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["m1.mlpkg", "m2.mlpkg", "m4.mlpkg", "m5.mlpkg"]


def test_a_crashing_model_fails_alone_in_json(mlpkg, tmp_path):
    names = models(tmp_path)
    proc = batch(mlpkg, tmp_path, *names, "--json", env={"MLPKG_TEST_TRAP_ON": "m3.onnx"})
    assert proc.returncode == 1, proc.stderr
    document = json.loads(proc.stdout)  # exactly one document
    assert (document["converted"], document["failed"]) == (4, 1)
    assert [r["model"] for r in document["results"]] == names
    failed = [r for r in document["results"] if "error" in r]
    assert [r["model"] for r in failed] == ["m3.onnx"] and "crashed" in failed[0]["error"]
    assert all(r["packageBytes"] > 0 for r in document["results"] if "error" not in r)


def test_batch_packages_equal_single_conversions(mlpkg, tmp_path):
    names = models(tmp_path, ["m1", "m2"])
    assert batch(mlpkg, tmp_path, *names, "--weights", "int8", env={}).returncode == 0
    single = tmp_path / "single.mlpkg"
    proc = subprocess.run([str(mlpkg), "convert", "m1.onnx", "-o", str(single), "--weights", "int8"], cwd=tmp_path,
                          capture_output=True, timeout=RUN_TIMEOUT)
    assert proc.returncode == 0
    for f in ("manifest.json", "weights.bin", "report.json"):
        assert (single / f).read_bytes() == (tmp_path / "out" / "m1.mlpkg" / f).read_bytes(), f


def test_interrupt_says_which_packages_were_written(mlpkg, tmp_path):
    names = models(tmp_path, ["m1", "m2", "m3"])
    proc = subprocess.Popen([str(mlpkg), "convert", *names, "--output-dir", "out"], cwd=tmp_path, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                            env={**os.environ, "MLPKG_TEST_HANG_ON": "m2.onnx"})
    try:
        # m1 is written, then m2 hangs: wait for m1's status line, then Ctrl-C.
        deadline = time.monotonic() + RUN_TIMEOUT
        line = ""
        while not line.startswith("ok "):
            ready, _, _ = select.select([proc.stdout], [], [], max(0.0, deadline - time.monotonic()))
            assert ready and proc.poll() is None, "m1 was never reported converted"
            line = proc.stdout.readline()
        assert "m1.onnx" in line
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=RUN_TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 128 + signal.SIGINT, (proc.returncode, stderr)
    last = stderr.strip().splitlines()[-1]
    # Before: "nothing was written", though m1's package was.
    assert last.startswith("error: interrupted; 1 of 3 package(s) written: ") and "m1.mlpkg" in last, stderr
    assert "m2.mlpkg" not in last and "m3.mlpkg" not in last and "nothing was written" not in last
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["m1.mlpkg"]  # no temporary left either
    # m2 was stopped while it hung, or (the signal came first) never started; m3 never started.
    for name in ("m2.onnx", "m3.onnx"):
        (line,) = [l for l in stderr.splitlines() if l.startswith(f"error: {name}: ")]
        assert "interrupted" in line and "crashed" not in line, line
