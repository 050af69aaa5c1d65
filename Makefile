# Entry points: `make demo`, `make test`, `make bench`. Each first makes sure .venv exists and has
# the project installed (on a fresh machine that pulls torch from PyPI: a minute or two).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
DEMO_CONFIG := configs/faster_rcnn/faster-rcnn_r18_fpn_demo.py
DEMO_WORK_DIR := work_dirs/demo

.PHONY: venv demo test test-slow test-all bench clean-demo

# (Re-)install when pyproject.toml changed since the last install (the stamp file), or when the
# environment cannot import what the project needs.
STAMP := $(VENV)/.rcnn_plugins-installed
venv: $(STAMP)
	@$(PY) -c "import rcnn_plugins, torch, torchvision, mmengine, mmcv, pycocotools" 2>/dev/null || \
		{ rm -f $(STAMP); $(MAKE) --no-print-directory $(STAMP); }

$(STAMP): pyproject.toml
	@echo "Setting up $(VENV) (pip install -e '.[all]': the project, its optional extras, pytest)..."
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -e '.[all]'
	@touch $(STAMP)

# Generate the data (if absent), train, evaluate, draw predictions, print the metric table.
# PRECISION=auto (bf16 where the CPU has native bf16, else fp32) | bf16 | fp32
PRECISION ?= auto
demo: venv
	$(PY) tools/demo.py --config $(DEMO_CONFIG) --work-dir $(DEMO_WORK_DIR) --precision $(PRECISION)

# The default test run (tests marked slow are skipped; `make test-all` runs them too).
# pytest exits 5 when it collects no tests: with a test suite in the repo that means something is
# broken (wrong directory, import-time skip), so say so; make fails either way.
test: venv
	@$(PY) -m pytest -q; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test: pytest collected no tests (exit 5): FAILED" >&2; fi; \
	exit $$rc

# The slow tests only: the proofs of the README's promises (kill -9 resume, 2 processes = 1 process,
# dead-rank timeout, alternating resume). CI runs them after `make test`.
test-slow: venv
	@$(PY) -m pytest -q -m slow; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test-slow: pytest collected no slow tests (exit 5): FAILED" >&2; fi; \
	exit $$rc

test-all: venv
	$(PY) -m pytest -q -m ''

bench: venv
	$(PY) tools/benchmark.py

clean-demo:
	rm -rf $(DEMO_WORK_DIR) data/demo
