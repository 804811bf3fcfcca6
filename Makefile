# The two commands: `make run` and `make test`. Both install missing system packages first.
export CARGO_TARGET_DIR ?= $(HOME)/.cache/kvtier-target

.PHONY: run test build setup bench

setup:
	./scripts/setup.sh

# One profile for everything (release): `make run` and `make test` share the compiled C/C++ of
# RocksDB, so a fresh machine builds it once.
build: setup
	cargo build --release -p kvtier-server

run: build
	$(CARGO_TARGET_DIR)/release/kvtier-server $(ARGS)

# Builds the server binary first: the black-box tests in tests/ start it. The black-box suite
# then runs again against the other two backends (KVTIER_TEST_BACKEND), a matrix over one suite.
test: setup
	./scripts/test-setup.sh
	cargo build --release --workspace --bins
	cargo test --release --workspace
	KVTIER_TEST_BACKEND=sled cargo test --release -p kvtier-tests
	KVTIER_TEST_BACKEND=rocksdb cargo test --release -p kvtier-tests
	KVTIER_TEST_BACKEND=logstore KVTIER_SERVER_BIN=$(CARGO_TARGET_DIR)/release/kvtier-logstore-server cargo test --release -p kvtier-tests
	./scripts/test-python.sh
	./scripts/test-node.sh

bench: setup
	cargo bench -p kvtier-fs --bench fs_rates
