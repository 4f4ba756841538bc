#!/usr/bin/env bash
# Runs the whole test suite: unit tests of every crate (host, SDK, codec, the
# plugins natively), the end-to-end tests with the plugins compiled to real
# components, and the doc tests. Tests run under cargo-nextest, which kills a
# test that runs past its deadline (.config/nextest.toml); extra arguments go
# to `cargo nextest run` (e.g. a test name filter). The Kafka tests run
# against a real broker that this script starts (scripts/kafka.sh) and stops;
# if it does not start, the suite fails.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
# The broker starts while the build runs; the tests wait for it below.
kafka_log=$(mktemp)
scripts/kafka.sh start >"$kafka_log" 2>&1 &
kafka_starter=$!
trap 'scripts/kafka.sh stop >/dev/null 2>&1 || true; rm -f "$kafka_log"' EXIT
cargo build --release --workspace --tests
if ! wait "$kafka_starter"; then
  echo "the Kafka broker did not start:" >&2
  cat "$kafka_log" >&2
  exit 1
fi
EDDY_TEST_KAFKA=$(tail -n 1 "$kafka_log")
export EDDY_TEST_KAFKA
cargo nextest run --release --workspace --no-tests=warn "$@"
if [ "$#" -eq 0 ]; then
  cargo test --release --workspace --doc
fi
