# Two commands for a newcomer: `make demo` and `make test`. Both install what they
# need: Debian packages through apt (as root, or through sudo), Python packages into
# the project's own virtual environment `.venv` (never into the system Python).
PYTHON ?= python3
VENV ?= .venv
PY = $(VENV)/bin/python
# Core integration tests also run against the last Kafka 3.x release.
KAFKA_3_VERSION ?= 3.9.1
CORE_TESTS = tests/integration/test_core.py tests/integration/test_crosscheck.py \
             tests/integration/test_recovery.py
# What a newcomer meets first: the demo's start-up and the jar download.
NEWCOMER_TESTS = tests/integration/test_newcomer.py

.PHONY: demo test install install-system install-demo-system lint unit integration \
        integration-kafka3 core bench fresh-debian clean

# Java (17 or later) and Maven run the local Kafka broker (jars from Maven Central).
# The tests also need Prometheus (with promtool), Alertmanager and openssl.
DEMO_PACKAGES = default-jre-headless maven
TEST_PACKAGES = $(DEMO_PACKAGES) prometheus prometheus-alertmanager openssl chromium

install-demo-system:
	@sh ci/system-packages.sh "make demo" $(DEMO_PACKAGES)

install-system:
	@sh ci/system-packages.sh "make test" $(TEST_PACKAGES)

# The virtual environment is rebuilt only when pyproject.toml changes (the stamp),
# so a second `make test` starts in seconds.
$(VENV)/.stamp: pyproject.toml
	@sh ci/venv.sh "$(PYTHON)" "$(VENV)"
	@touch $@

install: install-system $(VENV)/.stamp

demo: install-demo-system $(VENV)/.stamp
	$(PY) -m localkafka.demo

LINT_PATHS = lag_exporter localkafka tests grafana benchmarks

lint: $(VENV)/.stamp
	$(PY) -m ruff check $(LINT_PATHS)
	$(PY) -m ruff format --check $(LINT_PATHS)
	$(PY) -m mypy
	$(PY) grafana/generate_dashboard.py --check

unit: install
	$(PY) -m pytest -q tests/unit

integration: install
	$(PY) -m localkafka fetch
	$(PY) -m pytest -q tests/integration

integration-kafka3: install
	LAG_EXPORTER_KAFKA_VERSION=$(KAFKA_3_VERSION) $(PY) -m localkafka fetch
	LAG_EXPORTER_KAFKA_VERSION=$(KAFKA_3_VERSION) $(PY) -m pytest -q $(CORE_TESTS)

# The core and newcomer integration tests alone (what the Debian 12 part of CI runs).
core: install
	$(PY) -m localkafka fetch
	$(PY) -m pytest -q $(CORE_TESTS) $(NEWCOMER_TESTS)

test: install lint unit integration integration-kafka3

# Scale benchmark against a real local broker; prints the table of benchmarks/RESULTS.md.
bench: install
	$(PY) -m localkafka fetch
	$(PY) -m benchmarks.scale

# What CI runs: the test command on a clean clone in fresh Debian 13 and 12 roots.
fresh-debian:
	bash .ci/run

clean:
	rm -rf .mypy_cache .ruff_cache .pytest_cache .hypothesis build *.egg-info $(VENV)
