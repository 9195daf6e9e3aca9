# Thin wrappers around tools/test.sh, the one test command.
.PHONY: test sanity units functional lint molecule demo clean

test:
	./tools/test.sh all

sanity units functional lint molecule:
	./tools/test.sh $@

demo:
	./tools/demo.sh

clean:
	rm -rf .build tests/output
