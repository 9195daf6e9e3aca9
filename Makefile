# Thin wrappers around tools/test.sh, the one test command.
.PHONY: test sanity units functional lint molecule demo fleet bench clean

test:
	./tools/test.sh all

sanity units functional lint molecule:
	./tools/test.sh $@

demo:
	./tools/demo.sh

# Scenarios on a container fleet over SSH (tests/fleet); builds missing images first.
fleet:
	./tools/fleet/run.sh

# The role against a minimal hand-written playbook on 1, 10 and 50 hosts (see
# tools/bench.py); VENV selects the venv, BENCH_ARGS e.g. --reps 5.
VENV ?= .venv
bench:
	test -x $(VENV)/bin/python || ./tools/test.sh setup
	$(VENV)/bin/python tools/bench.py $(BENCH_ARGS)

clean:
	rm -rf .build tests/output
