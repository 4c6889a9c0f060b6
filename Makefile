# The README's two commands: `make demo` (the main job) and `make test`.
# Both create .venv and install lrsearch on first use (see .ci/install for how torch is chosen).
VENV ?= .venv

.PHONY: demo test install

$(VENV)/.installed: pyproject.toml .ci/install
	bash .ci/install $(VENV)
	touch $@

install: $(VENV)/.installed

demo: $(VENV)/.installed
	$(VENV)/bin/lrsearch demo

test: $(VENV)/.installed
	$(VENV)/bin/python -m pytest -q -n 2 --dist loadfile
