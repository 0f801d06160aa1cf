# Two commands do everything on a fresh machine: `make demo` and `make test`.
# They create .venv, install torch first (TORCH_SPEC; on this project's CPU machines the
# pinned release resolves to the CPU wheel on disk, on a GPU machine to PyPI's CUDA build),
# then this package with its test extras.
PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
BIN := $(VENV)/bin
PYTEST_ARGS ?=

.PHONY: venv demo test clean browser

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/pip install --disable-pip-version-check -q "$(TORCH_SPEC)"
	$(BIN)/pip install --disable-pip-version-check -q -e ".[test]"
	touch $@

demo: venv
	$(BIN)/eapo train

# One torch thread per process unless the caller says otherwise: the tests run tiny models,
# which are overhead-bound, and several tests start processes of their own. The whole suite
# took 2 min 25 s this way on 2 quiet cores; with torch's default threads it was timed only
# under load (9 min 41 s), not on quiet cores.
test: venv browser
	OMP_NUM_THREADS=$${OMP_NUM_THREADS:-1} $(BIN)/python -m pytest $(PYTEST_ARGS)

# Headless Chromium for the report's browser test (tests/reporting/test_viewer_browser.py):
# Debian's chromium and chromium-driver, installed when missing if we are root with apt-get
# (CI is); otherwise that one test skips and says why.
browser:
	@if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "installing chromium and chromium-driver (apt-get)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; \
	else echo "note: chromium/chromedriver missing and not root: the report's browser test will skip"; fi

clean:
	rm -rf $(VENV) runs .cache
