# Two commands on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell sha1sum requirements.txt | cut -c1-12)
PORT ?= 5000
export FLASK_APP := wsgi

.PHONY: install db run serve test openapi clean

$(STAMP): requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

install: $(STAMP)

db: install  ## migrate and seed the database at DATABASE_URL (a SQLite file by default)
	mkdir -p instance
	$(BIN)/flask db upgrade
	$(BIN)/flask seed

run: db  ## serve the seeded directory on http://127.0.0.1:$(PORT)
	$(BIN)/flask run --host 127.0.0.1 --port $(PORT)

serve: db  ## the production server: gunicorn, WORKERS x THREADS
	$(BIN)/gunicorn --bind 127.0.0.1:$(PORT) --workers $${WORKERS:-$$(nproc)} --threads $${THREADS:-1} wsgi:app

test: install  ## the whole suite, on SQLite and on PostgreSQL
	$(BIN)/python -m pytest $(PYTEST_ARGS)

openapi: install  ## regenerate openapi.yaml from the code
	$(BIN)/flask openapi write --format=yaml openapi.yaml

clean:
	rm -rf $(VENV) instance .pytest_cache

.PHONY: bench
bench: install  ## search benchmark (bench/README.md); e.g. BENCH_ARGS="--engine sqlite --services 2000 --duration 3"
	$(BIN)/python bench/run.py $(BENCH_ARGS)
