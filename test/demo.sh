#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# test/demo.sh -- the job event_stats does, shown side by side.
#
# From a fresh Debian 12 machine, as root (or as a user that has the
# packages): installs the OS packages, builds and installs the extension,
# starts a throwaway server that preloads it, and runs the same concurrent
# load twice -- DEMO_CLIENTS clients, each transaction REPEATABLE READ with
# one one-row INSERT into an events table:
#
#   (b) the usual counter: a trigger adds 1 to one row of event_stats_row
#   (c) event_stats:       INSERT INTO events(payload)
#                            SELECT 'click' FROM event_stats.increment('events_total');
#
# and prints, for each, throughput, failed transactions and whether the
# counter equals count(*) of the committed rows.  (b) is expected to fail a
# large share of its transactions ("could not serialize access due to
# concurrent update"); that is the point.
#
# Then the same clients write Kinto-shaped records into one collection
# (test/bench/kinto.sql; READ COMMITTED), last_modified under a unique index:
#
#   (d) Kinto's bump_timestamp trigger (newest last_modified of the
#       collection, or the clock, + 1 ms when the clock has not moved)
#   (e) last_modified DEFAULT event_stats.unique_timestamp()
#
# and prints records written per second and unique violations (Kinto's
# HTTP 409s; each is caught and counted, so no client stops).  (d) is
# expected to collide; (e) must not.
#
# Exits 0 when the demo ran, event_stats was exact with no failed
# transaction and unique_timestamp() gave no collision, non-zero otherwise.
#
# Environment: DEMO_DURATION (seconds per run, 10), DEMO_CLIENTS (32),
# DEMO_JOBS (pgbench threads, 2), DEMO_PORT (54750), DEMO_KEEP=1 keeps the
# scratch directory (data directory and logs).
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=bench/load.sh
. "$(dirname "$0")/bench/load.sh"

DURATION=${DEMO_DURATION:-10}
CLIENTS=${DEMO_CLIENTS:-32}
JOBS=${DEMO_JOBS:-2}
PORT=${DEMO_PORT:-54750}
ISOLATION="REPEATABLE READ"
MAX_CONNECTIONS=$((CLIENTS + 20 > 100 ? CLIENTS + 20 : 100))

for v in DURATION CLIENTS JOBS PORT; do
  [[ ${!v} =~ ^[1-9][0-9]*$ ]] || { echo "DEMO_$v must be a positive integer" >&2; exit 2; }
done

es_install_packages
es_build_install

load_start_server "$PORT" "$MAX_CONNECTIONS" "${DEMO_KEEP:-0}"
load_setup

script_b=$(load_script demo_b "$ISOLATION" \
  "INSERT INTO events_trigger(payload) VALUES ('click');")
script_c=$(load_script demo_c "$ISOLATION" \
  "INSERT INTO events(payload) SELECT 'click' FROM event_stats.increment('events_total');")

broke=0
declare -A TPS OK FAILED PCT ABORTED ROWS COUNTER EXACT

# run KEY LABEL SCRIPT COUNTER_SQL TABLE
run() {
  local key=$1 label=$2 script=$3 counter_sql=$4 table=$5 before after rows out
  load_reset events events_trigger
  before=$(load_sql "SELECT $counter_sql")
  es_log "($key) $label: $CLIENTS clients, $DURATION s, $ISOLATION"
  sed 's/^/      /' "$script" >&2
  load_run "$LOAD_DIR/demo_$key.log" "$CLIENTS" "$JOBS" "$DURATION" "$script"
  es_log "($key) $(load_describe)"
  out=$(load_sql "SELECT count(*), $counter_sql FROM $table")
  read -r rows after <<<"$out"

  TPS[$key]=$LOAD_TPS OK[$key]=$LOAD_OK FAILED[$key]=$LOAD_FAILED
  PCT[$key]=$LOAD_FAILED_PCT ABORTED[$key]=$LOAD_ABORTED
  ROWS[$key]=$rows COUNTER[$key]=$((after - before))
  if [ "${COUNTER[$key]}" = "$rows" ] && [ "$rows" = "$LOAD_OK" ]; then
    EXACT[$key]=yes
  else
    EXACT[$key]=no
    broke=1
    es_log "($key) NOT EXACT: counter moved by ${COUNTER[$key]}, $rows rows, pgbench committed $LOAD_OK"
  fi
  load_check_clean "$LOAD_DIR/demo_$key.log" "($key)" || broke=1
}

run b "one-row trigger counter" "$script_b" \
  "(SELECT total FROM event_stats_row)" events_trigger
run c "event_stats.increment" "$script_c" \
  "event_stats.value('events_total')" events

if [ "${FAILED[c]}" != 0 ]; then
  broke=1
  es_log "(c) event_stats had failed transactions"
  load_show_errors "$LOAD_DIR/demo_c.log"
fi

# (d) / (e): Kinto-shaped writes, one record per transaction
load_psql <"$ES_ROOT/test/bench/kinto.sql"
declare -A WROTE VIOLATIONS DISTINCT
kinto_run() {
  local key=$1 v=$2 label=$3 script="$LOAD_DIR/kinto_$2.sql" out
  echo "SELECT kinto_write_$v();" >"$script"
  chmod 644 "$script"
  LOAD_ROW_TABLES="" load_reset "records_$v"
  es_log "($key) $label: $CLIENTS clients into one collection, $DURATION s, READ COMMITTED"
  load_run "$LOAD_DIR/demo_$key.log" "$CLIENTS" "$JOBS" "$DURATION" "$script"
  es_log "($key) $(load_describe)"
  out=$(load_sql "SELECT count(*), count(DISTINCT last_modified),
                         event_stats.value('kinto_conflicts_$v') FROM records_$v")
  read -r "WROTE[$key]" "DISTINCT[$key]" "VIOLATIONS[$key]" <<<"$out"
  TPS[$key]=$LOAD_TPS OK[$key]=$LOAD_OK
  load_check_clean "$LOAD_DIR/demo_$key.log" "($key)" || broke=1
  if [ $((WROTE[$key] + VIOLATIONS[$key])) != "$LOAD_OK" ] || [ "${DISTINCT[$key]}" != "${WROTE[$key]}" ]; then
    broke=1
    es_log "($key) NOT CONSISTENT: ${WROTE[$key]} records (${DISTINCT[$key]} distinct last_modified)," \
      "${VIOLATIONS[$key]} violations, $LOAD_OK attempts"
  fi
}
kinto_run d t "Kinto's bump_timestamp trigger"
kinto_run e u "DEFAULT event_stats.unique_timestamp()"
if [ "${VIOLATIONS[e]}" != 0 ]; then
  broke=1
  es_log "(e) unique_timestamp() gave ${VIOLATIONS[e]} unique violations"
fi

echo
echo "Same load, $CLIENTS clients, $DURATION s each, $ISOLATION, one INSERT per transaction:"
echo
printf '%-30s %9s %10s %20s %10s %10s %6s\n' \
  "" "tps" "committed" "failed" "count(*)" "counter" "exact"
row() {
  local key=$1 label=$2 failed
  failed="${FAILED[$key]} (${PCT[$key]}%)"
  [ "${ABORTED[$key]}" != 0 ] && failed+=" +${ABORTED[$key]} aborted"
  printf '%-30s %9.0f %10s %20s %10s %10s %6s\n' "$label" "${TPS[$key]}" \
    "${OK[$key]}" "$failed" "${ROWS[$key]}" "${COUNTER[$key]}" "${EXACT[$key]}"
}
row b "(b) one-row trigger counter"
row c "(c) event_stats.increment"
echo
echo "(b) counter: the trigger-kept row event_stats_row.total"
echo "(c) counter: event_stats.value('events_total')"
if awk -v b="${TPS[b]}" 'BEGIN { exit !(b > 0) }'; then
  awk -v b="${TPS[b]}" -v c="${TPS[c]}" \
    'BEGIN { printf "event_stats committed %.1fx the transactions per second of the trigger counter.\n", c / b }'
fi
echo
echo "Kinto-shaped writes, $CLIENTS clients into one collection, $DURATION s each, last_modified unique:"
echo
printf '%-40s %12s %10s %22s\n' "" "records/s" "records" "unique violations"
kinto_row() {
  local key=$1 label=$2 pct
  pct=$(awk -v v="${VIOLATIONS[$key]}" -v n="${OK[$key]}" 'BEGIN { printf "%.1f", n ? 100 * v / n : 0 }')
  printf '%-40s %12.0f %10s %22s\n' "$label" \
    "$(awk -v t="${TPS[$key]}" -v w="${WROTE[$key]}" -v n="${OK[$key]}" 'BEGIN { print n ? t * w / n : 0 }')" \
    "${WROTE[$key]}" "${VIOLATIONS[$key]} (${pct}%)"
}
kinto_row d "(d) Kinto's bump_timestamp trigger"
kinto_row e "(e) event_stats.unique_timestamp()"
echo

if [ "$broke" != 0 ]; then
  echo "demo: something is wrong (see the messages above)"
  exit 1
fi
echo "demo: ok"
