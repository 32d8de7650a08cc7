# Two commands for a newcomer: `make demo` and `make test`. Both install what they need.
PYTHON ?= python3
# Core integration tests also run against the last Kafka 3.x release.
KAFKA_3_VERSION ?= 3.9.1
CORE_TESTS = tests/integration/test_core.py tests/integration/test_crosscheck.py \
             tests/integration/test_recovery.py

.PHONY: demo test install install-system lint unit integration integration-kafka3 bench clean

# Java 17 and Maven run the local Kafka broker (jars from Maven Central);
# Prometheus (with promtool) and Alertmanager are real parts of the tests; the
# alerting tests make a TLS certificate with openssl.
SYSTEM_TOOLS = java mvn prometheus promtool prometheus-alertmanager openssl
SYSTEM_PACKAGES = openjdk-17-jre-headless maven prometheus prometheus-alertmanager openssl

install-system:
	@missing=""; for t in $(SYSTEM_TOOLS); do command -v $$t >/dev/null || missing="$$missing $$t"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages for:$$missing"; \
	  apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(SYSTEM_PACKAGES); \
	fi

install: install-system
	$(PYTHON) -m pip install -q --disable-pip-version-check --root-user-action=ignore -e '.[test]'

demo: install
	$(PYTHON) -m localkafka.demo

LINT_PATHS = lag_exporter localkafka tests grafana benchmarks

lint:
	$(PYTHON) -m ruff check $(LINT_PATHS)
	$(PYTHON) -m ruff format --check $(LINT_PATHS)
	$(PYTHON) -m mypy
	$(PYTHON) grafana/generate_dashboard.py --check

unit:
	$(PYTHON) -m pytest -q tests/unit

integration:
	$(PYTHON) -m localkafka fetch
	$(PYTHON) -m pytest -q tests/integration

integration-kafka3:
	LAG_EXPORTER_KAFKA_VERSION=$(KAFKA_3_VERSION) $(PYTHON) -m localkafka fetch
	LAG_EXPORTER_KAFKA_VERSION=$(KAFKA_3_VERSION) $(PYTHON) -m pytest -q $(CORE_TESTS)

test: install lint unit integration integration-kafka3

# Scale benchmark against a real local broker; prints the table of benchmarks/RESULTS.md.
bench: install
	$(PYTHON) -m localkafka fetch
	$(PYTHON) -m benchmarks.scale

clean:
	rm -rf .mypy_cache .ruff_cache .pytest_cache .hypothesis build *.egg-info
