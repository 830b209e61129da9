"""`mlpkg audit` end to end: verdicts on every fixture written by hand from the profile rules, the JSON contract,
markdown and HTML (rendered in headless Chromium), the --min-coverage gate, --input-shape pinning, convert --profile,
profile files, and the cross-check against ONNX Runtime's mobile usability checker (docs/AUDIT.md explains every
disagreement)."""

from __future__ import annotations

import json
import os
import re
import shutil
import struct
import subprocess
import sys
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import onnx
import pytest

from conftest import FIXTURES, run

NE, GPU, CPU, UNSUPPORTED = "neural-engine", "gpu", "cpu", "unsupported"

# --------------------------------------------------------------------------------------------------------------------
# Expected units, written by hand from the rules (docs/AUDIT.md). Keys are node names ("graph/name" in subgraphs);
# "*" is every node not listed. Types come from shape inference (`mlpkg inspect MODEL --shapes`), so a symbolic dim
# propagates: without pins, every node that reads or writes a value carrying it is kept off the Neural Engine
# (ane-static-shapes). Values shape inference cannot type (a custom op's output) are unknown, and shape rules are
# "not checked" for them.
EXPECTED = {
    # batch reaches every value (conv1_out [batch,16,32,32] … logits [batch,10]): every node fails ane-static-shapes.
    # gap also fails ane-global-pool-extent (relu2_out [batch,32,14,14]: 14 > 13), so it stays off when pinned.
    "cnn.onnx": {"*": GPU},
    # Every value carries [batch, seq, …] (the Reshapes' targets are constant, so batch and seq go through them).
    "transformer.onnx": {"*": GPU},
    # LSTM/GRU lower to MIL lstm and an unrolled GRU (mil-recurrent; unpinned, the dynamic seq makes the Core ML gate
    # "not checked"), but the unit rules keep them off the Neural Engine (ane-no-recurrent, ane-no-gru) and the GPU
    # (gpu-no-recurrent, coremltools#337): CPU.
    "lstm.onnx": {"lstm": CPU},
    "gru.onnx": {"gru": CPU},
    # Everything static; Constant nodes follow their consumers.
    "constant_weights.onnx": {"*": NE},
    # Control flow: an If decided at run time lowers to MIL cond (mil-control-flow) and runs where its branches'
    # static nodes run; the Loop (a constant trip count, its scan output stacked) lowers to while_loop, which no
    # source places on the Neural Engine or the GPU (ane-no-while-loop: CPU), its body's nodes lowered with it; so
    # does the Scan (a while_loop over its steps). `loop_and_sequence_map` below keeps a refused op holding a
    # subgraph (SequenceMap: coreml-control-flow, its body coreml-subgraph) for the report tests.
    "if_branches.onnx": {"*": NE},
    "loop_scan.onnx": {"loop": CPU, "scan": CPU, "*": NE},
    # batch reaches every value (x [batch,64] → h, h_relu [batch,64] → h2, y [batch,32]): all fail ane-static-shapes.
    "external_data.onnx": {"*": GPU},
    "fp16.onnx": {"*": GPU},
    # q_x (QuantizeLinear) and dq_x (DequantizeLinear of an activation) have no Core ML lowering in mlpkg → unsupported.
    # matmul touches [batch,16] / [batch,8] values → GPU. dq_W reads only constants (it becomes a constexpr) and writes
    # the static W_dq [16,8] → Neural Engine.
    "qdq.onnx": {"*": GPU, "q_x": UNSUPPORTED, "dq_x": UNSUPPORTED, "dq_W": NE},
    # add: x and the inferred y are [batch,seq,8] → GPU; ReduceSum of int64 data converts (MIL reduce_sum takes int32,
    # mil-reduce; ONNX Runtime's builder refuses it) but its input is dynamic → GPU; SequenceConstruct and Optional
    # have no lowering.
    "dynamic_dims.onnx": {"add": GPU, "reduce": GPU, "seq": UNSUPPORTED, "opt": UNSUPPORTED},
    # com.example:FancyOp has no lowering (coreml-custom-domain). Shape inference does not know the domain, so its output f has an unknown type:
    # add's ane-static-shapes is "not checked" for f (x, r and y are float[1,8]) → Neural Engine.
    "custom_domain.onnx": {"*": NE, "fancy": UNSUPPORTED},
    "duplicate_opsets.onnx": {"*": NE},
    # Identity and Cast carry no dtype rule; every value is static (and constant: these nodes fold away before
    # lowering). The string Identity's output is a string, which Core ML has no tensor type for.
    "typed_fields.onnx": {"*": NE, "id_string": UNSUPPORTED},
    # Calls of local.fn:AddRelu run where Add and LeakyRelu both can (the exporter inlines the calls and lowers both).
    "function.onnx": {"*": NE},
}

# Nodes smoothing moved from their preferred unit (the Neural Engine) in the runs above.
MOVED: dict[str, set[str]] = {}

# Rule ids expected among the Neural Engine failures of particular nodes.
NE_FAILURES = {
    ("cnn.onnx", "conv1"): {"ane-static-shapes"},
    ("cnn.onnx", "gap"): {"ane-static-shapes", "ane-global-pool-extent"},
    ("transformer.onnx", "scores"): {"ane-static-shapes"},
    ("lstm.onnx", "lstm"): {"ane-static-shapes", "ane-no-recurrent"},
    ("gru.onnx", "gru"): {"ane-static-shapes", "ane-no-gru"},
    ("loop_scan.onnx", "loop"): {"ane-no-while-loop"},
    ("loop_scan.onnx", "scan"): {"ane-no-while-loop"},
    ("qdq.onnx", "q_x"): {"coreml-no-lowering"},
    ("dynamic_dims.onnx", "reduce"): {"ane-static-shapes"},
    ("custom_domain.onnx", "fancy"): {"coreml-custom-domain"},
}

# Pins that make each dynamic fixture static (every symbolic dim of its inputs fixed).
PINS = {
    "cnn.onnx": ["input=1,3,32,32"],
    "transformer.onnx": ["tokens=1,8,64"],
    "lstm.onnx": ["X=4,1,16"],
    "gru.onnx": ["X=4,1,16"],
    "external_data.onnx": ["x=1,64"],
    "fp16.onnx": ["x=1,8"],
    "qdq.onnx": ["x=1,16"],
    "dynamic_dims.onnx": ["x=2,3,8", "mask=2,5"],
}

SOURCED = re.compile(r"\((documented|observed|community): https?://\S+\)$|\(`mlpkg profiles core-ml`.*\)$"
                     r"|\(the model's FunctionProto\)$|docs/AUDIT\.md(#[a-z-]+)?\)$|\(documented: docs/COREML\.md(#[a-z-]+)?\)$")


def node_key(node: dict) -> str:
    return (node["graph"] + "/" if node["graph"] else "") + node["name"]


def loop_and_sequence_map(path: Path) -> Path:
    """loop_scan.onnx's Loop (lowered: a while_loop, CPU), with its Scan replaced by SequenceConstruct → SequenceMap
    (a Relu body) → ConcatFromSequence: no lowering for the sequence ops, SequenceMap refused as an op holding a
    subgraph (coreml-control-flow) and its body's Relu with it (coreml-subgraph); all four block loading."""
    model = onnx.load(FIXTURES / "loop_scan.onnx")
    graph = model.graph
    keep = [n for n in graph.node if n.op_type != "Scan"]
    del graph.node[:]
    body = onnx.helper.make_graph([onnx.helper.make_node("Relu", ["e"], ["r"], name="seqmap_relu")], "body",
                                  [onnx.helper.make_tensor_value_info("e", onnx.TensorProto.FLOAT, [4])],
                                  [onnx.helper.make_tensor_value_info("r", onnx.TensorProto.FLOAT, [4])])
    graph.node.extend(keep + [
        onnx.helper.make_node("SequenceConstruct", ["v_final", "v_final"], ["pair"], name="construct"),
        onnx.helper.make_node("SequenceMap", ["pair"], ["mapped"], body=body, name="seqmap"),
        onnx.helper.make_node("ConcatFromSequence", ["mapped"], ["joined"], axis=0, name="concat"),
    ])
    scan_values = {"acc0", "xs", "acc_final", "prefix_sums"}
    inputs = [i for i in graph.input if i.name not in scan_values]
    outputs = [o for o in graph.output if o.name not in scan_values]
    del graph.input[:], graph.output[:]
    graph.input.extend(inputs)
    graph.output.extend(outputs + [onnx.helper.make_tensor_value_info("joined", onnx.TensorProto.FLOAT, [8])])
    onnx.save(model, path)
    return path


def audit(mlpkg, model: Path | str, *args: str, cwd: Path | None = None) -> dict:
    proc = run([str(mlpkg), "audit", str(model), "--format", "json", *args], cwd or FIXTURES)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def pinned(name: str) -> list[str]:
    return [a for pin in PINS.get(name, []) for a in ("--input-shape", pin)]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_node_gets_the_hand_written_verdict(mlpkg, name):
    report = audit(mlpkg, FIXTURES / name)
    expected = EXPECTED[name]
    keys = [node_key(n) for n in report["nodes"]]
    assert set(expected) - {"*"} <= set(keys), f"expected nodes missing: {set(expected) - set(keys)}"
    for node in report["nodes"]:
        key = node_key(node)
        want = expected.get(key, expected.get("*"))
        assert want is not None, f"{name}: no expectation for {key}"
        assert node["unit"] == want, (name, key, node["unit"], node["reasons"])
        assert node["reasons"], (name, key)
        for reason in node["reasons"]:
            assert SOURCED.search(reason), f"{name} {key}: reason without a source: {reason}"
        assert (node.get("preferredUnit") is not None) == (key in MOVED.get(name, set())), (name, key)
        fails = {f["rule"] for f in node["verdicts"].get(NE, {}).get("failures", [])}
        if (name, key) in NE_FAILURES:
            assert NE_FAILURES[(name, key)] <= fails, (name, key, fails)
        if node["unit"] == NE:
            assert not fails
        if node["unit"] == UNSUPPORTED:
            assert all(not v["supported"] for v in node["verdicts"].values())


def test_json_contract(mlpkg):
    report = audit(mlpkg, FIXTURES / "cnn.onnx")
    for node in report["nodes"]:
        assert isinstance(node["name"], str) and isinstance(node["opType"], str) and isinstance(node["domain"], str)
        assert node["unit"] in (NE, GPU, CPU, UNSUPPORTED)
        assert isinstance(node["reasons"], list) and all(isinstance(r, str) for r in node["reasons"])
    summary = report["summary"]
    # batch reaches every value: all 8 nodes on the GPU (ane-static-shapes); bn1 folds into conv1 before conversion
    # (a constant now, not counted).
    assert summary["coverage"] == 0 and summary["constantNodes"] == 1
    assert summary["partitions"] == {"count": 1, "sizes": [8]}
    assert summary["estimate"]["label"] == "estimate"
    assert report["target"] == NE and report["allowedUnits"] == [NE, GPU, CPU]
    summary = audit(mlpkg, FIXTURES / "cnn.onnx", *pinned("cnn.onnx"))["summary"]
    assert summary["coverage"] == pytest.approx(87.5)  # 7 of 8: gap fails ane-global-pool-extent (14 > 13)
    assert summary["partitions"] == {"count": 3, "sizes": [5, 1, 2]}
    assert summary["placementOnTarget"] == {"assumed": 7}  # no source says these ops run there: only no blocker


# Neural Engine coverage with PINS, from the rules: what keeps a node off once every shape is static.
PINNED_COVERAGE = {
    "cnn.onnx": 87.5,  # 7 of 8: gap's input relu2_out [1,32,14,14] fails ane-global-pool-extent (14 > 13)
    "lstm.onnx": 0.0,  # ane-no-recurrent
    "gru.onnx": 0.0,
    "dynamic_dims.onnx": 50.0,  # 2 of 4: add, reduce (MIL reduce_sum takes int32); seq and opt have no lowering
    "qdq.onnx": 50.0,  # 2 of 4: q_x and dq_x have no Core ML lowering
}


@pytest.mark.parametrize("name", sorted(PINS))
def test_pinning_flips_dynamic_only_fallbacks(mlpkg, name):
    """A node kept off the Neural Engine by nothing but ane-static-shapes runs there once the inputs are pinned;
    pinning removes ane-static-shapes failures and nothing else."""
    before = {node_key(n): n for n in audit(mlpkg, FIXTURES / name)["nodes"]}
    report = audit(mlpkg, FIXTURES / name, *pinned(name))
    after = {node_key(n): n for n in report["nodes"]}
    assert set(after) == set(before)
    flipped = 0
    for key, node in before.items():
        fails = {f["rule"] for f in node["verdicts"][NE]["failures"]}
        after_failures = after[key]["verdicts"][NE]["failures"]
        # The pins make every tensor static; only a value that is not a tensor (a sequence, an optional) still fails.
        for f in after_failures:
            if f["rule"] == "ane-static-shapes":
                assert all("is not a tensor" in part for part in f["detail"].split("; ")), (key, f["detail"])
        assert {f["rule"] for f in after_failures} - {"ane-static-shapes"} == fails - {"ane-static-shapes"}, key
        if fails == {"ane-static-shapes"}:
            assert after[key]["unit"] == NE, (key, after[key]["reasons"])
            flipped += 1
        if {"ane-no-recurrent", "ane-no-gru"} & fails or any(r.startswith(("coreml-", "mil-")) for r in fails):
            assert after[key]["unit"] != NE
    if name not in ("lstm.onnx", "gru.onnx"):
        assert flipped > 0
    assert report["summary"]["coverage"] == pytest.approx(PINNED_COVERAGE.get(name, 100.0), abs=0.05)


def test_min_coverage_gate(mlpkg, tmp_path):
    pins = pinned("cnn.onnx")  # 87.5%: gap stays off the Neural Engine (ane-global-pool-extent); bn1 folds into conv1
    proc = run([str(mlpkg), "audit", str(FIXTURES / "cnn.onnx"), "--min-coverage", "90", *pins], tmp_path)
    assert proc.returncode == 3, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and "87.5% (7 of 8 nodes)" in lines[0] and "90%" in lines[0]
    assert "gap" in proc.stdout  # the report is still printed
    passing = run([str(mlpkg), "audit", str(FIXTURES / "cnn.onnx"), "--min-coverage", "87.5", *pins], tmp_path)
    assert passing.returncode == 0, passing.stderr  # equal is not below
    unpinned = run([str(mlpkg), "audit", str(FIXTURES / "cnn.onnx"), "--min-coverage", "1"], tmp_path)
    assert unpinned.returncode == 3 and " 0% " in unpinned.stderr, unpinned.stderr


TRANSFORMER_PINS = ["--input-shape", "input_ids=1,8", "--input-shape", "attention_mask=1,8"]


@pytest.mark.parametrize("threshold,code", [("96.3", 3), ("96.2963", 3), ("96.29629629629630", 3),
                                            ("96.29629629629629", 0), ("96.296", 0), ("96.29", 0), ("0", 0)])
def test_min_coverage_compares_the_exact_fraction(mlpkg, tmp_path, threshold, code):
    # transformer_dynamic pinned: 26 of 27 nodes on the Neural Engine, 96.296296…%, shown rounded as 96.3%. The gate
    # compares the exact fraction (96.28% used to pass --min-coverage 96.3 because the rounded value was compared),
    # and the message prints both with enough digits to tell them apart.
    out = tmp_path / "a.json"
    proc = run([str(mlpkg), "audit", str(FIXTURES / "transformer_dynamic.onnx"), "--format", "json", "-o", str(out),
                "--min-coverage", threshold, *TRANSFORMER_PINS], tmp_path)
    assert proc.returncode == code, proc.stderr
    summary = json.loads(out.read_text())["summary"]
    assert summary["coverage"] == 96.3 and summary["coverageExact"] == 2600 / 27 and summary["nodesOnTarget"] == 26
    if code == 3:
        # Both numbers with the digits it takes to tell them apart.
        m = re.search(r"coverage ([0-9.]+)% \(26 of 27 nodes\) is below --min-coverage ([0-9.]+)%", proc.stderr)
        assert m, proc.stderr
        assert m.group(1) != m.group(2) and float(m.group(1)) < float(m.group(2)), proc.stderr
        assert abs(float(m.group(1)) - 2600 / 27) < 1e-3 and abs(float(m.group(2)) - float(threshold)) < 1e-3


def test_markdown(mlpkg, tmp_path):
    out = tmp_path / "audit.md"
    model = loop_and_sequence_map(tmp_path / "loop_seqmap.onnx")
    proc = run([str(mlpkg), "audit", str(model), "--format", "markdown", "-o", str(out)], tmp_path)
    assert proc.returncode == 0 and proc.stdout == "", proc.stderr
    text = out.read_text(encoding="utf-8")
    assert text.startswith("## Compute-unit audit:")
    assert "**neural-engine coverage 44.44% (4 of 9 nodes; 0 constant or folded, not counted)**" in text
    assert "4 node(s) block loading" in text
    assert text.index("### Blockers on neural-engine") < text.index("### Fallbacks")
    assert "| `coreml-control-flow` | 1 | 1 |" in text and "| `ane-no-while-loop` | 1 | 0 |" in text
    assert "| `coreml-subgraph` | 1 | 1 |" in text and "| `coreml-no-lowering` | 2 | 2 |" in text
    assert "### Fallbacks (not on neural-engine): 5" in text
    assert re.search(r"\| `loop` \| Loop \| cpu \| neural-engine: Loop — .*coremltools/issues/2208\).*runs on cpu: Loop lowers to MIL .*while_loop .*control_flow\.py\)", text)
    assert "| `seqmap` | SequenceMap | unsupported | neural-engine, gpu, cpu: SequenceMap (an op holding subgraphs) is not lowered; If, Loop and Scan are" in text
    for node in ("loop/body/loop_mul", "seqmap/body/seqmap_relu"):
        assert f"| `{node}` |" in text
    # The fixture's Scan lowers like the Loop (a while_loop, CPU): nothing blocks loading there.
    proc = run([str(mlpkg), "audit", str(FIXTURES / "loop_scan.onnx"), "--format", "markdown", "-o", str(out)], tmp_path)
    assert proc.returncode == 0, proc.stderr
    text = out.read_text(encoding="utf-8")
    assert "**neural-engine coverage 75% (6 of 8 nodes" in text and "block loading" not in text
    assert re.search(r"\| `scan` \| Scan \| cpu \| neural-engine: Scan — .*coremltools/issues/2208\).*runs on cpu: Scan lowers to MIL .*while_loop", text)


def test_text_and_usage_errors(mlpkg, tmp_path):
    proc = run([str(mlpkg), "audit", str(FIXTURES / "qdq.onnx")], tmp_path)
    assert proc.returncode == 0 and "\x1b[" not in proc.stdout  # no colour off a terminal
    assert "q_x (QuantizeLinear) → unsupported" in proc.stdout and "no Core ML lowering for QuantizeLinear" in proc.stdout
    bad_units = run([str(mlpkg), "audit", str(FIXTURES / "cnn.onnx"), "--compute-units", "cpu-and-gpu"], tmp_path)
    assert bad_units.returncode == 2 and "not among --compute-units" in bad_units.stderr
    gpu = audit(mlpkg, FIXTURES / "cnn.onnx", "--profile", "gpu", "--compute-units", "cpu-and-gpu")
    assert gpu["target"] == GPU and {n["unit"] for n in gpu["nodes"]} == {GPU}
    for pin, needle in (("nope=1", "no input 'nope'"), ("input=1,3,32", "rank 4")):  # usage errors
        bad_pin = run([str(mlpkg), "audit", str(FIXTURES / "cnn.onnx"), "--input-shape", pin], tmp_path)
        errors = [line for line in bad_pin.stderr.splitlines() if line.startswith("error:")]
        assert bad_pin.returncode == 2 and len(errors) == 1 and needle in errors[0], bad_pin.stderr
    assert run([str(mlpkg), "audit", str(FIXTURES / "cnn.onnx"), "--chip", "Z9"], tmp_path).returncode == 2
    m4 = audit(mlpkg, FIXTURES / "cnn.onnx", "--chip", "M4 Pro")
    assert m4["chip"] == "M4 Pro"
    broken = run([str(mlpkg), "audit", str(FIXTURES / "malformed" / "cycle.onnx")], tmp_path)
    assert broken.returncode == 1 and broken.stderr.startswith("error:") and len(broken.stderr.splitlines()) == 1


def test_output_file_is_atomic_and_symlinks_are_refused(mlpkg, tmp_path):
    target = tmp_path / "elsewhere.json"
    target.write_text("keep")
    link = tmp_path / "report.json"
    os.symlink(target, link)
    proc = run([str(mlpkg), "audit", str(FIXTURES / "cnn.onnx"), "--format", "json", "-o", str(link)], tmp_path)
    assert proc.returncode == 1 and "symbolic link" in proc.stderr
    assert target.read_text() == "keep"
    out = tmp_path / "out.json"
    assert run([str(mlpkg), "audit", str(FIXTURES / "cnn.onnx"), "--format", "json", "-o", str(out)], tmp_path).returncode == 0
    assert json.loads(out.read_text())["summary"]["nodes"] == 8
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_profile_files(mlpkg, tmp_path):
    """A user profile that re-enables global pooling of any extent on the Neural Engine; a broken one is refused
    naming the file."""
    mine = tmp_path / "my-ane.json"
    mine.write_text(json.dumps({"format": "mlpkg-profile", "formatVersion": 1, "name": "my-ane",
                                "extends": "neural-engine", "disable": ["ane-global-pool-extent"]}))
    report = audit(mlpkg, FIXTURES / "cnn.onnx", "--profile-file", str(mine), *pinned("cnn.onnx"))
    assert report["profiles"][0]["name"] == "my-ane" and {n["unit"] for n in report["nodes"]} == {NE}
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps({"format": "mlpkg-profile", "formatVersion": 1, "name": "b", "extends": "gpu",
                                  "rules": [{"id": "x", "kind": "maxRank", "reason": "r", "source": "s",
                                             "confidence": "documented"}]}))
    proc = run([str(mlpkg), "audit", str(FIXTURES / "cnn.onnx"), "--profile-file", str(broken)], tmp_path)
    assert proc.returncode == 1
    assert proc.stderr.strip() == f"error: {broken}: rules[0] 'x': kind 'maxRank' needs 'max'"
    listing = run([str(mlpkg), "profiles", "--json"], tmp_path)
    assert [p["name"] for p in json.loads(listing.stdout)] == ["neural-engine", "gpu", "cpu", "core-ml"]
    detail = json.loads(run([str(mlpkg), "profiles", "neural-engine", "--json"], tmp_path).stdout)
    assert all(r["source"].startswith("https://") and r["confidence"] in ("documented", "observed", "community")
               for r in detail["rules"])
    assert {r["profile"] for r in detail["rules"]} == {"core-ml", "neural-engine"}
    text = run([str(mlpkg), "profiles", "neural-engine"], tmp_path).stdout
    assert "ane-no-recurrent" in text and "coremltools/issues/1780" in text
    checked = run([str(mlpkg), "profiles", "--profile-file", str(mine)], tmp_path)
    assert checked.returncode == 0 and "my-ane" in checked.stdout


def test_convert_records_units_and_audit_works_on_the_package(mlpkg, tmp_path):
    pkg = tmp_path / "loop.mlpkg"
    model = loop_and_sequence_map(tmp_path / "loop_seqmap.onnx")
    proc = run([str(mlpkg), "convert", str(model), "-o", str(pkg), "--profile", "neural-engine"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    manifest = json.loads((pkg / "manifest.json").read_text())
    assert manifest["formatVersion"] == "1.1"
    nodes = manifest["graph"]["nodes"]
    # The Loop lowers (while_loop: CPU); the sequence ops and SequenceMap do not.
    assert [n["computeUnit"] for n in nodes] == [CPU, UNSUPPORTED, UNSUPPORTED, UNSUPPORTED]
    body = next(a["g"] for a in nodes[0]["attributes"] if a["name"] == "body")
    assert [n["computeUnit"] for n in body["nodes"]] == [NE] * 4
    mapped = next(a["g"] for a in nodes[2]["attributes"] if a["name"] == "body")
    assert [n["computeUnit"] for n in mapped["nodes"]] == [UNSUPPORTED]
    report = json.loads((pkg / "report.json").read_text())
    assert report["audit"]["summary"]["coverage"] == 44.4
    assert {f["name"] for f in report["audit"]["fallbacks"]} >= {"loop", "seqmap"}
    assert manifest["provenance"]["options"]["profile"] == "neural-engine"
    assert run([str(mlpkg), "verify", str(pkg)], tmp_path).returncode == 0
    from_package = audit(mlpkg, pkg)
    from_model = audit(mlpkg, model)
    assert [n["unit"] for n in from_package["nodes"]] == [n["unit"] for n in from_model["nodes"]]
    # Without --profile nothing changes: format 1.0, no computeUnit, no audit.
    plain = tmp_path / "plain.mlpkg"
    assert run([str(mlpkg), "convert", str(FIXTURES / "loop_scan.onnx"), "-o", str(plain)], tmp_path).returncode == 0
    text = (plain / "manifest.json").read_text()
    assert '"formatVersion":"1.0"' in text and "computeUnit" not in text
    assert "audit" not in json.loads((plain / "report.json").read_text())
    # --input-shape is shared with convert: the pinned, shape-inferred graph is what gets audited.
    cnn = tmp_path / "cnn.mlpkg"
    proc = run([str(mlpkg), "convert", str(FIXTURES / "cnn.onnx"), "-o", str(cnn), "--profile", "neural-engine",
                *pinned("cnn.onnx")], tmp_path)
    assert proc.returncode == 0, proc.stderr
    units = {n["name"]: n["computeUnit"] for n in json.loads((cnn / "manifest.json").read_text())["graph"]["nodes"]}
    assert units == {**{name: NE for name in units}, "gap": GPU}  # ane-global-pool-extent: 14 > 13
    # 7 of 8 nodes: convert folded bn1 into conv1 before the audit (the model itself has 9 nodes, 8 on the NE).
    assert json.loads((cnn / "report.json").read_text())["audit"]["summary"]["coverage"] == pytest.approx(87.5)
    usage = run([str(mlpkg), "convert", str(FIXTURES / "cnn.onnx"), "-o", str(tmp_path / "x.mlpkg"),
                 "--profile", "neural-engine", "--input-shape", "nope=1"], tmp_path)
    assert usage.returncode == 2 and not (tmp_path / "x.mlpkg").exists(), usage.stderr


# --------------------------------------------------------------------------------------------------------------------
# HTML in headless Chromium

UNIT_COLORS = {NE: (0x1F, 0x9D, 0x55), GPU: (0x25, 0x63, 0xEB), CPU: (0xF5, 0x9E, 0x0B), UNSUPPORTED: (0xDC, 0x26, 0x26)}


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    pytest.fail("headless Chromium is needed for the HTML test: `make testdeps` installs Debian's chromium",
                pytrace=False)


def chromium_run(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                           "--no-first-run", "--disable-extensions", f"--user-data-dir={cwd / 'chromium-profile'}",
                           *args], cwd=cwd, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)


def decode_png(data: bytes) -> tuple[int, int, int, list[bytes]]:
    """Width, height, bytes per pixel and unfiltered rows of an 8-bit RGB or RGBA PNG."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, width, height, bpp = 8, b"", 0, 0, 0
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            width, height, depth, ctype, _, _, interlace = struct.unpack(">IIBBBBB", body)
            assert depth == 8 and ctype in (2, 6) and interlace == 0, (depth, ctype, interlace)
            bpp = 3 if ctype == 2 else 4
        elif kind == b"IDAT":
            idat += body
        elif kind == b"IEND":
            break
    raw = zlib.decompress(idat)
    stride = width * bpp
    rows, prev, i = [], bytearray(stride), 0
    for _ in range(height):
        f, line = raw[i], bytearray(raw[i + 1:i + 1 + stride])
        i += 1 + stride
        if f == 1:
            for x in range(bpp, stride):
                line[x] = (line[x] + line[x - bpp]) & 255
        elif f == 2:
            line = bytearray((a + b) & 255 for a, b in zip(line, prev))
        elif f == 3:
            for x in range(stride):
                line[x] = (line[x] + ((line[x - bpp] if x >= bpp else 0) + prev[x]) // 2) & 255
        elif f == 4:
            for x in range(stride):
                a, b = (line[x - bpp] if x >= bpp else 0), prev[x]
                c = prev[x - bpp] if x >= bpp else 0
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[x] = (line[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(bytes(line))
        prev = line
    return width, height, bpp, rows


def test_html_renders_in_chromium(mlpkg, tmp_path):
    html = tmp_path / "loop_seqmap.html"
    model = loop_and_sequence_map(tmp_path / "loop_seqmap.onnx")
    proc = run([str(mlpkg), "audit", str(model), "--format", "html", "-o", str(html)], tmp_path)
    assert proc.returncode == 0, proc.stderr
    source = html.read_text(encoding="utf-8")
    assert "<script" not in source and not re.search(r"""(src|href)=["']?(https?:)?//[^"']*\.(css|js|png|svg)""", source)
    report = audit(mlpkg, model)

    dom = chromium_run(["--dump-dom", html.as_uri()], tmp_path)
    assert dom.returncode == 0, dom.stderr[-2000:]
    text = dom.stdout
    for node in report["nodes"]:  # every node is drawn, with its unit
        key = node_key(node)
        assert re.search(rf'<g class="node" data-unit="{node["unit"]}" data-node="{re.escape(key)}">', text), key
    rows = re.findall(r'<tr class="fallback" data-node="([^"]+)">', text)
    assert rows == [node_key(n) for n in report["nodes"] if n["unit"] != NE]  # the Loop (CPU) and the sequence nodes fall back
    table = text[text.index('<table id="fallbacks">'):]
    table = table[:table.index("</table>")]
    assert "coremltools/issues/2208" in table and "SequenceMap (an op holding subgraphs) is not lowered" in table

    png = tmp_path / "shot.png"
    # Tall enough for the graph below the blocker and fallback tables (the Loop refusal and its source URL are long).
    shot = chromium_run([f"--screenshot={png}", "--window-size=1000,2600", html.as_uri()], tmp_path)
    assert shot.returncode == 0 and png.exists(), shot.stderr[-2000:]
    width, height, bpp, rows_px = decode_png(png.read_bytes())
    assert (width, height) == (1000, 2600)
    seen: dict[tuple[int, int, int], int] = {}
    for row in rows_px:
        for x in range(0, len(row), bpp * 2):
            pixel = (row[x], row[x + 1], row[x + 2])
            seen[pixel] = seen.get(pixel, 0) + 1
    assert len(seen) > 20, "blank screenshot"
    assert seen.get((255, 255, 255), 0) < width * height / 2 * 0.98, "blank screenshot"
    for unit in {n["unit"] for n in report["nodes"]}:  # each unit's colour is on screen
        assert seen.get(UNIT_COLORS[unit], 0) > 50, (unit, UNIT_COLORS[unit])


FALLBACK_MARK = (0x7C, 0x3A, 0xED)  # #fallbacks' left border
GRAPH_BACKGROUND = (0xEC, 0xFE, 0xFF)  # svg.graph's background


def test_html_puts_blockers_and_fallbacks_above_the_graph(mlpkg, tmp_path):
    """Rendered by Chromium, the dynamic transformer's report shows the pin suggestion, the blockers and the fallback
    table before the graph: the first screen row with the fallback table's border is above the first row of the
    graph's background."""
    html = tmp_path / "transformer.html"
    proc = run([str(mlpkg), "audit", str(FIXTURES / "transformer_dynamic.onnx"), "--format", "html", "-o", str(html)],
               tmp_path)
    assert proc.returncode == 0, proc.stderr
    dom = chromium_run(["--dump-dom", html.as_uri()], tmp_path)
    assert dom.returncode == 0, dom.stderr[-2000:]
    text = dom.stdout
    # Nothing in it blocks loading since Range has a lowering (range_1d): the section is left out.
    assert 'id="load-blocking"' not in text
    order = [text.index(marker) for marker in ('id="coverage"', 'id="suggestion"',
                                                'id="blockers"', 'id="fallbacks"', '<svg class="graph"', 'id="all-nodes"')]
    assert order == sorted(order), order
    assert "--input-shape input_ids=1,8 --input-shape attention_mask=1,8" in text
    # Where nodes do block loading (the sequence ops and SequenceMap), their section comes right after the coverage.
    blocked = tmp_path / "loop_seqmap.html"
    model = loop_and_sequence_map(tmp_path / "loop_seqmap.onnx")
    proc = run([str(mlpkg), "audit", str(model), "--format", "html", "-o", str(blocked)], tmp_path)
    assert proc.returncode == 0, proc.stderr
    dom2 = chromium_run(["--dump-dom", blocked.as_uri()], tmp_path)
    assert dom2.returncode == 0, dom2.stderr[-2000:]
    order = [dom2.stdout.index(marker) for marker in ('id="coverage"', 'id="load-blocking"', 'id="blockers"', 'id="fallbacks"')]
    assert order == sorted(order), order

    png = tmp_path / "shot.png"
    shot = chromium_run([f"--screenshot={png}", "--window-size=1200,10000", html.as_uri()], tmp_path)
    assert shot.returncode == 0 and png.exists(), shot.stderr[-2000:]
    width, height, bpp, rows_px = decode_png(png.read_bytes())

    def first_row(color: tuple[int, int, int], minimum: int) -> int | None:
        for y, row in enumerate(rows_px):
            hits = sum(1 for x in range(0, len(row), bpp) if (row[x], row[x + 1], row[x + 2]) == color)
            if hits >= minimum:
                return y
        return None

    fallback_y = first_row(FALLBACK_MARK, 3)
    graph_y = first_row(GRAPH_BACKGROUND, 100)
    assert fallback_y is not None and graph_y is not None, (fallback_y, graph_y)
    assert fallback_y < graph_y, (fallback_y, graph_y)


# --------------------------------------------------------------------------------------------------------------------
# Cross-check with ONNX Runtime's mobile usability checker (CoreML MLProgram section). Its verdict is by op name only,
# after ORT's own graph optimizations (which fuse or drop some nodes, and inline model-local functions), so the
# comparison is per op type present in both views, our side being the Core ML-level verdict (supported on any unit).
# Every disagreement is listed here and in docs/AUDIT.md.
ORT_DISAGREEMENTS = {
    ("cnn.onnx", "Flatten"): "ORT's ML Program path has no Flatten builder; MIL expresses it as a reshape",
    ("lstm.onnx", "LSTM"): "ORT's ML Program path has no LSTM builder; MIL has lstm (mil-recurrent)",
    ("gru.onnx", "GRU"): "ORT's ML Program path has no GRU builder; mlpkg writes GRU with linear_before_reset=1 as a MIL while_loop (mil-recurrent)",
    ("if_branches.onnx", "If"): "ORT's ML Program path has no If builder; mlpkg lowers an If decided at run time to MIL cond (mil-control-flow)",
}
# Op types our audit splits by node where ORT judges by name.
ORT_MIXED = {
    ("qdq.onnx", "DequantizeLinear"): "a constant weight's DequantizeLinear becomes a constexpr; an activation's is refused",
}
# Fixtures the checker itself fails on (ORT 1.32), so there is nothing to compare.
ORT_CHECKER_FAILS = {
    "constant_weights.onnx": "onnx shape inference fails on the sparse Constant feeding MatMul",
    "loop_scan.onnx": "check_shapes() calls a missing logger when a subgraph has no value_info",
    "custom_domain.onnx": "ORT cannot load com.example:FancyOp",
    "typed_fields.onnx": "after ORT's optimizations no node is left (division by zero)",
}
ORT_FIXTURES = ["cnn.onnx", "transformer.onnx", "lstm.onnx", "gru.onnx", "external_data.onnx", "fp16.onnx",
                "qdq.onnx", "if_branches.onnx", "duplicate_opsets.onnx", "function.onnx", "dynamic_dims.onnx"]


def ort_mlprogram_view(model: Path, cwd: Path) -> tuple[set[str], set[str]] | None:
    """Op types ORT's checker puts in CoreML MLProgram partitions, and those it lists as unsupported."""
    proc = subprocess.run([sys.executable, "-m", "onnxruntime.tools.check_onnx_model_mobile_usability",
                           "--log_level", "debug", str(model)], cwd=cwd, capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        return None
    text = proc.stdout + proc.stderr
    section = text.split("Checking CoreML MLProgram")[-1].split("Checking if model will perform better")[0]
    supported = {item.split(":")[0] for m in re.finditer(r"Nodes in group: (.*)", section) for item in m.group(1).split(",")}
    match = re.search(r"Unsupported ops: (.*)", section)
    unsupported = {op.split(":")[-1] for op in match.group(1).split(",")} if match else set()
    return supported, unsupported


def fixed_copy(name: str, folder: Path) -> Path:
    """The fixture with its dynamic inputs pinned to the same shapes as PINS (what onnxruntime's
    make_dynamic_shape_fixed --input_name does, without a process per input)."""
    if not PINS.get(name):
        return FIXTURES / name
    model = onnx.load(str(FIXTURES / name), load_external_data=False)
    for pin in PINS[name]:
        input_name, dims = pin.split("=")
        shape = next(i for i in model.graph.input if i.name == input_name).type.tensor_type.shape
        for dim, value in zip(shape.dim, dims.split(",")):
            dim.Clear()
            dim.dim_value = int(value)
    if name == "external_data.onnx":
        shutil.copy(FIXTURES / "external_data.bin", folder / "external_data.bin")
    out = folder / name
    onnx.save(model, str(out))
    return out


def test_ort_mobile_usability_cross_check(mlpkg, tmp_path):
    disagreements = set()
    # The checker takes about a second per model; two at a time.
    with ThreadPoolExecutor(max_workers=2) as pool:
        views = dict(zip(ORT_FIXTURES, pool.map(lambda n: ort_mlprogram_view(fixed_copy(n, tmp_path), tmp_path),
                                                 ORT_FIXTURES)))
        failing = dict(zip(ORT_CHECKER_FAILS, pool.map(lambda n: ort_mlprogram_view(FIXTURES / n, tmp_path),
                                                        ORT_CHECKER_FAILS)))
    for name in ORT_FIXTURES:
        view = views[name]
        assert view is not None, f"ORT's checker failed on {name}"
        supported, unsupported = view
        ours: dict[str, set[bool]] = {}
        for node in audit(mlpkg, FIXTURES / name, *pinned(name))["nodes"]:
            if node["graph"] or node["constant"]:
                continue  # ORT's partitioning counts subgraphs separately; Constants become initializers
            ours.setdefault(node["opType"], set()).add(node["unit"] != UNSUPPORTED)
        for op, verdicts in ours.items():
            if op not in supported and op not in unsupported:
                continue  # ORT's optimizer fused it away or inlined it (BatchNormalization, MatMul+Add, functions)
            if (name, op) in ORT_MIXED:
                assert len(verdicts) == 2, (name, op)
                continue
            assert len(verdicts) == 1, (name, op)
            if (op in supported) != verdicts.pop():
                disagreements.add((name, op))
    assert disagreements == set(ORT_DISAGREEMENTS), \
        f"unexplained: {disagreements - set(ORT_DISAGREEMENTS)}; no longer seen: {set(ORT_DISAGREEMENTS) - disagreements}"
    for name, view in failing.items():
        assert view is None, f"ORT's checker now works on {name}: compare it"


def test_docs_list_every_rule_with_its_confidence(mlpkg, tmp_path):
    """docs/AUDIT.md's rule tables name every built-in rule next to its confidence."""
    doc = (FIXTURES.parent / "docs" / "AUDIT.md").read_text(encoding="utf-8")
    rows = {m.group(1): m.group(0) for m in re.finditer(r"^\| `([a-z0-9-]+)` \|.*$", doc, re.MULTILINE)}
    for name in ("core-ml", "neural-engine", "gpu", "cpu"):
        detail = json.loads(run([str(mlpkg), "profiles", name, "--json"], tmp_path).stdout)
        for rule in detail["rules"]:
            assert rule["id"] in rows, f"docs/AUDIT.md does not list rule {rule['id']}"
            assert f"| {rule['confidence']} |" in rows[rule["id"]], (rule["id"], rule["confidence"])


def test_rule_kinds_end_to_end(mlpkg, tmp_path):
    """A model with one node per kind of fallback; each gets the unit and the concrete reason its rule gives."""
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    f32 = TensorProto.FLOAT
    inits = [numpy_helper.from_array(np.ones((4, 3, 3, 3), np.float32), "conv.w"),
             numpy_helper.from_array(np.array([1, 1, 4, 4], np.float32), "resize.scales"),
             numpy_helper.from_array(np.array([1, 1, 1, 1, 2, 2], np.int64), "shape6"),
             numpy_helper.from_array(np.zeros((2, 2), np.int64), "gather.idx")]
    nodes = [
        helper.make_node("Conv", ["img", "conv.w"], ["conv.y"], name="dilated", dilations=[2, 2]),
        helper.make_node("MaxPool", ["img"], ["pool.y"], name="bigpool", kernel_shape=[14, 14]),
        helper.make_node("Resize", ["img", "", "resize.scales"], ["resize.y"], name="upsample4x", mode="nearest"),
        helper.make_node("Gemm", ["a", "b"], ["gemm.y"], name="gemm_dynamic_b"),
        helper.make_node("Relu", ["wide"], ["wide.y"], name="wide_relu"),
        helper.make_node("Reshape", ["small", "shape6"], ["rank6"], name="to_rank6"),
        helper.make_node("NonMaxSuppression", ["boxes", "scores"], ["selected"], name="nms"),
        helper.make_node("FusedMatMul", ["a", "a2"], ["fused.y"], name="contrib", domain="com.microsoft"),
        helper.make_node("GatherElements", ["table", "gather.idx"], ["gathered"], name="gather"),
    ]
    vi = helper.make_tensor_value_info
    inputs = [vi("img", f32, [1, 3, 32, 32]), vi("a", f32, [2, 4]), vi("b", f32, [4, 4]), vi("a2", f32, [4, 4]),
              vi("wide", f32, [1, 20000]), vi("small", f32, [4, 4]), vi("boxes", f32, [1, 8, 4]),
              vi("scores", f32, [1, 1, 8]), vi("table", f32, [2, 2])]
    outputs = [vi("conv.y", f32, [1, 4, 26, 26]), vi("pool.y", f32, [1, 3, 19, 19]), vi("resize.y", f32, [1, 3, 128, 128]),
               vi("gemm.y", f32, [2, 4]), vi("wide.y", f32, [1, 20000]), vi("rank6", f32, [1, 1, 1, 1, 4, 4]),
               vi("selected", TensorProto.INT64, [3, 3]), vi("fused.y", f32, [2, 4]), vi("gathered", f32, [2, 2])]
    model = helper.make_model(helper.make_graph(nodes, "rules", inputs, outputs, inits),
                              opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)])
    model.ir_version = 10
    path = tmp_path / "rules.onnx"
    path.write_bytes(model.SerializeToString())

    report = audit(mlpkg, path, cwd=tmp_path)
    by_name = {n["name"]: n for n in report["nodes"]}
    expected = {
        "dilated": (GPU, "neural-engine: Conv dilations [2, 2] — dilated convolutions were reported not to run on the "
                         "Neural Engine (community: https://github.com/hollance/neural-engine/blob/master/docs/unsupported-layers.md)"),
        "bigpool": (GPU, "neural-engine: MaxPool kernel_shape [14, 14] — the Neural Engine's pooling kernel is at most 13 "
                         "wide (observed: https://github.com/hollance/neural-engine/issues/2)"),
        "upsample4x": (GPU, "neural-engine: Resize scale factors [1, 1, 4, 4] (from scales) > 2× — the Neural Engine "
                            "upsamples by a factor of 2 at most (observed: https://github.com/hollance/neural-engine/issues/2)"),
        # MIL matmul takes a run-time y (coremltools iOS15/linear.py): it converts (ONNX Runtime's builder wants a
        # constant B; its conditions are not Core ML's).
        "gemm_dynamic_b": (NE, "runs on neural-engine: Gemm lowers to MIL matmul, mul, add — matmul: x and y: T = (fp16, fp32, int32)"),
        # No Apple source says an ML Program refuses a dim above 16384 (ONNX Runtime moved its check to convolutions).
        "wide_relu": (NE, "runs on neural-engine: Relu lowers to MIL relu"),
        "to_rank6": (UNSUPPORTED, "neural-engine, gpu, cpu: output 0 'rank6' has rank 6; Core ML tensors have rank 5 at most"),
        "nms": (UNSUPPORTED, "neural-engine, gpu, cpu: no Core ML lowering for NonMaxSuppression"),
        "contrib": (UNSUPPORTED, "neural-engine, gpu, cpu: custom domain 'com.microsoft' has no Core ML lowering"),
        "gather": (GPU, "neural-engine: GatherElements — gather was reported not to run on the Neural Engine (community:"),
    }
    for name, (unit, reason) in expected.items():
        node = by_name[name]
        assert node["unit"] == unit, (name, node["reasons"])
        assert any(r.startswith(reason) for r in node["reasons"]), (name, reason, node["reasons"])


def test_json_report_of_a_long_chain_is_streamed_and_deterministic(mlpkg, tmp_path):
    """Issue 16 item 6: `audit --format json` on long chains held the encoder's tree of the whole report (14 KB of
    memory per node). The JSON is now written node by node, and the rules table no longer depends on dictionary
    order, so two runs give the same bytes."""
    import os
    from onnx import TensorProto, helper
    n = 20_000
    nodes = [helper.make_node("Relu", [f"v{i}"], [f"v{i + 1}"], name=f"n{i}") for i in range(n)]
    g = helper.make_graph(nodes, "chain", [helper.make_tensor_value_info("v0", TensorProto.FLOAT, [1, 8])],
                          [helper.make_tensor_value_info(f"v{n}", TensorProto.FLOAT, [1, 8])])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 10
    model = tmp_path / "chain.onnx"
    model.write_bytes(m.SerializeToString())
    outputs = []
    for k in range(2):
        out = tmp_path / f"a{k}.json"
        from conftest import peak_rss_kib
        status, rss = peak_rss_kib([str(mlpkg), "audit", str(model), "--format", "json", "-o", str(out)], tmp_path)
        assert status == 0
        # The report itself costs ~5 KB a node; the whole-document encoder added ~9 KB more (324 MiB here before).
        assert rss < n * 9, f"peak RSS {rss >> 10} MiB for {n} nodes"
        outputs.append(out.read_bytes())
    assert outputs[0] == outputs[1]
    report = json.loads(outputs[0])
    assert len(report["nodes"]) == n and report["nodes"][-1]["name"] == f"n{n - 1}"


# --------------------------------------------------------------------------------------------------------------------
# Reports that start with what to do (issue 15).

def test_reports_start_with_blockers_and_the_pin_suggestion(mlpkg, tmp_path):
    """On the dynamic transformer, text, markdown and HTML open with the coverage, the load-blocking nodes and the pin
    suggestion, then the blockers by rule, before any per-node table."""
    model = FIXTURES / "transformer_dynamic.onnx"
    pins = "--input-shape input_ids=1,8 --input-shape attention_mask=1,8"
    text = run([str(mlpkg), "audit", str(model)], tmp_path).stdout
    head = text[:text.index("\nnode ")]
    # No node blocks loading: Shape and Range of a dynamic input have lowerings (MIL `shape` and `range_1d`, for
    # ranged inputs, docs/COREML.md#flexible-shapes), so unpinned they are "not checked" like their neighbours.
    assert "neural-engine coverage 0% (0 of 43 nodes" in head and "block loading" not in head
    assert f"suggestion: pin the dynamic inputs: {pins} → neural-engine coverage 0% → 96.3%" in head
    assert head.index("suggestion:") < head.index("blockers on neural-engine") < head.index("nodes by unit")
    first_blocker = head[head.index("blockers on neural-engine"):].splitlines()[1]
    assert "ane-static-shapes" in first_blocker and pins in first_blocker
    markdown = run([str(mlpkg), "audit", str(model), "--format", "markdown"], tmp_path).stdout
    assert markdown.index("**suggestion**") < markdown.index("### Blockers") < markdown.index("### Fallbacks") \
        < markdown.index("<details><summary>All")
    assert pins in markdown[:markdown.index("### Blockers")]
    html = run([str(mlpkg), "audit", str(model), "--format", "html"], tmp_path).stdout
    assert html.index('id="suggestion"') < html.index('id="blockers"') < html.index('id="fallbacks"') \
        < html.index('<svg class="graph"')


@pytest.mark.parametrize("name", ["transformer_dynamic.onnx", "cnn.onnx", "dynamic_dims.onnx", "qdq.onnx",
                                  "external_data.onnx", "fp16.onnx", "transformer.onnx"])
def test_suggested_pins_give_the_predicted_coverage(mlpkg, name):
    """The suggestion was measured by a second audit: applying its pins gives exactly the coverage it predicted."""
    report = audit(mlpkg, FIXTURES / name)
    suggestion = report["summary"].get("pinSuggestion")
    assert suggestion, f"{name} has dynamic inputs and no suggestion"
    args = [a for pin in suggestion["suggested"] for a in ("--input-shape", pin)]
    pinned_report = audit(mlpkg, FIXTURES / name, *args)
    s = pinned_report["summary"]
    assert s["coverageExact"] == suggestion["coverage"] and s["nodesOnTarget"] == suggestion["nodesOnTarget"]
    assert suggestion["gain"] == s["nodesOnTarget"] - report["summary"]["nodesOnTarget"]
    assert "pinSuggestion" not in s  # every input static now
    assert s["coverageExact"] >= report["summary"]["coverageExact"]


def test_static_model_gets_no_suggestion_and_blockers_name_their_action(mlpkg):
    report = audit(mlpkg, FIXTURES / "cnn.onnx", *pinned("cnn.onnx"))
    s = report["summary"]
    assert "pinSuggestion" not in s and s["loadBlocking"] == 0
    assert [(b["rule"], b["nodes"], b["loadBlocking"]) for b in s["blockers"]] == [("ane-global-pool-extent", 1, 0)]
    assert s["blockers"][0]["action"].startswith("shrink the spatial dims to 13 or below") and s["blockers"][0]["examples"] == ["gap"]
    qdq = audit(mlpkg, FIXTURES / "qdq.onnx", *pinned("qdq.onnx"))["summary"]
    assert qdq["loadBlocking"] == 2 and qdq["blockers"][0]["rule"] == "coreml-no-lowering"
    assert qdq["blockers"][0]["action"].startswith("change the model so mlpkg's Core ML exporter can lower it: no Core ML lowering for QuantizeLinear")
    lstm = audit(mlpkg, FIXTURES / "lstm.onnx", *pinned("lstm.onnx"))["summary"]
    assert lstm["loadBlocking"] == 0 and [b["rule"] for b in lstm["blockers"]] == ["ane-no-recurrent"]


def test_compact_markdown_stays_under_a_comment(mlpkg, tmp_path):
    """A 4,000-node dynamic model (every node a fallback): the full markdown is far over 65,536 characters, the compact
    one under 60,000, with the blockers and the suggestion."""
    from onnx import TensorProto, helper
    n = 4000
    nodes = [helper.make_node("Relu" if i % 2 else "Sigmoid", [f"v{i}"], [f"v{i + 1}"], name=f"node_with_a_long_name_{i}")
             for i in range(n)]
    graph = helper.make_graph(nodes, "chain", [helper.make_tensor_value_info("v0", TensorProto.FLOAT, ["batch", 64])],
                              [helper.make_tensor_value_info(f"v{n}", TensorProto.FLOAT, ["batch", 64])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 10
    path = tmp_path / "chain.onnx"
    path.write_bytes(model.SerializeToString())
    full = run([str(mlpkg), "audit", str(path), "--format", "markdown"], tmp_path)
    compact = run([str(mlpkg), "audit", str(path), "--format", "markdown", "--compact"], tmp_path)
    assert full.returncode == 0 and compact.returncode == 0, compact.stderr
    assert len(full.stdout) > 65_536
    assert len(compact.stdout) < 60_000
    assert "--input-shape v0=1,64" in compact.stdout and "| `ane-static-shapes` | 4000 | 0 |" in compact.stdout
    assert "<details>" not in compact.stdout
    bad = run([str(mlpkg), "audit", str(path), "--format", "json", "--compact"], tmp_path)
    assert bad.returncode == 2 and "--compact" in bad.stderr


ALL_PINNED = sorted(EXPECTED)


@pytest.mark.parametrize("name", ALL_PINNED)
def test_every_core_ml_verdict_cites_a_lowering_rule_and_every_placement_is_graded(mlpkg, name):
    """With pinned shapes, each node's Core ML-level verdict (converts or not) cites a lowering rule whose source is
    coremltools' MIL op definition, ONNX Runtime's rank check or mlpkg's exporter docs; and no node is on the Neural
    Engine without that support and a graded placement (`assumed` when no source says it runs there)."""
    report = audit(mlpkg, FIXTURES / name, *pinned(name))
    rules = report["rules"]
    for node in report["nodes"]:
        key = node_key(node)
        cpu = node["verdicts"][CPU]
        cited = [cpu["support"]] if cpu.get("support") else []
        cited += [f for f in cpu["failures"] if f["rule"].startswith(("mil-", "coreml-"))]
        if node["graph"] == "" and not cited:
            assert any(f["rule"].startswith(("mil-", "coreml-")) for f in cpu["unchecked"]), (name, key)
        for finding in cited:
            rule = rules[finding["rule"]]
            assert finding["rule"].startswith(("mil-", "coreml-")), (name, key, finding["rule"])
            assert rule["confidence"] == "documented"
            assert (rule["source"].startswith("https://github.com/apple/coremltools/blob/main/coremltools/converters/mil/mil/ops/defs/")
                    or rule["source"].startswith("docs/COREML.md")
                    or "onnxruntime" in rule["source"]), (finding["rule"], rule["source"])
        if node["unit"] == NE and not node["constant"]:
            assert node["verdicts"][NE]["supported"] and node["verdicts"][NE]["support"], (name, key)
            assert node["placement"]["confidence"] in ("documented", "observed", "community", "assumed"), (name, key)
    placed = report["summary"].get("placementOnTarget", {})
    assert sum(placed.values()) == report["summary"]["nodesOnTarget"]


def test_profiles_core_ml_lists_the_lowering_rules(mlpkg, tmp_path):
    """`mlpkg profiles core-ml` says the command line's Core ML level is the lowering rules, and lists them all."""
    doc = json.loads(run([str(mlpkg), "profiles", "core-ml", "--json"], tmp_path).stdout)
    rules = {r["id"]: r for r in doc["loweringRules"]}
    assert {"mil-gather", "mil-conv", "coreml-max-rank", "coreml-subgraph"} <= set(rules)
    assert rules["mil-gather"]["ops"] == ["Gather"] and rules["mil-gather"]["source"].endswith("iOS15/scatter_gather.py")
    text = run([str(mlpkg), "profiles", "core-ml"], tmp_path).stdout
    assert "decided by the Core ML exporter's lowering rules" in text and f"Core ML lowering rules ({len(rules)};" in text
    unit = json.loads(run([str(mlpkg), "profiles", "neural-engine", "--json"], tmp_path).stdout)
    assert "loweringRules" not in unit
