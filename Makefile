# Two commands do everything on a fresh machine: `make demo` and `make test`.
# They create .venv, install torch first (TORCH_SPEC; on this project's CPU machines the
# pinned release resolves to the CPU wheel on disk, on a GPU machine to PyPI's CUDA build),
# then this package with its test extras.
PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
BIN := $(VENV)/bin
PYTEST_ARGS ?=

.PHONY: venv demo test clean

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/pip install --disable-pip-version-check -q "$(TORCH_SPEC)"
	$(BIN)/pip install --disable-pip-version-check -q -e ".[test]"
	touch $@

demo: venv
	$(BIN)/eapo train

test: venv
	$(BIN)/python -m pytest $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) runs .cache
