#!/usr/bin/env bash
# Eddy against Kafka Streams 4.4.0 on the same Kafka broker: two pipelines,
# both guarantees, one system after the other, and a table at the end.
#
#   scripts/bench-kafka.sh
#
# Pipelines (the same logic in both systems):
#   stateless  JSON payments: filter status == "ok" (~80% pass), map to
#              {"id","customer","usd"} with a fixed rate table; both parse
#              the JSON (Jackson in Java, serde_json in the WASM plugin).
#              Eddy: bench/eddy/stateless.yaml + plugins/bench
#              (is_ok_json, to_usd); Kafka Streams: bench/kafka-streams
#              (StreamsApp --topology stateless).
#   wordcount  lines of 4 words (10,000-word vocabulary, Zipf-distributed):
#              split into lowercase words, re-key by word (a repartition
#              topic), count in a RocksDB store, write each updated count.
#              Eddy: bench/eddy/wordcount.yaml + plugins/words; Kafka
#              Streams: StreamsApp --topology wordcount.
# Both run with commit interval 100 ms, a 10 MiB record cache, 1 processing
# thread, at-least-once and exactly-once (Kafka Streams: exactly_once_v2).
# Kafka Streams gets -Xms256m -Xmx1g: its working set is a few hundred MB
# (10 MiB cache, RocksDB off-heap), so 1 GB leaves GC pressure out of the
# comparison, and a small -Xms lets peak RSS show what it used rather than
# what was reserved.
#
# Throughput: the broker (scripts/kafka.sh, started unless running; stopped
# at the end if this script started it) gets two input topics of
# EDDY_BENCH_RECORDS records each (4 partitions, preloaded by the Java
# producer, murmur2-partitioned). For each pipeline x guarantee, Kafka
# Streams then Eddy process the whole topic into their own output topic
# with fresh application ids. A watcher (bench/kafka-streams: Watcher)
# polls the group's committed offsets; when they reach the end of the
# input and repartition topics, the process's CPU time (utime + stime from
# /proc/PID/stat) and peak RSS (VmHWM) are read, and it is stopped. Wall
# time is from its launch to the watcher's "done"; records/CPU-s is input
# records / CPU seconds of that process alone (not the broker's).
#
# Latency: per pipeline x guarantee x system, a fresh app on an empty topic
# and, once it holds its partitions, the probe (Probe) producing EDDY_BENCH_RATE records/s for
# EDDY_BENCH_LATENCY_SECONDS s (after EDDY_BENCH_WARMUP_SECONDS s not
# measured), with CreateTime = now, reading the output read_committed:
# latency = receive time - output timestamp (= its input's timestamp). A
# latency marked * came from an app that fell behind the rate (its last
# output came over a second after the last input): queueing, not latency.
#
# Correctness: the stateless outputs of both systems hold as many records as
# the input has ok payments; each word count's last count per word agrees
# between the systems and sums to the number of words in the input.
#
# Environment:
#   EDDY_BENCH_RECORDS          input records per pipeline (5000000)
#   EDDY_BENCH_THREADS          processing threads of each app (1)
#   EDDY_BENCH_PARTITIONS       partitions of the input topics (4)
#   EDDY_BENCH_WORDS_PER_LINE   words per line of the word count (4)
#   EDDY_BENCH_PIPELINES        which pipelines ("stateless wordcount")
#   EDDY_BENCH_GUARANTEES       which guarantees ("at-least-once exactly-once")
#   EDDY_BENCH_RATE             probe records per second (5000)
#   EDDY_BENCH_WORDCOUNT_RATE   probe lines per second for the word count
#                               (EDDY_BENCH_RATE; each line is 4 words)
#   EDDY_BENCH_PHASES           which phases ("throughput latency"); the
#                               correctness checks go with throughput
#   EDDY_BENCH_LATENCY_SECONDS  probe seconds measured (30)
#   EDDY_BENCH_WARMUP_SECONDS   probe seconds before measuring (10)
#   EDDY_BENCH_TIMEOUT          seconds one throughput run may take (3600)
#   EDDY_BENCH_KS_HEAP          Kafka Streams' heap flags (-Xms256m -Xmx1g)
#   EDDY_BENCH_DIR              work directory: logs, app files, state
#                               (default: a new directory under /tmp)
#   EDDY_BENCH_KEEP_TOPICS      1: do not delete the run's topics at the end
#   EDDY_BENCH_WATCH_VERBOSE    set: each throughput run's progress, once a
#                               second, in $EDDY_BENCH_DIR/<run>.watch
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

records=${EDDY_BENCH_RECORDS:-5000000}
threads=${EDDY_BENCH_THREADS:-1}
partitions=${EDDY_BENCH_PARTITIONS:-4}
words_per_line=${EDDY_BENCH_WORDS_PER_LINE:-4}
pipelines=${EDDY_BENCH_PIPELINES:-stateless wordcount}
guarantees=${EDDY_BENCH_GUARANTEES:-at-least-once exactly-once}
rate=${EDDY_BENCH_RATE:-5000}
wordcount_rate=${EDDY_BENCH_WORDCOUNT_RATE:-$rate}
latency_seconds=${EDDY_BENCH_LATENCY_SECONDS:-30}
phases=${EDDY_BENCH_PHASES:-throughput latency}
has_phase() { [[ " $phases " == *" $1 "* ]]; }
warmup_seconds=${EDDY_BENCH_WARMUP_SECONDS:-10}
run_timeout=${EDDY_BENCH_TIMEOUT:-3600}
read -r -a ks_heap <<<"${EDDY_BENCH_KS_HEAP:--Xms256m -Xmx1g}"
work=${EDDY_BENCH_DIR:-$(mktemp -d /tmp/eddy-bench.XXXXXX)}
mkdir -p "$work"
clk_tck=$(getconf CLK_TCK)
# Every name of this run starts with the prefix: nothing is reused by accident.
prefix="bench-$(date +%Y%m%d-%H%M%S)-$$"

log() { echo "== $*" >&2; }
die() {
  echo "bench-kafka.sh: $*" >&2
  exit 1
}

# --- cleanup ------------------------------------------------------------------

started_broker=0
bootstrap=""
declare -a our_pids=()
cleanup() {
  local pid
  for pid in "${our_pids[@]+"${our_pids[@]}"}"; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "${our_pids[@]+"${our_pids[@]}"}"; do
    wait "$pid" 2>/dev/null || true
  done
  if [ -n "$bootstrap" ] && [ "${EDDY_BENCH_KEEP_TOPICS:-0}" != 1 ] && [ -n "${classpath:-}" ]; then
    tool Topics --bootstrap "$bootstrap" --delete-prefix "$prefix" 2>>"$work/cleanup.log" || true
  fi
  if [ "$started_broker" -eq 1 ]; then
    scripts/kafka.sh stop --brokers 1 || true
  fi
  rm -rf "$work"/state-* "$work/eddy"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- build --------------------------------------------------------------------

log "building eddy, the plugins and the Kafka Streams side (work directory: $work)"
scripts/setup.sh >/dev/null
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/eddy-ci-target}
cargo build --release -p eddy-host --bin eddy 2>&1 | tail -n 1 >&2
# A copy: a build in the shared target directory must not swap it mid-run.
eddy="$work/eddy"
cp "$CARGO_TARGET_DIR/release/eddy" "$eddy"
"$eddy" plugin build plugins/bench --out "$work/bench.wasm" >/dev/null
"$eddy" plugin build plugins/words --out "$work/words.wasm" >/dev/null

ks_project="$repo/bench/kafka-streams"
(cd "$ks_project" && mvn -q -B -Dstyle.color=never package) >"$work/mvn.log" 2>&1 ||
  { cat "$work/mvn.log" >&2; die "building bench/kafka-streams failed"; }
# The dependencies' jars, copied once per version of the pom (as
# scripts/kafka.sh keeps the broker's).
deps="$HOME/.cache/eddy-bench/lib-$(sha256sum "$ks_project/pom.xml" | cut -c1-16)"
if [ ! -f "$deps/.complete" ]; then
  rm -rf "$deps"
  (cd "$ks_project" && mvn -q -B -Dstyle.color=never dependency:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$deps") >"$work/mvn-deps.log" 2>&1 ||
    { cat "$work/mvn-deps.log" >&2; die "copying the Kafka Streams jars failed"; }
  touch "$deps/.complete"
fi
classpath="$ks_project/target/eddy-bench-kstreams.jar:$deps/*"

# A short-lived tool of bench/kafka-streams: a small heap, the quick JIT tier.
tool() {
  local class=$1
  shift
  java -Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -cp "$classpath" "dev.eddy.bench.$class" "$@"
}

# --- broker -------------------------------------------------------------------

if scripts/kafka.sh status --brokers 1 >/dev/null 2>&1; then
  log "using the running broker"
else
  started_broker=1
fi
bootstrap=$(scripts/kafka.sh start --reuse | tail -n 1)
log "broker: $bootstrap"

# --- measuring one process ----------------------------------------------------

# CPU seconds (user + system, all threads) of a running process.
cpu_seconds() {
  local stat fields
  stat=$(cat "/proc/$1/stat")
  read -r -a fields <<<"${stat##*) }"
  # After the command name: state is field 3, utime 14 and stime 15.
  awk -v t="$clk_tck" -v u="${fields[11]}" -v s="${fields[12]}" 'BEGIN { printf "%.2f", (u + s) / t }'
}

# Peak resident memory of a running process, MB.
peak_rss_mb() {
  awk '/^VmHWM:/ { printf "%.0f", $2 / 1024 }' "/proc/$1/status"
}

now() { date +%s.%N; }

# Stops a process we started: TERM, up to 60 s, then KILL.
stop_process() {
  local pid=$1 i
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 600; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    echo "bench-kafka.sh: pid $pid did not stop within 60 s, killing it" >&2
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
  local kept=()
  for p in "${our_pids[@]}"; do
    [ "$p" = "$pid" ] || kept+=("$p")
  done
  our_pids=("${kept[@]+"${kept[@]}"}")
}

# Launches app `$1` of system `$2` (ks | eddy) for pipeline `$3`, guarantee
# `$4`, from input `$5` to output `$6`, logging to `$7`; sets app_pid.
launch_app() {
  local id=$1 system=$2 pipeline=$3 guarantee=$4 input=$5 output=$6 logfile=$7
  if [ "$system" = ks ]; then
    local ks_guarantee=at_least_once
    [ "$guarantee" = at-least-once ] || ks_guarantee=exactly_once_v2
    java "${ks_heap[@]}" -cp "$classpath" dev.eddy.bench.StreamsApp --bootstrap "$bootstrap" \
      --topology "$pipeline" --guarantee "$ks_guarantee" --threads "$threads" \
      --application-id "$id" --input "$input" --output "$output" \
      --state-dir "$work/state-$id" >"$logfile" 2>&1 &
  else
    local plugin=bench.wasm
    [ "$pipeline" = stateless ] || plugin=words.wasm
    sed -e "s|@APP_ID@|$id|; s|@PLUGIN@|$plugin|; s|@THREADS@|$threads|" \
      -e "s|@GUARANTEE@|$guarantee|; s|@INPUT@|$input|; s|@OUTPUT@|$output|" \
      "bench/eddy/$pipeline.yaml" >"$work/$id.yaml"
    "$eddy" --bootstrap-servers "$bootstrap" --data-dir "$work/state-$id" \
      run "$work/$id.yaml" >"$logfile" 2>&1 &
  fi
  app_pid=$!
  our_pids+=("$app_pid")
}

# The 1-minute load average: other work on the machine skews wall times and
# latencies (less so CPU seconds), so each run records it.
load() { cut -d' ' -f1 /proc/loadavg; }

# One throughput run; appends "pipeline guarantee system wall cpu rss load"
# to $work/throughput.txt.
throughput_run() {
  local pipeline=$1 guarantee=$2 system=$3
  local id="$prefix-$pipeline-$guarantee-$system" input="$prefix-$pipeline-in"
  local output="$id-out" t0 t1 cpu rss watcher_pid
  tool Topics --bootstrap "$bootstrap" --create "$output" --partitions "$partitions"
  log "$pipeline $guarantee $system: processing $records records"
  launch_app "$id" "$system" "$pipeline" "$guarantee" "$input" "$output" "$work/$id.log"
  t0=$(now)
  tool Watcher --bootstrap "$bootstrap" --group "$id" --input "$input" --pid "$app_pid" \
    --expect-records "$records" --timeout-s "$run_timeout" >"$work/$id.watch" 2>&1 &
  watcher_pid=$!
  our_pids+=("$watcher_pid")
  if ! wait "$watcher_pid"; then
    cat "$work/$id.watch" >&2
    tail -n 30 "$work/$id.log" >&2
    die "$id did not finish (log: $work/$id.log)"
  fi
  t1=$(now)
  cpu=$(cpu_seconds "$app_pid")
  rss=$(peak_rss_mb "$app_pid")
  stop_process "$app_pid"
  local wall
  wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
  log "$pipeline $guarantee $system: wall $wall s, CPU $cpu s, peak RSS $rss MB"
  echo "$pipeline $guarantee $system $wall $cpu $rss $(load)" >>"$work/throughput.txt"
}

# One latency run; appends "pipeline guarantee system p50 p99 max tail load"
# to $work/latency.txt.
latency_run() {
  local pipeline=$1 guarantee=$2 system=$3
  local id="$prefix-lat-$pipeline-$guarantee-$system"
  local input="$id-in" output="$id-out" probe_pid probe_rate=$rate
  [ "$pipeline" = stateless ] || probe_rate=$wordcount_rate
  tool Topics --bootstrap "$bootstrap" --create "$input,$output" --partitions "$partitions"
  log "$pipeline $guarantee $system: latency at $probe_rate records/s for $latency_seconds s"
  launch_app "$id" "$system" "$pipeline" "$guarantee" "$input" "$output" "$work/$id.log"
  # Probe once the app holds its partitions (Kafka Streams: once RUNNING,
  # after its tasks are created), so that the warm-up is JIT time only.
  tool Watcher --bootstrap "$bootstrap" --group "$id" --input "$input" --pid "$app_pid" \
    --wait-for assigned --timeout-s 120 >/dev/null 2>"$work/$id.watch" ||
    { cat "$work/$id.watch" >&2; die "$id did not get its partitions (log: $work/$id.log)"; }
  if [ "$system" = ks ]; then
    local i
    for ((i = 0; i < 1200; i++)); do
      ! grep -q -- '-> RUNNING' "$work/$id.log" || break
      sleep 0.1
    done
    grep -q -- '-> RUNNING' "$work/$id.log" || die "$id did not reach RUNNING (log: $work/$id.log)"
  fi
  java -Xmx512m -cp "$classpath" dev.eddy.bench.Probe --bootstrap "$bootstrap" \
    --input "$input" --output "$output" --kind "$pipeline" --rate "$probe_rate" \
    --seconds "$latency_seconds" --warmup-s "$warmup_seconds" \
    --words-per-line "$words_per_line" >"$work/$id.probe" 2>"$work/$id.probe.err" &
  probe_pid=$!
  our_pids+=("$probe_pid")
  if ! wait "$probe_pid"; then
    cat "$work/$id.probe.err" >&2
    die "the probe of $id failed"
  fi
  kill -0 "$app_pid" 2>/dev/null || die "$id exited during the latency run (log: $work/$id.log)"
  stop_process "$app_pid"
  local line p50 p99 max tail
  line=$(tail -n 1 "$work/$id.probe")
  [ ! -s "$work/$id.probe.err" ] || cat "$work/$id.probe.err" >&2
  p50=$(sed -n 's/.*p50_ms=\([0-9]*\).*/\1/p' <<<"$line")
  p99=$(sed -n 's/.*p99_ms=\([0-9]*\).*/\1/p' <<<"$line")
  max=$(sed -n 's/.*max_ms=\([0-9]*\).*/\1/p' <<<"$line")
  tail=$(sed -n 's/.*tail_ms=\([0-9]*\).*/\1/p' <<<"$line")
  log "$pipeline $guarantee $system: $line"
  echo "$pipeline $guarantee $system $p50 $p99 $max $tail $(load)" >>"$work/latency.txt"
}

# --- the runs -----------------------------------------------------------------

: >"$work/throughput.txt"
: >"$work/latency.txt"
: >"$work/checks.txt"
for pipeline in $pipelines; do
  has_phase throughput || break
  input="$prefix-$pipeline-in"
  tool Topics --bootstrap "$bootstrap" --create "$input" --partitions "$partitions"
  log "preloading $records records into $input"
  java -Xmx512m -cp "$classpath" dev.eddy.bench.Loader --bootstrap "$bootstrap" --topic "$input" \
    --kind "$pipeline" --records "$records" --words-per-line "$words_per_line" >"$work/$pipeline.load"
  cat "$work/$pipeline.load" >&2
done

for pipeline in $pipelines; do
  has_phase throughput || break
  for guarantee in $guarantees; do
    for system in ks eddy; do
      throughput_run "$pipeline" "$guarantee" "$system"
    done
  done
done

# Correctness, on the throughput runs' outputs.
failed_checks=0
check() { # what, ok (0|1)
  local verdict=ok
  [ "$2" -eq 1 ] || {
    verdict=FAILED
    failed_checks=$((failed_checks + 1))
  }
  echo "$verdict: $1" | tee -a "$work/checks.txt" >&2
}
for pipeline in $pipelines; do
  has_phase throughput || break
  load=$(cat "$work/$pipeline.load")
  for guarantee in $guarantees; do
    declare -A got=()
    for system in ks eddy; do
      out="$prefix-$pipeline-$guarantee-$system-out"
      got[$system]=$(tool Summary --bootstrap "$bootstrap" --topic "$out" --counts "$work/$out.counts")
    done
    if [ "$pipeline" = stateless ]; then
      ok=$(sed 's/.*ok=\([0-9]*\).*/\1/' <<<"$load")
      for system in ks eddy; do
        n=$(sed 's/^records=\([0-9]*\).*/\1/' <<<"${got[$system]}")
        check "stateless $guarantee $system: $n output records, $ok ok payments in the input" \
          "$([ "$n" = "$ok" ] && echo 1 || echo 0)"
      done
    else
      words=$(sed 's/.*words=\([0-9]*\).*/\1/' <<<"$load")
      for system in ks eddy; do
        sum=$(sed 's/.*sum_last=\([0-9]*\).*/\1/' <<<"${got[$system]}")
        check "wordcount $guarantee $system: final counts sum to $sum, the input has $words words (${got[$system]})" \
          "$([ "$sum" = "$words" ] && echo 1 || echo 0)"
      done
      a="$work/$prefix-$pipeline-$guarantee-ks-out.counts"
      b="$work/$prefix-$pipeline-$guarantee-eddy-out.counts"
      check "wordcount $guarantee: Eddy's final count per word equals Kafka Streams' ($(wc -l <"$a") words)" \
        "$(cmp -s "$a" "$b" && echo 1 || echo 0)"
    fi
    unset got
  done
done

if has_phase latency; then
  for pipeline in $pipelines; do
    for guarantee in $guarantees; do
      for system in ks eddy; do
        latency_run "$pipeline" "$guarantee" "$system"
      done
    done
  done
fi

# --- the table ----------------------------------------------------------------

echo
echo "Eddy vs Kafka Streams 4.4.0: $records input records per pipeline, $partitions partitions," \
  "$threads thread(s); latency at $rate records/s (word count: $wordcount_rate lines/s) for $latency_seconds s"
awk -v records="$records" -v cores="$(nproc)" '
  function row(k) { if (!(k in known)) { known[k] = 1; order[++n] = k } }
  function seen(l) { if (lmin == "" || l + 0 < lmin + 0) lmin = l; if (l + 0 > lmax + 0) lmax = l }
  function or_dash(v) { return v == "" ? "-" : v }
  function ratio(a, b) { return (a == "" || b == "" || b + 0 == 0) ? "-" : sprintf("%.2f", a / b) }
  function per_cpu(c) { return c > 0 ? records / c : "" }
  FILENAME == ARGV[1] { k = $1 " " $2 " " $3; row(k); wall[k] = $4; cpu[k] = $5; rss[k] = $6; seen($7); next }
  { k = $1 " " $2 " " $3; row(k); p50[k] = $4; p99[k] = $5; behind[k] = ($7 > 1000); seen($8) }
  END {
    fmt = "%-9s %-13s %-6s %9s %7s %7s %12s %7s %7s %8s   %s\n"
    printf fmt, "pipeline", "guarantee", "system", "records", "wall s", "CPU s", "records/CPU-s", "p50 ms", "p99 ms", "RSS MB", "Eddy/KS: rec/CPU-s, p99, RSS"
    for (i = 1; i <= n; i++) {
      k = order[i]
      split(k, f, " ")
      ks = f[1] " " f[2] " ks"
      tput = per_cpu(cpu[k])
      ratios = ""
      if (f[3] == "eddy") {
        ratios = ratio(tput, per_cpu(cpu[ks])) "x, " ratio(p99[k], p99[ks]) "x, " ratio(rss[k], rss[ks]) "x"
      }
      mark = behind[k] ? "*" : ""
      if (mark != "") any_behind = 1
      printf fmt, f[1], f[2], (f[3] == "ks" ? "KS" : "Eddy"), (k in wall ? records : "-"), or_dash(wall[k]), or_dash(cpu[k]),
        (tput == "" ? "-" : sprintf("%.0f", tput)), or_dash(p50[k]) mark, or_dash(p99[k]) mark, or_dash(rss[k]), ratios
    }
    if (any_behind) print "* fell behind the probe: outputs came over 1 s after the last input (queueing)"
    printf "1-minute load average at the end of the runs: %s to %s on %d cores (the app, broker and probe add about 2)\n", lmin, lmax, cores
  }' "$work/throughput.txt" "$work/latency.txt"
echo
cat "$work/checks.txt"
echo "(logs: $work)"
[ "$failed_checks" -eq 0 ] || die "$failed_checks correctness check(s) failed"
