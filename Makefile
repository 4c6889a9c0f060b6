# The README's two commands: `make demo` (the main job) and `make test`.
# Both create .venv and install lrsearch on first use (see .ci/install for how torch is chosen).
VENV ?= .venv

.PHONY: demo test install docs dist

$(VENV)/.installed: pyproject.toml .ci/install
	bash .ci/install $(VENV)
	touch $@

install: $(VENV)/.installed

demo: $(VENV)/.installed
	$(VENV)/bin/lrsearch demo

test: $(VENV)/.installed
	$(VENV)/bin/python -m pytest -q -n 2 --dist loadfile

# the documentation site into site/, warnings as errors (CI runs it too)
docs: $(VENV)/.installed
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict

# the wheel and sdist into dist/, checked as PyPI would
dist: $(VENV)/.installed
	rm -rf dist && $(VENV)/bin/python -m build --outdir dist . && $(VENV)/bin/python -m twine check --strict dist/*
