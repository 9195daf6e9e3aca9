# make test runs the whole suite through nox (noxfile.py: the version matrix,
# lint, functional, molecule; antsibull-nox.toml: the standard checks); nox and
# antsibull-nox are installed into .venv-nox on first use.
# Quick runs on the newest ansible-core: make sanity | units | functional | lint | molecule.
# Any nox selection: make nox ARGS='-t units'   (or: .venv-nox/bin/nox -s units-2.16)
.PHONY: test sanity units functional lint molecule nox venv demo fleet ee bench bench-terraform clean

NOX_VENV := .venv-nox
NOX := $(NOX_VENV)/bin/nox
# nox runs on Debian's Python (any 3.9+ would do); the sessions pick their own.
NOX_PYTHON ?= /usr/bin/python3

test: $(NOX)
	$(NOX) $(ARGS)

sanity units functional lint molecule: $(NOX)
	$(NOX) -s $@ $(ARGS)

nox: $(NOX)
	$(NOX) $(ARGS)

# .venv: the newest ansible-core with every test requirement (demo, fleet, bench).
venv: $(NOX)
	$(NOX) -s venv

# A fresh Debian 12 has no python3-venv: install it when a venv cannot be made.
$(NOX): tests/requirements-nox.txt
	rm -rf $(NOX_VENV)
	$(NOX_PYTHON) -m venv $(NOX_VENV) || { rm -rf $(NOX_VENV) && \
	    apt-get -q update </dev/null && \
	    DEBIAN_FRONTEND=noninteractive apt-get -q install -y --no-install-recommends python3-venv </dev/null && \
	    $(NOX_PYTHON) -m venv $(NOX_VENV); }
	$(NOX_VENV)/bin/python -m pip install -q --disable-pip-version-check -r tests/requirements-nox.txt
	touch $@

demo:
	./tools/demo.sh

# Scenarios on a container fleet over SSH (tests/fleet); builds missing images first.
fleet:
	./tools/fleet/run.sh

# The Execution Environment image localhost/fjcloud-mail-ee:<version> and its
# base (tools/ee/build.sh, docs/awx.md); rebuilt only when its definition or the
# collection changed. make fleet builds it too and runs jobs in it.
ee:
	./tools/ee/build.sh

# The role against a minimal hand-written playbook on 1, 10 and 50 hosts (see
# tools/bench.py); VENV selects the venv, BENCH_ARGS e.g. --reps 5.
VENV ?= .venv
bench:
	test -x $(VENV)/bin/python || $(MAKE) venv
	$(VENV)/bin/python tools/bench.py $(BENCH_ARGS)
bench-terraform:  # mail API calls and seconds of a no-op Terraform plan (tools/bench_terraform.py)
	test -x $(VENV)/bin/python || $(MAKE) venv
	$(VENV)/bin/python tools/bench_terraform.py $(BENCH_ARGS)

clean:
	rm -rf .build .nox tests/output
