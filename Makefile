# tfpvae: `make demo` and `make test` work on a fresh machine with Python 3.10 to 3.13
# (3.11 by default; `make test-other-python` runs the fast tests on a second version).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
# The second interpreter: python$(OTHER_PYTHON_VERSION) on PATH, else pyenv's, else none.
OTHER_PYTHON_VERSION ?= 3.13
OTHER_PYTHON ?= $(shell for p in python$(OTHER_PYTHON_VERSION) \
	$${PYENV_ROOT:-$$HOME/.pyenv}/versions/$(OTHER_PYTHON_VERSION)*/bin/python$(OTHER_PYTHON_VERSION); \
	do $$p -c "import sys" >/dev/null 2>&1 && { command -v $$p || echo $$p; } && break; done)
OTHER_VENV ?= .venv-py$(OTHER_PYTHON_VERSION)
# What runs there: the library's core on a short budget (about 1 CPU-minute).
OTHER_TESTS ?= tests/test_config.py tests/test_cli.py tests/test_saving.py tests/test_likelihoods.py \
	tests/test_data.py tests/test_promises.py tests/test_locations.py tests/test_quiet.py \
	tests/test_export.py
VENV ?= .venv
PY := $(VENV)/bin/python
# Parallel pytest workers; the suite is sized for 2 cores.
WORKERS ?= 2
# Where `make docs` (and the strict docs build of `make test`) write the HTML.
SITE ?= site
# The Keras cache with the Fashion-MNIST and MNIST samples, for `make figures`.
KERAS_CACHE ?= ../shared/data/keras-cache
# The figures of that run the README shows (docs/figures/NAME.png).
README_FIGURES := latent_before_after reconstructions manifold history interpolation traversal

.PHONY: demo figures test test-fast test-other-python lint typecheck docs format bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e ".[test]"
	touch $@

# One run; `tfpvae train` prints its held-out metrics (IWAE with --k) once, at the end.
demo: $(VENV)/.installed
	$(VENV)/bin/tfpvae train --dataset digits --likelihood beta --epochs 15 --batch-size 32 \
		--seed 0 --k 100 --out runs/demo --force

# The README's figures and numbers: 30 epochs on the Fashion-MNIST sample, then the held-out
# bounds, the latent use and the outlier AUROCs against the MNIST sample (training's own copy
# of the metrics goes to runs/figures.log), and the figures copied into docs/figures/.
figures: $(VENV)/.installed
	mkdir -p runs && $(VENV)/bin/tfpvae train --dataset fashion_mnist --cache-dir $(KERAS_CACHE) \
		--likelihood beta --epochs 30 --seed 0 --k 100 --out runs/figures --force --quiet > runs/figures.log
	$(VENV)/bin/tfpvae evaluate runs/figures --k 100 --outliers mnist
	cp $(README_FIGURES:%=runs/figures/figures/%.png) docs/figures/

# The full suite, as CI runs it: lint, type check, strict docs build, then every
# test (doctests of tfpvae/ included, the wheel smoke test too).
test: lint typecheck
	$(PY) -m mkdocs build --strict --quiet --site-dir $(SITE)
	$(PY) -m pytest -n $(WORKERS) --durations=15

# The quick loop: lint, then the tests marked neither slow nor xla (and the doctests).
test-fast: lint
	$(PY) -m pytest -n $(WORKERS) -q -m "not slow and not xla"

# The fast tests of $(OTHER_TESTS) on Python $(OTHER_PYTHON_VERSION), in a venv of its own;
# skipped (with a line saying so) where no such interpreter is installed.
test-other-python:
	@if [ -z "$(OTHER_PYTHON)" ]; then \
		echo "test-other-python: no Python $(OTHER_PYTHON_VERSION) here; skipped"; exit 0; fi; \
	set -e; [ -x $(OTHER_VENV)/bin/python ] || $(OTHER_PYTHON) -m venv $(OTHER_VENV); \
	$(OTHER_VENV)/bin/python -m pip install --quiet --upgrade pip; \
	$(OTHER_VENV)/bin/python -m pip install --quiet -e . pytest pytest-xdist hypothesis; \
	$(OTHER_VENV)/bin/python --version; \
	$(OTHER_VENV)/bin/python -m pytest -n $(WORKERS) -q -p no:cacheprovider \
		-m "not slow and not xla" $(OTHER_TESTS)

lint: $(VENV)/.installed
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

typecheck: $(VENV)/.installed
	$(PY) -m mypy

# The user guide and the API reference (from the docstrings) into $(SITE)/.
docs: $(VENV)/.installed
	$(PY) -m mkdocs build --strict --site-dir $(SITE)

format: $(VENV)/.installed
	$(PY) -m ruff check --fix .
	$(PY) -m ruff format .

bench: $(VENV)/.installed
	$(PY) benchmarks/throughput.py

clean:
	rm -rf $(VENV) .venv-py* runs $(SITE) dist .pytest_cache .ruff_cache .mypy_cache
