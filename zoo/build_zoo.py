#!/usr/bin/env python3
"""The model zoo (`make zoo`): public architectures built with random weights, exported to ONNX with both of
torch.onnx's exporters, converted to Core ML ML Programs with mlpkg and checked.

    python3 zoo/build_zoo.py --mlpkg .build/release/mlpkg [--out zoo/out] [--only bert_sdpa,resnet50] [--no-ct] [--no-compressed]

Nothing is downloaded: every model is constructed from its configuration (transformers' `XConfig(...)` with a small
size where the architecture allows, torchvision's `weights=None`, timm's `pretrained=False`, ultralytics'
`yolov8n.yaml`), with torch.manual_seed(0); BatchNorm statistics come from one training-mode pass over random
inputs, as training would give them. Per model (each in its own subprocess, so a crash or a hang costs one row, not
the run):

1. export with the TorchScript exporter (`dynamo=False`, dynamic batch/sequence axes) and the dynamo exporter
   (`dynamo=True`, the same axes as dynamic shapes); a failed export is recorded;
2. `mlpkg convert X.onnx -o X.mlpackage --input-shape ...` (dynamic dims pinned to the example's shape) twice: the
   default (fp16 weights and compute), then `--weights fp32 --compute-precision fp32`;
3. for each converted package: coremltools opens it (`MLModel(path, skip_model_load=True)`) and its milproto loader
   re-infers every op output's type, which must equal the one mlpkg wrote; the repository's numpy MIL evaluator
   (tests/oracle/mil_reference.py) runs it on the same inputs as onnxruntime runs the ONNX file: cosine per output;
   and for the fp32 package `mlpkg run` (the Swift evaluator) too;
4. the default compressed conversions a user gets (`--weights int8`, `int4`, `lut4`, `auto --max-size 30%`, fp16
   compute, each at its default Core ML target): each must convert and pass coremltools' loader and type check;
   the output-accuracy line the one-step conversion prints is kept (`--no-compressed` skips this step);
5. coremltools' own PyTorch converter (`ct.convert(torch.jit.trace(...), convert_to="mlprogram")`, fp32; torch.export's
   program when that fails) converts the same module, for the op-count comparison (non-const MIL ops).

Writes OUT/results.json, OUT/table.md (and prints the table), OUT/candidates.json: the exported files of at most
2 MB whose ONNX op types no file in fixtures/ has (fixture candidates; --copy-candidates copies them to
zoo/candidates/). ONNX files and packages stay in OUT/models/, per-model results in OUT/results/ (`--report`
rebuilds the table from them).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
import traceback
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

# ultralytics probes the network (DNS) and sends usage events unless told it is offline; nothing here may go online
os.environ.setdefault("YOLO_OFFLINE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

ROOT = Path(__file__).resolve().parent.parent
ORACLE = ROOT / "tests" / "oracle"
EXPORTERS = ("torchscript", "dynamo")
CANDIDATE_MAX_BYTES = 2 * 1024 * 1024
VOCAB = 1000
SEQ = 16


# ----------------------------------------------------------------------------------------------------------------
# The models. Each builder returns (module, example inputs as {name: tensor}, dynamic axes {input: {axis: name}},
# output names). Imports are inside the builders: a missing package costs its rows, not the run.
# ----------------------------------------------------------------------------------------------------------------

@dataclass
class Built:
    module: object
    inputs: dict                  # name -> torch.Tensor (the export example, also the converted shape)
    dynamic: dict                 # input name -> {axis: symbol}
    outputs: list[str]


@dataclass
class ZooModel:
    name: str
    family: str                   # transformers, torchvision, timm, ultralytics, torch.nn
    build: Callable[[], Built]
    note: str = ""


def _tokens(batch: int = 1, seq: int = SEQ) -> dict:
    import torch
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(3, VOCAB, (batch, seq), generator=g)
    ids[:, -1] = 2                              # an end-of-text token (CLIP pools at it)
    mask = torch.ones(batch, seq, dtype=torch.int64)
    mask[:, -3:] = 0                            # padding: the attention mask matters
    return {"input_ids": ids, "attention_mask": mask}


def _image(size: int, batch: int = 1) -> dict:
    import torch
    g = torch.Generator().manual_seed(1)
    return {"pixel_values": torch.randn(batch, 3, size, size, generator=g)}


TEXT_AXES = {"input_ids": {0: "batch", 1: "sequence"}, "attention_mask": {0: "batch", 1: "sequence"}}
IMAGE_AXES = {"pixel_values": {0: "batch"}}
SMALL = dict(hidden_size=128, num_hidden_layers=2, num_attention_heads=4, intermediate_size=256)


class HFWrapper:
    """Makes a transformers model traceable: positional tensors in, a tuple of named output tensors out."""

    @staticmethod
    def wrap(model, input_names: list[str], output_names: list[str]):
        import torch

        class Wrapped(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.model = model

            def forward(self, *args):
                out = self.model(**dict(zip(input_names, args)), return_dict=True)
                return tuple(out[k] for k in output_names)

        return Wrapped().eval()


def _hf(model, inputs: dict, axes: dict, outputs: list[str]) -> Built:
    model.eval()
    built = Built(HFWrapper.wrap(model, list(inputs), outputs), inputs, {k: axes[k] for k in inputs}, outputs)
    built.varargs = True                     # forward(*args): torch.export wants the shapes nested once more
    return built


def bert(attn: str) -> Built:
    from transformers import BertConfig, BertModel
    cfg = BertConfig(vocab_size=VOCAB, max_position_embeddings=128, **SMALL, attn_implementation=attn)
    return _hf(BertModel(cfg), _tokens(), TEXT_AXES, ["last_hidden_state", "pooler_output"])


def distilbert() -> Built:
    from transformers import DistilBertConfig, DistilBertModel
    cfg = DistilBertConfig(vocab_size=VOCAB, dim=128, n_layers=2, n_heads=4, hidden_dim=256,
                           max_position_embeddings=128)
    return _hf(DistilBertModel(cfg), _tokens(), TEXT_AXES, ["last_hidden_state"])


def roberta() -> Built:
    from transformers import RobertaConfig, RobertaModel
    cfg = RobertaConfig(vocab_size=VOCAB, max_position_embeddings=130, **SMALL)
    return _hf(RobertaModel(cfg), _tokens(), TEXT_AXES, ["last_hidden_state", "pooler_output"])


def albert() -> Built:
    from transformers import AlbertConfig, AlbertModel
    cfg = AlbertConfig(vocab_size=VOCAB, embedding_size=64, max_position_embeddings=128, **SMALL)
    return _hf(AlbertModel(cfg), _tokens(), TEXT_AXES, ["last_hidden_state", "pooler_output"])


def t5_encoder() -> Built:
    from transformers import T5Config, T5EncoderModel
    cfg = T5Config(vocab_size=VOCAB, d_model=128, d_kv=32, d_ff=256, num_layers=2, num_heads=4)
    return _hf(T5EncoderModel(cfg), _tokens(), TEXT_AXES, ["last_hidden_state"])


def gpt2() -> Built:
    from transformers import GPT2Config, GPT2Model
    cfg = GPT2Config(vocab_size=VOCAB, n_positions=128, n_embd=128, n_layer=2, n_head=4, use_cache=False)
    return _hf(GPT2Model(cfg), _tokens(), TEXT_AXES, ["last_hidden_state"])


def llama() -> Built:
    from transformers import LlamaConfig, LlamaModel
    cfg = LlamaConfig(vocab_size=VOCAB, max_position_embeddings=128, num_key_value_heads=2, use_cache=False, **SMALL)
    return _hf(LlamaModel(cfg), _tokens(), TEXT_AXES, ["last_hidden_state"])


def qwen2() -> Built:
    from transformers import Qwen2Config, Qwen2Model
    cfg = Qwen2Config(vocab_size=VOCAB, max_position_embeddings=128, num_key_value_heads=2, use_cache=False, **SMALL)
    return _hf(Qwen2Model(cfg), _tokens(), TEXT_AXES, ["last_hidden_state"])


def wav2vec2() -> Built:
    import torch
    from transformers import Wav2Vec2Config, Wav2Vec2Model
    cfg = Wav2Vec2Config(**SMALL, conv_dim=(64, 64, 64), conv_stride=(5, 2, 2), conv_kernel=(10, 3, 3),
                         num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4)
    g = torch.Generator().manual_seed(1)
    inputs = {"input_values": torch.randn(1, 4000, generator=g)}
    return _hf(Wav2Vec2Model(cfg), inputs, {"input_values": {0: "batch", 1: "samples"}}, ["last_hidden_state"])


def clip_text() -> Built:
    from transformers import CLIPTextConfig, CLIPTextModel
    cfg = CLIPTextConfig(vocab_size=VOCAB, max_position_embeddings=77, eos_token_id=2, **SMALL)
    return _hf(CLIPTextModel(cfg), _tokens(), TEXT_AXES, ["last_hidden_state", "pooler_output"])


def clip_vision() -> Built:
    from transformers import CLIPVisionConfig, CLIPVisionModel
    cfg = CLIPVisionConfig(image_size=96, patch_size=16, **SMALL)
    return _hf(CLIPVisionModel(cfg), _image(96), IMAGE_AXES, ["last_hidden_state", "pooler_output"])


def vit() -> Built:
    from transformers import ViTConfig, ViTModel
    cfg = ViTConfig(image_size=96, patch_size=16, **SMALL)
    return _hf(ViTModel(cfg), _image(96), IMAGE_AXES, ["last_hidden_state", "pooler_output"])


def swin() -> Built:
    from transformers import SwinConfig, SwinModel
    cfg = SwinConfig(image_size=224, patch_size=4, embed_dim=32, depths=[1, 1, 2, 1], num_heads=[1, 2, 4, 8],
                     window_size=7)
    return _hf(SwinModel(cfg), _image(224), IMAGE_AXES, ["last_hidden_state", "pooler_output"])


def convnext() -> Built:
    from transformers import ConvNextConfig, ConvNextModel
    cfg = ConvNextConfig(hidden_sizes=[32, 64, 128, 256], depths=[1, 1, 2, 1], image_size=224)
    return _hf(ConvNextModel(cfg), _image(224), IMAGE_AXES, ["last_hidden_state", "pooler_output"])


def dinov2() -> Built:
    from transformers import Dinov2Config, Dinov2Model
    cfg = Dinov2Config(image_size=224, patch_size=14, hidden_size=128, num_hidden_layers=2, num_attention_heads=4,
                       mlp_ratio=2)
    return _hf(Dinov2Model(cfg), _image(224), IMAGE_AXES, ["last_hidden_state", "pooler_output"])


def _vision(module, size: int = 224) -> Built:
    module.eval()
    return Built(module, _image(size), IMAGE_AXES, ["logits"])


def torchvision_model(name: str, **kwargs) -> Callable[[], Built]:
    def build() -> Built:
        import torchvision
        return _vision(getattr(torchvision.models, name)(weights=None, **kwargs))
    return build


def timm_model(name: str, size: int = 224) -> Callable[[], Built]:
    def build() -> Built:
        import timm
        from timm.utils.model import reparameterize_model
        built = _vision(timm.create_model(name, pretrained=False), size)
        # MobileOne and FastViT are deployed in their reparameterized (inference) form; the branches' BatchNorms
        # get their statistics first (random branches summed with default statistics grow ~10x per block)
        calibrate_batchnorm(built)
        built.module = reparameterize_model(built.module).eval()
        return built
    return build


def yolov8n() -> Built:
    from ultralytics import YOLO
    yolo = YOLO("yolov8n.yaml")              # the architecture file ships with the package: no weights fetched
    from ultralytics.nn.modules import Detect
    module = yolo.model.eval()
    for p in module.parameters():
        p.requires_grad_(False)
    for m in module.modules():
        if isinstance(m, Detect):
            m.export = True                  # the head returns the decoded boxes only, as in ultralytics' export
    built = Built(module, _image(320), IMAGE_AXES, ["output0"])
    built.yolo = yolo                        # the ultralytics exporter replaces the TorchScript export
    return built


class _Recurrent:
    @staticmethod
    def build(cell: str, bidirectional: bool, layers: int) -> Built:
        import torch

        class Recurrent(torch.nn.Module):
            def __init__(self):
                super().__init__()
                rnn = getattr(torch.nn, cell)
                self.rnn = rnn(32, 64, num_layers=layers, batch_first=True, bidirectional=bidirectional)
                self.head = torch.nn.Linear(64 * (2 if bidirectional else 1), 10)

            def forward(self, x):
                y, _ = self.rnn(x)
                return self.head(y)

        g = torch.Generator().manual_seed(1)
        x = torch.randn(1, SEQ, 32, generator=g)
        return Built(Recurrent().eval(), {"x": x}, {"x": {0: "batch", 1: "sequence"}}, ["y"])


ZOO: list[ZooModel] = [
    ZooModel("bert_sdpa", "transformers", lambda: bert("sdpa"), "BertModel, SDPA attention"),
    ZooModel("bert_eager", "transformers", lambda: bert("eager"), "BertModel, eager attention"),
    ZooModel("distilbert", "transformers", distilbert),
    ZooModel("roberta", "transformers", roberta),
    ZooModel("albert", "transformers", albert),
    ZooModel("t5_encoder", "transformers", t5_encoder),
    ZooModel("gpt2", "transformers", gpt2),
    ZooModel("llama", "transformers", llama),
    ZooModel("qwen2", "transformers", qwen2),
    ZooModel("wav2vec2", "transformers", wav2vec2),
    ZooModel("clip_text", "transformers", clip_text),
    ZooModel("clip_vision", "transformers", clip_vision),
    ZooModel("vit", "transformers", vit),
    ZooModel("swin", "transformers", swin),
    ZooModel("convnext", "transformers", convnext),
    ZooModel("dinov2", "transformers", dinov2),
    ZooModel("resnet50", "torchvision", torchvision_model("resnet50")),
    ZooModel("mobilenet_v2", "torchvision", torchvision_model("mobilenet_v2")),
    ZooModel("mobilenet_v3_small", "torchvision", torchvision_model("mobilenet_v3_small")),
    ZooModel("mobilenet_v3_large", "torchvision", torchvision_model("mobilenet_v3_large")),
    ZooModel("efficientnet_b0", "torchvision", torchvision_model("efficientnet_b0")),
    ZooModel("regnet_y_400mf", "torchvision", torchvision_model("regnet_y_400mf")),
    ZooModel("shufflenet_v2", "torchvision", torchvision_model("shufflenet_v2_x1_0")),
    ZooModel("squeezenet1_1", "torchvision", torchvision_model("squeezenet1_1")),
    ZooModel("densenet121", "torchvision", torchvision_model("densenet121")),
    ZooModel("googlenet", "torchvision", torchvision_model("googlenet", aux_logits=False, init_weights=False)),
    ZooModel("inception_v3", "torchvision", torchvision_model("inception_v3", aux_logits=False, init_weights=False)),
    ZooModel("mnasnet1_0", "torchvision", torchvision_model("mnasnet1_0")),
    ZooModel("timm_resnet18", "timm", timm_model("resnet18")),
    ZooModel("fastvit_t8", "timm", timm_model("fastvit_t8"), "reparameterized"),
    ZooModel("mobileone_s0", "timm", timm_model("mobileone_s0"), "reparameterized"),
    ZooModel("mobilenetv4_small", "timm", timm_model("mobilenetv4_conv_small")),
    ZooModel("deit_tiny", "timm", timm_model("deit_tiny_patch16_224")),
    ZooModel("yolov8n", "ultralytics", yolov8n, "320x320; TorchScript column: ultralytics' own exporter"),
    ZooModel("lstm", "torch.nn", lambda: _Recurrent.build("LSTM", False, 1)),
    ZooModel("gru", "torch.nn", lambda: _Recurrent.build("GRU", False, 1)),
    ZooModel("bilstm", "torch.nn", lambda: _Recurrent.build("LSTM", True, 2), "2 layers, bidirectional"),
]


# ----------------------------------------------------------------------------------------------------------------
# One model, in a subprocess
# ----------------------------------------------------------------------------------------------------------------

ANSI = re.compile(r"\x1b\[[0-9;]*m")


def first_line(text: str, limit: int | None = 300) -> str:
    """The informative line of an error message: an `error:` line, the line after the dynamo exporter's
    "## Exception summary", or the first line."""
    lines = [ANSI.sub("", ln).strip() for ln in text.strip().splitlines()]
    lines = [ln for ln in lines if ln]
    for i, ln in enumerate(lines):
        if ln.startswith("## Exception summary") and i + 1 < len(lines):
            return re.sub(r"^<class '(?:[\w.]+\.)?(\w+)'>", r"\1", lines[i + 1])[:limit]
    for ln in lines:
        if ln.startswith("error:"):
            return ln[:limit]
    return (lines[0] if lines else "(no message)")[:limit]


def exception_line(e: BaseException) -> str:
    return first_line(f"{type(e).__name__}: {e}")


def export_torchscript(built: Built, path: Path) -> None:
    import torch
    names = list(built.inputs)
    axes = dict(built.dynamic)
    for o in built.outputs:
        axes[o] = {0: "batch"}
    torch.onnx.export(built.module, tuple(built.inputs.values()), str(path), dynamo=False, input_names=names,
                      output_names=built.outputs, dynamic_axes=axes)


def export_dynamo(built: Built, path: Path) -> None:
    import torch
    shapes = []
    for name in built.inputs:
        spec = {}
        for axis in built.dynamic.get(name, {}):
            # AUTO lets torch.export keep the dim symbolic where the model allows and specialise it otherwise
            # (a batch of 1 is often specialised); the ONNX file says which
            spec[axis] = torch.export.Dim.AUTO
        shapes.append(spec)
    dynamic = (tuple(shapes),) if getattr(built, "varargs", False) else tuple(shapes)
    program = torch.onnx.export(built.module, tuple(built.inputs.values()), dynamo=True,
                                input_names=list(built.inputs), output_names=built.outputs,
                                dynamic_shapes=dynamic, external_data=False, verbose=False)
    program.save(str(path), external_data=False)


def export_ultralytics(built: Built, path: Path) -> None:
    import tempfile
    size = next(iter(built.inputs.values())).shape[-1]
    with tempfile.TemporaryDirectory() as tmp:
        cwd = os.getcwd()
        os.chdir(tmp)
        try:
            out = built.yolo.export(format="onnx", imgsz=int(size), dynamic=True, simplify=False, device="cpu")
        finally:
            os.chdir(cwd)
        shutil.move(str(Path(tmp) / out), path)


def onnx_pins(onnx_path: Path, example: dict) -> dict[str, list[int]]:
    """Each ONNX input's dims: the static ones as exported, the symbolic ones pinned to the example's size."""
    import onnx
    model = onnx.load(str(onnx_path), load_external_data=False)
    inits = {i.name for i in model.graph.initializer}
    pins = {}
    values = list(example.values())
    for k, inp in enumerate(i for i in model.graph.input if i.name not in inits):
        ex = example.get(inp.name, values[min(k, len(values) - 1)])   # by name, else by position
        dims = inp.type.tensor_type.shape.dim
        pins[inp.name] = [d.dim_value if d.HasField("dim_value") else int(ex.shape[i]) for i, d in enumerate(dims)]
    return pins


def mlpkg_convert(mlpkg: str, onnx_path: Path, out: Path, pins: dict, fp32: bool, extra: list[str] | None = None) -> dict:
    """One `mlpkg convert`; `extra` replaces `--quiet` with other options (the compressed formats, whose output
    accuracy line is kept as `accuracy`)."""
    argv = [mlpkg, "convert", str(onnx_path), "-o", str(out)] + (extra if extra is not None else ["--quiet"])
    for name, dims in pins.items():
        argv += ["--input-shape", f"{name}=" + ",".join(map(str, dims))]
    if fp32:
        argv += ["--weights", "fp32", "--compute-precision", "fp32"]
    t0 = time.perf_counter()
    try:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=900)
        rc, err, text = r.returncode, r.stderr, r.stdout + r.stderr
    except subprocess.TimeoutExpired:
        rc, err, text = -1, "error: mlpkg convert timed out after 900 s", ""
    seconds = round(time.perf_counter() - t0, 2)
    res = {"ok": rc == 0 and out.exists(), "seconds": seconds, "rc": rc}
    if extra is not None:
        accuracy = [line.strip() for line in text.splitlines() if "cosine" in line]
        if accuracy:
            res["accuracy"] = accuracy[0][:300]
        if out.exists():
            res["bytes"] = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    if not res["ok"]:
        line = first_line(err, None) if err.strip() else f"exit {rc}"
        res["error"] = line.replace(f"error: {onnx_path}: ", "error: ")[:300]
        res["refused"] = refusals(line)
    return res


REFUSAL = re.compile(r"node \d+ '.*?' \(([A-Za-z0-9_.:]+)\): (.*?)(?=; node \d+ '|$)")


def refusals(line: str) -> list[list[str]]:
    """The nodes an `N node(s) have no Core ML lowering` error lists, as [op type, reason with names elided]."""
    out = []
    for op, reason in REFUSAL.findall(line):
        out.append([op, re.sub(r"'[^']*'", "…", reason).strip()])
    return out


def cosine(a, b) -> float:
    import numpy as np
    a = np.asarray(a, dtype=np.float64).ravel()
    b = np.asarray(b, dtype=np.float64).ravel()
    if a.shape != b.shape:
        return float("nan")
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    if na == 0 and nb == 0:
        return 1.0
    return float(a @ b / (na * nb))


def output_agreement(names: list[str], expected: list, lookup) -> dict:
    """Cosine per output against onnxruntime's `expected` (integer outputs: 1.0 when equal, else 0.0; an output
    `lookup(i, name)` cannot find: NaN), and their minimum."""
    import numpy as np
    cos = {}
    for i, name in enumerate(names):
        got, want = lookup(i, name), expected[i]
        if got is None:
            cos[name] = float("nan")
        elif np.asarray(want).dtype.kind != "f":
            cos[name] = 1.0 if np.array_equal(np.asarray(got).astype(np.int64), want.astype(np.int64)) else 0.0
        else:
            cos[name] = cosine(got, want)
    return {"cosine": cos, "minCosine": min(cos.values()) if cos else float("nan")}


def coremltools_check(path: Path) -> dict:
    """coremltools opens the package and re-infers every op's output type; they must equal what mlpkg wrote."""
    import coremltools as ct
    from coremltools.converters.mil.frontend.milproto import load as milproto_load
    from coremltools.converters.mil.mil import types as mil_types
    from coremltools.proto import MIL_pb2
    to_proto = {mil_types.fp16: MIL_pb2.FLOAT16, mil_types.fp32: MIL_pb2.FLOAT32, mil_types.int32: MIL_pb2.INT32,
                mil_types.bool: MIL_pb2.BOOL, mil_types.int8: MIL_pb2.INT8, mil_types.uint8: MIL_pb2.UINT8,
                mil_types.int4: MIL_pb2.INT4, mil_types.uint4: MIL_pb2.UINT4, mil_types.str: MIL_pb2.STRING}
    try:
        spec = ct.models.MLModel(str(path), skip_model_load=True).get_spec()
        prog = milproto_load.load(spec, specification_version=spec.specificationVersion,
                                  file_weights_dir=str(path / "Data" / "com.apple.CoreML" / "weights"))
    except Exception as e:  # noqa: BLE001 - recorded, never fatal
        return {"ok": False, "error": "coremltools: " + exception_line(e)}
    inferred = {}
    for op in prog.functions["main"].operations:
        for v in op.outputs:
            inferred[v.name] = (to_proto.get(v.dtype, -1), tuple(int(d) for d in v.shape))
    fn = spec.mlProgram.functions["main"]
    mismatches = []
    for op in fn.block_specializations[fn.opset].operations:
        for o in op.outputs:
            t = o.type.tensorType
            written = (t.dataType, tuple(int(d.constant.size) for d in t.dimensions))
            if inferred.get(o.name) != written:
                mismatches.append(f"{op.type} {o.name}: coremltools {inferred.get(o.name)}, mlpkg {written}")
    return {"ok": not mismatches, "mismatches": len(mismatches), **({"error": mismatches[0]} if mismatches else {})}


def reference_check(path: Path, feeds: dict, expected: list, names: list[str]) -> dict:
    """The repository's numpy MIL evaluator on the package against onnxruntime's outputs: cosine per output."""
    sys.path.insert(0, str(ORACLE))
    from mil_reference import load_program, run_program
    prog = load_program(path)
    res = {"ops": sum(1 for op in prog.operations if op.type != "const"),
           "opHistogram": dict(sorted(Counter(op.type for op in prog.operations if op.type != "const").items()))}
    t0 = time.perf_counter()
    try:
        outs = run_program(prog, feeds)
    except NotImplementedError as e:
        return {**res, "error": f"reference evaluator: no {e}"}
    except Exception as e:  # noqa: BLE001
        return {**res, "error": "reference evaluator: " + exception_line(e)}
    res["evalSeconds"] = round(time.perf_counter() - t0, 2)

    def lookup(i, name):
        got = outs.get(name)
        return outs.get(prog.outputs[i]) if got is None and i < len(prog.outputs) else got
    return {**res, **output_agreement(names, expected, lookup)}


def mlpkg_run_check(mlpkg: str, path: Path, feeds: dict, expected: list, names: list[str]) -> dict:
    """`mlpkg run` (the Swift evaluator) on the package, on the inputs onnxruntime ran: cosine per output, and
    whether it agrees with the numpy evaluator's minimum (the two evaluators are independent implementations)."""
    import numpy as np
    inputs, outputs = path.with_suffix(".inputs.npz"), path.with_suffix(".run.npz")
    np.savez(inputs, **feeds)
    t0 = time.perf_counter()
    try:
        r = subprocess.run([mlpkg, "run", str(path), "--inputs", str(inputs), "-o", str(outputs), "--quiet"],
                           capture_output=True, text=True, timeout=900)
    except subprocess.TimeoutExpired:
        return {"ok": False, "error": "mlpkg run timed out after 900 s"}
    finally:
        inputs.unlink(missing_ok=True)
    seconds = round(time.perf_counter() - t0, 2)
    if r.returncode != 0:
        outputs.unlink(missing_ok=True)
        return {"ok": False, "seconds": seconds, "error": first_line(r.stderr, None) or f"exit {r.returncode}"}
    with np.load(outputs) as got:
        have = {k: got[k] for k in got.files}
    outputs.unlink(missing_ok=True)
    order = list(have)
    agreement = output_agreement(names, expected,
                                 lambda i, name: have.get(name, have[order[i]] if i < len(order) else None))
    return {"ok": True, "seconds": seconds, **agreement}


def coremltools_convert(built: Built, tmp: Path) -> dict:
    """coremltools' own PyTorch converter on the same module (fp32): TorchScript (torch.jit.trace) first, then
    torch.export's program if tracing or its conversion fails. Returns the non-const op count."""
    import coremltools as ct
    import numpy as np
    import torch
    t0 = time.perf_counter()
    inputs = [ct.TensorType(name=name, shape=tuple(t.shape), dtype=np.int32 if t.dtype == torch.int64 else np.float32)
              for name, t in built.inputs.items()]
    args = tuple(built.inputs.values())
    errors = []
    for frontend in ("torch.jit.trace", "torch.export"):
        try:
            if frontend == "torch.jit.trace":
                source = torch.jit.trace(built.module, args, strict=False)
                mlmodel = ct.convert(source, convert_to="mlprogram", inputs=inputs,
                                     compute_precision=ct.precision.FLOAT32, skip_model_load=True,
                                     package_dir=str(tmp / "ct.mlpackage"))
            else:
                source = torch.export.export(built.module, args).run_decompositions({})
                mlmodel = ct.convert(source, convert_to="mlprogram", compute_precision=ct.precision.FLOAT32,
                                     skip_model_load=True, package_dir=str(tmp / "ct.mlpackage"))
            spec = mlmodel.get_spec()
            fn = spec.mlProgram.functions["main"]
            kinds = [op.type for op in fn.block_specializations[fn.opset].operations if op.type != "const"]
            return {"ok": True, "ops": len(kinds), "opHistogram": dict(sorted(Counter(kinds).items())),
                    "frontend": frontend, "seconds": round(time.perf_counter() - t0, 2),
                    **({"traceError": errors[0]} if errors else {})}
        except Exception as e:  # noqa: BLE001 - recorded, never fatal
            errors.append(f"{frontend}: {exception_line(e)}")
        finally:
            shutil.rmtree(tmp / "ct.mlpackage", ignore_errors=True)
    return {"ok": False, "error": errors[0], "errors": errors, "seconds": round(time.perf_counter() - t0, 2)}


def onnx_op_types(path: Path) -> list[str]:
    import onnx
    model = onnx.load(str(path), load_external_data=False)
    ops: set[str] = set()

    def walk(graph):
        for n in graph.node:
            ops.add(n.op_type if n.domain in ("", "ai.onnx") else f"{n.domain}:{n.op_type}")
            for a in n.attribute:
                if a.type == onnx.AttributeProto.GRAPH:
                    walk(a.g)
                for g in a.graphs:
                    walk(g)
    walk(model.graph)
    for f in model.functions:
        for n in f.node:
            ops.add(n.op_type if n.domain in ("", "ai.onnx") else f"{n.domain}:{n.op_type}")
    return sorted(ops)


def calibrate_batchnorm(built: Built) -> int:
    """Give every BatchNorm running statistics from one training-mode pass over random inputs (a batch of 4), as
    training would: with the default statistics (mean 0, variance 1) random-weight MobileNets' activations fall to
    ~1e-9 and their outputs underflow float16, which would measure the weights, not the converter. Returns the number
    of BatchNorm layers."""
    import torch
    norms = [m for m in built.module.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    if not norms or any(not t.is_floating_point() for t in built.inputs.values()):
        return 0
    g = torch.Generator().manual_seed(2)
    batch = tuple(torch.randn(4, *t.shape[1:], generator=g) for t in built.inputs.values())
    for m in norms:
        m.reset_running_stats()
        m.momentum = None                    # a cumulative average: this one pass is the statistics
    built.module.train()
    with torch.no_grad():
        built.module(*batch)
    built.module.eval()
    return len(norms)


# The default compressed conversions checked per export: format, options (fp16 compute, default target).
COMPRESSED = [("int8", ["--weights", "int8"]), ("int4", ["--weights", "int4"]), ("lut4", ["--weights", "lut4"]),
              ("auto", ["--weights", "auto", "--max-size", "30%"])]


def run_one(zm: ZooModel, mlpkg: str, out: Path, with_ct: bool, with_compressed: bool = True) -> dict:
    import onnxruntime as ort
    import torch
    torch.manual_seed(0)
    result: dict = {"model": zm.name, "family": zm.family, "note": zm.note, "exports": {}}
    t0 = time.perf_counter()
    try:
        with torch.no_grad():
            built = zm.build()
        result["batchNorms"] = calibrate_batchnorm(built)
    except Exception as e:  # noqa: BLE001
        result["buildError"] = exception_line(e)
        traceback.print_exc()
        return result
    result["buildSeconds"] = round(time.perf_counter() - t0, 2)
    result["parameters"] = int(sum(p.numel() for p in built.module.parameters()))
    result["inputShapes"] = {k: list(v.shape) for k, v in built.inputs.items()}
    models = out / "models"
    models.mkdir(parents=True, exist_ok=True)
    example = {k: v.numpy() for k, v in built.inputs.items()}

    for exporter in EXPORTERS:
        row: dict = {}
        result["exports"][exporter] = row
        onnx_path = models / f"{zm.name}.{exporter}.onnx"
        onnx_path.unlink(missing_ok=True)
        t0 = time.perf_counter()
        try:
            with torch.no_grad():
                if exporter == "torchscript" and hasattr(built, "yolo"):
                    row["exporterName"] = "ultralytics"
                    export_ultralytics(built, onnx_path)
                elif exporter == "torchscript":
                    export_torchscript(built, onnx_path)
                else:
                    export_dynamo(built, onnx_path)
        except Exception as e:  # noqa: BLE001
            row["exportError"] = exception_line(e)
            row["exportSeconds"] = round(time.perf_counter() - t0, 2)
            print(f"[{zm.name}/{exporter}] export failed: {row['exportError']}", flush=True)
            continue
        row["exportSeconds"] = round(time.perf_counter() - t0, 2)
        row["onnx"] = str(onnx_path.relative_to(out))
        row["onnxBytes"] = onnx_path.stat().st_size + sum(p.stat().st_size for p in models.glob(f"{onnx_path.name}.data"))
        row["onnxOps"] = onnx_op_types(onnx_path)
        import onnx
        row["opset"] = next((o.version for o in onnx.load(str(onnx_path), load_external_data=False).opset_import
                             if o.domain in ("", "ai.onnx")), None)

        # onnxruntime on the original, on the example's values (pinned shapes)
        try:
            pins = onnx_pins(onnx_path, example)
            row["pins"] = pins
            sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
            values = list(example.values())
            feeds = {}
            for k, i in enumerate(sess.get_inputs()):
                feeds[i.name] = example.get(i.name, values[min(k, len(values) - 1)])
            out_names = [o.name for o in sess.get_outputs()]
            expected = sess.run(None, feeds)
        except Exception as e:  # noqa: BLE001
            row["ortError"] = exception_line(e)
            feeds, expected, out_names = None, None, []

        for variant, fp32 in (("fp16", False), ("fp32", True)):
            pkg = models / f"{zm.name}.{exporter}.{variant}.mlpackage"
            shutil.rmtree(pkg, ignore_errors=True)
            conv = mlpkg_convert(mlpkg, onnx_path, pkg, row.get("pins", {}), fp32)
            row[variant] = conv
            status = "ok" if conv["ok"] else conv["error"]
            print(f"[{zm.name}/{exporter}/{variant}] convert {conv['seconds']} s: {status}", flush=True)
            if not conv["ok"]:
                continue
            conv["coremltools"] = coremltools_check(pkg)
            if feeds is not None:
                conv.update(reference_check(pkg, feeds, expected, out_names))
                if fp32:
                    conv["mlpkgRun"] = mlpkg_run_check(mlpkg, pkg, feeds, expected, out_names)
            else:
                sys.path.insert(0, str(ORACLE))
                from mil_reference import load_program
                conv["ops"] = sum(1 for op in load_program(pkg).operations if op.type != "const")
            run_check = conv.get("mlpkgRun")
            if run_check:
                print(f"[{zm.name}/{exporter}/{variant}] mlpkg run: "
                      + (f"cosine {run_check['minCosine']}" if run_check["ok"] else run_check["error"]), flush=True)
            print(f"[{zm.name}/{exporter}/{variant}] ops {conv.get('ops')} cosine {conv.get('minCosine')} "
                  f"coremltools {'ok' if conv['coremltools']['ok'] else conv['coremltools']['error']}"
                  + (f" ({conv['error']})" if "error" in conv else ""), flush=True)

        # The compressed formats a user gets by default (issue: defaults that always export): each must convert
        # at its default Core ML target and pass coremltools' loader and type inference. The packages are removed
        # after the check (disk), the output-accuracy line the one-step conversion prints is kept.
        if with_compressed and "pins" in row:
            row["compressed"] = {}
            for fmt, extra in COMPRESSED:
                pkg = models / f"{zm.name}.{exporter}.{fmt}.mlpackage"
                shutil.rmtree(pkg, ignore_errors=True)
                conv = mlpkg_convert(mlpkg, onnx_path, pkg, row["pins"], False, extra=extra)
                if conv["ok"]:
                    conv["coremltools"] = coremltools_check(pkg)
                row["compressed"][fmt] = conv
                shutil.rmtree(pkg, ignore_errors=True)
                status = ("coremltools ok" if conv["coremltools"]["ok"] else conv["coremltools"]["error"]) if conv["ok"] \
                    else conv["error"]
                print(f"[{zm.name}/{exporter}/{fmt}] convert {conv['seconds']} s: {status}; {conv.get('accuracy', '')}",
                      flush=True)

    if with_ct:
        import tempfile
        # a fresh module: the exporters may leave state behind (ultralytics' head caches its anchors' shapes)
        torch.manual_seed(0)
        with torch.no_grad():
            fresh = zm.build()
        calibrate_batchnorm(fresh)
        with tempfile.TemporaryDirectory() as tmp:
            result["coremltools"] = coremltools_convert(fresh, Path(tmp))
        c = result["coremltools"]
        print(f"[{zm.name}] coremltools: " + (f"{c['ops']} ops, {c['seconds']} s" if c["ok"] else c["error"]),
              flush=True)
    return result


# ----------------------------------------------------------------------------------------------------------------
# The driver: one subprocess per model, then the table, the grouping of failures and the fixture candidates
# ----------------------------------------------------------------------------------------------------------------

def failure(row: dict) -> str | None:
    """The first thing that failed for one (model, exporter), as one line; None when everything converted."""
    if "exportError" in row:
        return "export: " + row["exportError"]
    for variant in ("fp16", "fp32"):
        if variant in row and not row[variant]["ok"]:
            return row[variant]["error"]
    return None


def refused_of(row: dict) -> list[list[str]]:
    for variant in ("fp16", "fp32"):
        if variant in row and not row[variant]["ok"]:
            return row[variant].get("refused", [])
    return []


def short_failure(row: dict) -> str:
    """The table's `converts` cell: the refused op types (with the reason where it is not just "no lowering")."""
    refused = refused_of(row)
    if not refused:
        return failure(row) or "yes"
    counts = Counter(op for op, _ in refused)
    parts, seen = [], set()
    for op, reason in refused:
        if op in seen:
            continue
        seen.add(op)
        n = f" ×{counts[op]}" if counts[op] > 1 else ""
        why = "" if reason.startswith("no Core ML lowering") else f" ({reason[:90]})"
        parts.append(f"{op}{n}{why}")
    return "refused: " + ", ".join(parts)


def cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def fmt_cos(v) -> str:
    if v is None:
        return "–"
    if v != v:
        return "nan"
    return f"{v:.7f}"


def ct_cell(ctc: dict) -> str:
    """coremltools' op count, or why its converter failed (the PyTorch op it has no conversion for)."""
    if not ctc:
        return "–"
    if ctc.get("ok"):
        return str(ctc["ops"])
    for err in ctc.get("errors", [ctc.get("error", "")]):
        m = re.search(r"op '(\w+)' not implemented|Unsupported fx node (\w+)", err)
        if m:
            return f"fails: no {m.group(1) or m.group(2)}"
    return "fails"


def render_table(results: list[dict]) -> str:
    lines = ["| model | exporter | converts | MIL ops (mlpkg) | MIL ops (coremltools) | convert s (fp16 / fp32) "
             "| cosine fp32 | cosine fp16 | coremltools types | int8/int4/lut4/auto |",
             "|---|---|---|---:|---:|---|---|---|---|---|"]
    for r in results:
        ct_ops = ct_cell(r.get("coremltools", {}))
        if "buildError" in r:
            lines.append(f"| {r['model']} | – | build: {cell(r['buildError'])} | | {ct_ops} | | | | | |")
            continue
        for exporter, row in r["exports"].items():
            name = row.get("exporterName", exporter)
            fail = failure(row)
            fp16, fp32 = row.get("fp16", {}), row.get("fp32", {})
            secs = " / ".join(str(v.get("seconds", "–")) for v in (fp16, fp32)) if fp16 else ""
            ops = str(fp32.get("ops", "")) if fp32.get("ok") else ""
            c32 = fp32.get("minCosine") if fp32.get("ok") else None
            c16 = fp16.get("minCosine") if fp16.get("ok") else None
            if fp32.get("ok") and "error" in fp32 and "minCosine" not in fp32:
                c32txt = cell(fp32["error"])
            else:
                c32txt = fmt_cos(c32)
            c16txt = cell(fp16["error"]) if fp16.get("ok") and "error" in fp16 and "minCosine" not in fp16 \
                else fmt_cos(c16)
            types = ""
            if fp32.get("ok"):
                ctk = fp32["coremltools"]
                types = "equal" if ctk["ok"] else cell(ctk["error"])
            comp = row.get("compressed", {})
            bad = [f for f, c in comp.items() if not (c["ok"] and c.get("coremltools", {}).get("ok"))]
            comptxt = "" if not comp else f"{len(comp) - len(bad)}/{len(comp)}" + (f" ({', '.join(bad)} fail)" if bad else "")
            lines.append(f"| {r['model']} | {name} | {'yes' if fail is None else cell(short_failure(row))} | {ops} | {ct_ops} "
                         f"| {secs} | {c32txt} | {c16txt} | {types} | {comptxt} |")
    return "\n".join(lines) + "\n"


def generic(text: str) -> str:
    return re.sub(r"'[^']*'|\"[^\"]*\"|\b\d+\b", "…", text)[:160]


def failure_groups(results: list[dict]) -> dict[str, list[str]]:
    """(model, exporter) pairs grouped by their first failure: the first refused node's op type and reason, the
    export's exception, or the error line, with names and numbers elided."""
    groups: dict[str, list[str]] = defaultdict(list)
    for r in results:
        for exporter, row in r.get("exports", {}).items():
            fail = failure(row)
            if fail is None:
                continue
            refused = refused_of(row)
            if fail.startswith("export: "):
                key = "export: " + generic(fail[8:])
            elif refused:
                op, reason = refused[0]
                key = op if reason.startswith("no Core ML lowering") else f"{op}: {reason}"
            else:
                key = generic(fail)
            groups[key].append(f"{r['model']}/{row.get('exporterName', exporter)}")
    return dict(sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0])))


def blocker_tally(results: list[dict]) -> dict[str, list[str]]:
    """Every refused (op type, reason) with the (model, exporter) rows it blocks: what fixing one lowering buys."""
    tally: dict[str, list[str]] = defaultdict(list)
    for r in results:
        for exporter, row in r.get("exports", {}).items():
            for key in sorted({op if reason.startswith("no Core ML lowering") else f"{op}: {reason}"
                               for op, reason in refused_of(row)}):
                tally[key].append(f"{r['model']}/{row.get('exporterName', exporter)}")
    return dict(sorted(tally.items(), key=lambda kv: (-len(kv[1]), kv[0])))


def fixture_ops() -> set[str]:
    ops: set[str] = set()
    for f in sorted((ROOT / "fixtures").glob("*.onnx")):
        try:
            ops.update(onnx_op_types(f))
        except Exception:  # noqa: BLE001 - a malformed fixture teaches nothing here
            pass
    return ops


def candidates(results: list[dict]) -> list[dict]:
    known = fixture_ops()
    picks = []
    for r in results:
        for exporter, row in r.get("exports", {}).items():
            if "onnx" not in row or row["onnxBytes"] > CANDIDATE_MAX_BYTES:
                continue
            new = [op for op in row["onnxOps"] if op not in known]
            if new:
                picks.append({"file": row["onnx"], "bytes": row["onnxBytes"], "newOps": new,
                              "converts": failure(row) is None})
    return sorted(picks, key=lambda p: p["bytes"])


def summary(results: list[dict], seconds: float) -> str:
    lines = []
    for exporter in EXPORTERS:
        rows = [r["exports"].get(exporter) for r in results if "exports" in r]
        total = len(results)
        exported = sum(1 for x in rows if x and "onnx" in x)
        converted = sum(1 for x in rows if x and "onnx" in x and failure(x) is None)
        lines.append(f"{exporter}: {exported}/{total} exported, {converted}/{total} convert (fp16 and fp32)")
    for exporter in EXPORTERS:
        both = [(r["model"], r["exports"].get(exporter, {}).get("fp32", {}), r.get("coremltools", {}))
                for r in results if "exports" in r]
        pairs = [(m, a["ops"], b["ops"]) for m, a, b in both if a.get("ok") and "ops" in a and b.get("ok")]
        if not pairs:
            continue
        fewer = sum(1 for _, a, b in pairs if a < b)
        equal = sum(1 for _, a, b in pairs if a == b)
        ratio = sum(a for _, a, _ in pairs) / max(1, sum(b for _, _, b in pairs))
        lines.append(f"MIL ops, mlpkg ({exporter} ONNX, fp32) vs coremltools' PyTorch converter (fp32), {len(pairs)} "
                     f"models both convert: mlpkg fewer on {fewer}, equal on {equal}, more on "
                     f"{len(pairs) - fewer - equal}; {sum(a for _, a, _ in pairs)} vs "
                     f"{sum(b for _, _, b in pairs)} ops in all (ratio {ratio:.2f})")
    for exporter in EXPORTERS:
        runs = [r["exports"].get(exporter, {}).get("fp32", {}).get("mlpkgRun") for r in results if "exports" in r]
        runs = [x for x in runs if x]
        if runs:
            good = [x for x in runs if x["ok"] and x["minCosine"] >= 0.99999]
            worst = min((x["minCosine"] for x in runs if x["ok"]), default=float("nan"))
            lines.append(f"{exporter}: mlpkg run (fp32) agrees with onnxruntime at cosine >= 0.99999 on {len(good)}/{len(runs)} "
                         f"packages (minimum {worst:.7f})")
    for exporter in EXPORTERS:
        rows = [r["exports"].get(exporter, {}).get("compressed", {}) for r in results if "exports" in r]
        for fmt, _ in COMPRESSED:
            tried = [x[fmt] for x in rows if fmt in x]
            if not tried:
                continue
            ok = [c for c in tried if c["ok"] and c.get("coremltools", {}).get("ok")]
            lines.append(f"{exporter} {fmt} (default Core ML target): {len(ok)}/{len(tried)} convert and pass coremltools")
    lines.append(f"total time {seconds:.0f} s")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mlpkg", default=os.environ.get("MLPKG", str(ROOT / ".build" / "release" / "mlpkg")))
    ap.add_argument("--out", default=str(ROOT / "zoo" / "out"))
    ap.add_argument("--only", default="", help="comma-separated model names (default: all)")
    ap.add_argument("--no-ct", action="store_true", help="skip coremltools' own PyTorch converter")
    ap.add_argument("--no-compressed", action="store_true",
                    help="skip the default int8/int4/lut4/auto conversions of each export")
    ap.add_argument("--timeout", type=int, default=1800, help="seconds per model")
    ap.add_argument("--copy-candidates", action="store_true", help="copy the fixture candidates to zoo/candidates/")
    ap.add_argument("--list", action="store_true", help="list the models and exit")
    ap.add_argument("--report", action="store_true",
                    help="rebuild the table from the per-model results already in OUT/results (no runs)")
    ap.add_argument("--one", help=argparse.SUPPRESS)
    args = ap.parse_args()
    out = Path(args.out).resolve()
    by_name = {m.name: m for m in ZOO}

    if args.list:
        for m in ZOO:
            print(f"{m.name:22} {m.family:13} {m.note}")
        return 0
    if args.one:
        res = run_one(by_name[args.one], str(Path(args.mlpkg).resolve()), out, not args.no_ct, not args.no_compressed)
        (out / "results").mkdir(parents=True, exist_ok=True)
        (out / "results" / f"{args.one}.json").write_text(json.dumps(res, indent=1))
        return 0

    mlpkg = Path(args.mlpkg).resolve()
    if not mlpkg.is_file():
        print(f"error: no mlpkg binary at {mlpkg} (build it: make release, or pass --mlpkg / MLPKG)", file=sys.stderr)
        return 2
    names = [n for n in args.only.split(",") if n] or [m.name for m in ZOO]
    unknown = [n for n in names if n not in by_name]
    if unknown:
        print(f"error: unknown model(s) {', '.join(unknown)} (--list shows them)", file=sys.stderr)
        return 2
    out.mkdir(parents=True, exist_ok=True)
    (out / "results").mkdir(exist_ok=True)
    start = time.perf_counter()
    results = []
    if args.report:
        earlier = {}                          # a full run's per-model seconds, for results written before it
        if (out / "results.json").exists():
            earlier = {r["model"]: r.get("seconds") for r in json.loads((out / "results.json").read_text())["models"]}
        for n in names:
            if (out / "results" / f"{n}.json").exists():
                res = json.loads((out / "results" / f"{n}.json").read_text())
                if res.get("seconds") is None and earlier.get(n) is not None:
                    res["seconds"] = earlier[n]
                results.append(res)
        names = []
    for name in names:
        print(f"== {name}", flush=True)
        res_file = out / "results" / f"{name}.json"
        res_file.unlink(missing_ok=True)
        argv = [sys.executable, str(Path(__file__).resolve()), "--one", name, "--mlpkg", str(mlpkg), "--out", str(out)]
        if args.no_ct:
            argv.append("--no-ct")
        if args.no_compressed:
            argv.append("--no-compressed")
        t0 = time.perf_counter()
        env = dict(os.environ, YOLO_OFFLINE="1", HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
                   TF_CPP_MIN_LOG_LEVEL="3", PYTHONWARNINGS="ignore")
        try:
            rc = subprocess.run(argv, timeout=args.timeout, env=env).returncode
        except subprocess.TimeoutExpired:
            rc = "timeout"
        if res_file.exists():
            res = json.loads(res_file.read_text())
        else:
            res = {"model": name, "family": by_name[name].family, "buildError": f"the model's run ended ({rc})",
                   "exports": {}}
        res["seconds"] = round(time.perf_counter() - t0, 1)
        res_file.write_text(json.dumps(res, indent=1))
        results.append(res)
    seconds = time.perf_counter() - start if not args.report else sum(r.get("seconds", 0) for r in results)

    table = render_table(results)
    groups = failure_groups(results)
    tally = blocker_tally(results)
    picks = candidates(results)
    text = summary(results, seconds)
    (out / "results.json").write_text(json.dumps({"date": time.strftime("%Y-%m-%d"), "seconds": round(seconds, 1),
                                                  "models": results, "failures": groups,
                                                  "blockers": tally}, indent=1))
    md = [f"Model zoo run of {time.strftime('%Y-%m-%d')} ({seconds / 60:.0f} min)", "", text.replace("\n", "  \n"),
          "", table, "", "Failures by first cause:", ""]
    md += [f"- **{k}** ({len(v)}): {', '.join(v)}" for k, v in groups.items()]
    md += ["", "Every refused op (rows it blocks, first cause or not):", ""]
    md += [f"- **{k}** ({len(v)}): {', '.join(v)}" for k, v in tally.items()]
    (out / "table.md").write_text("\n".join(md) + "\n")
    (out / "candidates.json").write_text(json.dumps(picks, indent=1))
    if args.copy_candidates:
        dest = ROOT / "zoo" / "candidates"
        dest.mkdir(exist_ok=True)
        for p in picks:
            shutil.copy2(out / p["file"], dest / Path(p["file"]).name)
    print()
    print(table)
    print("Failures by first cause:")
    for k, v in groups.items():
        print(f"  {len(v):3}  {k}: {', '.join(v)}")
    print("Every refused op (rows it blocks):")
    for k, v in tally.items():
        print(f"  {len(v):3}  {k}")
    print()
    print("Fixture candidates (<= 2 MB, ops no fixture has):")
    for p in picks:
        print(f"  {p['bytes']:>9}  {p['file']}  {' '.join(p['newOps'])}")
    print()
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
