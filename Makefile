# nofei — the two commands a new user needs:
#   make demo   installs nofei into .venv and serves a demo Xining on SQLite (http://127.0.0.1:8000/)
#   make test   installs nofei with its test tools and runs lint, import contracts, types and the
#               whole suite on SQLite and on PostgreSQL (127.0.0.1:5432, database test)
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PG_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/test
PYTEST_ARGS ?=

.PHONY: install install-test demo serve test lint unit test-sqlite test-postgres pg-up browser-deps bench

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

install: $(BIN)/python
	$(BIN)/pip install -q -c constraints.txt -e .

install-test: $(BIN)/python
	$(BIN)/pip install -q -c constraints.txt -e ".[test]"

demo: install
	$(BIN)/nofei demo

serve: install
	$(BIN)/nofei serve

lint: install-test
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/mypy

test-sqlite: install-test
	$(BIN)/python -m pytest -n 2 -q -p no:cacheprovider $(PYTEST_ARGS)

pg-up:
	@pg_isready -h 127.0.0.1 -p 5432 -q || pg_ctlcluster --skip-systemctl-redirect $$(ls /etc/postgresql) main start
	@for i in 1 2 3 4 5 6 7 8 9 10; do pg_isready -h 127.0.0.1 -p 5432 -q && break; sleep 1; done

test-postgres: install-test pg-up
	NOFEI_TEST_DATABASE_URL=$(PG_URL) $(BIN)/python -m pytest -q -p no:cacheprovider -m "not browser" $(PYTEST_ARGS)

browser-deps:
	@command -v chromium >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq chromium chromium-driver >/dev/null)
	@fc-list :lang=zh 2>/dev/null | grep -q . || (apt-get update -qq && apt-get install -y -qq fonts-wqy-microhei >/dev/null)

test: lint browser-deps test-sqlite test-postgres

bench: install-test
	$(BIN)/python -m bench
