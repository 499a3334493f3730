# One command per stage; each target states its inputs and outputs.
#   make demo   venv -> sample -> extract -> dbt build -> report -> artifacts/report/index.html
#               (embedded engine, synthetic sample, no cloud, no network after setup)
#   make test   venv -> lint (ruff, mypy, sqlfluff) -> pytest (unit, dbt, BigQuery emulator, GCS emulator)
#   make bench  venv -> benchmarks (results in bench/results/)

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export IQB_ARTIFACTS ?= $(CURDIR)/artifacts
export DBT_SEND_ANONYMOUS_USAGE_STATS := false
export DO_NOT_TRACK := 1
DBT := $(BIN)/dbt
DBT_ARGS := --project-dir dbt_project --profiles-dir profiles
# The HTML report's charting library and map geometry: npm packages pinned in
# package.json / package-lock.json, copied into the report by `iqb report --html`.
VENDOR := extract/results/html/vendor
VENDOR_STAMP := $(VENDOR)/node_modules/.package-lock.json

.PHONY: setup demo test lint wheels bench constraints clean

# A .venv made by another Python (or broken) is rebuilt, never reused.
ifneq ($(wildcard $(BIN)/python),)
VENV_PY := $(shell $(BIN)/python -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)
WANT_PY := $(shell $(PYTHON) -c 'import sys; print("%d.%d" % sys.version_info[:2])')
ifneq ($(VENV_PY),$(WANT_PY))
$(info $(VENV) was made by Python '$(VENV_PY)', not $(WANT_PY): rebuilding it)
$(shell rm -rf $(VENV))
endif
endif

# The venv is rebuilt when the dependency pins change.
$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=24"
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[test]"
	touch $(STAMP)

# The report's JavaScript and map (npm packages, exact versions and hashes in the lock).
$(VENDOR_STAMP): $(VENDOR)/package.json $(VENDOR)/package-lock.json
	@command -v npm >/dev/null || { echo "npm is needed to install the report's charting library (apt-get install npm)"; exit 2; }
	npm ci --prefix $(VENDOR) --no-audit --no-fund --loglevel=error
	touch $(VENDOR_STAMP)

setup: $(STAMP) $(VENDOR_STAMP)

demo: setup
	$(BIN)/iqb sample --config pipeline.demo.yaml
	$(BIN)/iqb extract run --config pipeline.demo.yaml
	$(DBT) build $(DBT_ARGS)
	$(BIN)/iqb report
	$(BIN)/iqb report --html

lint: $(STAMP)
	$(BIN)/ruff format --check extract tests bench
	$(BIN)/ruff check extract tests bench
	$(BIN)/mypy extract bench tests
	$(BIN)/sqlfluff lint dbt_project/models dbt_project/macros dbt_project/tests

test: setup lint wheels
	$(BIN)/python -m pytest

# CI proves Python 3.11; this shows that the pinned tree also resolves to wheels
# for 3.12 and 3.13 (pip asks the registry, installs nothing).
WHEEL_PLATFORMS := --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
	--platform manylinux2014_x86_64 --platform any
wheels: $(STAMP)
	@grep -v '^#' constraints.txt > $(VENV)/constraints-only.txt
	@for v in 3.12 3.13; do \
	  $(BIN)/python -m pip install --dry-run --quiet --ignore-installed --only-binary=:all: \
	    --python-version $$v --implementation cp $(WHEEL_PLATFORMS) --target $(VENV)/wheels-$$v \
	    -r $(VENV)/constraints-only.txt > $(VENV)/wheels-$$v.log 2>&1 \
	  || { grep -v '^WARNING: Location' $(VENV)/wheels-$$v.log; \
	       echo "the pinned tree has no wheels for Python $$v"; exit 1; }; \
	  echo "Python $$v: every pinned package has a wheel"; \
	done

bench: $(STAMP)
	$(BIN)/python -m bench

# Re-pin the whole tree after editing pyproject.toml's direct pins.
constraints:
	rm -rf /tmp/iqb-constraints && $(PYTHON) -m venv /tmp/iqb-constraints
	/tmp/iqb-constraints/bin/pip install --quiet ".[test]"
	/tmp/iqb-constraints/bin/pip freeze --exclude-editable | grep -v '^iqb-workspace' > constraints.txt.new
	{ echo '# Whole dependency tree, pinned (pip install -c constraints.txt). Regenerate with `make constraints`.'; cat constraints.txt.new; } > constraints.txt && rm constraints.txt.new

clean:
	rm -rf $(VENV) $(VENDOR)/node_modules dbt_project/target dbt_project/logs
