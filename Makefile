# Two commands on a fresh machine:  `make run` (venv + install + default job)  and  `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
# Where mnist.npz lives: your own data/ folder if it has it, else the shared folder next to the checkout.
export NNCOMPRESS_DATA_DIR ?= $(if $(wildcard data/mnist.npz),$(CURDIR)/data,$(abspath ../shared/data))
ARGS ?=

.PHONY: install run test bench data-preview paper-runs paper-figures clean

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet -e '.[dev]'
	touch $@

install: $(VENV)/.installed

run: install  ## train the default population (conf/train.yaml); extra overrides via ARGS="..."
	$(PY) src/train.py $(ARGS)

test: install  ## the whole test suite (a few minutes on 2 cores)
	$(PY) -m pytest -q $(ARGS)

bench: install  ## seconds per model-epoch: population vs naive loop vs FLOP floor
	$(PY) bench/population_speed.py $(ARGS)

data-preview: install  ## PNG grids of samples per dataset, in previews/
	$(PY) -m nncompress.data.preview $(ARGS)

PAPER_PRESETS := table1 table2 table3 table4 table5 table6 fig1 fig2 fig3 fig4 fig5 fig6
CONVNET_DATASETS := mnist mnist_rot mnist_back_rand mnist_back_image
paper-runs: install  ## every run behind the paper's tables and figures (resumable: finished replicas are skipped)
	for p in $(PAPER_PRESETS); do $(PY) src/train.py -m +experiment=$$p $(ARGS) || exit 1; done
	for d in $(CONVNET_DATASETS); do $(PY) src/train.py -m +experiment=convnet_grid dataset=$$d $(ARGS) || exit 1; done

paper-figures: install  ## the paper's tables from the results store, beside the paper's numbers, in reports/
	$(PY) -m nncompress.report --results $(or $(NNCOMPRESS_RESULTS_DIR),multirun/results) --out reports $(ARGS)

clean:
	rm -rf outputs multirun previews .pytest_cache
