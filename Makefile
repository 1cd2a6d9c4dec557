.DEFAULT_GOAL := help
SHELL := /bin/bash

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

install: ## install everything (Debian libraries, uv, virtualenvs); idempotent
	@scripts/install.sh

run: ## install, start servers, seed demo data, run the API and a worker
	@scripts/run.sh

test: ## install, start servers, run ruff, mypy and the whole test suite with coverage
	@scripts/test.sh

soak: ## the long reliability tests (crashes, races, faults, fuzzing)
	@scripts/test.sh -m soak --no-cov

bench: ## performance benchmarks against bare baselines (see docs/performance.md)
	@scripts/bench.sh

stop: ## stop the API, the worker and the local servers these scripts started
	@scripts/stop.sh

status: ## show which local servers are up
	@scripts/servers.sh status mongo redis s3 mail

lint: ## ruff + mypy only
	@.venv/bin/ruff check app worker scripts tests bench && .venv/bin/ruff format --check app worker scripts tests bench && .venv/bin/mypy app worker scripts tests

format: ## apply ruff formatting and fixes
	@.venv/bin/ruff check --fix app worker scripts tests bench; .venv/bin/ruff format app worker scripts tests bench

openapi: ## regenerate openapi.json and the Postman collection from the app
	@.venv/bin/python -m scripts.export_openapi

i18n: ## extract the texts into app/i18n/locale/messages.pot and update every locale's .po
	@.venv/bin/python -m scripts.i18n

.PHONY: help install run test soak bench stop status lint format openapi i18n
