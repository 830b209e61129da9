"""Cross-check `mlpkg inspect FILE --json` against what the onnx package reads.

For every valid fixture (fixtures/*.onnx) the tool is run from inside
fixtures/ with the bare file name, so its "file" field is the name as given.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import FIXTURES, run
from onnx_oracle import diff, expected_report

VALID = sorted(p.name for p in FIXTURES.glob("*.onnx"))

# The fixtures generate.py is meant to produce; guards against an empty or
# partial fixtures/ folder silently shrinking the parametrised tests.
REQUIRED = {
    "cnn.onnx", "transformer.onnx", "lstm.onnx", "gru.onnx", "constant_weights.onnx",
    "if_branches.onnx", "loop_scan.onnx", "external_data.onnx", "fp16.onnx", "qdq.onnx",
    "dynamic_dims.onnx", "custom_domain.onnx", "duplicate_opsets.onnx",
    "typed_fields.onnx", "function.onnx",
}

# Fields of the contract that this test compares exactly.
COMPARED = [
    "opsetImports", "inputs", "outputs", "nodes", "opCounts", "subgraphCount",
    "initializerCount", "parameters", "externalDataFiles",
]
# Header fields and the like, compared in a separate test.
EXTRAS = ["file", "irVersion", "producer", "domain", "modelVersion", "functions", "metadata"]

_cache: dict[str, tuple[dict, dict]] = {}


def inspect(mlpkg: Path, name: str) -> tuple[dict, dict]:
    """(expected, actual) for one fixture; runs the binary once per fixture."""
    if name not in _cache:
        proc = run([str(mlpkg), "inspect", name, "--json"], cwd=FIXTURES)
        assert proc.returncode == 0, (
            f"mlpkg inspect {name} --json exited {proc.returncode}\n"
            f"stderr: {proc.stderr.strip()}")
        try:
            actual = json.loads(proc.stdout)
        except json.JSONDecodeError as e:
            pytest.fail(f"{name}: stdout is not JSON ({e}):\n{proc.stdout[:2000]}")
        _cache[name] = (expected_report(FIXTURES / name), actual)
    return _cache[name]


def _fail_on(diffs: list[str], name: str) -> None:
    if diffs:
        pytest.fail(f"{name}: {len(diffs)} field(s) differ from the onnx package:\n  "
                    + "\n  ".join(diffs), pytrace=False)


def test_fixture_set_complete():
    missing = REQUIRED - set(VALID)
    assert not missing, f"fixtures missing (run fixtures/generate.py): {sorted(missing)}"


@pytest.mark.parametrize("name", VALID)
def test_inspect_matches_onnx(mlpkg, name):
    expected, actual = inspect(mlpkg, name)
    exp = {k: expected[k] for k in COMPARED}
    act = {k: actual.get(k, "<missing>") for k in COMPARED}
    # the contract gives no order for externalDataFiles: compare sorted
    if isinstance(act["externalDataFiles"], list):
        act["externalDataFiles"] = sorted(
            act["externalDataFiles"], key=lambda e: str(e.get("location")) if isinstance(e, dict) else "")
    _fail_on(diff(exp, act), name)


@pytest.mark.parametrize("name", VALID)
def test_inspect_header_and_extras(mlpkg, name):
    """file, irVersion, producer, domain, modelVersion, functions, metadata,
    and the consistency of largestTensors."""
    expected, actual = inspect(mlpkg, name)
    diffs = []
    for k in EXTRAS:
        if k not in actual:
            diffs.append(f"{k}: missing (expected {expected[k]!r})")
            continue
        e, a = expected[k], actual[k]
        if k == "functions" and isinstance(a, list):
            key = lambda f: (str(f.get("domain")), str(f.get("name"))) if isinstance(f, dict) else ("", "")  # noqa: E731
            e, a = sorted(e, key=key), sorted(a, key=key)
        diffs.extend(diff(e, a, k))

    lt = actual.get("largestTensors")
    if not isinstance(lt, list):
        diffs.append(f"largestTensors: expected a list, got {lt!r}")
    else:
        want_bytes = expected["_paramBytes"][:10]
        got_bytes = [t.get("bytes") for t in lt]
        if got_bytes != want_bytes:
            diffs.append(f"largestTensors: bytes {got_bytes} != top-10 parameter bytes "
                         f"{want_bytes}")
        order = [(-t.get("bytes", 0), str(t.get("name"))) for t in lt]
        if order != sorted(order):
            diffs.append("largestTensors: not sorted by bytes (descending), then name")
        inits = {t["name"]: t for t in expected["_initializers"]}
        for i, t in enumerate(lt):
            ref = inits.get(t.get("name"))
            if ref is not None:   # a dense initializer: every field is known
                diffs.extend(diff(ref, t, f"largestTensors[{i}]"))
    _fail_on(diffs, name)
