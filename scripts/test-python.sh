#!/usr/bin/env bash
# Runs the Python client tests (tests/python, redis-py) against the debug kvtier-server binary.
# Installs the requirements quietly first; the exit code is pytest's.
# The binary comes from KVTIER_SERVER_BIN, default $CARGO_TARGET_DIR/release/kvtier-server
# (CARGO_TARGET_DIR defaults to ~/.cache/kvtier-target); build it with `cargo build --release -p kvtier-server`.
set -uo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/kvtier-target}"
PY="${PYTHON:-python3}"
export PIP_ROOT_USER_ACTION=ignore
if ! "$PY" -m pip install -q --disable-pip-version-check -r tests/python/requirements.txt; then
  echo "test-python.sh: pip install -r tests/python/requirements.txt failed" >&2
  exit 1
fi
"$PY" -m pytest tests/python -q "$@"
exit $?
