# Funnel's front door. `make up` runs the whole suite locally; `make test` runs the tests.
.PHONY: deps build test up down proto bench clean-var

deps:
	@deploy/local/install-deps.sh

build: deps
	swift build

test:
	@deploy/local/test.sh

up:
	@deploy/local/up.sh

down:
	@deploy/local/down.sh

proto:
	@deploy/local/proto.sh

bench:
	@deploy/local/bench.sh

clean-var: down
	rm -rf var
