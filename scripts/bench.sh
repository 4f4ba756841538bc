#!/usr/bin/env bash
# Benchmarks, each printing a table of records per CPU-second with ratios to
# a baseline measured in the same run:
#   scripts/bench.sh            the stateless pipeline (WASM vs native), WASM
#                               call costs, counts per key and window
#   scripts/bench.sh windows    windowed counts, suppression, sessions and a
#                               stream-stream join (10M records by default)
# EDDY_BENCH_RECORDS sets the input size; EDDY_BENCH_ONLY runs one row.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
bench="${1:-stateless}"
shift || true
cargo bench -p eddy-tests --bench "$bench" "$@"
