# metrofed — the front door. `make run` brings the federation up; `make test` runs every test.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PROTOS := $(wildcard protos/metrofed/v1/*.proto)
PYTEST_ARGS ?=

.PHONY: help venv proto lint test test-unit test-integration test-e2e run bench infra-up infra-down clean

help:
	@echo "make run    - start Kafka, Zipkin, the 18 seeded centres and the gateway; demo requests; Ctrl-C stops all"
	@echo "make test   - lint, then unit + integration (real Kafka, SQLite and PostgreSQL) + end-to-end tests"
	@echo "make bench  - routing and catalog benchmarks (prints figures)"
	@echo "make lint   - buf lint on protos/, byte-compile the Python tree"
	@echo "make infra-up / infra-down - Kafka + Zipkin (+PostgreSQL) alone, for working by hand"

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	@command -v java >/dev/null || { echo "Java 17 is required (Kafka and Zipkin run on the JVM)"; exit 1; }
	@command -v mvn >/dev/null || { echo "Maven is required (Kafka and Zipkin come from Maven Central)"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

# Generated code is not committed: it is built here from the pinned grpcio-tools (docs/protos.md).
proto: metrofed/v1/.generated

metrofed/v1/.generated: $(PROTOS) $(VENV)/.installed
	$(PY) -m grpc_tools.protoc -Iprotos --python_out=. --pyi_out=. --grpc_python_out=. $(PROTOS)
	touch $@

lint: proto
	cd protos && ../$(VENV)/bin/buf lint
	$(PY) -m compileall -q metrofed services gateway infra bench tests

test: lint
	$(PY) -m pytest -p no:cacheprovider $(PYTEST_ARGS) tests

test-unit: proto
	$(PY) -m pytest -p no:cacheprovider $(PYTEST_ARGS) tests/unit

test-integration: proto
	$(PY) -m pytest -p no:cacheprovider $(PYTEST_ARGS) tests/integration

test-e2e: proto
	$(PY) -m pytest -p no:cacheprovider $(PYTEST_ARGS) tests/e2e

run: proto
	$(PY) -m infra.demo

bench: proto
	$(PY) -m bench

infra-up: proto
	$(PY) -m infra.devstack up

infra-down:
	$(PY) -m infra.devstack down

clean:
	-$(PY) -m infra.devstack down
	rm -rf var/run var/logs var/db metrofed/v1/*_pb2*.py metrofed/v1/*_pb2*.pyi metrofed/v1/.generated
