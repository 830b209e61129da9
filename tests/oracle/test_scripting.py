"""Issue 17's scripting contract, end to end: a progress bar only on a terminal, `--json` errors that parse on every
command, `--quiet` that prints nothing but errors on every command, and batch conversion that matches one-by-one."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import subprocess
from pathlib import Path

import pytest

from conftest import FIXTURES, run

CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def run_in_pty(argv: list[str], cwd: Path, env: dict[str, str]) -> tuple[int, str]:
    """Runs argv with stdout and stderr on a pseudo-terminal; returns (exit code, everything written)."""
    leader, follower = pty.openpty()
    proc = subprocess.Popen(argv, cwd=cwd, stdin=subprocess.DEVNULL, stdout=follower, stderr=follower, env=env,
                            close_fds=True)
    os.close(follower)
    chunks = []
    while True:
        ready, _, _ = select.select([leader], [], [], 60)
        if not ready:
            proc.kill()
            break
        try:
            data = os.read(leader, 65536)
        except OSError:  # EIO once the child has closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(leader)
    return proc.wait(timeout=60), b"".join(chunks).decode("utf-8", "replace")


def test_progress_bar_on_a_terminal_only(mlpkg, tmp_path):
    env = dict(os.environ, MLPKG_PROGRESS_DELAY="0")  # draw from the first event: the test does not depend on speed
    code, out = run_in_pty([str(mlpkg), "convert", str(FIXTURES / "transformer.onnx"), "-o", str(tmp_path / "t.mlpkg")],
                           tmp_path, env)
    assert code == 0, out
    assert re.search(r"\rconvert weights \[[=> ]{24}\] \d+/\d+ · [0-9.]+/[0-9.]+ MiB", out), repr(out[:500])
    assert "\r\x1b[K" in out  # erased before the summary
    code, out = run_in_pty([str(mlpkg), "verify", str(tmp_path / "t.mlpkg")], tmp_path, env)
    assert code == 0 and "check checksums [" in out, repr(out[:500])
    code, out = run_in_pty([str(mlpkg), "export", str(tmp_path / "t.mlpkg"), "-o", str(tmp_path / "t.onnx"),
                            "--external-data"], tmp_path, env)
    assert code == 0 and "write external data [" in out, repr(out[:500])
    # --quiet on a terminal: nothing at all.
    code, out = run_in_pty([str(mlpkg), "convert", str(FIXTURES / "transformer.onnx"), "-o", str(tmp_path / "q.mlpkg"),
                            "--quiet"], tmp_path, env)
    assert code == 0 and out == "", repr(out)
    # Without a terminal: no bar, no control characters.
    proc = subprocess.run([str(mlpkg), "convert", str(FIXTURES / "transformer.onnx"), "-o", str(tmp_path / "n.mlpkg")],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0
    assert not CONTROL.search(proc.stdout.replace("\n", "")) and not CONTROL.search(proc.stderr.replace("\n", ""))
    assert "convert weights [" not in proc.stderr


@pytest.fixture(scope="module")
def package(tmp_path_factory, mlpkg) -> Path:
    d = tmp_path_factory.mktemp("pkg")
    out = d / "cnn.mlpkg"
    assert run([str(mlpkg), "convert", str(FIXTURES / "cnn.onnx"), "-o", str(out), "--quiet"], d).returncode == 0
    return out


def error_cases(package: Path) -> list[tuple[str, list[str], int]]:
    missing = "/nonexistent/model.onnx"
    return [
        ("inspect", ["inspect", missing, "--json"], 1),
        ("convert", ["convert", str(FIXTURES / "malformed" / "cycle.onnx"), "-o", "x.mlpkg", "--json"], 1),
        ("convert-usage", ["convert", str(FIXTURES / "cnn.onnx"), "-o", "x.mlpkg", "--input-shape", "nope=1", "--json"], 2),
        ("verify", ["verify", str(FIXTURES / "cnn.onnx"), "--json"], 1),
        ("export", ["export", "/nonexistent.mlpkg", "-o", "x.onnx", "--json"], 1),
        ("export-coreml", ["export", str(package), "--format", "coreml", "-o", "X.mlpackage", "--json"], 1),
        ("audit", ["audit", missing, "--json"], 1),
        ("audit-format", ["audit", missing, "--format", "json"], 1),
        ("audit-gate", ["audit", str(FIXTURES / "cnn.onnx"), "--json", "--min-coverage", "50"], 3),
        ("profiles", ["profiles", "--profile-file", "/nonexistent.json", "--json"], 1),
        ("unknown-command", ["frobnicate", "--json"], 2),
        ("unknown-option", ["inspect", str(FIXTURES / "cnn.onnx"), "--frob", "--json"], 2),
    ]


def test_every_command_answers_an_error_in_json(mlpkg, tmp_path, package):
    for name, args, code in error_cases(package):
        proc = run([str(mlpkg), *args], tmp_path)
        assert proc.returncode == code, (name, proc.stdout, proc.stderr)
        doc = json.loads(proc.stdout)  # one JSON document on stdout, whatever failed
        if code == 3:  # the gate: the report is the document; the error is the stderr line
            assert doc["format"] == "mlpkg-audit" and proc.stderr.startswith("error:"), name
            continue
        err = doc["error"]
        assert err["code"] == code and err["kind"] == {1: "failure", 2: "usage"}[code], (name, err)
        assert err["message"] and "\n" not in err["message"], name
        assert proc.stderr.startswith("error: ") and len(proc.stderr.strip().splitlines()) == 1, (name, proc.stderr)
    # The file and the node or tensor are named when the message names them.
    proc = run([str(mlpkg), "inspect", "/nonexistent/model.onnx", "--json"], tmp_path)
    assert json.loads(proc.stdout)["error"]["file"] == "/nonexistent/model.onnx"
    bad = tmp_path / "bad"
    assert run([str(mlpkg), "convert", str(FIXTURES / "cnn.onnx"), "-o", str(bad / "p.mlpkg"), "--quiet"],
               tmp_path).returncode == 1  # missing folder
    pkg = tmp_path / "p.mlpkg"
    assert run([str(mlpkg), "convert", str(FIXTURES / "cnn.onnx"), "-o", str(pkg), "--quiet"], tmp_path).returncode == 0
    weights = pkg / "weights.bin"
    data = bytearray(weights.read_bytes())
    data[100] ^= 0xFF
    weights.write_bytes(bytes(data))
    proc = run([str(mlpkg), "export", str(pkg), "-o", str(tmp_path / "p.onnx"), "--json"], tmp_path)
    err = json.loads(proc.stdout)["error"]
    assert proc.returncode == 1 and err["tensor"] and err["file"].endswith("p.mlpkg"), err


def test_quiet_prints_nothing_on_every_command(mlpkg, tmp_path, package):
    cases = [
        ["inspect", str(FIXTURES / "cnn.onnx"), "--quiet"],
        ["inspect", str(FIXTURES / "cnn.onnx"), "--shapes", "--quiet"],
        ["convert", str(FIXTURES / "cnn.onnx"), "-o", str(tmp_path / "a.mlpkg"), "--quiet"],
        ["convert", str(FIXTURES / "cnn.onnx"), str(FIXTURES / "fp16.onnx"), "--output-dir", str(tmp_path), "--quiet"],
        ["verify", str(package), "--quiet"],
        ["export", str(package), "-o", str(tmp_path / "a.onnx"), "--quiet"],
        ["export", str(package), "--format", "coreml", "-o", str(tmp_path / "A.mlpackage"),
         "--input-shape", "input=1,3,32,32", "--quiet"],
        ["audit", str(FIXTURES / "cnn.onnx"), "--quiet"],
        ["audit", str(FIXTURES / "cnn.onnx"), "--quiet", "-o", str(tmp_path / "a.md"), "--format", "markdown"],
        ["profiles", "--quiet"],
        ["profiles", "neural-engine", "--quiet"],
    ]
    for args in cases:
        proc = run([str(mlpkg), *args], tmp_path)
        assert proc.returncode == 0, (args, proc.stderr)
        assert proc.stdout == "" and proc.stderr == "", (args, proc.stdout[:200], proc.stderr[:200])
    assert (tmp_path / "a.md").read_text().startswith("## Compute-unit audit")
    # Errors still come through.
    proc = run([str(mlpkg), "verify", str(FIXTURES / "cnn.onnx"), "--quiet"], tmp_path)
    assert proc.returncode == 1 and proc.stdout == "" and proc.stderr.startswith("error:")


def test_json_on_every_command(mlpkg, tmp_path, package):
    docs = {
        "inspect": ["inspect", str(FIXTURES / "cnn.onnx"), "--json"],
        "convert": ["convert", str(FIXTURES / "cnn.onnx"), "-o", str(tmp_path / "j.mlpkg"), "--json"],
        "convert-coreml": ["convert", str(FIXTURES / "cnn.onnx"), "-o", str(tmp_path / "J1.mlpackage"),
                           "--input-shape", "input=1,3,32,32", "--json"],
        "verify": ["verify", str(package), "--json"],
        "export": ["export", str(package), "-o", str(tmp_path / "j.onnx"), "--json"],
        "export-coreml": ["export", str(package), "--format", "coreml", "-o", str(tmp_path / "J.mlpackage"),
                          "--input-shape", "input=1,3,32,32", "--json"],
        "audit": ["audit", str(FIXTURES / "cnn.onnx"), "--json"],
        "profiles": ["profiles", "--json"],
    }
    for name, args in docs.items():
        proc = run([str(mlpkg), *args], tmp_path)
        assert proc.returncode == 0, (name, proc.stderr)
        json.loads(proc.stdout)
    export = json.loads(run([str(mlpkg), "export", str(package), "-o", str(tmp_path / "k.onnx"), "--json"], tmp_path).stdout)
    assert export["format"] == "onnx" and export["modelBytes"] == (tmp_path / "k.onnx").stat().st_size


def test_batch_conversion_matches_one_by_one(mlpkg, tmp_path):
    models = sorted(p for p in FIXTURES.glob("*.onnx"))
    batch, single = tmp_path / "batch", tmp_path / "single"
    batch.mkdir()
    single.mkdir()
    broken = FIXTURES / "malformed" / "cycle.onnx"
    proc = run([str(mlpkg), "convert", *map(str, models), str(broken), "--output-dir", str(batch), "--jobs", "2"], tmp_path)
    assert proc.returncode == 1, proc.stderr  # one broken input: non-zero, the others still written
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "cycle.onnx" in errors[0]
    ok_lines = [line for line in proc.stdout.splitlines() if line.startswith("ok ")]
    assert len(ok_lines) == len(models)
    assert f"converted {len(models)} of {len(models) + 1} model(s)" in proc.stdout and "1 failed" in proc.stdout
    for m in models:
        out = single / (m.stem + ".mlpkg")
        assert run([str(mlpkg), "convert", str(m), "-o", str(out), "--quiet"], tmp_path).returncode == 0
        for f in ("manifest.json", "weights.bin", "report.json"):
            assert (batch / out.name / f).read_bytes() == (out / f).read_bytes(), (m.name, f)
    assert not (batch / "cycle.mlpkg").exists()
    assert [p.name for p in batch.iterdir() if p.name.startswith(".")] == []  # no temporaries left
    doc = json.loads(run([str(mlpkg), "convert", str(models[0]), str(broken), "--output-dir", str(batch), "--json"],
                         tmp_path).stdout)
    assert doc["converted"] == 1 and doc["failed"] == 1 and doc["results"][1]["error"].startswith(str(broken))
    for args, needle in ((["-o", "x.mlpkg", "--output-dir", str(batch)], "alternatives"),
                         (["--jobs", "2", "-o", "x.mlpkg"], "--jobs applies to --output-dir")):
        proc = run([str(mlpkg), "convert", str(models[0]), *args], tmp_path)
        assert proc.returncode == 2 and needle in proc.stderr
    proc = run([str(mlpkg), "convert", str(models[0]), str(models[1]), "-o", "x.mlpkg"], tmp_path)
    assert proc.returncode == 2 and "--output-dir" in proc.stderr


def test_make_install_puts_binary_man_page_and_completions(mlpkg, tmp_path):
    """`make install` = `make release` + `make install-files`; the second is tested with the binary under test."""
    from conftest import REPO_ROOT
    prefix = tmp_path / "prefix"
    proc = subprocess.run(["make", "-s", "-C", str(REPO_ROOT), "install-files", f"PREFIX={prefix}", f"INSTALL_BIN={mlpkg}"],
                          capture_output=True, text=True, timeout=900, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stderr[-3000:]
    binary = prefix / "bin" / "mlpkg"
    assert os.access(binary, os.X_OK)
    version = run([str(binary), "--version"], tmp_path)
    assert version.returncode == 0 and re.fullmatch(r"\d+\.\d+\.\d+\n", version.stdout)
    assert run([str(binary), "verify", "--help"], tmp_path).returncode == 0
    man = (prefix / "share" / "man" / "man1" / "mlpkg.1").read_text()
    assert ".Dt MLPKG 1" in man
    for command in ("inspect", "convert", "verify", "export", "audit", "profiles"):
        assert f".It Em {command}" in man, command
    assert "Examples:" in man
    bash = prefix / "share" / "bash-completion" / "completions" / "mlpkg"
    assert subprocess.run(["bash", "-n", str(bash)]).returncode == 0 and "audit" in bash.read_text()
    assert "#compdef mlpkg" in (prefix / "share" / "zsh" / "site-functions" / "_mlpkg").read_text()
    assert "complete -c 'mlpkg'" in (prefix / "share" / "fish" / "vendor_completions.d" / "mlpkg.fish").read_text()


def test_batch_audit(mlpkg, tmp_path):
    out = tmp_path / "reports"
    out.mkdir()
    models = [FIXTURES / "cnn.onnx", FIXTURES / "lstm.onnx", FIXTURES / "malformed" / "cycle.onnx"]
    proc = run([str(mlpkg), "audit", *map(str, models), "--output-dir", str(out), "--format", "markdown",
                "--input-shape", "input=1,3,32,32"], tmp_path)
    # cnn takes the pin; lstm has no input 'input' (a usage error for that model alone); cycle.onnx is malformed.
    assert proc.returncode == 1, proc.stderr
    assert (out / "cnn.md").read_text().startswith("## Compute-unit audit")
    assert not (out / "cycle.md").exists() and not (out / "lstm.md").exists()
    assert len([l for l in proc.stderr.splitlines() if l.startswith("error:")]) == 2
    assert "audited 1 of 3 model(s)" in proc.stdout and "2 failed" in proc.stdout
    gate = run([str(mlpkg), "audit", str(FIXTURES / "cnn.onnx"), str(FIXTURES / "fp16.onnx"), "--output-dir", str(out),
                "--json", "--min-coverage", "50"], tmp_path)
    assert gate.returncode == 3, gate.stderr  # both are below (dynamic inputs): the gate, after writing both
    doc = json.loads(gate.stdout)
    assert doc["audited"] == 2 and doc["belowMinCoverage"] == 2 and doc["results"][0]["coverage"] == 0
    for name in ("cnn.json", "fp16.json"):
        assert json.loads((out / name).read_text())["format"] == "mlpkg-audit"
    single = run([str(mlpkg), "audit", str(FIXTURES / "cnn.onnx"), "--json"], tmp_path)
    assert json.loads(single.stdout) == json.loads((out / "cnn.json").read_text())
