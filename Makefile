# `make demo` and `make test` set up .venv themselves (idempotent: a stamp file
# per environment, redone when pyproject.toml or this Makefile changes).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
CORE_STAMP := $(VENV)/.numtrace-core
TEST_STAMP := $(VENV)/.numtrace-test
DEMO_DIR := build/demo
# The test environment: the CPU build of torch pinned (its wheel is on local
# disk; an unpinned torch pulls a multi-GB CUDA build), MLX's CPU build,
# fastai. pip's torchvision does not import beside torch 2.13.0 and breaks
# other imports, and numtrace never needs it: remove it.
TEST_PACKAGES := "torch==2.13.0" "mlx[cpu]" fastai

.PHONY: demo test lint clean whisper-pair

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(CORE_STAMP): pyproject.toml Makefile | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(TEST_STAMP): pyproject.toml Makefile | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[test]" $(TEST_PACKAGES)
	$(BIN)/python -m pip uninstall --quiet --yes torchvision 2>/dev/null || true
	touch $@ $(CORE_STAMP)

# lint first: the code style (ruff), the types (mypy), then the tests
test: lint
	$(BIN)/python -m pytest

lint: $(TEST_STAMP)
	$(BIN)/ruff check src tests benchmarks examples conftest.py
	$(BIN)/ruff format --check src tests benchmarks examples conftest.py
	$(BIN)/mypy

demo: $(CORE_STAMP)
	@mkdir -p $(DEMO_DIR)
	@echo "== reference: the pipeline in float64"
	$(BIN)/trace run -o $(DEMO_DIR)/reference.safetensors examples/audio_pipeline/pipeline.py --dtype float64
	@echo "== candidate: the same pipeline in float32, padding with 0.0 dB instead of silence"
	$(BIN)/trace run -o $(DEMO_DIR)/candidate.safetensors examples/audio_pipeline/pipeline.py --dtype float32 --pad-with zero
	@echo "== trace diff reference candidate"
	@$(BIN)/trace diff $(DEMO_DIR)/reference.safetensors $(DEMO_DIR)/candidate.safetensors; \
	  status=$$?; echo "(trace diff exited with status $$status: 1 means a stage is LARGE, which is what this demo plants)"; \
	  test $$status -le 1

# openai-whisper against mlx-whisper, both unmodified (examples/whisper_pair): its own venv
whisper-pair:
	examples/whisper_pair/run.sh

clean:
	rm -rf $(VENV) build .pytest_cache .hypothesis
