# Two commands do all set-up on a fresh machine:
#   make reproduce   regenerate every figure (quick preset, Fashion-MNIST)
#   make test        run the test suite
PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
PRESET ?= quick
DATASET ?= fashion-mnist
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
FASHION := /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz

.PHONY: reproduce test test-all bench notebooks lab data clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet "$(TORCH_SPEC)"
	$(PY) -m pip install --quiet -e ".[test]"
	touch $(STAMP)

# Debian ships Fashion-MNIST; elsewhere the loader downloads it on first use.
data:
	@if [ ! -f $(FASHION) ] && command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
		apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist >/dev/null; \
	fi

# The default run also regenerates the README's results block from figures/REPORT.md.
reproduce: $(STAMP) data
	$(VENV)/bin/hardthresh reproduce --preset $(PRESET) --dataset $(DATASET)
	@if [ "$(PRESET)/$(DATASET)" = "quick/fashion-mnist" ]; then \
		$(VENV)/bin/hardthresh report --readme README.md; fi

test: $(STAMP) data
	$(PY) -m pytest -m "not slow" -q

test-all: $(STAMP) data
	$(PY) -m pytest -q

bench: $(STAMP) data
	for b in benchmarks/bench_*.py; do $(PY) $$b || exit 1; done

notebooks: $(STAMP)
	$(PY) -m pip install --quiet -e ".[notebooks]"

lab: notebooks
	$(VENV)/bin/jupyter lab notebooks/

clean:
	rm -rf $(VENV) results
