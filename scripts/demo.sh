#!/usr/bin/env bash
# The demo: builds eddy and the vitals, activity and customers plugins,
# creates topics on a fresh embedded log, produces sample readings, runs the
# vitals app until idle and prints what it wrote; then the per-patient
# medians app, the 5-minute blood-pressure averages (a windowed aggregation
# with a grace period), the per-minute medians again as a tumbling-window
# aggregate, users' sessions of clicks (session windows), and orders joined
# to customers and to a product catalogue (stream-table and
# stream-global-table joins). EDDY_DEMO_DIR keeps the data somewhere of
# your choice.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo build --release -p eddy-host --bin eddy
target_dir=$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
eddy="$target_dir/release/eddy"
"$eddy" plugin build plugins/vitals --out examples/vitals/vitals.wasm >/dev/null
"$eddy" plugin build plugins/activity --out examples/activity/activity.wasm >/dev/null
"$eddy" plugin build plugins/customers --out examples/orders/customers.wasm >/dev/null
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
# The medians per patient and minute again, as a tumbling-window aggregate
# whose final result per minute passes on once the minute closes. It reads
# all of `vitals`: the first sample's readings mostly reach the window after
# stream time closed their minute, and are dropped late, as in the averages.
"$eddy" topic create vitals-window-medians --partitions 2 --if-not-exists
"$eddy" run examples/vitals/window-medians.yaml --until-idle
echo "== vitals-window-medians (one final result per patient and minute)"
"$eddy" consume vitals-window-medians --from-beginning --until-end --key-serde string --value-serde json --windowed
# Users' sessions of clicks (session windows: 5 minutes of inactivity end a
# session, one minute of grace). One partition, so one stream time closes
# every user's sessions.
"$eddy" topic create clicks --partitions 1 --if-not-exists
"$eddy" topic create user-session-updates --partitions 1 --if-not-exists
"$eddy" topic create user-sessions --partitions 1 --if-not-exists
"$eddy" produce clicks --file examples/activity/clicks.jsonl --key-serde string --value-serde json
"$eddy" run examples/activity/sessions.yaml --until-idle
echo "== user-session-updates (every update; null: a session replaced by a longer one)"
"$eddy" consume user-session-updates --from-beginning --until-end --key-serde string --value-serde json --windowed session
echo "== user-sessions (each session once, after it closes)"
"$eddy" consume user-sessions --from-beginning --until-end --key-serde string --value-serde json --windowed session
# Orders joined to customers (a versioned table: each order meets the name
# its customer had at the order's time) and to the product catalogue (a
# global table): c9 is no customer (a null name), p9 no product (dropped),
# and c1 is renamed between orders o4 and o8.
"$eddy" topic create customers --partitions 2 --if-not-exists
"$eddy" topic create products --partitions 1 --if-not-exists
"$eddy" topic create orders --partitions 2 --if-not-exists
"$eddy" topic create orders-enriched --partitions 2 --if-not-exists
for topic in customers products orders; do
  "$eddy" produce "$topic" --file "examples/orders/$topic.jsonl" --key-serde string --value-serde json
done
"$eddy" run examples/orders/orders.yaml --until-idle
echo "== orders-enriched (keyed by customer)"
"$eddy" consume orders-enriched --from-beginning --until-end --key-serde string --value-serde json
