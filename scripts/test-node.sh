#!/usr/bin/env bash
# Runs the Node.js client tests (tests/node, ioredis) against the release kvtier-server binary,
# with node's own test runner. Installs ioredis into tests/node/node_modules from the npm registry
# first. The binary comes from KVTIER_SERVER_BIN, default $CARGO_TARGET_DIR/release/kvtier-server.
set -euo pipefail
cd "$(dirname "$0")/../tests/node"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/kvtier-target}"
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "test-node.sh: node and npm are needed (Debian: apt-get install nodejs npm)" >&2
  exit 1
fi
npm install --no-audit --no-fund --silent
node --test ioredis.test.mjs
