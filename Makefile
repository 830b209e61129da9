# mlpkg — build, test and demo. `make demo` and `make test` work on a fresh Debian machine: they install what they need.
SWIFT      ?= swift
PYTHON     ?= python3
BUILD_DIR  ?= .build
BIN        := $(BUILD_DIR)/debug/mlpkg
RELEASE_BIN:= $(BUILD_DIR)/release/mlpkg
SUDO       := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: all build release deps pydeps testdeps test unit oracle replay demo bench study fuzz fuzz-ci fuzz-build proto fixtures clean

all: build

## System packages: libprotobuf-c (linked by the C layer) and pkg-config (finds it).
deps:
	@if ! pkg-config --exists libprotobuf-c 2>/dev/null; then \
	  echo "installing libprotobuf-c-dev and pkg-config"; \
	  $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq libprotobuf-c-dev pkg-config >/dev/null; \
	fi

## Python test oracles (onnx, onnxruntime, numpy, pytest, coremltools): test-only, never needed by mlpkg itself.
pydeps:
	@$(PYTHON) -c "import onnx, onnxruntime, numpy, pytest, coremltools" 2>/dev/null || \
	  $(PYTHON) -m pip install -q --disable-pip-version-check -r tests/requirements.txt

build: deps
	$(SWIFT) build --build-path $(BUILD_DIR)

release: deps
	$(SWIFT) build -c release --static-swift-stdlib --build-path $(BUILD_DIR)

## Headless Chromium (Debian's chromium) renders the audit's HTML report in the oracle tests.
testdeps:
	@if ! command -v chromium >/dev/null 2>&1 && ! command -v chromium-browser >/dev/null 2>&1; then \
	  echo "installing chromium (headless, for the HTML report test)"; \
	  $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq chromium >/dev/null; \
	fi

## Unit and end-to-end tests (Swift Testing), then the cross-checks against the onnx Python package.
test: deps pydeps testdeps build unit oracle replay fuzz-ci

unit:
	$(SWIFT) test --build-path $(BUILD_DIR)

oracle:
	MLPKG=$(abspath $(BIN)) $(PYTHON) -m pytest -q tests/oracle

## Every input a fuzzer ever crashed on (fuzz/regressions), the seeds and the fixtures, replayed through the fuzz
## targets' normal builds: none may crash.
replay: build
	$(BUILD_DIR)/debug/mlpkg-fuzz-import fixtures/*.onnx fixtures/malformed/*.onnx fuzz/regressions/import/*
	MLPKG_FUZZ_WEIGHTS=fuzz/package-weights.bin $(BUILD_DIR)/debug/mlpkg-fuzz-package fuzz/corpus/package/* fuzz/regressions/package/*

## libFuzzer + AddressSanitizer runs of the importer and the package reader, FUZZ_SECONDS each (seeds: the fixtures
## and fuzz/corpus; crashes land in fuzz/regressions, where `make test` replays them from then on).
FUZZ_SECONDS ?= 600
FUZZ_BUILD   ?= .build-fuzz
FUZZ_FLAGS   := -c release -Xswiftc -sanitize=fuzzer,address -Xswiftc -DFUZZING -Xcc -fsanitize=fuzzer-no-link,address
fuzz-build: deps
	$(SWIFT) build --scratch-path $(FUZZ_BUILD) $(FUZZ_FLAGS) --product mlpkg-fuzz-import
	$(SWIFT) build --scratch-path $(FUZZ_BUILD) $(FUZZ_FLAGS) --product mlpkg-fuzz-package

## The CI-sized fuzz run in `make test`: a fixed number of executions per target (FUZZ_CI_RUNS_*) from a fixed
## seed, on copies of the seeds (the repository's corpus is not grown). Counted, never timed, and with corpus reloads
## off, so the same commit explores the same inputs on any machine: a run passes or fails by the code, not the CPU.
## A crash fails the run; its input is left in $(FUZZ_BUILD)/ci-crashes/ to be fixed and then moved to fuzz/regressions.
FUZZ_CI_RUNS_IMPORT  ?= 100000
FUZZ_CI_RUNS_PACKAGE ?= 200000
fuzz-ci: fuzz-build
	@rm -rf $(FUZZ_BUILD)/ci-corpus && mkdir -p $(FUZZ_BUILD)/ci-corpus/import $(FUZZ_BUILD)/ci-corpus/package $(FUZZ_BUILD)/ci-crashes
	@cp fixtures/*.onnx fixtures/malformed/*.onnx $(FUZZ_BUILD)/ci-corpus/import/
	@cp fuzz/corpus/package/* $(FUZZ_BUILD)/ci-corpus/package/
	@for target in import package; do \
	  case $$target in import) len=300000; runs=$(FUZZ_CI_RUNS_IMPORT) ;; package) len=100000; runs=$(FUZZ_CI_RUNS_PACKAGE) ;; esac; \
	  echo "fuzzing $$target for $$runs executions"; \
	  MLPKG_FUZZ_WEIGHTS=fuzz/package-weights.bin $(FUZZ_BUILD)/release/mlpkg-fuzz-$$target -seed=1 -runs=$$runs \
	    -reload=0 -rss_limit_mb=4096 -max_len=$$len \
	    -artifact_prefix=$(FUZZ_BUILD)/ci-crashes/$$target- -print_final_stats=1 $(FUZZ_BUILD)/ci-corpus/$$target \
	    > $(FUZZ_BUILD)/ci-$$target.log 2>&1; status=$$?; \
	  grep -E "^(stat::number_of_executed_units|stat::peak_rss|Done|SUMMARY)|ERROR|INFO: Seed" $(FUZZ_BUILD)/ci-$$target.log; \
	  if [ $$status -ne 0 ]; then tail -40 $(FUZZ_BUILD)/ci-$$target.log; exit 1; fi; \
	done

fuzz: fuzz-build
	@mkdir -p $(FUZZ_BUILD)/corpus/import $(FUZZ_BUILD)/corpus/package
	@cp fixtures/*.onnx fixtures/malformed/*.onnx $(FUZZ_BUILD)/corpus/import/
	@cp fuzz/corpus/package/* $(FUZZ_BUILD)/corpus/package/
	$(FUZZ_BUILD)/release/mlpkg-fuzz-import -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=4096 -max_len=300000 \
	  -artifact_prefix=fuzz/regressions/import/ -print_final_stats=1 $(FUZZ_BUILD)/corpus/import
	MLPKG_FUZZ_WEIGHTS=fuzz/package-weights.bin $(FUZZ_BUILD)/release/mlpkg-fuzz-package -max_total_time=$(FUZZ_SECONDS) \
	  -rss_limit_mb=4096 -max_len=100000 -artifact_prefix=fuzz/regressions/package/ -print_final_stats=1 \
	  $(FUZZ_BUILD)/corpus/package

## The main job on a bundled model: convert to fp16, verify the package, summarise it, and write it as a Core ML
## ML Program (.mlpackage) with int8 weights.
DEMO_OUT ?= $(BUILD_DIR)/demo
demo: deps build
	@mkdir -p $(DEMO_OUT)
	$(BIN) convert fixtures/transformer.onnx -o $(DEMO_OUT)/transformer.mlpkg --weights fp16
	$(BIN) verify $(DEMO_OUT)/transformer.mlpkg
	$(BIN) inspect $(DEMO_OUT)/transformer.mlpkg
	$(BIN) convert fixtures/transformer.onnx -o $(DEMO_OUT)/Transformer.mlpackage --weights int8 --input-shape tokens=1,8,64
	$(BIN) convert fixtures/transformer.onnx -o $(DEMO_OUT)/transformer.auto.mlpkg --weights auto --max-size 0.15

## Benchmarks: generates its models at run time (nothing big is committed; about 6 GiB of disk in BENCH_OUT) and
## writes bench.md, bench.json and bench.png there. BENCH_MODELS picks a subset (mlp256,transformer,mlp1g,mlp4g).
BENCH_OUT    ?= bench/out
BENCH_MODELS ?= mlp256,transformer,mlp1g,mlp4g
## BENCH_SCRATCH: where the tools write their outputs (default BENCH_OUT); a tmpfs (e.g. /dev/shm/mlpkg-bench) takes
## the disk's write-back out of the times.
BENCH_SCRATCH ?=
bench: deps pydeps release
	@$(PYTHON) -c "import onnxconverter_common, onnx_ir, matplotlib" 2>/dev/null || \
	  $(PYTHON) -m pip install -q --disable-pip-version-check -r bench/requirements.txt
	$(PYTHON) bench/bench.py --mlpkg $(RELEASE_BIN) --out $(BENCH_OUT) --models $(BENCH_MODELS) \
	  $(if $(BENCH_SCRATCH),--scratch $(BENCH_SCRATCH))

## Which weight format keeps a model's answers at which size, on generated MiniLM-like and conv models with
## realistic (heavy-tailed) weights: docs/QUANTIZATION.md quotes its table. Minutes, not part of `make test`.
STUDY_OUT ?= .build-study
study: deps pydeps release
	$(PYTHON) bench/compression_study.py --mlpkg $(RELEASE_BIN) --out $(STUDY_OUT)

## Regenerate the C code from proto/onnx.proto and proto/coreml.proto (needs protoc-c: Debian's protobuf-c-compiler).
proto:
	@command -v protoc-c >/dev/null || $(SUDO) apt-get install -y -qq protobuf-c-compiler >/dev/null
	protoc-c --proto_path=proto --c_out=Sources/ONNXProto proto/onnx.proto
	mv Sources/ONNXProto/onnx.pb-c.h Sources/ONNXProto/include/onnx.pb-c.h
	protoc-c --proto_path=proto --c_out=Sources/CoreMLProto proto/coreml.proto
	mv Sources/CoreMLProto/coreml.pb-c.h Sources/CoreMLProto/include/coreml.pb-c.h

## Regenerate the committed fixtures (deterministic).
fixtures: pydeps
	$(PYTHON) fixtures/generate.py

clean:
	rm -rf $(BUILD_DIR) bench/out
