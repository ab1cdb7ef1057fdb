# Two commands on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Pins: requirements.txt (runtime) and requirements-dev.txt (tests, lint), compiled by
# `make lock` from the direct dependencies in requirements.in and requirements-dev.in.
REQUIREMENTS := requirements.txt requirements-dev.txt
STAMP := $(VENV)/.installed-$(shell cat $(REQUIREMENTS) | sha1sum | cut -c1-12)
PORT ?= 5000
HOST ?= 127.0.0.1
export FLASK_APP := wsgi

.PHONY: install lock lint local-key db run serve test openapi clean pg-rum translations browser

$(STAMP): $(REQUIREMENTS)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt -r requirements-dev.txt
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

install: $(STAMP)  ## the virtualenv in .venv with every pinned package, runtime and development

# After editing requirements.in or requirements-dev.in: pin what changed (pip-compile keeps
# every other pin as it is; `make lock PIP_COMPILE_ARGS=--upgrade` moves them all), then
# `make install`. The options of pip-compile are in pyproject.toml ([tool.pip-tools]).
lock: install  ## compile requirements.in and requirements-dev.in into the pinned .txt files
	$(BIN)/pip-compile $(PIP_COMPILE_ARGS) --output-file requirements.txt requirements.in
	$(BIN)/pip-compile $(PIP_COMPILE_ARGS) --output-file requirements-dev.txt requirements-dev.in

# Every check runs even when one before it fails, so one run reports all of them.
lint: install  ## ruff check, ruff format --check and mypy (settings in pyproject.toml)
	@status=0; \
	echo "ruff check ."; $(BIN)/ruff check . || status=1; \
	echo "ruff format --check ."; $(BIN)/ruff format --check . || status=1; \
	echo "mypy"; $(BIN)/mypy || status=1; \
	exit $$status

# Without DATA_ENCRYPTION_KEY, `make db` / `make run` use a local key kept in instance/ (made once,
# mode 0600, and said so); production sets DATA_ENCRYPTION_KEY and the app refuses to start without it.
LOCAL_KEY := instance/data-encryption-key
WITH_KEY = DATA_ENCRYPTION_KEY="$${DATA_ENCRYPTION_KEY:-$$(cat $(LOCAL_KEY))}"

local-key:
	@mkdir -p instance
	@if [ -z "$$DATA_ENCRYPTION_KEY" ] && [ ! -s $(LOCAL_KEY) ]; then \
	  (umask 077; $(BIN)/python -c 'import base64,os;print(base64.b64encode(os.urandom(32)).decode())' > $(LOCAL_KEY)); \
	  echo "Created a local data encryption key in $(LOCAL_KEY) (DATA_ENCRYPTION_KEY is not set; for development only)."; \
	elif [ -z "$$DATA_ENCRYPTION_KEY" ]; then echo "Using the local data encryption key in $(LOCAL_KEY) (DATA_ENCRYPTION_KEY is not set)."; fi

db: install local-key  ## migrate and seed the database at DATABASE_URL (a SQLite file by default)
	mkdir -p instance
	$(WITH_KEY) $(BIN)/flask db upgrade
	$(WITH_KEY) $(BIN)/flask seed

run: db  ## serve the seeded directory on http://$(HOST):$(PORT)
	$(WITH_KEY) $(BIN)/flask run --host $(HOST) --port $(PORT)

serve: db  ## the production server: gunicorn, WORKERS x THREADS
	$(WITH_KEY) $(BIN)/gunicorn --bind $(HOST):$(PORT) --workers $${WORKERS:-$$(nproc)} --threads $${THREADS:-1} wsgi:app

# PostgreSQL search ranks inside a RUM index when the server has the extension (migration 0007);
# without it, it ranks with ts_rank. Installed once, as root (CI), from Debian's package.
RUM_CONTROL := /usr/share/postgresql/15/extension/rum.control
pg-rum:  ## the RUM extension for the local PostgreSQL 15 (apt, as root; nothing when present)
	@if [ -f $(RUM_CONTROL) ]; then :; \
	elif [ "$$(id -u)" = 0 ]; then apt-get install -y postgresql-15-rum || { apt-get update && apt-get install -y postgresql-15-rum; } \
	  || echo "pg-rum: could not install postgresql-15-rum; PostgreSQL search ranks with ts_rank"; \
	else echo "pg-rum: $(RUM_CONTROL) missing; run 'sudo make pg-rum' (PostgreSQL search ranks with ts_rank until then)"; fi

# The web app's Spanish catalogue (web/translations/es): re-extract the English strings and
# compile the .mo (committed, so a checkout runs without this step).
translations: install  ## extract web/ strings into messages.pot, merge into es, compile .mo
	$(BIN)/pybabel extract -F web/babel.cfg -k _ -k gettext -k ngettext:1,2 --no-location --omit-header -o web/translations/messages.pot .
	$(BIN)/pybabel update -i web/translations/messages.pot -d web/translations -D messages --no-location --ignore-obsolete
	$(BIN)/pybabel compile -d web/translations -D messages

# Browser tests (tests/browser): Debian's chromium (apt, as root, as CI runs; nothing when
# present) and axe-core from npm (tests/browser/package-lock.json). Nothing is downloaded at test time.
browser:  ## chromium and axe-core for the browser tests
	@if command -v chromium >/dev/null; then :; \
	elif [ "$$(id -u)" = 0 ]; then apt-get install -y chromium || { apt-get update && apt-get install -y chromium; }; \
	else echo "browser: chromium missing; run 'sudo make browser' (browser tests are skipped until then)"; fi
	@if [ tests/browser/node_modules/.package-lock.json -nt tests/browser/package-lock.json ]; then :; \
	elif command -v npm >/dev/null; then cd tests/browser && npm ci --no-audit --no-fund --silent; \
	else echo "browser: npm missing; axe-core not installed (browser tests are skipped until then)"; fi

# The suite runs on every core (pytest-xdist; each worker has its own databases: tests/conftest.py
# names them by process), a module's tests on one worker so that those that only read share its
# database (`reader`). The fault tests restart PostgreSQL and kill servers, so they run after
# it, alone. TEST_WORKERS=0 runs everything in one process.
TEST_WORKERS ?= auto
test: install lint pg-rum browser  ## lint, then the whole suite, on SQLite and on PostgreSQL (in parallel, then the fault tests alone)
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile --ignore=tests/faults $(PYTEST_ARGS)
	$(BIN)/python -m pytest tests/faults $(PYTEST_ARGS)

openapi: install local-key  ## regenerate openapi.yaml from the code
	$(WITH_KEY) $(BIN)/flask openapi write --format=yaml openapi.yaml

clean:
	rm -rf $(VENV) instance .pytest_cache .mypy_cache .ruff_cache

.PHONY: bench bench-datasette
bench: install bench-datasette  ## search benchmark (bench/README.md); e.g. BENCH_ARGS="--engine sqlite --services 2000 --duration 3"
	$(BIN)/python bench/run.py --datasette $(BENCH_ARGS)

DATASETTE_VERSION = 0.65.5
bench-datasette: bench/.venv-datasette/bin/datasette  ## Datasette, the search benchmark's comparison, in a virtualenv of its own

bench/.venv-datasette/bin/datasette:
	python3 -m venv bench/.venv-datasette
	bench/.venv-datasette/bin/pip install -q datasette==$(DATASETTE_VERSION)
