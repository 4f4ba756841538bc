#!/usr/bin/env bash
# Runs the whole test suite: unit tests of every crate (host, SDK, codec, the
# plugins natively), the end-to-end tests with the plugins compiled to real
# components, and the doc tests. Tests run under cargo-nextest, which kills a
# test that runs past its deadline (.config/nextest.toml); extra arguments go
# to `cargo nextest run` (e.g. a test name filter). The Kafka tests run
# against real brokers that this script starts (scripts/kafka.sh) and stops;
# if they do not start, the suite fails.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
# The brokers start while the build runs (one broker for most Kafka tests, a
# three-broker cluster for those that stop brokers); the tests wait for them.
kafka_log=$(mktemp)
cluster_log=$(mktemp)
scripts/kafka.sh start >"$kafka_log" 2>&1 &
kafka_starter=$!
scripts/kafka.sh start --brokers 3 >"$cluster_log" 2>&1 &
cluster_starter=$!
trap 'scripts/kafka.sh stop --brokers all >/dev/null 2>&1 || true; rm -f "$kafka_log" "$cluster_log"' EXIT
cargo build --release --workspace --tests
for starter in "$kafka_starter:$kafka_log" "$cluster_starter:$cluster_log"; do
  if ! wait "${starter%%:*}"; then
    echo "a Kafka cluster did not start:" >&2
    cat "${starter#*:}" >&2
    exit 1
  fi
done
EDDY_TEST_KAFKA=$(tail -n 1 "$kafka_log")
EDDY_TEST_KAFKA_CLUSTER=$(tail -n 1 "$cluster_log")
export EDDY_TEST_KAFKA EDDY_TEST_KAFKA_CLUSTER
cargo nextest run --release --workspace --no-tests=warn "$@"
if [ "$#" -eq 0 ]; then
  cargo test --release --workspace --doc
fi
