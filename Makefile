# The README's two commands: `make demo` (the main job) and `make test`.
# Both create .venv and install lrsearch on first use (see .ci/install for how torch is chosen).
VENV ?= .venv

.PHONY: demo test install docs dist peers

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

# the peer search systems of studies/peer_arms.py (NePS, Ray Tune) into $(VENV), e.g. a venv of their own:
# `make peers VENV=.venv-peers`. The constraint keeps torch 2.13.0 (NePS alone would pull a CUDA torch).
peers:
	[ -x $(VENV)/bin/python ] || python3 -m venv $(VENV)
	$(VENV)/bin/python -c "import torch" 2>/dev/null || $(VENV)/bin/python -m pip install -q torch==2.13.0
	$(VENV)/bin/python -m pip install -q -e '.[studies,peers]' pytest -c studies/constraints.txt
	$(VENV)/bin/python -c "import torch, neps, ray; print('peers: torch', torch.__version__, 'ray', ray.__version__)"
	! $(VENV)/bin/python -m pip list 2>/dev/null | grep -i '^nvidia'
