#!/usr/bin/env bash
# The demo: builds eddy and the vitals plugin, creates topics on a fresh
# embedded log, produces sample readings, runs the vitals app until idle and
# prints what it wrote; then the per-patient medians app and the 5-minute
# blood-pressure averages (a windowed aggregation with a grace period). EDDY_DEMO_DIR keeps the data somewhere of your choice.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo build --release -p eddy-host --bin eddy
target_dir=$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
eddy="$target_dir/release/eddy"
"$eddy" plugin build plugins/vitals --out examples/vitals/vitals.wasm >/dev/null
data="${EDDY_DEMO_DIR:-$(mktemp -d)/eddy-data}"
export EDDY_DATA_DIR="$data"
echo "== data directory: $data"
"$eddy" topic create vitals --partitions 4 --if-not-exists
"$eddy" topic create alerts --partitions 2 --if-not-exists
"$eddy" topic create vitals-clean --partitions 2 --if-not-exists
"$eddy" produce vitals --file examples/vitals/readings.jsonl --key-serde string --value-serde json
"$eddy" run examples/vitals/app.yaml --until-idle
for topic in alerts vitals-clean vitals-dlq; do
  echo "== $topic"
  "$eddy" consume "$topic" --from-beginning --until-end --key-serde string --value-serde json
done
# Medians per patient over the last minute (a processor with stores and a
# stream-time punctuator), on three minutes of readings every 5 s.
"$eddy" topic create vitals-by-patient --partitions 4 --if-not-exists
"$eddy" topic create vitals-medians --partitions 2 --if-not-exists
"$eddy" produce vitals --file examples/vitals/minute-readings.jsonl --key-serde string --value-serde json
"$eddy" run examples/vitals/medians.yaml --until-idle
echo "== vitals-medians"
"$eddy" consume vitals-medians --from-beginning --until-end --key-serde string --value-serde json
# Average blood pressure per patient over 5-minute windows (tumbling, one
# minute of grace) on the same readings: a windowed aggregation.
"$eddy" topic create vitals-pressure --partitions 2 --if-not-exists
"$eddy" run examples/vitals/pressure.yaml --until-idle
echo "== vitals-pressure (the last average per patient and window)"
"$eddy" consume vitals-pressure --from-beginning --until-end --key-serde string --value-serde json --windowed
