# shellcheck shell=bash
# test/bench/load.sh -- pgbench helpers shared by test/demo.sh and the
# benchmark scripts test/bench_*.sh.
#
# Sourced after test/lib.sh, not run.  Safe under set -euo pipefail.  The
# caller sets LOAD_DIR (the throwaway cluster's directory: its socket,
# data/ and server.log are there, and this file puts the pgbench scripts and
# logs there too, where the test user can read them) and LOAD_PORT.

# load_start_server PORT MAX_CONNECTIONS KEEP [CONF] -- makes a scratch
# directory (LOAD_DIR), starts a preloaded throwaway server in it on PORT
# (LOAD_PORT) with the binaries of ES_PG_BIN and the extra postgresql.conf
# lines CONF, and arranges for the server to be stopped, and the directory
# removed unless KEEP is 1, when the calling script exits.  May be called
# again to run several servers side by side (e.g. two builds, each with its
# own ES_PG_BIN): the last one started is the current one, load_name and
# load_use switch between them, and load_cleanup stops them all.
LOAD_SERVERS=()
load_start_server() {
  LOAD_PORT=$1
  LOAD_DIR=$(es_workdir)
  LOAD_KEEP=$3
  export LOAD_DIR LOAD_PORT
  LOAD_SERVERS+=("$LOAD_DIR")
  trap load_cleanup EXIT
  trap 'exit 130' INT TERM
  es_log "starting a server on port $LOAD_PORT ($LOAD_DIR, $ES_PG_BIN), max_connections = $2"
  if ! es_start_cluster "$LOAD_DIR" "$LOAD_PORT" yes "max_connections = $2${4:+
$4}"; then
    cat "$LOAD_DIR/server.log" >&2 || true
    exit 1
  fi
}

load_cleanup() {
  local d
  for d in "${LOAD_SERVERS[@]}"; do
    es_stop_cluster "$d"
    if [ "$LOAD_KEEP" = 1 ]; then
      es_log "kept $d"
    else
      rm -rf "$d"
    fi
  done
}

# load_name NAME -- remembers the current server (LOAD_DIR, LOAD_PORT and
# its binaries, ES_PG_BIN) as NAME.  load_use NAME makes it current again.
declare -gA LOAD_NAMED_DIR LOAD_NAMED_PORT LOAD_NAMED_BIN
load_name() {
  LOAD_NAMED_DIR[$1]=$LOAD_DIR
  LOAD_NAMED_PORT[$1]=$LOAD_PORT
  LOAD_NAMED_BIN[$1]=$ES_PG_BIN
}
load_use() {
  [ -n "${LOAD_NAMED_DIR[$1]:-}" ] || { es_log "load_use: no server named $1"; return 1; }
  LOAD_DIR=${LOAD_NAMED_DIR[$1]}
  LOAD_PORT=${LOAD_NAMED_PORT[$1]}
  ES_PG_BIN=${LOAD_NAMED_BIN[$1]}
}

# load_sql SQL -- runs SQL in one psql call, prints unaligned, space-separated
# rows.  Several statements in one SQL string run in one transaction.
load_sql() {
  es_psql "$LOAD_DIR" "$LOAD_PORT" -At -F ' ' -c "$1"
}

# load_psql -- runs psql on the script read from stdin, one statement at a
# time (so VACUUM and CHECKPOINT may appear in it).
load_psql() {
  es_psql "$LOAD_DIR" "$LOAD_PORT"
}

# load_script NAME ISOLATION STATEMENT... -- writes a pgbench script that
# runs the statements in one transaction at ISOLATION ("READ COMMITTED",
# "REPEATABLE READ", ...) and prints its path.
load_script() {
  local name=$1 isolation=$2 path
  shift 2
  path="$LOAD_DIR/$name.sql"
  {
    echo "BEGIN ISOLATION LEVEL $isolation;"
    printf '%s\n' "$@"
    echo "COMMIT;"
  } >"$path"
  chmod 644 "$path"
  echo "$path"
}

# load_isolation_name rc|rr|ser -- the SQL name of the isolation level
load_isolation_name() {
  case $1 in
    rc) echo "READ COMMITTED" ;;
    rr) echo "REPEATABLE READ" ;;
    ser) echo "SERIALIZABLE" ;;
    *) es_log "unknown isolation level '$1' (rc, rr or ser)"; return 1 ;;
  esac
}

# load_variant_sql VARIANT -- the statements (one per line) of one
# transaction of the INSERT benchmark (tables of load_setup):
#   a   no counter
#   b   the one-row counter: the INSERT into events_trigger
#   c   event_stats in the same statement as the INSERT
#   c2  event_stats as a statement of its own
load_variant_sql() {
  case $1 in
    a) echo "INSERT INTO events(payload) VALUES ('x');" ;;
    b) echo "INSERT INTO events_trigger(payload) VALUES ('x');" ;;
    c) echo "INSERT INTO events(payload) SELECT 'x' FROM event_stats.increment('events_total');" ;;
    c2) printf '%s\n' "INSERT INTO events(payload) VALUES ('x');" \
      "SELECT event_stats.increment('events_total');" ;;
    *) es_log "unknown variant '$1'"; return 1 ;;
  esac
}

# load_variant_script NAME ISO VARIANT -- load_script of that variant at
# isolation level ISO (rc, rr, ser); prints its path.
load_variant_script() {
  local stmts
  mapfile -t stmts < <(load_variant_sql "$3")
  load_script "$1" "$(load_isolation_name "$2")" "${stmts[@]}"
}

# load_reset TABLE... -- makes the next run start from the same state:
# empties the tables (identity restarted), zeroes the trigger-kept row of
# each table in LOAD_ROW_TABLES (each has a column "total"; if unset,
# event_stats_row, which load_setup creates; if empty, none), vacuums all of
# them and the extension's shard table, and checkpoints.
load_reset() {
  local t rows=${LOAD_ROW_TABLES-event_stats_row}
  {
    for t in "$@"; do echo "TRUNCATE $t RESTART IDENTITY;"; done
    for t in $rows; do echo "UPDATE $t SET total = 0;"; done
    for t in "$@" $rows event_stats.counter_shards; do
      echo "VACUUM (ANALYZE) $t;"
    done
    echo "CHECKPOINT;"
  } | load_psql
}

# load_run LOG CLIENTS JOBS DURATION SCRIPT
#
# Runs pgbench (no vacuum of pgbench tables, --max-tries=1 so that
# serialization and deadlock failures are counted as failed transactions
# instead of being retried) and sets:
#   LOAD_RC          pgbench's exit status (2: some client aborted)
#   LOAD_TPS         tps without initial connection time (0 if not reported)
#   LOAD_OK          transactions that committed
#   LOAD_FAILED      failed transactions (serialization + deadlock)
#   LOAD_SERIAL      of which serialization failures
#   LOAD_DEADLOCK    of which deadlock failures
#   LOAD_FAILED_PCT  LOAD_FAILED as % of all attempted transactions
#   LOAD_ABORTED     clients that pgbench aborted (any other error)
#   LOAD_LATENCY_MS  average latency in milliseconds (0 if not reported)
# The whole pgbench output stays in LOG.
load_run() {
  local log=$1 clients=$2 jobs=$3 duration=$4 script=$5
  [ "$jobs" -gt "$clients" ] && jobs=$clients
  LOAD_RC=0
  # LOAD_PGBENCH_ARGS is a list of options: split on purpose
  # shellcheck disable=SC2086
  es_pgbench "$LOAD_DIR" "$LOAD_PORT" -n -c "$clients" -j "$jobs" -T "$duration" \
    --max-tries=1 --failures-detailed ${LOAD_PGBENCH_ARGS:-} -f "$script" >"$log" 2>&1 || LOAD_RC=$?
  LOAD_TPS=$(awk '/^tps = / { v = $3 } END { print v + 0 }' "$log")
  LOAD_OK=$(awk -F': ' '/^number of transactions actually processed: / { v = $2 } END { print v + 0 }' "$log")
  LOAD_FAILED=$(awk '/^number of failed transactions: / { v = $5 } END { print v + 0 }' "$log")
  LOAD_SERIAL=$(awk '/^number of serialization failures: / { v = $5 } END { print v + 0 }' "$log")
  LOAD_DEADLOCK=$(awk '/^number of deadlock failures: / { v = $5 } END { print v + 0 }' "$log")
  LOAD_ABORTED=$(grep -c ' aborted in command ' "$log" || true)
  # shellcheck disable=SC2034  # for the caller
  LOAD_LATENCY_MS=$(awk '/^latency average = / { v = $4 } END { print v + 0 }' "$log")
  LOAD_FAILED_PCT=$(awk -v f="$LOAD_FAILED" -v o="$LOAD_OK" \
    'BEGIN { printf "%.1f", (f + o) ? 100 * f / (f + o) : 0 }')
}

# load_describe -- one line about the last load_run, for progress output.
load_describe() {
  local s
  s=$(printf '%.0f tps, %s committed, %s failed (%s%%)' \
    "$LOAD_TPS" "$LOAD_OK" "$LOAD_FAILED" "$LOAD_FAILED_PCT")
  [ "$LOAD_FAILED" != 0 ] &&
    s+=" [$LOAD_SERIAL serialization, $LOAD_DEADLOCK deadlock]"
  [ "$LOAD_ABORTED" != 0 ] && s+=", $LOAD_ABORTED clients ABORTED"
  [ "$LOAD_RC" != 0 ] && s+=", pgbench exit status $LOAD_RC"
  echo "$s"
}

# load_show_errors LOG -- the distinct error lines of a pgbench log.
load_show_errors() {
  grep -E 'error|ERROR|FATAL' "$1" | sort | uniq -c | sort -rn | head -5 >&2 || true
}

# load_median NUMBER... -- the median of its arguments (0 if none)
load_median() {
  printf '%s\n' "$@" | sort -g |
    awk 'NF { x[++n] = $1 } END {
           if (n == 0) print 0
           else if (n % 2) print x[(n + 1) / 2]
           else print (x[n / 2] + x[n / 2 + 1]) / 2 }'
}

# load_check_clean LOG LABEL -- true if the last load_run went cleanly (exit
# status 0, no aborted client, something committed); otherwise says why.
load_check_clean() {
  [ "$LOAD_RC" = 0 ] && [ "$LOAD_ABORTED" = 0 ] && [ "$LOAD_OK" != 0 ] && return 0
  es_log "$2: the load did not run cleanly (see $1):"
  load_show_errors "$1"
  return 1
}

# load_setup -- the extension, its counter events_total, and the two
# identically shaped event tables every run uses:
#   events          written by variants without a trigger (event_stats or none)
#   events_trigger  the usual one-row counter: an AFTER INSERT FOR EACH ROW
#                   trigger adds 1 to the single row of event_stats_row
load_setup() {
  load_psql <<'SQL'
CREATE EXTENSION event_stats;
SELECT event_stats.create_counter('events_total') \g /dev/null

CREATE TABLE events (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    created_at  timestamptz NOT NULL DEFAULT now(),
    payload     text NOT NULL
);
CREATE TABLE events_trigger (LIKE events INCLUDING ALL);

CREATE TABLE event_stats_row (total bigint NOT NULL);
INSERT INTO event_stats_row VALUES (0);
CREATE FUNCTION event_stats_row_count() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    UPDATE event_stats_row SET total = total + 1;
    RETURN NULL;
END $$;
CREATE TRIGGER events_trigger_count AFTER INSERT ON events_trigger
    FOR EACH ROW EXECUTE FUNCTION event_stats_row_count();
SQL
}

# load_check_run LOG LABEL -- false, saying why, unless the last load_run went
# cleanly (see load_check_clean), pgbench printed no error and no
# transaction failed.
load_check_run() {
  local ok=0
  load_check_clean "$1" "$2" || ok=1
  if grep -v -E '^pgbench \(' "$1" | grep -q -i -E 'error|fatal|abort'; then
    es_log "$2: pgbench printed errors (see $1):"
    load_show_errors "$1"
    ok=1
  fi
  if [ "$LOAD_FAILED" != 0 ]; then
    es_log "$2: $LOAD_FAILED failed transactions"
    load_show_errors "$1"
    ok=1
  fi
  return "$ok"
}

# load_ratio X Y [DECIMALS] -- X / Y (2 decimals), or "-" when Y is not positive
load_ratio() {
  awk -v x="$1" -v y="$2" -v d="${3:-2}" 'BEGIN { if (y > 0) printf "%.*f", d, x / y; else print "-" }'
}
# load_at_least X T / load_at_most X T -- true if the ratio X meets T
load_at_least() { awk -v x="$1" -v t="$2" 'BEGIN { exit !(x != "-" && x + 0 >= t + 0) }'; }
load_at_most() { awk -v x="$1" -v t="$2" 'BEGIN { exit !(x != "-" && x + 0 <= t + 0) }'; }
# load_verdict COMMAND... -- PASS if the command succeeds, else FAIL
load_verdict() { if "$@"; then echo PASS; else echo FAIL; fi; }
