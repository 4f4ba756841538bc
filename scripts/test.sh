#!/usr/bin/env bash
# Runs the whole test suite: unit tests of every crate (host, SDK, codec, the
# plugins natively), the end-to-end tests with the plugins compiled to real
# components, and the doc tests. Tests run under cargo-nextest, which kills a
# test that runs past its deadline (.config/nextest.toml); extra arguments go
# to `cargo nextest run` (e.g. a test name filter).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo nextest run --release --workspace --no-tests=warn "$@"
if [ "$#" -eq 0 ]; then
  cargo test --release --workspace --doc
fi
