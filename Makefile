# stemforge: `make run` starts the service on the embedded defaults, `make test` runs every test.
# Both install what they need on a fresh machine (a venv in .venv, npm packages in node_modules).

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PORT ?= 8080
# Empty: the launcher chooses from MOCK_GENERATION and the machine (stemforge/launch/choice.py).
SERVE_CONFIG ?=
PYTEST_ARGS ?=

export OMP_WAIT_POLICY ?= PASSIVE
export RAY_USAGE_STATS_ENABLED ?= 0

# The procedural engine plays a General MIDI SoundFont (MIT-licensed FluidR3 Mono) through
# libfluidsynth, both from Debian; without them it falls back to DSP synthesis. The vocals are
# sung by espeak-ng (Debian) and WORLD (pyworld); without espeak-ng they play an instrument.
SOUNDFONT := /usr/share/sounds/sf3/FluidR3Mono_GM.sf3
SYSTEM_PACKAGES := fluidr3mono-gm-soundfont libfluidsynth3 chromium espeak-ng

.PHONY: install system-packages run configs test lint bench examples clean

install: $(VENV)/.installed node_modules/.installed system-packages

system-packages:
	@if [ -f $(SOUNDFONT) ] && ldconfig -p | grep -q libfluidsynth.so.3 && [ -x /usr/bin/chromium ] && command -v espeak-ng >/dev/null; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(SYSTEM_PACKAGES) >/dev/null; \
	else \
	  echo "note: for sampled instruments and the browser tests run: sudo apt-get install $(SYSTEM_PACKAGES)"; \
	  echo "      (without them the procedural engine uses DSP synthesis)"; \
	fi

$(VENV)/.installed: pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev,musicgen,stable-audio,audioldm2,riffusion]"
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

# Local development: callbacks to this machine are allowed (the SSRF guard refuses them otherwise).
# The launcher picks the serve config for MOCK_GENERATION and the machine, checks within seconds
# that it can start here (resources, checkpoint), then runs `serve run` until RUNNING or failed
# (STARTUP_TIMEOUT_SECONDS, default 300).
run: install
	CALLBACK_ALLOWED_HOSTS="$${CALLBACK_ALLOWED_HOSTS-localhost,127.0.0.1}" PORT=$(PORT) \
	  $(BIN)/python -m stemforge.launch $(SERVE_CONFIG)

# The serve config variants, from serve_config.yaml and their overlays in configs/variants.yaml.
configs: install
	$(BIN)/python -m stemforge.launch.generate

test: install
	$(BIN)/pytest $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check stemforge deployments tests bench
	$(BIN)/ruff format --check stemforge deployments tests bench
	$(BIN)/mypy

bench: install
	$(BIN)/python -m bench

examples: install
	$(BIN)/python bench/render_examples.py

clean:
	rm -rf $(VENV) node_modules .pytest_cache .mypy_cache .ruff_cache
