#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# test/bench_counters.sh -- the benchmark behind the README's figures.
#
# Not a test: it measures.  From a fresh Debian 12 machine, as root (or as a
# user that has the packages): installs the OS packages, builds and
# installs the extension, starts a throwaway server that preloads it (port
# BENCH_PORT), then:
#
# 1. Single-row INSERT transactions under pgbench, for every cell
#    (clients x isolation level), four variants of the same transaction:
#      (a)  no counter:     INSERT INTO events(payload) VALUES ('x');
#      (b)  one-row counter: the same INSERT into events_trigger, whose AFTER
#           INSERT FOR EACH ROW trigger does UPDATE event_stats_row SET total = total + 1
#      (c)  event_stats, in the same statement:
#           INSERT INTO events(payload) SELECT 'x' FROM event_stats.increment('events_total');
#      (c2) event_stats as its own statement (one more client round trip):
#           INSERT INTO events(payload) VALUES ('x'); SELECT event_stats.increment('events_total');
#    The machine is assumed shared and noisy, so variants are interleaved:
#    each cell runs BENCH_ROUNDS rounds of all four variants (the order
#    rotates from round to round), each run BENCH_DURATION seconds, each
#    starting from emptied, vacuumed tables after a checkpoint.  Reported per
#    cell: median tps of each variant, the ratios to (a), failed
#    transactions (serialization failures, counted with --max-tries=1), and
#    whether every counter ended exactly equal to the rows committed.
# 2. The cost of reading a counter with the default shard count,
#    SELECT event_stats.value(...), against SELECT 1: pgbench -c 1 latency,
#    and a server-side loop (median of BENCH_REPEAT).
# 3. BENCH_REPEAT transactions each doing BENCH_BIG (1,000,000) increments:
#    statement and COMMIT time (medians) against the same generate_series
#    without increments and a one-increment transaction, and the number of
#    shard row versions each commit wrote (n_tup_upd of
#    event_stats.counter_shards in pg_stat_user_tables, and the live rows
#    carrying its xmin): one.
# Ends with markdown tables for the README.  Exits non-zero if a run broke
# (a pgbench client aborted), a counter was not exact, or an event_stats
# variant had failed transactions.
#
# Environment (defaults): BENCH_DURATION (10) seconds per run, BENCH_ROUNDS
# (3), BENCH_CLIENTS ("32 64"), BENCH_ISOLATIONS ("rc rr": READ COMMITTED,
# REPEATABLE READ; "ser" for SERIALIZABLE), BENCH_JOBS (2) pgbench threads,
# BENCH_VALUE_SECONDS (5), BENCH_VALUE_LOOP (100000) calls,
# BENCH_BIG (1000000) increments, BENCH_REPEAT (3) repetitions of sections 2
# and 3, BENCH_PGBENCH_ARGS (none; e.g. "-M prepared") extra pgbench options
# for the INSERT runs, BENCH_PORT (54760), BENCH_KEEP=1 keeps the
# scratch directory (data directory, pgbench logs, results.tsv).
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=bench/load.sh
. "$(dirname "$0")/bench/load.sh"

DURATION=${BENCH_DURATION:-10}
ROUNDS=${BENCH_ROUNDS:-3}
CLIENTS_LIST=${BENCH_CLIENTS:-32 64}
ISOLATIONS=${BENCH_ISOLATIONS:-rc rr}
JOBS=${BENCH_JOBS:-2}
VALUE_SECONDS=${BENCH_VALUE_SECONDS:-5}
VALUE_LOOP=${BENCH_VALUE_LOOP:-100000}
BIG=${BENCH_BIG:-1000000}
REPEAT=${BENCH_REPEAT:-3}
PORT=${BENCH_PORT:-54760}
VARIANTS=(a b c c2)

for v in DURATION ROUNDS JOBS VALUE_SECONDS VALUE_LOOP BIG REPEAT PORT; do
  [[ ${!v} =~ ^[1-9][0-9]*$ ]] || { echo "BENCH_$v must be a positive integer" >&2; exit 2; }
done
max_clients=0
for c in $CLIENTS_LIST; do
  [[ $c =~ ^[1-9][0-9]*$ ]] || { echo "BENCH_CLIENTS: '$c' is not a positive integer" >&2; exit 2; }
  [ "$c" -gt "$max_clients" ] && max_clients=$c
done
[ "$max_clients" -gt 0 ] || { echo "BENCH_CLIENTS is empty" >&2; exit 2; }
for i in $ISOLATIONS; do
  case $i in rc | rr | ser) ;; *) echo "BENCH_ISOLATIONS: '$i' is not rc, rr or ser" >&2; exit 2 ;; esac
done
# room for the largest cell plus psql; at least the stock 100
MAX_CONNECTIONS=$((max_clients + 20 > 100 ? max_clients + 20 : 100))

es_install_packages
es_build_install

export LOAD_PGBENCH_ARGS=${BENCH_PGBENCH_ARGS:-}
load_start_server "$PORT" "$MAX_CONNECTIONS" "${BENCH_KEEP:-0}"
load_setup
SHARDS=$(load_sql "SELECT shards FROM event_stats.counters WHERE name = 'events_total'")
PG_VERSION=$(load_sql "SHOW server_version")

# ---------------------------------------------------------------------------
# 1. INSERT transactions, four variants, interleaved
# ---------------------------------------------------------------------------

# script ISO VARIANT -- the pgbench script of one variant, written once
script_path() { echo "$LOAD_DIR/bench_$1_$2.sql"; }
for iso in $ISOLATIONS; do
  for v in "${VARIANTS[@]}"; do
    load_variant_script "bench_${iso}_$v" "$iso" "$v" >/dev/null
  done
done

# what each variant's counter is, and which table it inserts into
counter_sql() {
  case $1 in
    a) echo "0" ;;
    b) echo "(SELECT total FROM event_stats_row)" ;;
    c | c2) echo "event_stats.value('events_total')" ;;
  esac
}
table_of() { if [ "$1" = b ]; then echo events_trigger; else echo events; fi; }

RESULTS="$LOAD_DIR/results.tsv"
printf 'clients\tisolation\tvariant\tround\ttps\tcommitted\tfailed\taborted\trc\trows\tcounter_delta\texact\n' >"$RESULTS"
broke=0

# bench_run CLIENTS ISO VARIANT ROUND
bench_run() {
  local clients=$1 iso=$2 variant=$3 round=$4 log before after rows exact
  local csql table out desc
  csql=$(counter_sql "$variant")
  table=$(table_of "$variant")
  log="$LOAD_DIR/run_${clients}_${iso}_${variant}_${round}.log"

  load_reset events events_trigger
  before=$(load_sql "SELECT $csql")
  load_run "$log" "$clients" "$JOBS" "$DURATION" "$(script_path "$iso" "$variant")"
  out=$(load_sql "SELECT count(*), $csql FROM $table")
  read -r rows after <<<"$out"

  # every committed transaction inserted one row; a counter must equal them
  exact=yes
  [ "$rows" = "$LOAD_OK" ] || exact=no
  [ "$variant" = a ] || [ "$((after - before))" = "$rows" ] || exact=no
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$clients" "$iso" \
    "$variant" "$round" "$LOAD_TPS" "$LOAD_OK" "$LOAD_FAILED" "$LOAD_ABORTED" \
    "$LOAD_RC" "$rows" "$((after - before))" "$exact" >>"$RESULTS"

  desc=$(printf '%3s clients %-3s round %s/%s %-4s %s' "$clients" "$iso" \
    "$round" "$ROUNDS" "($variant)" "$(load_describe)")
  [ "$variant" = a ] || desc+=", counter +$((after - before))"
  es_log "$desc, exact: $exact"
  if [ "$exact" != yes ]; then
    broke=1
    es_log "NOT EXACT: $rows rows, pgbench committed $LOAD_OK, counter moved by $((after - before))"
  fi
  load_check_clean "$log" "$clients clients $iso ($variant)" || broke=1
  if [ "${variant:0:1}" = c ] && [ "$LOAD_FAILED" != 0 ]; then
    broke=1
    es_log "event_stats variant ($variant) had $LOAD_FAILED failed transactions:"
    load_show_errors "$log"
  fi
}

es_log "INSERT transactions: clients {$CLIENTS_LIST} x isolation {$ISOLATIONS}," \
  "$ROUNDS rounds of (${VARIANTS[*]}), $DURATION s each"
for clients in $CLIENTS_LIST; do
  for iso in $ISOLATIONS; do
    for ((r = 0; r < ROUNDS; r++)); do
      for ((k = 0; k < ${#VARIANTS[@]}; k++)); do
        bench_run "$clients" "$iso" "${VARIANTS[(r + k) % ${#VARIANTS[@]}]}" "$((r + 1))"
      done
    done
  done
done

# Shard row versions written by all (c) and (c2) runs: one per committed
# transaction, most of them HOT.  (Backends flush their statistics as they
# exit, just after pgbench closes them.)
sleep 1
out=$(load_sql "SELECT n_tup_upd, n_tup_hot_upd,
                       pg_relation_size('event_stats.counter_shards') / 8192
                  FROM pg_stat_user_tables
                 WHERE relid = 'event_stats.counter_shards'::regclass")
read -r SHARD_UPD SHARD_HOT SHARD_PAGES <<<"$out"
SHARD_COMMITS=$(awk -F'\t' 'NR > 1 && ($3 == "c" || $3 == "c2") { n += $6 } END { print n + 0 }' "$RESULTS")
SHARD_HOT_PCT=$(awk -v h="$SHARD_HOT" -v u="$SHARD_UPD" 'BEGIN { printf "%.1f", u ? 100 * h / u : 0 }')
es_log "shard table: $SHARD_UPD row updates for $SHARD_COMMITS committed (c)/(c2) transactions," \
  "$SHARD_HOT_PCT% HOT; $SHARD_PAGES heap pages now"
[ "$SHARD_UPD" = "$SHARD_COMMITS" ] ||
  es_log "WARNING: expected one shard row update per committed (c)/(c2) transaction"

# ---------------------------------------------------------------------------
# 2. Cost of value() on a counter with the default shard count
# ---------------------------------------------------------------------------
es_log "value() cost: pgbench -c 1 -M prepared, $VALUE_SECONDS s each;" \
  "$REPEAT server-side loops of $VALUE_LOOP calls"
load_reset events events_trigger
printf 'SELECT 1;\n' >"$LOAD_DIR/value_select1.sql"
printf "SELECT event_stats.value('events_total');\n" >"$LOAD_DIR/value_value.sql"
chmod 644 "$LOAD_DIR"/value_*.sql

# latency_us NAME -- sets LAT to pgbench -c 1's average latency in microseconds
latency_us() {
  local log="$LOAD_DIR/value_$1.log" rc=0
  es_pgbench "$LOAD_DIR" "$PORT" -n -c 1 -j 1 -M prepared -T "$VALUE_SECONDS" \
    -f "$LOAD_DIR/value_$1.sql" >"$log" 2>&1 || rc=$?
  LAT=$(awk '/^latency average = / { printf "%.1f", $4 * 1000 }' "$log")
  if [ "$rc" != 0 ] || [ -z "$LAT" ]; then
    es_log "pgbench failed (see $log):"
    load_show_errors "$log"
    broke=1
    LAT=0
  fi
}
latency_us select1
LAT_SELECT1=$LAT
latency_us value
LAT_VALUE=$LAT

# median_of NUMBER... -- the median of its arguments
median_of() {
  printf '%s\n' "$@" | sort -g |
    awk '{ x[NR] = $1 } END {
           if (NR == 0) print 0
           else if (NR % 2) print x[(NR + 1) / 2]
           else print (x[NR / 2] + x[NR / 2 + 1]) / 2 }'
}

# The server-side loop: the same scan of generate_series with and without a
# value() call per row; the difference per row is the cost of one call.
loop_us=()
for ((i = 1; i <= REPEAT; i++)); do
  out=$(
    es_psql "$LOAD_DIR" "$PORT" -At -F ' ' -v n="$VALUE_LOOP" <<'SQL'
SELECT clock_timestamp() AS t0 \gset
SELECT count(event_stats.value('events_total')) FROM generate_series(1, :n) \g /dev/null
SELECT clock_timestamp() AS t1 \gset
SELECT count(g) FROM generate_series(1, :n) g \g /dev/null
SELECT clock_timestamp() AS t2 \gset
SELECT round(1000 * extract(epoch FROM :'t1'::timestamptz - :'t0'::timestamptz), 3),
       round(1000 * extract(epoch FROM :'t2'::timestamptz - :'t1'::timestamptz), 3);
SQL
  )
  read -r with_ms without_ms <<<"$out"
  loop_us+=("$(awk -v v="$with_ms" -v b="$without_ms" -v n="$VALUE_LOOP" \
    'BEGIN { printf "%.2f", (v - b) * 1000 / n }')")
done
LOOP_US=$(printf '%.1f' "$(median_of "${loop_us[@]}")")
es_log "value(): pgbench latency $LAT_VALUE us (SELECT 1: $LAT_SELECT1 us);" \
  "loop: ${loop_us[*]} us per call"

# ---------------------------------------------------------------------------
# 3. One transaction, BENCH_BIG increments (REPEAT times)
# ---------------------------------------------------------------------------
es_log "$REPEAT transactions with $BIG increments each"
load_sql "SELECT event_stats.create_counter('big')" >/dev/null
load_reset events events_trigger

shard_stats() {
  load_sql "SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables
             WHERE relid = 'event_stats.counter_shards'::regclass"
}
# timed_psql -- psql on stdin with \timing; prints "@tag ms" for the first
# statement after each "\echo @tag", and the lines that start with "xid "
timed_psql() {
  es_psql "$LOAD_DIR" "$PORT" -At -v n="$BIG" |
    awk '/^@/ { tag = $1; next }
         /^Time: / && tag != "" { print tag, $2; tag = ""; next }
         /^xid / { print }'
}
# timing_of TAG TEXT -- the milliseconds timed_psql reported for TAG
timing_of() { awk -v t="@$1" '$1 == t { print $2 }' <<<"$2"; }

t_big_stmt=() t_big_commit=() t_plain_stmt=() t_one_commit=() big_upd=() big_hot=() big_xmin=()
for ((i = 1; i <= REPEAT; i++)); do
  out=$(shard_stats)
  read -r upd0 hot0 <<<"$out"
  times=$(timed_psql <<'SQL'
\timing on
BEGIN;
SELECT pg_current_xact_id()::xid AS xid \gset
\echo @big_stmt
SELECT count(event_stats.increment('big')) FROM generate_series(1, :n);
-- makes this backend flush its table statistics as soon as COMMIT returns
SELECT pg_stat_force_next_flush() \g /dev/null
\echo @big_commit
COMMIT;
\timing off
\echo xid :xid
SQL
  )
  out=$(shard_stats)
  read -r upd1 hot1 <<<"$out"
  xid=$(awk '$1 == "xid" { print $2 }' <<<"$times")
  big_upd+=("$((upd1 - upd0))")
  big_hot+=("$((hot1 - hot0))")
  big_xmin+=("$(load_sql "SELECT count(*) FROM event_stats.counter_shards WHERE xmin = '$xid'::xid")")
  t_big_stmt+=("$(timing_of big_stmt "$times")")
  t_big_commit+=("$(timing_of big_commit "$times")")

  times=$(timed_psql <<'SQL'
\timing on
\echo @plain_stmt
SELECT count(g) FROM generate_series(1, :n) g;
BEGIN;
SELECT event_stats.increment('big');
\echo @one_commit
COMMIT;
SQL
  )
  t_plain_stmt+=("$(timing_of plain_stmt "$times")")
  t_one_commit+=("$(timing_of one_commit "$times")")
  es_log "  $i/$REPEAT: statement ${t_big_stmt[-1]} ms (without increments ${t_plain_stmt[-1]} ms)," \
    "COMMIT ${t_big_commit[-1]} ms (one increment: ${t_one_commit[-1]} ms)," \
    "n_tup_upd +${big_upd[-1]} (HOT +${big_hot[-1]}), live rows with its xmin: ${big_xmin[-1]}"
  if [ "${big_upd[-1]}" != 1 ] || [ "${big_xmin[-1]}" != 1 ]; then
    broke=1
    es_log "  expected exactly one new shard row version"
  fi
done
BIG_VALUE=$(load_sql "SELECT event_stats.value('big')")
if [ "$BIG_VALUE" != "$((REPEAT * (BIG + 1)))" ]; then
  broke=1
  es_log "value('big') is $BIG_VALUE, expected $((REPEAT * (BIG + 1)))"
fi
T_BIG_STMT=$(printf '%.2f' "$(median_of "${t_big_stmt[@]}")")
T_BIG_COMMIT=$(printf '%.2f' "$(median_of "${t_big_commit[@]}")")
T_PLAIN_STMT=$(printf '%.2f' "$(median_of "${t_plain_stmt[@]}")")
T_ONE_COMMIT=$(printf '%.2f' "$(median_of "${t_one_commit[@]}")")
PER_INC_NS=$(awk -v a="$T_BIG_STMT" -v b="$T_PLAIN_STMT" -v n="$BIG" \
  'BEGIN { printf "%.0f", (a - b) * 1e6 / n }')

# ---------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------
# median CLIENTS ISO VARIANT -- median tps over the rounds
median() {
  local tps
  mapfile -t tps < <(awk -F'\t' -v c="$1" -v i="$2" -v v="$3" \
    'NR > 1 && $1 == c && $2 == i && $3 == v { print $5 }' "$RESULTS")
  median_of "${tps[@]}"
}
# failed_pct CLIENTS ISO VARIANT -- failed / attempted, over all rounds
failed_pct() {
  awk -F'\t' -v c="$1" -v i="$2" -v v="$3" \
    'NR > 1 && $1 == c && $2 == i && $3 == v { f += $7; o += $6; a += $8 }
     END { printf "%.1f", (f + o) ? 100 * f / (f + o) : 0; if (a) printf " (%d aborted)", a }' "$RESULTS"
}
# exact_count CLIENTS ISO VARIANT -- "k/n" runs exact
exact_count() {
  awk -F'\t' -v c="$1" -v i="$2" -v v="$3" \
    'NR > 1 && $1 == c && $2 == i && $3 == v { n++; if ($12 == "yes") k++ }
     END { printf "%d/%d", k, n }' "$RESULTS"
}
# join_list PREFIX WORD... -- "PREFIXw1, PREFIXw2, ..."
join_list() {
  local prefix=$1 out="" w
  shift
  for w in "$@"; do out+="${out:+, }$prefix$w"; done
  echo "$out"
}
ratio() { awk -v x="$1" -v y="$2" 'BEGIN { if (y > 0) printf "%.2f", x / y; else print "-" }'; }

echo
echo "## Every run"
echo
awk -F'\t' '{ printf "%-8s %-9s %-7s %-5s %11s %9s %8s %7s %3s %9s %13s %5s\n",
                 $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12 }' "$RESULTS"
echo
echo "## Benchmark figures"
echo
echo "PostgreSQL $PG_VERSION, $(nproc) CPU cores shared by pgbench and the server, fsync on," \
  "max_connections = $MAX_CONNECTIONS, counter with the default $SHARDS shards." \
  "pgbench -j $JOBS${LOAD_PGBENCH_ARGS:+ $LOAD_PGBENCH_ARGS}, $DURATION s per run, $ROUNDS interleaved rounds per cell," \
  "tables emptied, vacuumed and checkpointed before every run; --max-tries=1, so a" \
  "serialization failure is a failed transaction, not retried. Produced by" \
  "\`bash test/bench_counters.sh\` ($(date -u +%Y-%m-%d))."
echo
echo "Single-row INSERT transactions, median tps:"
echo
echo "| clients | isolation | (a) no counter | (b) one-row trigger | (c) event_stats, same statement | (c2) event_stats, own statement | b/a | c/a | c2/a | failed % a / b / c / c2 | exact c / c2 |"
echo "|---:|---|---:|---:|---:|---:|---:|---:|---:|---|---|"
for clients in $CLIENTS_LIST; do
  for iso in $ISOLATIONS; do
    ta=$(median "$clients" "$iso" a)
    tb=$(median "$clients" "$iso" b)
    tc=$(median "$clients" "$iso" c)
    tc2=$(median "$clients" "$iso" c2)
    printf '| %s | %s | %.0f | %.0f | %.0f | %.0f | %s | %s | %s | %s / %s / %s / %s | %s / %s |\n' \
      "$clients" "$(load_isolation_name "$iso")" "$ta" "$tb" "$tc" "$tc2" \
      "$(ratio "$tb" "$ta")" "$(ratio "$tc" "$ta")" "$(ratio "$tc2" "$ta")" \
      "$(failed_pct "$clients" "$iso" a)" "$(failed_pct "$clients" "$iso" b)" \
      "$(failed_pct "$clients" "$iso" c)" "$(failed_pct "$clients" "$iso" c2)" \
      "$(exact_count "$clients" "$iso" c)" "$(exact_count "$clients" "$iso" c2)"
  done
done
echo
echo "(a) \`INSERT INTO events(payload) VALUES ('x')\`;" \
  "(b) the same INSERT into a table whose \`AFTER INSERT FOR EACH ROW\` trigger runs" \
  "\`UPDATE event_stats_row SET total = total + 1\`;" \
  "(c) \`INSERT INTO events(payload) SELECT 'x' FROM event_stats.increment('events_total')\`;" \
  "(c2) (a) followed by \`SELECT event_stats.increment('events_total')\`, one more round trip." \
  "Each transaction is \`BEGIN ISOLATION LEVEL ...; ...; COMMIT\`. \"exact\": runs in which" \
  "the counter moved by exactly the number of rows committed."
echo
echo "Shard table writes over all (c) and (c2) runs: $SHARD_UPD row updates for" \
  "$SHARD_COMMITS committed transactions, $SHARD_HOT_PCT% of them HOT; the others each" \
  "moved a shard row to a new heap page (event_stats.counter_shards: $SHARD_PAGES pages," \
  "vacuumed between runs)."
echo
echo "Reading a counter ($SHARDS shards, freshly vacuumed):"
echo
echo "| query | pgbench -c 1 -M prepared, latency | server-side, per call |"
echo "|---|---:|---:|"
echo "| \`SELECT 1\` | $LAT_SELECT1 µs | - |"
echo "| \`SELECT event_stats.value('events_total')\` | $LAT_VALUE µs | $LOOP_US µs |"
echo
echo "pgbench: average latency of one client, $VALUE_SECONDS s each, round trip included." \
  "Server-side: \`SELECT count(event_stats.value('events_total')) FROM generate_series(1, $VALUE_LOOP)\`" \
  "minus the same scan without the call, divided by $VALUE_LOOP; median of $REPEAT" \
  "($(join_list "" "${loop_us[@]}") µs)."
echo
echo "One transaction with $BIG increments (median of $REPEAT):"
echo
echo "| | statement | COMMIT |"
echo "|---|---:|---:|"
echo "| \`SELECT count(g) FROM generate_series(1, $BIG) g\` | $T_PLAIN_STMT ms | - |"
echo "| \`SELECT count(event_stats.increment('big')) FROM generate_series(1, $BIG)\` | $T_BIG_STMT ms | $T_BIG_COMMIT ms |"
echo "| \`SELECT event_stats.increment('big')\` (one increment) | - | $T_ONE_COMMIT ms |"
echo
echo "About $PER_INC_NS ns per increment. Shard row versions written by each $BIG-increment" \
  "commit: n_tup_upd of event_stats.counter_shards $(join_list + "${big_upd[@]}")" \
  "(of which HOT $(join_list + "${big_hot[@]}")); live shard rows carrying its xmin:" \
  "$(join_list "" "${big_xmin[@]}")." \
  "value('big') afterwards: $BIG_VALUE ($REPEAT x ($BIG + 1))."
echo

if [ "$broke" != 0 ]; then
  echo "bench: something went wrong (see the messages above); the figures are not trustworthy"
  exit 1
fi
echo "bench: ok"
