#!/usr/bin/env bash
# Benchmarks: the stateless pipeline with the WASM plugin and with the same
# logic as native closures, in one run, plus WASM call and instantiation costs.
# EDDY_BENCH_RECORDS sets the input size.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo bench -p eddy-tests --bench stateless "$@"
