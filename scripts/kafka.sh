#!/usr/bin/env bash
# Runs a real Apache Kafka 4.4.0 cluster (KRaft, no ZooKeeper) on 127.0.0.1,
# for Eddy's Kafka tests and for trying Eddy against Kafka by hand. Needs Java
# 17+ and Maven; the broker comes from Maven Central as the jars listed in
# scripts/kafka/pom.xml, fetched once into $EDDY_KAFKA_HOME/lib-4.4.0 (again
# only when the pom changes). Every node is a combined broker and controller.
#
#   scripts/kafka.sh start [--brokers 1|3] [--reuse]
#       Starts a fresh, empty cluster (any running cluster of that size is
#       stopped and its data deleted first; with --reuse a running, answering
#       one is kept instead) and waits until every broker is up. The last line
#       of stdout is the bootstrap servers:
#         1 broker:  127.0.0.1:9092                       (controller 9093)
#         3 brokers: 127.0.0.1:19092,127.0.0.1:19093,127.0.0.1:19094
#                                                (controllers 19192..19194)
#       The two sizes can run side by side.
#   scripts/kafka.sh stop [--brokers 1|3|all]   (3 brokers take ~7 s)
#   scripts/kafka.sh restart [--brokers 1|3]     stop and start, keeping data
#   scripts/kafka.sh stop-broker N [--brokers 3|1]   stop one node (default:
#   scripts/kafka.sh start-broker N [--brokers 3|1]  of the 3-broker cluster),
#       keeping its data; start-broker waits until it answers again
#   scripts/kafka.sh status [--brokers 1|3]   without --brokers: print all;
#                                             with: exit 0 iff all are running
#   scripts/kafka.sh bootstrap [--brokers 1|3]   print the bootstrap servers
#   scripts/kafka.sh topics ARGS...    org.apache.kafka.tools.TopicCommand
#   scripts/kafka.sh produce ARGS...   org.apache.kafka.tools.ConsoleProducer
#   scripts/kafka.sh consume ARGS...   ...tools.consumer.ConsoleConsumer
#   scripts/kafka.sh run CLASS ARGS... any main class on Kafka's classpath
#   scripts/kafka.sh fetch             only fetch the jars
#   The wrappers take Kafka's usual flags, e.g.
#     scripts/kafka.sh topics --bootstrap-server 127.0.0.1:9092 --create \
#       --topic t --partitions 3
#
# Environment:
#   EDDY_KAFKA_HOME          jars and cluster state (~/.cache/eddy-kafka);
#                            run-1/ and run-3/ hold one directory per node
#                            with its config, data, pid and server.log (WARN)
#   EDDY_KAFKA_PORT          1-broker client port (9092); controller: +1
#   EDDY_KAFKA_CLUSTER_PORT  3-broker first client port (19092); node N
#                            listens on +N-1, its controller on +100+N-1
#   EDDY_KAFKA_START_TIMEOUT seconds to wait for brokers to answer (60)
#   EDDY_KAFKA_LOG_LEVEL     level of the brokers' server.log (WARN)
#   EDDY_KAFKA_HEAP_OPTS     broker heap flags (-Xmx512m -Xms256m for 1
#                            broker, -Xmx384m -Xms256m each for 3)
set -euo pipefail

KAFKA_VERSION=4.4.0
script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
pom="$script_dir/kafka/pom.xml"
home="${EDDY_KAFKA_HOME:-$HOME/.cache/eddy-kafka}"
lib="$home/lib-$KAFKA_VERSION"
port1="${EDDY_KAFKA_PORT:-9092}"
port3="${EDDY_KAFKA_CLUSTER_PORT:-19092}"
start_timeout="${EDDY_KAFKA_START_TIMEOUT:-60}"
# Short-lived tools: a small heap and the quick-starting JIT tier.
tool_jvm_opts=(-Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1)

die() {
  echo "kafka.sh: $*" >&2
  exit 1
}

# --- the jars -----------------------------------------------------------------

ensure_lib() {
  local want
  want=$(sha256sum "$pom" | cut -d' ' -f1)
  if [ "$(cat "$lib/.pom.sha256" 2>/dev/null)" = "$want" ]; then
    return 0
  fi
  command -v java >/dev/null || die "java (17 or later) is not installed"
  command -v mvn >/dev/null || die "mvn (Maven) is not installed"
  mkdir -p "$home"
  (
    flock 8
    # Another process may have fetched them while this one waited.
    if [ "$(cat "$lib/.pom.sha256" 2>/dev/null)" = "$want" ]; then
      exit 0
    fi
    echo "kafka.sh: fetching Kafka $KAFKA_VERSION from Maven Central into $lib" >&2
    tmp="$lib.tmp.$$"
    rm -rf "$tmp"
    if ! (cd "$home" && mvn -q -B -Dstyle.color=never -f "$pom" \
      dependency:copy-dependencies -DincludeScope=runtime \
      -DoutputDirectory="$tmp") >"$home/fetch.log" 2>&1; then
      cat "$home/fetch.log" >&2
      rm -rf "$tmp"
      die "fetching Kafka's jars with Maven failed"
    fi
    echo "$want" >"$tmp/.pom.sha256"
    rm -rf "$lib"
    mv "$tmp" "$lib"
  ) 8>"$home/.fetch.lock"
}

# Log configuration for the command-line tools: warnings and errors to stderr.
tools_log4j() {
  local f="$home/tools-log4j2.properties"
  if [ ! -f "$f" ]; then
    cat >"$f.$$" <<'EOF'
status = warn
appender.stderr.type = Console
appender.stderr.name = stderr
appender.stderr.target = SYSTEM_ERR
appender.stderr.layout.type = PatternLayout
appender.stderr.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = WARN
rootLogger.appenderRef.stderr.ref = stderr
EOF
    mv "$f.$$" "$f"
  fi
  echo "$f"
}

run_tool() {
  local class=$1
  shift
  ensure_lib
  local log4j
  log4j=$(tools_log4j)
  exec java "${tool_jvm_opts[@]}" -Dlog4j2.configurationFile="$log4j" \
    -cp "$lib/*" "$class" "$@"
}

# --- cluster layout -----------------------------------------------------------

# Globals set by `layout N`: how many nodes, where they live, their ports.
n=1
run=""
declare -a client_port=() controller_port=()
layout() {
  n=$1
  run="$home/run-$n"
  client_port=()
  controller_port=()
  local id
  for ((id = 1; id <= n; id++)); do
    if [ "$n" -eq 1 ]; then
      client_port[id]=$port1
      controller_port[id]=$((port1 + 1))
    else
      client_port[id]=$((port3 + id - 1))
      controller_port[id]=$((port3 + 100 + id - 1))
    fi
  done
}

bootstrap_servers() {
  local id out=""
  for ((id = 1; id <= n; id++)); do
    out+="${out:+,}127.0.0.1:${client_port[id]}"
  done
  echo "$out"
}

node_dir() { echo "$run/node-$1"; }

# The pid of node $1 if it is running, else nothing (and status 1). A pid is
# only trusted while its command line still names this node's config.
node_pid() {
  local dir pid cmdline
  dir=$(node_dir "$1")
  pid=$(cat "$dir/pid" 2>/dev/null) || return 1
  [ -n "$pid" ] || return 1
  cmdline=$(tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline") || return 1
  [[ $cmdline == *"$dir/server.properties"* ]] || return 1
  echo "$pid"
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# A Kafka UUID (what `kafka-storage random-uuid` prints): 16 random bytes,
# URL-safe base64 without padding, not starting with '-'.
random_uuid() {
  local u
  while :; do
    u=$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=')
    [ "${u:0:1}" = "-" ] || break
  done
  echo "$u"
}

write_config() {
  local id=$1 dir rf misr quorum="" i
  dir=$(node_dir "$id")
  mkdir -p "$dir/data"
  if [ "$n" -eq 1 ]; then rf=1 misr=1; else rf=3 misr=2; fi
  for ((i = 1; i <= n; i++)); do
    quorum+="${quorum:+,}127.0.0.1:${controller_port[i]}"
  done
  cat >"$dir/server.properties" <<EOF
# Written by scripts/kafka.sh (node $id of a $n-node cluster).
process.roles=broker,controller
node.id=$id
controller.quorum.bootstrap.servers=$quorum
listeners=PLAINTEXT://127.0.0.1:${client_port[id]},CONTROLLER://127.0.0.1:${controller_port[id]}
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=$dir/data
num.partitions=1
auto.create.topics.enable=false
group.initial.rebalance.delay.ms=0
default.replication.factor=$rf
min.insync.replicas=$misr
offsets.topic.replication.factor=$rf
transaction.state.log.replication.factor=$rf
transaction.state.log.min.isr=$misr
share.coordinator.state.topic.replication.factor=$rf
share.coordinator.state.topic.min.isr=$misr
EOF
  cat >"$dir/log4j2.properties" <<EOF
status = warn
appender.file.type = File
appender.file.name = file
appender.file.fileName = $dir/server.log
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = ${EDDY_KAFKA_LOG_LEVEL:-WARN}
rootLogger.appenderRef.file.ref = file
EOF
}

# Starts node $1 in the background, in its own session (so that it outlives
# the calling shell and its process group), and records its pid.
launch() {
  local id=$1 dir heap
  dir=$(node_dir "$id")
  if [ -n "${EDDY_KAFKA_HEAP_OPTS:-}" ]; then
    heap=$EDDY_KAFKA_HEAP_OPTS
  elif [ "$n" -eq 1 ]; then
    heap="-Xmx512m -Xms256m"
  else
    heap="-Xmx384m -Xms256m"
  fi
  rm -f "$dir/pid"
  # shellcheck disable=SC2086 # $heap is a list of flags
  (
    cd "$dir"
    exec setsid bash -c 'echo $$ >pid; exec "$@"' kafka-node \
      java $heap -server -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
      -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent \
      -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true \
      -Dlog4j2.configurationFile="$dir/log4j2.properties" \
      -cp "$lib/*" kafka.Kafka "$dir/server.properties"
  ) </dev/null >"$dir/stdout.log" 2>&1 9>&- &
  local i
  for ((i = 0; i < 100; i++)); do
    [ -s "$dir/pid" ] && return 0
    sleep 0.05
  done
  die "node $id did not start (see $dir/stdout.log)"
}

show_logs() {
  local id dir f
  for id in "$@"; do
    dir=$(node_dir "$id")
    for f in stdout.log server.log; do
      if [ -s "$dir/$f" ]; then
        echo "--- node $id: tail of $dir/$f" >&2
        tail -n 30 "$dir/$f" >&2
      else
        echo "--- node $id: $dir/$f is empty" >&2
      fi
    done
  done
}

# Stops the given nodes: TERM to all at once (one by one, the last of a
# 3-node cluster hangs without a quorum), up to 20 s, then KILL. With
# STOP_SIGNAL=KILL, for data about to be deleted: KILL at once.
stop_nodes() {
  local id pid pids=() i
  for id in "$@"; do
    if pid=$(node_pid "$id"); then
      kill "-${STOP_SIGNAL:-TERM}" "$pid" 2>/dev/null || true
      pids+=("$pid")
    fi
  done
  for ((i = 0; i < 200 && ${#pids[@]} > 0; i++)); do
    local alive=()
    for pid in "${pids[@]}"; do
      ! kill -0 "$pid" 2>/dev/null || alive+=("$pid")
    done
    pids=("${alive[@]+"${alive[@]}"}")
    [ ${#pids[@]} -eq 0 ] || sleep 0.1
  done
  for pid in "${pids[@]+"${pids[@]}"}"; do
    echo "kafka.sh: pid $pid did not stop within 20 s, killing it" >&2
    kill -KILL "$pid" 2>/dev/null || true
    while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
  done
  for id in "$@"; do
    rm -f "$(node_dir "$id")/pid"
  done
}

# Waits until nodes "$@" are running and answering. A broker opens its client
# port only once the controller has unfenced it and it serves requests
# ("Awaiting socket connections" comes after "The broker has been unfenced"),
# so an open port is the readiness check; no client JVM is needed. On a
# timeout or a node's death: its logs, status 1.
wait_ready() {
  local deadline=$((SECONDS + start_timeout)) id all_open
  while :; do
    all_open=1
    for id in "$@"; do
      if ! node_pid "$id" >/dev/null; then
        echo "kafka.sh: node $id of run-$n exited while starting" >&2
        show_logs "$id"
        return 1
      fi
      port_open "${client_port[id]}" || all_open=0
    done
    [ "$all_open" -eq 0 ] || return 0
    if [ "$SECONDS" -ge "$deadline" ]; then
      echo "kafka.sh: run-$n did not come up within $start_timeout s" >&2
      show_logs "$@"
      return 1
    fi
    sleep 0.1
  done
}

all_ids() { seq 1 "$n"; }

lock_cluster() {
  mkdir -p "$home"
  exec 9>"$home/run-$n.lock"
  flock 9
}

# Formats the nodes' data directories for a new cluster. Formatting takes a
# JVM per node, so the result is kept (by the hash of the nodes' configs) and
# copied on later starts: every start gets never-used storage, with the same
# cluster id as before.
format_nodes() {
  local key template id
  key=$(for id in $(all_ids); do cat "$(node_dir "$id")/server.properties"; done |
    { echo "$KAFKA_VERSION"; cat; } | sha256sum | cut -c1-16)
  template="$home/formatted-$n-$key"
  if [ ! -d "$template" ]; then
    local cluster_id flags=() voters="" log4j pids=() failed=0
    cluster_id=$(random_uuid)
    if [ "$n" -eq 1 ]; then
      flags=(--standalone)
    else
      # A dynamic quorum of all three controllers: the same
      # id@host:port:directory-id list formats every node.
      for id in $(all_ids); do
        voters+="${voters:+,}$id@127.0.0.1:${controller_port[id]}:$(random_uuid)"
      done
      flags=(--initial-controllers "$voters")
    fi
    log4j=$(tools_log4j)
    for id in $(all_ids); do
      java "${tool_jvm_opts[@]}" -Dlog4j2.configurationFile="$log4j" \
        -cp "$lib/*" kafka.tools.StorageTool format -t "$cluster_id" \
        -c "$(node_dir "$id")/server.properties" "${flags[@]}" \
        >"$(node_dir "$id")/format.log" 2>&1 9>&- &
      pids+=($!)
    done
    for id in $(all_ids); do
      if ! wait "${pids[id - 1]}"; then
        echo "kafka.sh: formatting node $id failed:" >&2
        cat "$(node_dir "$id")/format.log" >&2
        failed=1
      fi
    done
    [ "$failed" -eq 0 ] || exit 1
    rm -rf "$home/formatted-$n-"*
    mkdir -p "$template.tmp"
    for id in $(all_ids); do
      cp -a "$(node_dir "$id")/data" "$template.tmp/node-$id"
    done
    mv "$template.tmp" "$template"
  else
    for id in $(all_ids); do
      rm -rf "$(node_dir "$id")/data"
      cp -a "$template/node-$id" "$(node_dir "$id")/data"
    done
  fi
}

# --- commands -----------------------------------------------------------------

parse_brokers() { # default, then the arguments; sets `brokers` and `rest`
  brokers=$1
  shift
  rest=()
  while [ $# -gt 0 ]; do
    case $1 in
      --brokers)
        [ $# -ge 2 ] || die "--brokers needs a value"
        brokers=$2
        shift 2
        ;;
      --brokers=*)
        brokers=${1#--brokers=}
        shift
        ;;
      *)
        rest+=("$1")
        shift
        ;;
    esac
  done
  case $brokers in
    1 | 3 | all) ;;
    *) die "--brokers must be 1 or 3, not '$brokers'" ;;
  esac
}

cmd_start() {
  local reuse=0 arg
  parse_brokers 1 "$@"
  for arg in "${rest[@]+"${rest[@]}"}"; do
    case $arg in
      --reuse) reuse=1 ;;
      *) die "start: unknown argument '$arg'" ;;
    esac
  done
  [ "$brokers" != all ] || die "start: --brokers must be 1 or 3"
  ensure_lib
  layout "$brokers"
  lock_cluster
  local id p running=1
  if [ "$reuse" -eq 1 ]; then
    for id in $(all_ids); do
      { node_pid "$id" >/dev/null && port_open "${client_port[id]}"; } || running=0
    done
    if [ "$running" -eq 1 ]; then
      bootstrap_servers
      return 0
    fi
  fi
  # A fresh cluster: stop whatever runs (no need to be gentle with data
  # about to be deleted), forget its data.
  STOP_SIGNAL=KILL stop_nodes $(all_ids)
  for id in $(all_ids); do
    for p in "${client_port[id]}" "${controller_port[id]}"; do
      ! port_open "$p" || die "port $p on 127.0.0.1 is in use by another process"
    done
  done
  rm -rf "$run"
  mkdir -p "$run"
  for id in $(all_ids); do
    write_config "$id"
  done
  format_nodes
  launch_all
  bootstrap_servers
}

# Launches every node of the cluster and waits until each answers; if one
# does not, stops them all and exits.
launch_all() {
  local id
  for id in $(all_ids); do
    launch "$id"
  done
  if ! wait_ready $(all_ids); then
    stop_nodes $(all_ids)
    exit 1
  fi
}

cmd_stop() {
  parse_brokers 1 "$@"
  [ ${#rest[@]} -eq 0 ] || die "stop: unknown argument '${rest[0]}'"
  local kinds=("$brokers") k
  [ "$brokers" != all ] || kinds=(1 3)
  local pids=() pid
  for k in "${kinds[@]}"; do
    layout "$k"
    [ -d "$run" ] || continue
    (
      lock_cluster
      stop_nodes $(all_ids)
    ) &
    pids+=($!)
  done
  for pid in "${pids[@]+"${pids[@]}"}"; do
    wait "$pid"
  done
}

cmd_restart() {
  parse_brokers 1 "$@"
  [ ${#rest[@]} -eq 0 ] || die "restart: unknown argument '${rest[0]}'"
  [ "$brokers" != all ] || die "restart: --brokers must be 1 or 3"
  ensure_lib
  layout "$brokers"
  [ -f "$(node_dir 1)/server.properties" ] || die "no $n-broker cluster to restart: use start"
  lock_cluster
  stop_nodes $(all_ids)
  launch_all
  bootstrap_servers
}

# stop-broker N / start-broker N
node_arg() {
  local what=$1
  shift
  parse_brokers 3 "$@"
  [ ${#rest[@]} -eq 1 ] || die "usage: $what N [--brokers 3|1]"
  [ "$brokers" != all ] || die "$what: --brokers must be 1 or 3"
  layout "$brokers"
  node=${rest[0]}
  [[ "$node" =~ ^[0-9]+$ ]] && [ "$node" -ge 1 ] && [ "$node" -le "$n" ] ||
    die "$what: N must be between 1 and $n"
  [ -f "$(node_dir "$node")/server.properties" ] || die "no $n-broker cluster: use start --brokers $n"
}

cmd_stop_broker() {
  node_arg stop-broker "$@"
  lock_cluster
  stop_nodes "$node"
}

cmd_start_broker() {
  node_arg start-broker "$@"
  ensure_lib
  lock_cluster
  node_pid "$node" >/dev/null || launch "$node"
  wait_ready "$node" || exit 1
}

cmd_status() {
  parse_brokers all "$@"
  [ ${#rest[@]} -eq 0 ] || die "status: unknown argument '${rest[0]}'"
  local kinds=("$brokers") k id pid all_running=1
  [ "$brokers" != all ] || kinds=(1 3)
  for k in "${kinds[@]}"; do
    layout "$k"
    for id in $(all_ids); do
      if [ -d "$(node_dir "$id")" ] && pid=$(node_pid "$id"); then
        echo "run-$n node $id: running, pid $pid, 127.0.0.1:${client_port[id]}"
      else
        all_running=0
        [ ! -d "$(node_dir "$id")" ] || echo "run-$n node $id: stopped"
      fi
    done
  done
  [ "$brokers" = all ] || [ "$all_running" -eq 1 ]
}

cmd_bootstrap() {
  parse_brokers 1 "$@"
  [ "$brokers" != all ] || die "bootstrap: --brokers must be 1 or 3"
  layout "$brokers"
  bootstrap_servers
}

usage() {
  sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d' | sed 's/^# \{0,1\}//' >&2
  exit 2
}

[ $# -ge 1 ] || usage
command=$1
shift
case $command in
  start) cmd_start "$@" ;;
  stop) cmd_stop "$@" ;;
  restart) cmd_restart "$@" ;;
  stop-broker) cmd_stop_broker "$@" ;;
  start-broker) cmd_start_broker "$@" ;;
  status) cmd_status "$@" ;;
  bootstrap) cmd_bootstrap "$@" ;;
  topics) run_tool org.apache.kafka.tools.TopicCommand "$@" ;;
  produce) run_tool org.apache.kafka.tools.ConsoleProducer "$@" ;;
  consume) run_tool org.apache.kafka.tools.consumer.ConsoleConsumer "$@" ;;
  run)
    [ $# -ge 1 ] || die "run: which main class?"
    run_tool "$@"
    ;;
  fetch) ensure_lib ;;
  -h | --help | help) usage ;;
  *)
    echo "kafka.sh: unknown command '$command'" >&2
    usage
    ;;
esac
