# Thin wrappers around tools/test.sh, the one test command.
.PHONY: test sanity units functional lint molecule demo fleet clean

test:
	./tools/test.sh all

sanity units functional lint molecule:
	./tools/test.sh $@

demo:
	./tools/demo.sh

# Scenarios on a container fleet over SSH (tests/fleet); builds missing images first.
fleet:
	./tools/fleet/run.sh

clean:
	rm -rf .build tests/output
