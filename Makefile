# The course's two commands:  make lab  (open the course)   make test  (check everything)
# Both set everything up on a fresh machine: .venv is created when missing and reinstalled
# when pyproject.toml changes. Nothing is registered globally (the kernel is .venv's own).
PYTHON ?= python3
VENV := .venv
VPY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# CPU-only machines with the local CPU wheel (this course's CI) install it first, so pip does
# not pull a multi-GB CUDA build. Elsewhere (laptops, Colab) torch comes from the normal index.
TORCH_CPU_WHEEL := $(firstword $(wildcard /opt/wheels/torch-2.13.0+cpu-*.whl))
NB_ENV := PYTHONHASHSEED=0 TQDM_DISABLE=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
LAB_PORT ?= 8888
# JupyterLab refuses to run as root unless told (containers, CI machines, Colab-like VMs)
LAB_ARGS ?= $(if $(filter 0,$(shell id -u)),--allow-root,)

.PHONY: lab test unit notebooks lint execute student setup clean help browser-test colab-test

help:
	@echo "make lab      - set up (first time) and open the course in JupyterLab"
	@echo "make test     - set up and run ruff, the unit tests and every notebook (nbval)"
	@echo "make execute  - re-execute all notebooks in place, top to bottom (authors)"
	@echo "make student  - write student/ notebooks with solutions removed"

$(VPY):
	$(PYTHON) -m venv $(VENV)
	$(VPY) -m pip install -q --upgrade pip

$(STAMP): pyproject.toml | $(VPY)
ifneq ($(TORCH_CPU_WHEEL),)
	$(VPY) -m pip install -q "torch==2.13.0"
endif
	$(VPY) -m pip install -q -e ".[dev]"
	touch $(STAMP)

setup: $(STAMP)

lab: $(STAMP)
	$(VPY) -m jupyter lab --notebook-dir=notebooks --port=$(LAB_PORT) $(LAB_ARGS)

lint: $(STAMP)
	$(VPY) -m ruff check course_utils tests scripts benchmarks

unit: $(STAMP)
	$(NB_ENV) $(VPY) -m pytest tests -q

notebooks: $(STAMP)
	$(NB_ENV) $(VPY) -m pytest -p tests.conftest --nbval --nbval-sanitize-with tests/nbval_sanitize.cfg \
		--nbval-cell-timeout=600 notebooks -q

test: lint unit notebooks

# JupyterLab in headless Chromium: run notebook 01, move its slider (also part of `unit` when
# /usr/bin/chromium exists; .ci/run installs it)
browser-test: $(STAMP)
	$(NB_ENV) $(VPY) -m pytest tests/test_browser.py -q

# Colab's package versions in a second venv; the setup cell run as Colab runs it
COLAB_VENV := .venv-colab
$(COLAB_VENV)/.installed: tests/colab_requirements.txt
	test -x $(COLAB_VENV)/bin/python || $(PYTHON) -m venv $(COLAB_VENV)
ifneq ($(TORCH_CPU_WHEEL),)
	$(COLAB_VENV)/bin/python -m pip install -q "torch==2.13.0"
endif
	$(COLAB_VENV)/bin/python -m pip install -q -r tests/colab_requirements.txt
	touch $@

colab-test: $(COLAB_VENV)/.installed
	$(COLAB_VENV)/bin/python tests/colab_run.py

execute: $(STAMP)
	$(NB_ENV) $(VPY) scripts/execute_notebooks.py notebooks/*.ipynb

student: $(STAMP)
	$(VPY) scripts/make_student.py

clean:
	rm -rf build test-output student $(COLAB_VENV)
