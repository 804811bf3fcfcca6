# The two commands: `make run` and `make test`. Both install missing system packages first.
export CARGO_TARGET_DIR ?= $(HOME)/.cache/kvtier-target

.PHONY: run test build setup bench

setup:
	./scripts/setup.sh

build: setup
	cargo build --release -p kvtier-server

run: build
	$(CARGO_TARGET_DIR)/release/kvtier-server $(ARGS)

# Builds the server binary first: the black-box tests in tests/ start it. The black-box suite
# then runs again against the other two backends (KVTIER_TEST_BACKEND), a matrix over one suite.
test: setup
	cargo build --workspace --bins
	cargo test --workspace
	KVTIER_TEST_BACKEND=sled cargo test -p kvtier-tests
	KVTIER_TEST_BACKEND=rocksdb cargo test -p kvtier-tests
	./scripts/test-python.sh

bench: setup
	cargo bench -p kvtier-fs --bench fs_rates
