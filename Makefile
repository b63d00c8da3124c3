# Two commands on a fresh machine:  `make run` (venv + install + default job)  and  `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
# Where MNIST lives is found by the Python code itself (nncompress.data.location), with or without make.
ARGS ?=
RESULTS := $(or $(NNCOMPRESS_RESULTS_DIR),multirun/results)

.PHONY: help install browser run test bench data-preview paper-runs paper-figures clean clean-results

help:  ## this list: each target and what it does
	@awk -F ':.*## ' '/^[a-z-]+:.*## / {printf "%-14s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet -e '.[all,dev]'
	touch $@

install: $(VENV)/.installed  ## the virtual environment .venv, with every extra and the test tools

run: install  ## train the default population (conf/train.yaml); extra overrides via ARGS="..."
	$(PY) src/train.py $(ARGS)

browser:  ## Debian's chromium, which the report's browser test drives (CI runs as root on Debian)
	@command -v chromium >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; }

test: install browser  ## the whole test suite (about 5 minutes on 2 cores: one pytest worker per core)
	$(PY) -m pytest -q -n 2 --dist load $(ARGS)

bench: install  ## seconds per model-epoch: population vs naive loop vs FLOP floor
	$(PY) bench/population_speed.py $(ARGS)

data-preview: install  ## PNG grids of samples per dataset, in previews/
	$(PY) -m nncompress.data.preview $(ARGS)

paper-runs: install  ## every run behind the paper's tables and figures (resumable: finished replicas are skipped)
	$(PY) src/train.py -m +experiment=paper $(ARGS)

paper-figures: install  ## the paper's tables and figures from the results store, in reports/ (open reports/index.html)
	$(PY) -m nncompress.report --results $(RESULTS) --out reports $(ARGS)

clean:  ## run folders, previews and caches; never the results store (multirun/results) nor its artefacts
	rm -rf outputs previews .pytest_cache
	if [ -d multirun ]; then find multirun -mindepth 1 -maxdepth 1 ! -name results -exec rm -rf {} +; fi

clean-results:  ## the results store itself: every finished replica and its artefact (retraining them can take days)
	rm -rf $(RESULTS)
