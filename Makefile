# Every target sets itself up on a fresh machine: virtualenv, pinned packages,
# and (for the lab targets) a Docker engine and the base images.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Test tools (requirements-dev.lock): Playwright, Zensical, Beautiful Soup.
DEV_STAMP := $(VENV)/.installed-dev
export NO_MKDOCS_2_WARNING := 1
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: help serve site render validate test test-suites prepare-labs unit browser verify verify-changed merge-results bench engine clean gc

help:
	@echo "make serve   render the labs and serve the site at http://127.0.0.1:8000 (live reload)"
	@echo "make site    render and build the site into site/ (strict)"
	@echo "make test    the whole test suite: unit, site, integration, browser and every lab"
	@echo "make verify  run every lab in fresh containers and write .opslabs/results.json"
	@echo "make bench   benchmarks (rendering, lab runner, browser workshop)"

$(STAMP): pyproject.toml setup.py requirements.lock frontend/package-lock.json
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) || bash scripts/ensure-python-venv.sh $(PYTHON) $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	bash scripts/ensure-test-tools.sh npm
	$(BIN)/python scripts/vendor-frontend.py
	$(BIN)/pip install --quiet -r requirements.lock -e .
	touch $@

PORT ?= 8000

serve: $(STAMP)
	$(BIN)/opslabs render
	$(BIN)/mkdocs serve --livereload --dev-addr 127.0.0.1:$(PORT)

site: $(STAMP)
	$(BIN)/opslabs render
	$(BIN)/mkdocs build --strict

render: $(STAMP)
	$(BIN)/opslabs render

validate: $(STAMP)
	$(BIN)/opslabs validate

engine: $(STAMP)
	$(BIN)/opslabs engine ensure
	$(BIN)/opslabs images ensure

unit: $(DEV_STAMP)
	$(BIN)/pytest -q tests/unit

$(DEV_STAMP): $(STAMP) requirements-dev.lock
	$(BIN)/pip install --quiet -r requirements-dev.lock
	touch $@

# Test tools from npm (tools/package-lock.json): npm-groovy-lint for the Jenkinsfile.
NPM_TOOLS := tools/node_modules/.package-lock.json

$(NPM_TOOLS): tools/package-lock.json
	bash scripts/ensure-test-tools.sh npm
	npm ci --no-audit --no-fund --prefix tools

test: $(DEV_STAMP) $(NPM_TOOLS)
	bash scripts/ensure-test-tools.sh
	$(BIN)/opslabs engine ensure
	$(BIN)/opslabs images ensure
	$(BIN)/opslabs validate
	$(BIN)/opslabs pins
	$(BIN)/opslabs gc
	$(MAKE) --no-print-directory -j 2 test-suites prepare-labs
	$(BIN)/opslabs verify -j 2 --results .opslabs/results.json --junit .opslabs/junit.xml
	$(MAKE) --no-print-directory browser

# The unit and integration tests run in one process that mostly waits on containers; the
# labs' setup layers build beside them (a cold machine spends most of verify building them).
test-suites: $(DEV_STAMP)
	$(BIN)/pytest -q tests/unit tests/integration

# A failed build is not the end: verify builds it again and reports the lab that broke.
prepare-labs: $(STAMP)
	@mkdir -p .opslabs
	@$(BIN)/opslabs prepare -j 2 > .opslabs/prepare.log 2>&1 \
	  && tail -n 2 .opslabs/prepare.log \
	  || { tail -n 15 .opslabs/prepare.log; echo "opslabs prepare failed (log: .opslabs/prepare.log); verify will report the lab"; }

browser: $(DEV_STAMP)
	bash scripts/ensure-test-tools.sh
	$(BIN)/opslabs render
	$(BIN)/mkdocs build --strict --quiet
	$(BIN)/pytest -q tests/browser

# The CI jobs' targets (.github/workflows/verify.yml, Jenkinsfile), the same as in a repository
# that `opslabs new` writes. SHARD=k/n: one share of the labs; BASELINE=URL|PATH: results merged
# in first (the published site's opslabs-results.json); SHARDS='GLOB': shard results to merge.
RESULTS := .opslabs/results.json
VERIFY = $(BIN)/opslabs verify -j 2 --results $(RESULTS) --junit .opslabs/junit.xml $(if $(BASELINE),--baseline $(BASELINE))

verify: $(STAMP)
	$(BIN)/opslabs engine ensure
	$(BIN)/opslabs images ensure
	$(VERIFY) $(if $(SHARD),--shard $(SHARD))

verify-changed: $(STAMP)
	$(BIN)/opslabs engine ensure
	$(BIN)/opslabs images ensure
	$(VERIFY) --changed

merge-results: $(STAMP)
	$(if $(wildcard $(SHARDS)),,$(error no results file matches SHARDS='$(SHARDS)'))
	$(BIN)/opslabs results merge --results $(RESULTS) $(wildcard $(SHARDS))

bench: $(DEV_STAMP)
	$(BIN)/python benchmarks/render_bench.py
	$(BIN)/python benchmarks/blocks_bench.py
	$(BIN)/opslabs engine ensure
	$(BIN)/opslabs images ensure
	$(BIN)/python benchmarks/runner_bench.py
	$(BIN)/python benchmarks/workshop_bench.py

gc: $(STAMP)
	$(BIN)/opslabs gc

clean:
	rm -rf site .opslabs build
