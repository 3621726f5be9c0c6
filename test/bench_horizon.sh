#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# test/bench_horizon.sh -- what the closed timestamp (event_stats.hlc_horizon())
# costs, and whether a poller calling it slows down event_stats.hlc_now().
#
# Not a test: it measures.  Same conventions as test/bench_hlc.sh: from a
# fresh Debian 12 machine, as root (or as a user that has the packages):
# installs the OS packages, builds and installs the extension (BENCH_BUILD=0
# skips the build and uses the extension already installed), starts a
# throwaway server that preloads it (port BENCH_PORT, max_connections =
# max(BENCH_MAX_CONN, BENCH_CLIENTS) + 20, synchronous_commit = off,
# max_wal_size = 16GB), then, all in the same run:
#
# (a) The cost of one hlc_horizon() call.  It reads one hold slot per
#     possible backend -- MaxBackends = max_connections +
#     autovacuum_max_workers + 1 + max_worker_processes + max_wal_senders,
#     whether connected or not, so the slot count is set by max_connections
#     (reported) -- plus, only if there are any, the holds of prepared
#     transactions (under a lock).  Timed as in test/bench_hlc.sh (a): one
#     session, SELECT count(event_stats.hlc_horizon()) FROM (SELECT
#     generate_series(1, BENCH_CALLS) AS i) g, clock_timestamp() read
#     server-side before and after, next to the same statement calling
#     nothing (count(i), "loop"); a warm-up, then BENCH_CALL_ROUNDS rounds
#     (the two alternate), median; per call = median / BENCH_CALLS, net =
#     minus the loop.  Measured with, besides the measuring session:
#       none         no other session;
#       N idle       N sessions connected and idle (a background pgbench, -c N,
#                    script: \sleep 1 s), N = 10, 100, 500 (those up to
#                    BENCH_MAX_CONN);
#       N holding    N sessions idle in transaction, each holding a value
#                    (BEGIN; SELECT event_stats.hlc_now(); \sleep 600 s;
#                    COMMIT -- ended long before; pgbench 15 did not hold a
#                    \sleep 3600 s, its clients went on), so every slot is
#                    set and the horizon is held back (checked: the horizon
#                    is below the clock and hlc_status() names a holder);
#       N idle + P prepared  the largest N idle, plus BENCH_PREPARED (10)
#                    prepared transactions that each took hlc_now() (checked:
#                    hlc_status() names a prepared holder), rolled back after.
#     The background sessions are ended with pg_terminate_backend() after
#     each case.  Target: at most TARGET_US (100 µs, i.e. well under a
#     millisecond) per call in every case.
# (b) hlc_now() throughput with and without a poller: pgbench -c
#     BENCH_CLIENTS (32) -j BENCH_JOBS (2) -M prepared, script SELECT
#     event_stats.hlc_now(); for BENCH_DURATION seconds, in three variants:
#       none     nothing else running;
#       horizon  one more session calling hlc_horizon() back to back, as fast
#                as it can, started just before pgbench and stopped just
#                after.  BENCH_POLLER=server (the default, the harshest): a
#                plpgsql loop of SELECT count(hlc_horizon()) over 10,000
#                rows, server-side, no round trip (about a million calls a
#                second).  BENCH_POLLER=client: what a real poller does, one
#                statement per round trip, pgbench -c 1 -M prepared
#                SELECT event_stats.hlc_horizon(); (BENCH_POLL_RATE=R
#                throttles it to R polls a second, pgbench -R);
#       busy     the same poller doing nothing of ours (server: count(i);
#                client: SELECT 1;), a control: it takes the same CPU share
#                -- one core of 2 on the reference machine -- without
#                touching the clock's shared memory.
#     BENCH_ROUNDS interleaved rounds (the order rotates), median tps.
#     Target: horizon tps / none tps >= 0.95.  horizon / busy is shown too
#     (no target): on a machine with few cores most of the gap to none is
#     the poller's CPU share, which busy measures alone; horizon / busy is
#     what reading the slots costs the writers of the slots.  Every run must have no failed
#     transaction, no aborted client and pgbench exit status 0.
# (c) The same for a write load (BENCH_WRITES=1, the default; 0 skips it):
#     each pgbench transaction INSERTs one row into bench_writes whose
#     last_modified DEFAULT is event_stats.hlc_now() (so every writer holds
#     its slot until its commit), synchronous_commit off (otherwise the
#     fsyncs hide everything); variants none and horizon, BENCH_ROUNDS rounds
#     alternating in order, the table emptied, vacuumed and checkpointed
#     before each run (same poller as (b)).  Target: horizon / none >= 0.95.
#
# Prints every run, then markdown tables with the medians, the ratios and
# PASS / FAIL against each target, and the machine.  A FAIL of a speed target
# does not change the exit status.  Exits 1 if a run broke (a pgbench client
# aborted, errors, failed transactions, a poller that did not run through,
# background sessions that did not all connect or hold: the figures are then
# not trustworthy).
#
# Environment (defaults): BENCH_DURATION (10) seconds per pgbench run,
# BENCH_ROUNDS (3) rounds of (b) and (c), BENCH_CALL_ROUNDS (2 x BENCH_ROUNDS
# + 1) rounds of (a) per case, BENCH_CALLS (100000) calls per statement in
# (a), BENCH_MAX_CONN (500) largest number of background sessions in (a)
# (e.g. 100 skips the 500-connection cases; it also sizes max_connections),
# BENCH_PREPARED (10, at most 20; 0 skips that case), BENCH_CLIENTS (32),
# BENCH_JOBS (2) pgbench threads, BENCH_WRITES (1), BENCH_POLLER (server),
# BENCH_POLL_RATE (0: unthrottled; client poller only), BENCH_PORT (54790),
# BENCH_BUILD (1; 0 = do not build and install), BENCH_KEEP=1 keeps the
# scratch directory (data directory, pgbench logs, *.tsv).
# The default run takes about 3.5 minutes on a 2-core machine ((a) about
# 20 s, mostly connecting 500 sessions; (b) about 110 s; (c) about 85 s);
# BENCH_DURATION=3 BENCH_ROUNDS=1 (a smoke test, rough figures) about 30 s.
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
CALLS=${BENCH_CALLS:-100000}
MAX_CONN=${BENCH_MAX_CONN:-500}
PREPARED=${BENCH_PREPARED:-10}
CLIENTS=${BENCH_CLIENTS:-32}
JOBS=${BENCH_JOBS:-2}
WRITES=${BENCH_WRITES:-1}
POLLER=${BENCH_POLLER:-server}
POLL_RATE=${BENCH_POLL_RATE:-0}
PORT=${BENCH_PORT:-54790}
BUILD=${BENCH_BUILD:-1}

# targets
TARGET_US=100    # (a) per hlc_horizon() call, in every case
TARGET_RATIO=0.95 # (b), (c) tps with the poller / tps without

for v in DURATION ROUNDS CALL_ROUNDS CALLS MAX_CONN CLIENTS JOBS PORT; do
  [[ ${!v} =~ ^[1-9][0-9]*$ ]] || { echo "BENCH_$v must be a positive integer" >&2; exit 2; }
done
[ "$CALLS" -ge 100 ] || { echo "BENCH_CALLS must be at least 100" >&2; exit 2; }
[ "$MAX_CONN" -ge 10 ] || { echo "BENCH_MAX_CONN must be at least 10" >&2; exit 2; }
if ! [[ $PREPARED =~ ^[0-9]+$ ]] || [ "$PREPARED" -gt 20 ]; then
  echo "BENCH_PREPARED must be 0..20 (max_prepared_transactions)" >&2
  exit 2
fi
case $BUILD in 0 | 1) ;; *) echo "BENCH_BUILD must be 0 or 1" >&2; exit 2 ;; esac
case $WRITES in 0 | 1) ;; *) echo "BENCH_WRITES must be 0 or 1" >&2; exit 2 ;; esac
case $POLLER in server | client) ;; *) echo "BENCH_POLLER must be server or client" >&2; exit 2 ;; esac
[[ $POLL_RATE =~ ^[0-9]+$ ]] || { echo "BENCH_POLL_RATE must be a number (0: unthrottled)" >&2; exit 2; }
[ "$POLL_RATE" = 0 ] || [ "$POLLER" = client ] || { echo "BENCH_POLL_RATE needs BENCH_POLLER=client" >&2; exit 2; }
MAX_CONNECTIONS=$(((MAX_CONN > CLIENTS ? MAX_CONN : CLIENTS) + 20))
CONN_COUNTS=()
for n in 10 100 500; do [ "$n" -le "$MAX_CONN" ] && CONN_COUNTS+=("$n"); done
LARGEST=${CONN_COUNTS[-1]}

es_install_packages
if [ "$BUILD" = 1 ]; then
  es_build_install
else
  es_log "BENCH_BUILD=0: using the installed event_stats ($ES_PG_BIN/../lib/event_stats.so)"
fi

export LOAD_PGBENCH_ARGS="-M prepared"
load_start_server "$PORT" "$MAX_CONNECTIONS" "${BENCH_KEEP:-0}"
BG_PIDS=() # background pgbench / poller processes of ours
bench_cleanup() {
  local p
  [ -z "${SESSIONS_PGBENCH:-}" ] || kill -TERM "$SESSIONS_PGBENCH" 2>/dev/null || true
  load_cleanup # stops the server: the pollers then end
  for p in "${BG_PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
}
trap bench_cleanup EXIT
broke=0 # a run did not go cleanly: the figures are not trustworthy

load_psql <<'SQL'
ALTER SYSTEM SET max_wal_size = '16GB';
ALTER SYSTEM SET synchronous_commit = off;
SELECT pg_reload_conf() \g /dev/null
SQL
load_psql <<'SQL'
CREATE EXTENSION event_stats;
SQL
load_psql <"$ES_ROOT/test/bench/calls.sql"
load_psql <"$ES_ROOT/test/bench/horizon.sql"

PG_VERSION=$(load_sql "SHOW server_version")
CPU_MODEL=$(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo || true)
CLOCKSOURCE=$(cat /sys/devices/system/clocksource/clocksource0/current_clocksource 2>/dev/null || echo unknown)
# MaxBackends, as PostgreSQL 15 computes it: the number of hold slots
SLOTS=$(load_sql "SELECT current_setting('max_connections')::int
                       + current_setting('autovacuum_max_workers')::int + 1
                       + current_setting('max_worker_processes')::int
                       + current_setting('max_wal_senders')::int")
SLOTS_FORMULA=$(load_sql "SELECT format('%s + %s + 1 + %s + %s',
                       current_setting('max_connections'), current_setting('autovacuum_max_workers'),
                       current_setting('max_worker_processes'), current_setting('max_wal_senders'))")

# hlc_status_line -- the clock's and the horizon's state, for the log
hlc_status_line() {
  load_sql "SELECT 'hlc_status: current ' || current || ', horizon ' || horizon ||
                   ', horizon_lag ' || horizon_lag ||
                   ', holder pid ' || coalesce(horizon_holder_pid::text, '-') ||
                   ', holder xid ' || coalesce(horizon_holder_xid::text, '-')
              FROM event_stats.hlc_status()"
}
es_log "max_connections = $MAX_CONNECTIONS: $SLOTS hold slots (MaxBackends = $SLOTS_FORMULA)"
es_log "$(hlc_status_line)"

# ---------------------------------------------------------------------------
# (a) the cost of one hlc_horizon() call, with N sessions idle or holding
# ---------------------------------------------------------------------------
printf '%s\n' '\sleep 1 s' >"$LOAD_DIR/sessions_idle.sql"
printf '%s\n' 'BEGIN;' 'SELECT event_stats.hlc_now();' '\sleep 600 s' 'COMMIT;' \
  >"$LOAD_DIR/sessions_holding.sql"
chmod 644 "$LOAD_DIR/sessions_idle.sql" "$LOAD_DIR/sessions_holding.sql"

SESSIONS_APP=bench_sessions
SESSIONS_PID=""     # the background job
SESSIONS_PGBENCH="" # its pgbench process
# sessions_start N idle|holding -- N background sessions (a pgbench that
# loops on its script), returns once all of them are connected (idle) or
# idle in transaction after hlc_now() (holding); false if not within 120 s.
sessions_start() {
  local n=$1 kind=$2 jobs=$JOBS cond have=0 i
  [ "$jobs" -gt "$n" ] && jobs=$n
  # pgbench's pid (not runuser's), to end it: a client in \sleep sends
  # nothing, so it would not notice its backend being terminated
  rm -f "$LOAD_DIR/sessions.pid"
  # shellcheck disable=SC2016  # $$ is the inner shell's
  es_as_user sh -c 'echo $$ >"$1/sessions.pid"; shift; exec "$@"' sh "$LOAD_DIR" \
    env PGAPPNAME="$SESSIONS_APP" pgbench -h "$LOAD_DIR" -p "$LOAD_PORT" -U postgres \
    -n -c "$n" -j "$jobs" -T 3600 -f "$LOAD_DIR/sessions_$kind.sql" \
    >"$LOAD_DIR/sessions_${n}_$kind.log" 2>&1 &
  SESSIONS_PID=$!
  BG_PIDS+=("$SESSIONS_PID")
  for ((i = 0; i < 100; i++)); do
    [ -s "$LOAD_DIR/sessions.pid" ] && break
    sleep 0.1
  done
  SESSIONS_PGBENCH=$(cat "$LOAD_DIR/sessions.pid" 2>/dev/null || true)
  if [ "$kind" = idle ]; then
    cond="state = 'idle'"
  else
    cond="state = 'idle in transaction' AND query LIKE '%hlc_now%'"
  fi
  for ((i = 0; i < 1200; i++)); do
    have=$(load_sql "SELECT count(*) FROM pg_stat_activity
                      WHERE application_name = '$SESSIONS_APP' AND $cond")
    [ "$have" = "$n" ] && return 0
    kill -0 "$SESSIONS_PID" 2>/dev/null || break
    sleep 0.1
  done
  es_log "(a) $n $kind sessions: only $have of them got there (see $LOAD_DIR/sessions_${n}_$kind.log)"
  return 1
}

# sessions_stop -- ends the background sessions and waits for them to go
sessions_stop() {
  local i
  [ -n "$SESSIONS_PID" ] || return 0
  [ -z "$SESSIONS_PGBENCH" ] || kill -TERM "$SESSIONS_PGBENCH" 2>/dev/null || true
  wait "$SESSIONS_PID" 2>/dev/null || true
  SESSIONS_PGBENCH=""
  SESSIONS_PID=""
  for ((i = 0; i < 600; i++)); do
    [ "$(load_sql "SELECT count(*) FROM pg_stat_activity WHERE application_name = '$SESSIONS_APP'")" = 0 ] &&
      return 0
    sleep 0.1
  done
  es_log "(a) background sessions still there after 60 s"
  broke=1
}

# prepared_start P -- P prepared transactions, each holding an hlc_now() value
prepared_start() {
  local i
  for ((i = 1; i <= $1; i++)); do
    echo "BEGIN; SELECT event_stats.hlc_now() \\g /dev/null"
    echo "PREPARE TRANSACTION 'bench_horizon_$i';"
  done | load_psql
}
prepared_stop() {
  load_sql "SELECT gid FROM pg_prepared_xacts WHERE gid LIKE 'bench_horizon_%'" |
    while read -r gid; do echo "ROLLBACK PREPARED '$gid';"; done | load_psql
}

A_RESULTS="$LOAD_DIR/calls.tsv"
printf 'case\tround\texpr\tms\n' >"$A_RESULTS"
A_CASES=()         # in order
declare -A A_CHECK # case -> what hlc_status() showed during it

# measure_case LABEL -- warm-up, then CALL_ROUNDS rounds of (horizon, loop)
measure_case() {
  local label=$1 r k names status
  A_CASES+=("$label")
  status=$(load_sql "SELECT format('horizon_lag %s, holder pid %s, holder xid %s',
                                   horizon_lag, coalesce(horizon_holder_pid::text, '-'),
                                   coalesce(horizon_holder_xid::text, '-'))
                       FROM event_stats.hlc_status()")
  A_CHECK[$label]=$status
  {
    echo "SELECT bench_calls('event_stats.hlc_horizon()', $((CALLS / 10))) \\g /dev/null"
    echo "SELECT bench_calls('i', $((CALLS / 10))) \\g /dev/null"
    for ((r = 0; r < CALL_ROUNDS; r++)); do
      if ((r % 2 == 0)); then names=(horizon loop); else names=(loop horizon); fi
      for k in "${names[@]}"; do
        local expr=i
        [ "$k" = horizon ] && expr="event_stats.hlc_horizon()"
        echo "SELECT '$label', $((r + 1)), '$k', round(bench_calls('$expr', $CALLS)::numeric, 3);"
      done
    done
  } >"$LOAD_DIR/calls.sql"
  chmod 644 "$LOAD_DIR/calls.sql"
  if ! es_psql "$LOAD_DIR" "$LOAD_PORT" -At -F $'\t' -f "$LOAD_DIR/calls.sql" >>"$A_RESULTS"; then
    es_log "(a) $label: failed"
    broke=1
  fi
  es_log "$(printf '  %-24s horizon %s ms, loop %s ms (per %s calls); %s' "$label" \
    "$(awk -F'\t' -v c="$label" '$1 == c && $3 == "horizon" { printf "%s%s", s, $4; s = " " }' "$A_RESULTS")" \
    "$(awk -F'\t' -v c="$label" '$1 == c && $3 == "loop" { printf "%s%s", s, $4; s = " " }' "$A_RESULTS")" \
    "$CALLS" "$status")"
}

# expect_held LABEL -- the horizon is held back by a backend (pid) or by a
# prepared transaction (xid)
expect_held() {
  local what=$2 ok
  if [ "$what" = pid ]; then
    ok=$(load_sql "SELECT horizon OPERATOR(event_stats.<) current AND horizon_holder_pid IS NOT NULL FROM event_stats.hlc_status()")
  else
    ok=$(load_sql "SELECT horizon OPERATOR(event_stats.<) current AND horizon_holder_xid IS NOT NULL FROM event_stats.hlc_status()")
  fi
  if [ "$ok" != t ]; then
    es_log "(a) $1: the horizon is not held back by a $what: $(hlc_status_line)"
    broke=1
  fi
}

es_log "(a) one session, $CALL_ROUNDS rounds of $CALLS hlc_horizon() calls per case," \
  "background sessions: none, ${CONN_COUNTS[*]} (idle, then holding)$([ "$PREPARED" = 0 ] ||
    echo ", $LARGEST idle + $PREPARED prepared")"
measure_case "none"
for n in "${CONN_COUNTS[@]}"; do
  for kind in idle holding; do
    if sessions_start "$n" "$kind"; then
      [ "$kind" = holding ] && expect_held "$n holding" pid
      measure_case "$n $kind"
    else
      broke=1
    fi
    sessions_stop
  done
done
if [ "$PREPARED" != 0 ]; then
  label="$LARGEST idle + $PREPARED prepared"
  if sessions_start "$LARGEST" idle; then
    prepared_start "$PREPARED"
    expect_held "$label" xid
    measure_case "$label"
    prepared_stop
  else
    broke=1
  fi
  sessions_stop
fi
es_log "$(hlc_status_line)"

# ---------------------------------------------------------------------------
# (b), (c): pgbench with and without a concurrent poller
# ---------------------------------------------------------------------------
echo "SELECT event_stats.hlc_now();" >"$LOAD_DIR/hlc_now.sql"
echo "INSERT INTO bench_writes (payload) VALUES ('x');" >"$LOAD_DIR/write.sql"
chmod 644 "$LOAD_DIR/hlc_now.sql" "$LOAD_DIR/write.sql"
POLL_SECONDS=$((DURATION + 2))
echo "SELECT event_stats.hlc_horizon();" >"$LOAD_DIR/poll_horizon.sql"
echo "SELECT 1;" >"$LOAD_DIR/poll_busy.sql"
chmod 644 "$LOAD_DIR/poll_horizon.sql" "$LOAD_DIR/poll_busy.sql"
POLL_RATE_ARGS=""
[ "$POLL_RATE" = 0 ] || POLL_RATE_ARGS="-R $POLL_RATE"

P_RESULTS="$LOAD_DIR/poll.tsv"
printf 'load\tvariant\tround\ttps\tcommitted\tfailed\taborted\trc\tlatency_ms\tpoller_calls_per_s\n' >"$P_RESULTS"

# poll_run LOAD(hlc_now|write) VARIANT(none|horizon|busy) ROUND
poll_run() {
  local load=$1 variant=$2 round=$3 log poll_pid="" poll_out rate=- calls secs expr
  log="$LOAD_DIR/${load}_${variant}_${round}.log"
  poll_out="$LOAD_DIR/poller_${load}_${variant}_${round}.out"
  [ "$load" = write ] && LOAD_ROW_TABLES="" load_reset bench_writes
  if [ "$variant" != none ] && [ "$POLLER" = server ]; then
    expr=i
    [ "$variant" = horizon ] && expr="event_stats.hlc_horizon()"
    es_psql "$LOAD_DIR" "$LOAD_PORT" -At -c "SELECT bench_poll('$expr', $POLL_SECONDS)" \
      >"$poll_out" 2>&1 &
    poll_pid=$!
  elif [ "$variant" != none ]; then
    # shellcheck disable=SC2086  # POLL_RATE_ARGS: empty or -R rate
    es_pgbench "$LOAD_DIR" "$LOAD_PORT" -n -c 1 -j 1 -M prepared -T "$POLL_SECONDS" $POLL_RATE_ARGS \
      -f "$LOAD_DIR/poll_$variant.sql" >"$poll_out" 2>&1 &
    poll_pid=$!
  fi
  if [ -n "$poll_pid" ]; then
    BG_PIDS+=("$poll_pid")
    sleep 0.5 # the poller is running before pgbench starts
  fi
  load_run "$log" "$CLIENTS" "$JOBS" "$DURATION" "$LOAD_DIR/$load.sql"
  if [ -n "$poll_pid" ] && [ "$POLLER" = server ]; then
    if wait "$poll_pid" && IFS=$'\t' read -r calls secs <"$poll_out" && [ "${calls:-0}" -gt 0 ]; then
      rate=$(awk -v c="$calls" -v s="$secs" 'BEGIN { printf "%.0f", c / s }')
      # it must have outlasted pgbench, or the run was partly without it
      if awk -v s="$secs" -v d="$DURATION" 'BEGIN { exit !(s < d + 0.5) }'; then
        es_log "$load $variant: the poller ran only $secs s"
        broke=1
      fi
    else
      es_log "$load $variant: the poller failed: $(cat "$poll_out")"
      broke=1
    fi
  elif [ -n "$poll_pid" ]; then
    if wait "$poll_pid" && ! grep -q -i -E 'error|fatal|abort' "$poll_out"; then
      rate=$(awk '/^tps = / { v = $3 } END { printf "%.0f", v + 0 }' "$poll_out")
    else
      es_log "$load $variant: the poller failed (see $poll_out)"
      broke=1
    fi
  fi
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$load" "$variant" "$round" "$LOAD_TPS" "$LOAD_OK" \
    "$LOAD_FAILED" "$LOAD_ABORTED" "$LOAD_RC" "$LOAD_LATENCY_MS" "$rate" >>"$P_RESULTS"
  es_log "$(printf '  round %s/%s %-7s %-8s %s, poller %s calls/s' "$round" "$ROUNDS" "$load" "$variant" \
    "$(load_describe)" "$rate")"
  load_check_run "$log" "$load $variant" || broke=1
}

B_NAMES=(none horizon busy)
es_log "(b) pgbench -c $CLIENTS -j $JOBS $LOAD_PGBENCH_ARGS SELECT event_stats.hlc_now():" \
  "$ROUNDS rounds of (${B_NAMES[*]}), $DURATION s each"
for ((r = 0; r < ROUNDS; r++)); do
  for ((k = 0; k < ${#B_NAMES[@]}; k++)); do
    poll_run hlc_now "${B_NAMES[(r + k) % ${#B_NAMES[@]}]}" "$((r + 1))"
  done
done
if [ "$WRITES" = 1 ]; then
  es_log "(c) pgbench -c $CLIENTS -j $JOBS $LOAD_PGBENCH_ARGS INSERT (last_modified hlc_now()):" \
    "$ROUNDS rounds of (none horizon), $DURATION s each"
  for ((r = 0; r < ROUNDS; r++)); do
    if ((r % 2 == 0)); then order=(none horizon); else order=(horizon none); fi
    for v in "${order[@]}"; do poll_run write "$v" "$((r + 1))"; done
  done
fi
HLC_STATUS=$(hlc_status_line)
es_log "$HLC_STATUS"

# ---------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------
column_median() { # FILE AWKCOND VALCOL
  local v
  mapfile -t v < <(awk -F'\t' -v c="$3" "NR > 1 && ($2) { print \$c }" "$1")
  load_median "${v[@]}"
}
column_all() { # FILE AWKCOND VALCOL FORMAT
  awk -F'\t' -v c="$3" -v f="$4" "NR > 1 && ($2) { printf \"%s\" f, sep, \$c; sep = \", \" }" "$1"
}
us() { awk -v m="$1" -v n="$CALLS" 'BEGIN { printf "%.3f", m * 1000 / n }'; }

echo
echo "## Every run"
echo
echo "(a) one session, $CALLS calls per statement:"
awk -F'\t' '{ printf "%-28s %-6s %-8s %12s\n", $1, $2, $3, $4 }' "$A_RESULTS"
echo
echo "(b), (c) pgbench, $CLIENTS clients:"
awk -F'\t' '{ printf "%-8s %-8s %-6s %12s %10s %7s %8s %3s %11s %19s\n",
                 $1, $2, $3, $4, $5, $6, $7, $8, $9, $10 }' "$P_RESULTS"
echo

# (a)
declare -A A_US A_NET
A_WORST=0
for c in "${A_CASES[@]}"; do
  h=$(column_median "$A_RESULTS" "\$1 == \"$c\" && \$3 == \"horizon\"" 4)
  l=$(column_median "$A_RESULTS" "\$1 == \"$c\" && \$3 == \"loop\"" 4)
  A_US[$c]=$(us "$h")
  A_NET[$c]=$(awk -v h="$h" -v l="$l" -v n="$CALLS" 'BEGIN { printf "%.3f", (h - l) * 1000 / n }')
  A_WORST=$(awk -v a="$A_WORST" -v b="${A_US[$c]}" 'BEGIN { print (b > a ? b : a) }')
done
V_A=$(if [ "${#A_CASES[@]}" -gt 0 ] && awk -v w="$A_WORST" -v t="$TARGET_US" 'BEGIN { exit !(w <= t) }'; then
  echo PASS; else echo FAIL; fi)

# (b), (c)
pmedian() { column_median "$P_RESULTS" "\$1 == \"$1\" && \$2 == \"$2\"" "$3"; }
pall() { column_all "$P_RESULTS" "\$1 == \"$1\" && \$2 == \"$2\"" "$3" "$4"; }
pfailed() { awk -F'\t' -v l="$1" 'NR > 1 && $1 == l { f += $6 + $7 + ($8 != 0) } END { print f + 0 }' "$P_RESULTS"; }
declare -A TPS RATE
for load in hlc_now write; do
  for v in none horizon busy; do
    TPS[$load/$v]=$(pmedian "$load" "$v" 4)
    RATE[$load/$v]=$(column_median "$P_RESULTS" "\$1 == \"$load\" && \$2 == \"$v\" && \$10 != \"-\"" 10)
  done
done
R_B=$(load_ratio "${TPS[hlc_now/horizon]}" "${TPS[hlc_now/none]}" 3)
R_B_BUSY=$(load_ratio "${TPS[hlc_now/busy]}" "${TPS[hlc_now/none]}" 3)
R_B_NET=$(load_ratio "${TPS[hlc_now/horizon]}" "${TPS[hlc_now/busy]}" 3)
B_FAILED=$(pfailed hlc_now)
V_B=$(if load_at_least "$R_B" "$TARGET_RATIO" && [ "$B_FAILED" = 0 ]; then echo PASS; else echo FAIL; fi)
if [ "$WRITES" = 1 ]; then
  R_C=$(load_ratio "${TPS[write/horizon]}" "${TPS[write/none]}" 3)
  C_FAILED=$(pfailed write)
  V_C=$(if load_at_least "$R_C" "$TARGET_RATIO" && [ "$C_FAILED" = 0 ]; then echo PASS; else echo FAIL; fi)
fi

if [ "$POLLER" = server ]; then
  POLLER_TEXT="one session, \`SELECT count(event_stats.hlc_horizon())\` over 10,000 rows in a plpgsql"
  POLLER_TEXT+=" loop, server-side, from before pgbench starts to after it ends; the control runs \`count(i)\`."
else
  POLLER_TEXT="pgbench -c 1 -M prepared \`SELECT event_stats.hlc_horizon();\`"
  [ "$POLL_RATE" = 0 ] || POLLER_TEXT+=" -R $POLL_RATE"
  POLLER_TEXT+=", from before pgbench starts to after it ends; the control runs \`SELECT 1;\`."
fi

echo "## Closed timestamp (hlc_horizon()): benchmark figures"
echo
echo "PostgreSQL $PG_VERSION; $(nproc) CPU cores ($CPU_MODEL) shared by pgbench and the server;" \
  "clock source $CLOCKSOURCE; load average before the start: $LOAD_BEFORE; fsync on," \
  "synchronous_commit off, max_connections = $MAX_CONNECTIONS, so **$SLOTS hold slots**" \
  "(MaxBackends = $SLOTS_FORMULA), max_wal_size = 16GB." \
  "Produced by \`bash test/bench_horizon.sh\` ($(date -u +%Y-%m-%d), BENCH_DURATION=$DURATION" \
  "BENCH_ROUNDS=$ROUNDS BENCH_CALL_ROUNDS=$CALL_ROUNDS BENCH_CALLS=$CALLS BENCH_MAX_CONN=$MAX_CONN" \
  "BENCH_PREPARED=$PREPARED BENCH_CLIENTS=$CLIENTS BENCH_POLLER=$POLLER BENCH_POLL_RATE=$POLL_RATE)."
echo
echo "### (a) One hlc_horizon() call, $SLOTS slots scanned"
echo
echo "| other sessions | per call | per call, net of the loop | hlc_status() during the case | all rounds (ms per $CALLS calls) |"
echo "|---|---:|---:|---|---|"
for c in "${A_CASES[@]}"; do
  printf '| %s | %s µs | %s µs | %s | %s |\n' "$c" "${A_US[$c]}" "${A_NET[$c]}" "${A_CHECK[$c]}" \
    "$(column_all "$A_RESULTS" "\$1 == \"$c\" && \$3 == \"horizon\"" 4 "%.1f")"
done
echo
echo "\`SELECT count(event_stats.hlc_horizon()) FROM (SELECT generate_series(1, $CALLS) AS i) g\` in" \
  "one session, timed server-side, median of $CALL_ROUNDS rounds alternating with the loop alone" \
  "(\`count(i)\`) after a warm-up. Idle: connected background sessions; holding: idle in" \
  "transaction after \`SELECT event_stats.hlc_now()\`, every slot set; prepared: transactions" \
  "prepared after taking hlc_now(), whose holds are read under a lock. The slot count is" \
  "MaxBackends whatever the number connected: the cost follows max_connections."
echo
echo "### (b) hlc_now() throughput with a concurrent hlc_horizon() poller, $CLIENTS clients"
echo
echo "| poller | median tps | all rounds | poller calls/s (median) | failed / aborted |"
echo "|---|---:|---|---:|---|"
b_label() {
  case $1 in
    none) echo "none" ;;
    horizon) echo "hlc_horizon() in a loop" ;;
    busy) echo "control: the same loop calling nothing" ;;
  esac
}
for v in "${B_NAMES[@]}"; do
  printf '| %s | %.0f | %s | %s | %s |\n' "$(b_label "$v")" "${TPS[hlc_now/$v]}" \
    "$(pall hlc_now "$v" 4 "%.0f")" "$([ "$v" = none ] && echo - || printf '%.0f' "${RATE[hlc_now/$v]}")" \
    "$(awk -F'\t' -v v="$v" 'NR > 1 && $1 == "hlc_now" && $2 == v { f += $6; a += $7 } END { print f + 0 " / " a + 0 }' "$P_RESULTS")"
done
echo
echo "with the poller / without: **$R_B** (target ≥ $TARGET_RATIO: $V_B); the control poller alone:" \
  "$R_B_BUSY; with the hlc_horizon() poller / with the control poller: $R_B_NET." \
  "\`SELECT event_stats.hlc_now();\`, pgbench -c $CLIENTS -j $JOBS $LOAD_PGBENCH_ARGS -T $DURATION," \
  "$ROUNDS interleaved rounds. The poller: $POLLER_TEXT"
if [ "$WRITES" = 1 ]; then
  echo
  echo "### (c) Writes stamped with hlc_now(), with a concurrent hlc_horizon() poller, $CLIENTS clients"
  echo
  echo "| poller | median tps | all rounds | poller calls/s (median) | failed / aborted |"
  echo "|---|---:|---|---:|---|"
  for v in none horizon; do
    printf '| %s | %.0f | %s | %s | %s |\n' "$(b_label "$v")" "${TPS[write/$v]}" \
      "$(pall write "$v" 4 "%.0f")" "$([ "$v" = none ] && echo - || printf '%.0f' "${RATE[write/$v]}")" \
      "$(awk -F'\t' -v v="$v" 'NR > 1 && $1 == "write" && $2 == v { f += $6; a += $7 } END { print f + 0 " / " a + 0 }' "$P_RESULTS")"
  done
  echo
  echo "with the poller / without: **$R_C** (target ≥ $TARGET_RATIO: $V_C)." \
    "\`INSERT INTO bench_writes (payload) VALUES ('x');\` (last_modified DEFAULT" \
    "event_stats.hlc_now()), autocommit, synchronous_commit off, the table emptied, vacuumed and" \
    "checkpointed before each run, $ROUNDS rounds alternating in order."
fi
echo "At the end: $HLC_STATUS."
echo
echo "### Targets"
echo
echo "| target | measured | |"
echo "|---|---|---|"
echo "| (a) one hlc_horizon() call ≤ $TARGET_US µs (well under a millisecond) with up to $LARGEST sessions, idle, holding$([ "$PREPARED" = 0 ] || echo " or with $PREPARED prepared"), $SLOTS slots | worst case $A_WORST µs | $V_A |"
echo "| (b) hlc_now() tps with an hlc_horizon() poller ≥ $TARGET_RATIO× without, no failed transaction | $R_B×, $B_FAILED failed/aborted | $V_B |"
if [ "$WRITES" = 1 ]; then
  echo "| (c) hlc_now()-stamped INSERT tps with the poller ≥ $TARGET_RATIO× without, no failed transaction | $R_C×, $C_FAILED failed/aborted | $V_C |"
fi
echo

if [ "$broke" != 0 ]; then
  echo "bench: something went wrong (see the messages above); the figures are not trustworthy"
  exit 1
fi
echo "bench: ok"
