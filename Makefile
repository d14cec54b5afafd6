# The public interface for people and CI. `make run` and `make test` are the two to know.
SHELL := /bin/bash
.DEFAULT_GOAL := help

UV_VERSION := 0.13.9
UV := .local/tools/bin/uv
VENV := .venv
BIN := $(VENV)/bin
# Where the tests find the servers `make up` and `make up-cluster` start (see tests/conftest.py,
# tests/cluster.py). The secured listeners, the TLS-only database role and the three-broker
# cluster are in deploy/README.md.
TEST_ENV := TEST_KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:9092 \
	TEST_KAFKA_SASL_SSL_BOOTSTRAP_SERVERS=127.0.0.1:9094 \
	TEST_KAFKA_MTLS_BOOTSTRAP_SERVERS=127.0.0.1:9095 \
	TEST_KAFKA_TLS_DIR=$(CURDIR)/.local/kafka/tls \
	TEST_DATABASE_URL=postgresql://fulfillment:fulfillment@127.0.0.1:5432/fulfillment?sslmode=disable \
	TEST_DATABASE_TLS_URL='postgresql://fulfillment_tls:fulfillment-tls@127.0.0.1:5432/fulfillment?sslmode=verify-full&sslrootcert=$(CURDIR)/.local/postgres/tls/ca.pem' \
	TEST_KAFKA_CLUSTER_BOOTSTRAP_SERVERS=127.0.0.1:29092,127.0.0.1:29093,127.0.0.1:29094 \
	TEST_KAFKA_CLUSTER_STACK=$(CURDIR)/deploy/local/stack.sh

.PHONY: help install tools up down status up-cluster down-cluster up-standby down-standby up-ha down-ha run migrate test lint unit bench simulate proof clean

help:
	@echo "make run       start Kafka + PostgreSQL, migrate, run the service in the foreground"
	@echo "make test      start Kafka (one broker and the three-broker cluster) + PostgreSQL, run ruff, mypy and pytest"
	@echo "make simulate  feed the running service a realistic mixed stream and show outcomes"
	@echo "make bench     throughput and latency benchmark (prints figures)"
	@echo "make proof     the service under seeded faults, then a soak, each history checked (SEED=n)"
	@echo "make install | up | down | status | up-cluster | down-cluster | migrate | lint | unit | clean"
	@echo "make up-standby | down-standby | up-ha | down-ha   PostgreSQL replicas (deploy/README.md)"

$(UV):
	@# Debian splits ensurepip out of python3; a fresh machine may not have it yet.
	python3 -c 'import ensurepip' 2>/dev/null || (apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-venv)
	python3 -m venv .local/tools
	.local/tools/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

$(VENV)/.installed: pyproject.toml uv.lock | $(UV)
	UV_PYTHON_DOWNLOADS=never $(UV) sync --extra dev --extra otel --locked --quiet
	touch $@

install: $(VENV)/.installed

# promtool and prometheus, for the alert-rule tests (tests/unit/deploy) and the real Prometheus
# of tests/observability. Any promtool on PATH will do; else Debian's package. Its post-install
# may start a daemon on :9090; the tests run their own, so stop and disable the packaged one.
PROMTOOL := $(or $(shell command -v promtool 2>/dev/null),/usr/bin/promtool)

$(PROMTOOL):
	apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends prometheus
	service prometheus stop >/dev/null 2>&1 || true
	systemctl disable --now prometheus >/dev/null 2>&1 || true

tools: $(PROMTOOL)

up:
	bash deploy/local/stack.sh up

# `down` stops everything `up` and `up-cluster` started.
down: down-cluster
	bash deploy/local/stack.sh down

status:
	@rc=0; bash deploy/local/stack.sh status || rc=1; \
	bash deploy/local/stack.sh status cluster || rc=1; exit $$rc

# The three-broker Kafka cluster (127.0.0.1:29092-29094; RF 3, min ISR 2) of the partial-failure
# tests; it runs beside the single broker. One broker: bash deploy/local/stack.sh broker stop|start|kill N
up-cluster:
	bash deploy/local/stack.sh up cluster

down-cluster:
	bash deploy/local/stack.sh down cluster

# A hot standby of the local PostgreSQL on 5433, and a primary/standby pair of its own (5434,
# 5435) for failover tests; deploy/README.md.
up-standby:
	bash deploy/local/stack.sh up standby

down-standby:
	bash deploy/local/stack.sh down standby

up-ha:
	bash deploy/local/stack.sh up ha

down-ha:
	bash deploy/local/stack.sh down ha

migrate: install up
	$(BIN)/fulfillment migrate

run: migrate
	exec $(BIN)/fulfillment run

simulate: install
	$(BIN)/fulfillment simulate

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy service schemas tests bench

unit: install tools
	$(BIN)/pytest tests/unit bench -q

test: install tools up up-cluster lint
	@# The short proof (tests/fault/test_proof.py) draws its plots with matplotlib, as the bench does.
	UV_PYTHON_DOWNLOADS=never $(UV) sync --extra dev --extra otel --extra bench --locked --quiet
	$(TEST_ENV) $(BIN)/pytest -q

bench: install up
	@# The plots need matplotlib, kept out of the service's own dependencies.
	UV_PYTHON_DOWNLOADS=never $(UV) sync --extra dev --extra otel --extra bench --locked --quiet
	$(TEST_ENV) $(BIN)/python -m bench.throughput
	$(TEST_ENV) $(BIN)/python -m bench.reprocess

# Not part of `make test` (tests/fault/test_proof.py is its short seeded version). SEED=n repeats
# a run; PROOF_ARGS passes more options (python -m tests.proof --help), e.g. --soak-seconds 0.
# The fault phase, then the soak; the plots need matplotlib, as the bench's do.
proof: install up up-cluster
	UV_PYTHON_DOWNLOADS=never $(UV) sync --extra dev --extra otel --extra bench --locked --quiet
	$(TEST_ENV) $(BIN)/python -m tests.proof --cluster $(if $(SEED),--seed $(SEED)) $(PROOF_ARGS)

clean:
	rm -rf $(VENV) .local/tools .mypy_cache .ruff_cache .pytest_cache
