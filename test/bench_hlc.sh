#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# test/bench_hlc.sh -- what the hybrid logical clock (event_stats.hlc_now(),
# event_stats.unique_timestamp()) costs, next to clock_timestamp() and
# nextval(), and what unique_timestamp() does for Kinto-shaped writes.
#
# Not a test: it measures.  Same conventions as test/bench_tracking.sh: from
# a fresh Debian 12 machine, as root (or as a user that has the packages):
# installs the OS packages, builds and installs the extension (BENCH_BUILD=0
# skips the build and uses the extension already installed), starts a
# throwaway server that preloads it (port BENCH_PORT), then, all in the same
# run so that the ratios compare figures taken side by side:
#
# (a) One session (one psql connection for every round), BENCH_CALLS
#     (1,000,000) calls of each of
#       event_stats.hlc_now(), clock_timestamp(), nextval('bench_seq') (a
#       plain CREATE SEQUENCE, cache 1), event_stats.unique_timestamp(),
#       and "loop": the same statement calling nothing (count(i))
#     as one statement, SELECT count(f()) FROM (SELECT generate_series(1, N)
#     AS i) g, timed server-side: a plpgsql function reads clock_timestamp()
#     before and after EXECUTE of that one statement.  Why this method:
#     server-side timing leaves out the client round trip (psql's \timing
#     would add it); one statement rather than a plpgsql loop of PERFORM
#     f(), whose executor start-up per iteration (~1 µs) would dwarf calls
#     that cost tens of ns and push every ratio towards 1; the set-returning
#     function in the target list (ProjectSet) hands rows over one at a time,
#     where generate_series in FROM would first materialise 1,000,000 rows
#     into a tuplestore that spills to disk; and no EXPLAIN ANALYZE
#     instrumentation per row.  A warm-up of BENCH_CALLS / 100 calls of each,
#     then BENCH_CALL_ROUNDS rounds (the order rotates from round to round);
#     the median time per function.  Ratios of the raw statement times (the
#     loop's own cost is shown, not subtracted; the net per-call cost is
#     shown next to it).
#     Targets: hlc_now / clock_timestamp <= 1.3; nextval / hlc_now >= 2.
# (b) pgbench -c BENCH_CLIENTS (32) -j BENCH_JOBS (2) -M prepared, each
#     transaction one autocommit statement:
#       SELECT event_stats.hlc_now();   SELECT clock_timestamp();
#       SELECT nextval('bench_seq');    SELECT event_stats.unique_timestamp();
#       SELECT 1;  (the ceiling: round trip only)
#     BENCH_DURATION seconds each, BENCH_ROUNDS interleaved rounds (the order
#     rotates), median tps.  Every run must have no failed transaction, no
#     aborted client and pgbench exit status 0.
#     Target: hlc_now tps / nextval tps >= 1.
# (c) Kinto-shaped writes (../shared/background.md section 2): a records
#     table (id, parent_id, collection_id, last_modified timestamptz NOT
#     NULL, data jsonb; PRIMARY KEY (id, parent_id, collection_id); UNIQUE
#     (parent_id, collection_id, last_modified)), BENCH_CLIENTS clients all
#     writing ONE collection, READ COMMITTED (Kinto's), two variants:
#       U  records_u: last_modified DEFAULT event_stats.unique_timestamp()
#       T  records_t: Kinto's bump_timestamp BEFORE INSERT trigger: the
#          collection's latest last_modified (ORDER BY last_modified DESC
#          LIMIT 1), the clock at Kinto's millisecond precision
#          (clock_timestamp() rounded to the ms, as current Kinto's
#          from_epoch(as_epoch(clock_timestamp())) does), and 1 ms past the
#          latest when the clock has not moved past it.  (Kinto also reads
#          its timestamps table, which only matters for an empty
#          collection: left out.)
#     Each pgbench transaction is SELECT kinto_write_u() (or _t()): a plpgsql
#     function that INSERTs one record (id gen_random_uuid()) and catches a
#     unique_violation of the last_modified constraint, counting it with
#     event_stats.increment('kinto_conflicts_u' / '_t') -- a sharded counter,
#     so the counting itself does not contend -- and returning false; any
#     other error aborts the client (and the run counts as broken).  So no
#     client aborts on a conflict, and every pgbench transaction is one
#     attempt.  BENCH_DURATION seconds per run, BENCH_ROUNDS rounds of (U T)
#     alternating in order, each into its table emptied, vacuumed and
#     checkpointed.  Reported: successful inserts/s (pgbench tps x rows /
#     transactions), unique violations (count and % of attempts), median
#     over the rounds.  After every run: rows + violations must equal the
#     transactions pgbench committed, count(DISTINCT last_modified) must
#     equal count(*), and U must have had zero violations.
#
# Prints every run, then markdown tables with the medians, the ratios and
# PASS / FAIL against each target, and the machine (nproc, CPU, clock
# source, load average before the start).  A FAIL of a speed target does not
# change the exit status.  Exits 1 if a run broke (a pgbench client
# aborted, errors, failed transactions: the figures are then not
# trustworthy) or the clock broke a promise (a unique_timestamp() conflict
# or duplicate in U, or rows and violations not adding up: a bug).
#
# Environment (defaults): BENCH_DURATION (10) seconds per pgbench run,
# BENCH_ROUNDS (3) rounds of (b) and (c), BENCH_CALL_ROUNDS (2 x
# BENCH_ROUNDS + 1) rounds of (a), BENCH_CALLS (1000000), BENCH_CLIENTS (32),
# BENCH_JOBS (2) pgbench threads, BENCH_PORT (54780), BENCH_BUILD (1; 0 = do
# not build and install), BENCH_KEEP=1 keeps the scratch directory (data
# directory, pgbench logs, *.tsv).
# The default run takes about 4 minutes on a 2-core machine ((b) 150 s,
# (c) 60 s plus the resets, (a) about 5 s); BENCH_DURATION=3 BENCH_ROUNDS=1
# (a smoke test, one round, rough figures) about 25 s.
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=bench/load.sh
. "$(dirname "$0")/bench/load.sh"

# before anything of ours runs
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)

DURATION=${BENCH_DURATION:-10}
ROUNDS=${BENCH_ROUNDS:-3}
CALL_ROUNDS=${BENCH_CALL_ROUNDS:-$((2 * ROUNDS + 1))}
CALLS=${BENCH_CALLS:-1000000}
CLIENTS=${BENCH_CLIENTS:-32}
JOBS=${BENCH_JOBS:-2}
PORT=${BENCH_PORT:-54780}
BUILD=${BENCH_BUILD:-1}

# targets
TARGET_CLOCK=1.3 # (a) hlc_now time <= 1.3 x clock_timestamp time
TARGET_SEQ=2     # (a) nextval time >= 2 x hlc_now time
TARGET_TPS=1     # (b) hlc_now tps >= 1 x nextval tps

for v in DURATION ROUNDS CALL_ROUNDS CALLS CLIENTS JOBS PORT; do
  [[ ${!v} =~ ^[1-9][0-9]*$ ]] || { echo "BENCH_$v must be a positive integer" >&2; exit 2; }
done
[ "$CALLS" -ge 100 ] || { echo "BENCH_CALLS must be at least 100" >&2; exit 2; }
case $BUILD in 0 | 1) ;; *) echo "BENCH_BUILD must be 0 or 1" >&2; exit 2 ;; esac
MAX_CONNECTIONS=$((CLIENTS + 20 > 100 ? CLIENTS + 20 : 100))

es_install_packages
if [ "$BUILD" = 1 ]; then
  es_build_install
else
  es_log "BENCH_BUILD=0: using the installed event_stats ($ES_PG_BIN/../lib/event_stats.so)"
fi

export LOAD_PGBENCH_ARGS="-M prepared"
load_start_server "$PORT" "$MAX_CONNECTIONS" "${BENCH_KEEP:-0}"
broke=0 # a run did not go cleanly: the figures are not trustworthy
wrong=0 # the clock broke a promise: a bug

# No checkpoint in the middle of a timed run (each (c) run starts after one).
load_psql <<'SQL'
ALTER SYSTEM SET max_wal_size = '16GB';
SELECT pg_reload_conf() \g /dev/null
SQL

load_psql <<'SQL'
CREATE EXTENSION event_stats;
CREATE SEQUENCE bench_seq;
SQL
# (a) bench_calls(); (c) Kinto-shaped records, one table per variant
load_psql <"$ES_ROOT/test/bench/calls.sql"
load_psql <"$ES_ROOT/test/bench/kinto.sql"
PG_VERSION=$(load_sql "SHOW server_version")
CPU_MODEL=$(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo || true)
CLOCKSOURCE=$(cat /sys/devices/system/clocksource/clocksource0/current_clocksource 2>/dev/null || echo unknown)

# hlc_status_line -- the clock's state, for the log
hlc_status_line() {
  load_sql "SELECT 'hlc_status: current ' || current || ', drift ' || drift ||
                   ', backward_steps ' || backward_steps ||
                   ', refused_observations ' || refused_observations
              FROM event_stats.hlc_status()"
}
es_log "$(hlc_status_line)"

# ---------------------------------------------------------------------------
# (a) one session, CALLS calls of each function
# ---------------------------------------------------------------------------
A_NAMES=(hlc_now clock_timestamp nextval unique_timestamp loop)
a_expr() {
  case $1 in
    hlc_now) echo "event_stats.hlc_now()" ;;
    clock_timestamp) echo "clock_timestamp()" ;;
    nextval) echo "nextval('bench_seq')" ;;
    unique_timestamp) echo "event_stats.unique_timestamp()" ;;
    loop) echo "i" ;;
  esac
}
A_PLAN=$(load_sql "EXPLAIN (COSTS OFF) SELECT count(event_stats.hlc_now()) FROM (SELECT generate_series(1, $CALLS) AS i) g" |
  tr -s ' \n' ' ' | sed 's/^ *//; s/ *$//')
es_log "(a) one session: $CALL_ROUNDS rounds of $CALLS calls of (${A_NAMES[*]}); plan: $A_PLAN"

A_RESULTS="$LOAD_DIR/calls.tsv"
printf 'round\tfunction\tms\n' >"$A_RESULTS"
{
  # warm-up, not recorded
  for name in "${A_NAMES[@]}"; do
    echo "SELECT bench_calls(\$q\$$(a_expr "$name")\$q\$, $((CALLS / 100))) \\g /dev/null"
  done
  for ((r = 0; r < CALL_ROUNDS; r++)); do
    for ((k = 0; k < ${#A_NAMES[@]}; k++)); do
      name=${A_NAMES[(r + k) % ${#A_NAMES[@]}]}
      echo "SELECT $((r + 1)), '$name', round(bench_calls(\$q\$$(a_expr "$name")\$q\$, $CALLS)::numeric, 3);"
    done
  done
} >"$LOAD_DIR/calls.sql"
chmod 644 "$LOAD_DIR/calls.sql"
if ! es_psql "$LOAD_DIR" "$PORT" -At -F $'\t' -f "$LOAD_DIR/calls.sql" >>"$A_RESULTS"; then
  es_log "(a) failed"
  broke=1
fi
while IFS=$'\t' read -r r name ms; do
  es_log "$(printf '  round %s/%s %-17s %9.1f ms, %6.1f ns per call' "$r" "$CALL_ROUNDS" "$name" \
    "$ms" "$(awk -v m="$ms" -v n="$CALLS" 'BEGIN { print m * 1e6 / n }')")"
done < <(tail -n +2 "$A_RESULTS")
A_STATUS=$(hlc_status_line)
es_log "$A_STATUS"

# ---------------------------------------------------------------------------
# (b) CLIENTS-client pgbench, one statement per transaction
# ---------------------------------------------------------------------------
B_NAMES=(hlc_now clock_timestamp nextval unique_timestamp select1)
b_sql() {
  case $1 in
    hlc_now) echo "SELECT event_stats.hlc_now();" ;;
    clock_timestamp) echo "SELECT clock_timestamp();" ;;
    nextval) echo "SELECT nextval('bench_seq');" ;;
    unique_timestamp) echo "SELECT event_stats.unique_timestamp();" ;;
    select1) echo "SELECT 1;" ;;
  esac
}
for name in "${B_NAMES[@]}"; do
  b_sql "$name" >"$LOAD_DIR/select_$name.sql"
  chmod 644 "$LOAD_DIR/select_$name.sql"
done

B_RESULTS="$LOAD_DIR/select.tsv"
printf 'statement\tround\ttps\tcommitted\tfailed\taborted\trc\tlatency_ms\n' >"$B_RESULTS"

# select_run NAME ROUND
select_run() {
  local name=$1 round=$2 log
  log="$LOAD_DIR/select_${name}_${round}.log"
  load_run "$log" "$CLIENTS" "$JOBS" "$DURATION" "$LOAD_DIR/select_$name.sql"
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$round" "$LOAD_TPS" "$LOAD_OK" \
    "$LOAD_FAILED" "$LOAD_ABORTED" "$LOAD_RC" "$LOAD_LATENCY_MS" >>"$B_RESULTS"
  es_log "$(printf '  round %s/%s %-17s %s' "$round" "$ROUNDS" "$name" "$(load_describe)")"
  load_check_run "$log" "(b) $name" || broke=1
}

es_log "(b) pgbench -c $CLIENTS -j $JOBS $LOAD_PGBENCH_ARGS: $ROUNDS rounds of" \
  "(${B_NAMES[*]}), $DURATION s each"
for ((r = 0; r < ROUNDS; r++)); do
  for ((k = 0; k < ${#B_NAMES[@]}; k++)); do
    select_run "${B_NAMES[(r + k) % ${#B_NAMES[@]}]}" "$((r + 1))"
  done
done
es_log "$(hlc_status_line)"

# ---------------------------------------------------------------------------
# (c) Kinto-shaped writes: unique_timestamp() (U) vs bump_timestamp trigger (T)
# ---------------------------------------------------------------------------
for v in u t; do
  echo "SELECT kinto_write_$v();" >"$LOAD_DIR/kinto_$v.sql"
  chmod 644 "$LOAD_DIR/kinto_$v.sql"
done
C_RESULTS="$LOAD_DIR/kinto.tsv"
printf 'variant\tround\ttps\tcommitted\trows\tdistinct\tconflicts\tconflict_pct\tinserts_per_s\tlatency_ms\tconsistent\n' >"$C_RESULTS"

# kinto_run VARIANT(u|t) ROUND
kinto_run() {
  local v=$1 round=$2 log before after out rows distinct conflicts pct ips ok=yes label
  label=$(tr '[:lower:]' '[:upper:]' <<<"$v")
  log="$LOAD_DIR/kinto_${v}_${round}.log"
  LOAD_ROW_TABLES="" load_reset "records_$v"
  before=$(load_sql "SELECT event_stats.value('kinto_conflicts_$v')")
  load_run "$log" "$CLIENTS" "$JOBS" "$DURATION" "$LOAD_DIR/kinto_$v.sql"
  after=$(load_sql "SELECT event_stats.value('kinto_conflicts_$v')")
  out=$(load_sql "SELECT count(*), count(DISTINCT last_modified) FROM records_$v")
  read -r rows distinct <<<"$out"
  conflicts=$((after - before))
  pct=$(awk -v c="$conflicts" -v n="$LOAD_OK" 'BEGIN { printf "%.2f", n ? 100 * c / n : 0 }')
  ips=$(awk -v t="$LOAD_TPS" -v r="$rows" -v n="$LOAD_OK" 'BEGIN { printf "%.1f", n ? t * r / n : 0 }')
  # every attempt either wrote its row or counted one conflict
  if [ $((rows + conflicts)) != "$LOAD_OK" ]; then
    ok=no
    es_log "(c) $label: $rows rows + $conflicts conflicts != $LOAD_OK transactions committed"
  fi
  if [ "$distinct" != "$rows" ]; then
    ok=no
    es_log "(c) $label: $rows rows but $distinct distinct last_modified values"
  fi
  if [ "$v" = u ] && [ "$conflicts" != 0 ]; then
    ok=no
    es_log "(c) U: unique_timestamp() gave $conflicts unique violations"
  fi
  [ "$ok" = yes ] || wrong=1
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$label" "$round" "$LOAD_TPS" "$LOAD_OK" \
    "$rows" "$distinct" "$conflicts" "$pct" "$ips" "$LOAD_LATENCY_MS" "$ok" >>"$C_RESULTS"
  es_log "$(printf '  round %s/%s %s %.0f inserts/s, %s attempts, %s rows (%s distinct last_modified),' \
    "$round" "$ROUNDS" "$label" "$ips" "$LOAD_OK" "$rows" "$distinct")" \
    "$conflicts unique violations ($pct%), consistent: $ok$([ "$LOAD_ABORTED" = 0 ] || echo ", $LOAD_ABORTED clients ABORTED")"
  load_check_run "$log" "(c) $label" || broke=1
}

es_log "(c) Kinto-shaped writes, $CLIENTS clients into one collection: $ROUNDS rounds of (U T)," \
  "$DURATION s each"
for ((r = 0; r < ROUNDS; r++)); do
  if ((r % 2 == 0)); then order=(u t); else order=(t u); fi
  for v in "${order[@]}"; do kinto_run "$v" "$((r + 1))"; done
done
HLC_STATUS=$(hlc_status_line)
es_log "$HLC_STATUS"

# ---------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------
# column_median FILE KEYCOL KEY VALCOL -- median of VALCOL over the rows whose KEYCOL is KEY
column_median() {
  local v
  mapfile -t v < <(awk -F'\t' -v k="$2" -v x="$3" -v c="$4" 'NR > 1 && $k == x { print $c }' "$1")
  load_median "${v[@]}"
}
# column_all FILE KEYCOL KEY VALCOL FORMAT -- every round's VALCOL, comma-separated
column_all() {
  awk -F'\t' -v k="$2" -v x="$3" -v c="$4" -v f="$5" \
    'NR > 1 && $k == x { printf "%s" f, sep, $c; sep = ", " }' "$1"
}
column_sum() {
  awk -F'\t' -v k="$2" -v x="$3" -v c="$4" 'NR > 1 && $k == x { s += $c } END { print s + 0 }' "$1"
}
ns() { awk -v m="$1" -v n="$CALLS" 'BEGIN { printf "%.1f", m * 1e6 / n }'; }

echo
echo "## Every run"
echo
echo "(a) one session, $CALLS calls:"
awk -F'\t' '{ printf "%-6s %-17s %12s\n", $1, $2, $3 }' "$A_RESULTS"
echo
echo "(b) pgbench, $CLIENTS clients:"
awk -F'\t' '{ printf "%-17s %-6s %12s %10s %7s %8s %3s %11s\n", $1, $2, $3, $4, $5, $6, $7, $8 }' "$B_RESULTS"
echo
echo "(c) Kinto-shaped writes, $CLIENTS clients, one collection:"
awk -F'\t' '{ printf "%-8s %-6s %12s %10s %9s %9s %10s %13s %14s %11s %11s\n",
                 $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11 }' "$C_RESULTS"
echo

# (a)
declare -A A_MS
for name in "${A_NAMES[@]}"; do A_MS[$name]=$(column_median "$A_RESULTS" 2 "$name" 3); done
A_LOOP=${A_MS[loop]}
R_CLOCK=$(load_ratio "${A_MS[hlc_now]}" "${A_MS[clock_timestamp]}")
R_SEQ=$(load_ratio "${A_MS[nextval]}" "${A_MS[hlc_now]}")
net() { awk -v m="$1" -v l="$A_LOOP" -v n="$CALLS" 'BEGIN { printf "%.1f", (m - l) * 1e6 / n }'; }
R_CLOCK_NET=$(load_ratio "$(net "${A_MS[hlc_now]}")" "$(net "${A_MS[clock_timestamp]}")")
R_SEQ_NET=$(load_ratio "$(net "${A_MS[nextval]}")" "$(net "${A_MS[hlc_now]}")")
V_CLOCK=$(load_verdict load_at_most "$R_CLOCK" "$TARGET_CLOCK")
V_SEQ=$(load_verdict load_at_least "$R_SEQ" "$TARGET_SEQ")

# (b)
declare -A B_TPS
for name in "${B_NAMES[@]}"; do B_TPS[$name]=$(column_median "$B_RESULTS" 1 "$name" 3); done
B_FAILED=$(awk -F'\t' 'NR > 1 { f += $5 + $6 + ($7 != 0) } END { print f + 0 }' "$B_RESULTS")
R_TPS=$(load_ratio "${B_TPS[hlc_now]}" "${B_TPS[nextval]}")
V_TPS=$(if load_at_least "$R_TPS" "$TARGET_TPS" && [ "$B_FAILED" = 0 ]; then echo PASS; else echo FAIL; fi)

# (c)
declare -A C_IPS C_ATT C_CONF C_CONFPCT C_LAT
for v in U T; do
  C_IPS[$v]=$(column_median "$C_RESULTS" 1 "$v" 9)
  C_ATT[$v]=$(column_median "$C_RESULTS" 1 "$v" 3)
  C_LAT[$v]=$(column_median "$C_RESULTS" 1 "$v" 10)
  C_CONF[$v]=$(column_sum "$C_RESULTS" 1 "$v" 7)
  C_CONFPCT[$v]=$(awk -v c="${C_CONF[$v]}" -v n="$(column_sum "$C_RESULTS" 1 "$v" 4)" \
    'BEGIN { printf "%.2f", n ? 100 * c / n : 0 }')
done
U_CONSISTENT=$(awk -F'\t' 'NR > 1 && $1 == "U" { n++; if ($11 == "yes") k++ } END { printf "%d/%d", k, n }' "$C_RESULTS")
T_CONSISTENT=$(awk -F'\t' 'NR > 1 && $1 == "T" { n++; if ($11 == "yes") k++ } END { printf "%d/%d", k, n }' "$C_RESULTS")
V_U=$(awk -F'\t' 'NR > 1 && $1 == "U" { n++; if ($11 == "yes" && $7 == 0 && $5 == $6) k++ }
                  END { print (n && k == n) ? "PASS" : "FAIL" }' "$C_RESULTS")
R_KINTO=$(load_ratio "${C_IPS[U]}" "${C_IPS[T]}")

echo "## Hybrid logical clock: benchmark figures"
echo
echo "PostgreSQL $PG_VERSION; $(nproc) CPU cores ($CPU_MODEL) shared by pgbench and the server;" \
  "clock source $CLOCKSOURCE; load average before the start: $LOAD_BEFORE; fsync on," \
  "max_connections = $MAX_CONNECTIONS, max_wal_size = 16GB." \
  "Produced by \`bash test/bench_hlc.sh\` ($(date -u +%Y-%m-%d), BENCH_DURATION=$DURATION" \
  "BENCH_ROUNDS=$ROUNDS BENCH_CALL_ROUNDS=$CALL_ROUNDS BENCH_CALLS=$CALLS BENCH_CLIENTS=$CLIENTS)."
echo
echo "### (a) One session, $CALLS calls each"
echo
echo "| function | median time | per call | per call, net of the loop | all rounds (ms) |"
echo "|---|---:|---:|---:|---|"
for name in hlc_now clock_timestamp nextval unique_timestamp loop; do
  if [ "$name" = loop ]; then
    label="(the loop alone: \`count(i)\`)" netcol="-"
  else
    label="\`$(a_expr "$name")\`" netcol="$(net "${A_MS[$name]}") ns"
  fi
  printf '| %s | %.1f ms | %s ns | %s | %s |\n' "$label" "${A_MS[$name]}" "$(ns "${A_MS[$name]}")" \
    "$netcol" "$(column_all "$A_RESULTS" 2 "$name" 3 "%.1f")"
done
echo
echo "| ratio (statement times) | value | net of the loop | target | |"
echo "|---|---:|---:|---|---|"
echo "| hlc_now / clock_timestamp | $R_CLOCK | $R_CLOCK_NET | ≤ $TARGET_CLOCK | $V_CLOCK |"
echo "| nextval / hlc_now | $R_SEQ | $R_SEQ_NET | ≥ $TARGET_SEQ | $V_SEQ |"
echo
echo "\`SELECT count(f()) FROM (SELECT generate_series(1, $CALLS) AS i) g\` in one session," \
  "timed server-side (clock_timestamp() before and after, in a plpgsql function)," \
  "median of $CALL_ROUNDS interleaved rounds after a warm-up; plan: $A_PLAN." \
  "bench_seq is a plain sequence (cache 1). Net: minus the loop's median, per call." \
  "Each unique_timestamp() call takes a whole microsecond, so a session calling it faster" \
  "than once a microsecond runs the clock ahead of the wall clock; after (a): $A_STATUS."
echo
echo "### (b) pgbench, $CLIENTS clients, one statement per transaction"
echo
echo "| statement | median tps | all rounds | failed / aborted |"
echo "|---|---:|---|---|"
for name in "${B_NAMES[@]}"; do
  # shellcheck disable=SC2016  # backquotes for markdown
  printf '| `%s` | %.0f | %s | %s / %s |\n' "$(b_sql "$name")" "${B_TPS[$name]}" \
    "$(column_all "$B_RESULTS" 1 "$name" 3 "%.0f")" "$(column_sum "$B_RESULTS" 1 "$name" 5)" \
    "$(column_sum "$B_RESULTS" 1 "$name" 6)"
done
echo
echo "hlc_now / nextval tps: **$R_TPS** (target ≥ $TARGET_TPS, no failed transaction: $V_TPS)." \
  "pgbench -c $CLIENTS -j $JOBS $LOAD_PGBENCH_ARGS -T $DURATION, $ROUNDS interleaved rounds."
echo
echo "### (c) Kinto-shaped writes, $CLIENTS clients, one collection"
echo
echo "| variant | successful inserts/s (median) | attempts/s (median) | latency (median) | unique violations | % of attempts | consistent runs | all rounds, inserts/s |"
echo "|---|---:|---:|---:|---:|---:|---|---|"
# shellcheck disable=SC2016  # backquotes for markdown
printf '| U: `DEFAULT event_stats.unique_timestamp()` | %.0f | %.0f | %.2f ms | %s | %s%% | %s | %s |\n' \
  "${C_IPS[U]}" "${C_ATT[U]}" "${C_LAT[U]}" "${C_CONF[U]}" "${C_CONFPCT[U]}" "$U_CONSISTENT" \
  "$(column_all "$C_RESULTS" 1 U 9 "%.0f")"
printf '| T: Kinto bump_timestamp trigger | %.0f | %.0f | %.2f ms | %s | %s%% | %s | %s |\n' \
  "${C_IPS[T]}" "${C_ATT[T]}" "${C_LAT[T]}" "${C_CONF[T]}" "${C_CONFPCT[T]}" "$T_CONSISTENT" \
  "$(column_all "$C_RESULTS" 1 T 9 "%.0f")"
echo
echo "U / T successful inserts/s: **$R_KINTO**. Each attempt: \`SELECT kinto_write_u()\` (or _t), a" \
  "plpgsql function inserting one record and catching a unique violation of" \
  "(parent_id, collection_id, last_modified), counted with event_stats.increment(); READ" \
  "COMMITTED, pgbench -j $JOBS $LOAD_PGBENCH_ARGS -T $DURATION, $ROUNDS rounds, each table emptied," \
  "vacuumed and checkpointed first. Consistent: rows + violations = attempts and" \
  "count(DISTINCT last_modified) = count(*) (and, for U, no violation)."
echo "At the end: $HLC_STATUS."
echo
echo "### Targets"
echo
echo "| target | measured | |"
echo "|---|---|---|"
echo "| (a) hlc_now ≤ $TARGET_CLOCK× clock_timestamp, one session | $R_CLOCK× | $V_CLOCK |"
echo "| (a) nextval ≥ $TARGET_SEQ× hlc_now (hlc_now at least 2× faster), one session | $R_SEQ× | $V_SEQ |"
echo "| (b) hlc_now tps ≥ $TARGET_TPS× nextval tps at $CLIENTS clients, no failed transaction | $R_TPS×, $B_FAILED failed/aborted | $V_TPS |"
echo "| (c) unique_timestamp(): zero unique violations, all last_modified distinct | ${C_CONF[U]} violations, $U_CONSISTENT runs consistent | $V_U |"
echo

status=0
if [ "$wrong" != 0 ]; then
  echo "bench: the clock broke a promise (unique violations or duplicates with unique_timestamp()," \
    "or rows and violations not adding up; see above): a bug"
  status=1
fi
if [ "$broke" != 0 ]; then
  echo "bench: something went wrong (see the messages above); the figures are not trustworthy"
  status=1
fi
[ "$status" = 0 ] || exit "$status"
echo "bench: ok"
