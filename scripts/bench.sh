#!/usr/bin/env bash
# Benchmarks, each printing a table of records per CPU-second with ratios to
# a baseline measured in the same run:
#   scripts/bench.sh            the stateless pipeline (WASM vs native), WASM
#                               call costs, counts per key and window
#   scripts/bench.sh windows    windowed counts, suppression, sessions and a
#                               stream-stream join (10M records by default)
#   scripts/bench.sh server     the hosted runtime: deploy to first output,
#                               100 tenants, query latency, runaway isolation
# EDDY_BENCH_RECORDS sets the input size; EDDY_BENCH_ONLY runs one row.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
bench="${1:-stateless}"
shift || true
if [ "$bench" = server ]; then
  # The benchmark drives the `eddy` binary.
  cargo build --release -p eddy-host
fi
cargo bench -p eddy-tests --bench "$bench" "$@"
