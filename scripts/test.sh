#!/usr/bin/env bash
# Runs the whole test suite: unit tests of every crate (host, SDK, codec, the
# plugins natively) and the end-to-end tests with the plugins compiled to
# real components.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo test --release --workspace "$@"
