#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# test/bench_tracking.sh -- what trigger-free row counting (event_stats.track)
# costs, next to no counter and next to the usual one-row trigger counter.
#
# Not a test: it measures.  Same conventions as test/bench_counters.sh: from a
# fresh Debian 12 machine, as root (or as a user that has the packages):
# installs the OS packages, builds and installs the extension (BENCH_BUILD=0
# skips the build and uses the extension already installed), starts a
# throwaway server that preloads it (port BENCH_PORT), then:
#
# (a) A Synapse-shaped write load under pgbench: every transaction is
#     BEGIN ISOLATION LEVEL REPEATABLE READ (BENCH_ISOLATION); one one-row
#     INSERT into an events table shaped like Matrix Synapse's (event_id,
#     room_id, type, state_key, sender, content, origin_server_ts, ..., with
#     its primary key, unique event_id and three secondary indexes); COMMIT.
#     Three identical tables, one per variant:
#       untracked  events_untracked, no counter
#       tracked    events_tracked, counted by event_stats.track()
#                  (nothing per row; the commit adds the transaction's
#                  inserted - deleted rows to a sharded counter)
#       trigger    events_trigger, whose AFTER INSERT OR DELETE FOR EACH ROW
#                  trigger runs UPDATE event_stats_trigger SET total = total + 1
#                  (- 1 for a DELETE): the one-row counter Synapse used
#     For each client count, BENCH_ROUNDS rounds of the three variants (the
#     order rotates from round to round), BENCH_DURATION seconds each, each
#     into its table emptied (TRUNCATE; the trigger's row zeroed) and
#     vacuumed, after a checkpoint; --max-tries=1, so a serialization failure
#     is a failed transaction, not retried.  After every run: count(*) must
#     equal the transactions pgbench committed, and the tracked counter (and
#     the trigger's total) must equal count(*); once more at the end.
# (b) COPY of BENCH_COPY_ROWS (1,000,000) rows from a server-side file into
#     an empty table with the same columns (primary key only, unless
#     BENCH_COPY_INDEXES=synapse), untracked vs tracked, BENCH_COPY_ROUNDS
#     interleaved rounds, the table emptied (TRUNCATE), vacuumed and
#     checkpointed before every COPY; the time is psql's \timing of the
#     autocommit COPY, commit included.  After every tracked COPY the counter
#     must equal count(*).
# (c) Reading the row count of the tracked table with BENCH_COPY_ROWS rows:
#     event_stats.value() against SELECT count(*) (warm cache, table
#     vacuumed so count(*) may use an index-only scan), both server-side
#     (plpgsql loops of PERFORM, BENCH_VALUE_CALLS and BENCH_COUNT_CALLS
#     calls, median of BENCH_REPEAT) and end to end (pgbench -c 1 -M
#     prepared, BENCH_VALUE_SECONDS each, round trip included).
# Finally one transaction deletes every 10th row of that table; value() must
# equal count(*) inside it (value() reads the transaction's own changes) and
# after its commit.
#
# Prints every run, then tables of the figures with the targets next to
# them (PASS / MISS; a MISS does not change the exit status):
#   tracked >= 0.95 x untracked tps, with zero failed transactions
#   COPY tracked >= 0.98 x untracked throughput
#   value() >= 1000 x faster than count(*) at 1,000,000 rows
# Exits 1 if a run broke (a pgbench client aborted, errors: the figures are
# then not trustworthy) or a counter was ever not equal to count(*) (a bug;
# the figures stand).
#
# Environment (defaults): BENCH_DURATION (10) seconds per pgbench run,
# BENCH_ROUNDS (4), BENCH_CLIENTS ("32 64"), BENCH_ISOLATION (rr; rc, rr
# or ser), BENCH_JOBS (2) pgbench threads, BENCH_PGBENCH_ARGS (none; e.g.
# "-M prepared") extra pgbench options for the INSERT runs,
# BENCH_COPY_ROWS (1000000), BENCH_COPY_ROUNDS (2 x BENCH_ROUNDS - 1),
# BENCH_COPY_INDEXES (pk; or synapse: the same indexes as (a), about 7 x
# slower), BENCH_VALUE_SECONDS (5), BENCH_VALUE_CALLS (100000),
# BENCH_COUNT_CALLS (10), BENCH_REPEAT (3), BENCH_PORT (54770),
# BENCH_BUILD (1; 0 = do not build and install), BENCH_KEEP=1 keeps the
# scratch directory (data directory, pgbench logs, results.tsv).
# The default run takes about 6-7 minutes on a 2-core machine;
# BENCH_DURATION=5 BENCH_ROUNDS=1 (a smoke test: one round, one COPY each,
# rough figures) about 1.5.
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=bench/load.sh
. "$(dirname "$0")/bench/load.sh"

DURATION=${BENCH_DURATION:-10}
ROUNDS=${BENCH_ROUNDS:-4}
CLIENTS_LIST=${BENCH_CLIENTS:-32 64}
ISOLATION=${BENCH_ISOLATION:-rr}
JOBS=${BENCH_JOBS:-2}
COPY_ROWS=${BENCH_COPY_ROWS:-1000000}
COPY_ROUNDS=${BENCH_COPY_ROUNDS:-$((2 * ROUNDS - 1))}
COPY_INDEXES=${BENCH_COPY_INDEXES:-pk}
VALUE_SECONDS=${BENCH_VALUE_SECONDS:-5}
VALUE_CALLS=${BENCH_VALUE_CALLS:-100000}
COUNT_CALLS=${BENCH_COUNT_CALLS:-10}
REPEAT=${BENCH_REPEAT:-3}
PORT=${BENCH_PORT:-54770}
BUILD=${BENCH_BUILD:-1}
VARIANTS=(untracked tracked trigger)

# targets
TARGET_TPS=0.95
TARGET_COPY=0.98
TARGET_SPEEDUP=1000

for v in DURATION ROUNDS JOBS COPY_ROWS COPY_ROUNDS VALUE_SECONDS VALUE_CALLS \
  COUNT_CALLS REPEAT PORT; do
  [[ ${!v} =~ ^[1-9][0-9]*$ ]] || { echo "BENCH_$v must be a positive integer" >&2; exit 2; }
done
max_clients=0
for c in $CLIENTS_LIST; do
  [[ $c =~ ^[1-9][0-9]*$ ]] || { echo "BENCH_CLIENTS: '$c' is not a positive integer" >&2; exit 2; }
  [ "$c" -gt "$max_clients" ] && max_clients=$c
done
[ "$max_clients" -gt 0 ] || { echo "BENCH_CLIENTS is empty" >&2; exit 2; }
case $ISOLATION in
  rc) ISOLATION_NAME="READ COMMITTED" ;;
  rr) ISOLATION_NAME="REPEATABLE READ" ;;
  ser) ISOLATION_NAME="SERIALIZABLE" ;;
  *) echo "BENCH_ISOLATION: '$ISOLATION' is not rc, rr or ser" >&2; exit 2 ;;
esac
case $COPY_INDEXES in pk | synapse) ;; *)
  echo "BENCH_COPY_INDEXES: '$COPY_INDEXES' is not pk or synapse" >&2; exit 2 ;;
esac
case $BUILD in 0 | 1) ;; *) echo "BENCH_BUILD must be 0 or 1" >&2; exit 2 ;; esac
# room for the largest cell plus psql; at least the stock 100
MAX_CONNECTIONS=$((max_clients + 20 > 100 ? max_clients + 20 : 100))

es_install_packages
if [ "$BUILD" = 1 ]; then
  es_build_install
else
  es_log "BENCH_BUILD=0: using the installed event_stats ($ES_PG_BIN/../lib/event_stats.so)"
fi

export LOAD_PGBENCH_ARGS=${BENCH_PGBENCH_ARGS:-}
load_start_server "$PORT" "$MAX_CONNECTIONS" "${BENCH_KEEP:-0}"
broke=0 # a run did not go cleanly: the figures are not trustworthy
wrong=0 # a counter was not equal to count(*): a bug

# No checkpoint in the middle of a timed COPY (each run starts after one).
load_psql <<'SQL'
ALTER SYSTEM SET max_wal_size = '16GB';
SELECT pg_reload_conf() \g /dev/null
SQL

# The tables.  Columns and indexes after Synapse's events table; autovacuum
# is off on them because every run starts from a VACUUM (load_reset) and a
# vacuum of one table must not run into the timed runs of another.
# The COPY tables have the same columns, and the primary key only unless
# BENCH_COPY_INDEXES=synapse.
if [ "$COPY_INDEXES" = synapse ]; then
  copy_like="INCLUDING ALL" copy_pk=""
else
  copy_like="INCLUDING DEFAULTS INCLUDING IDENTITY INCLUDING CONSTRAINTS"
  copy_pk="ALTER TABLE copy_untracked ADD PRIMARY KEY (stream_ordering);"
fi
load_psql <<SQL
CREATE EXTENSION event_stats;

CREATE TABLE events_untracked (
    stream_ordering      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    topological_ordering bigint NOT NULL,
    event_id             text NOT NULL UNIQUE,
    type                 text NOT NULL,
    room_id              text NOT NULL,
    content              text,
    unrecognized_keys    text,
    processed            boolean NOT NULL,
    outlier              boolean NOT NULL,
    depth                bigint NOT NULL DEFAULT 0,
    origin_server_ts     bigint,
    received_ts          bigint,
    sender               text,
    contains_url         boolean,
    instance_name        text,
    state_key            text,
    rejection_reason     text
) WITH (autovacuum_enabled = off);
CREATE INDEX ON events_untracked (room_id, topological_ordering, stream_ordering);
CREATE INDEX ON events_untracked (room_id, stream_ordering);
CREATE INDEX ON events_untracked (origin_server_ts, stream_ordering);
CREATE TABLE events_tracked (LIKE events_untracked INCLUDING ALL);
CREATE TABLE events_trigger (LIKE events_untracked INCLUDING ALL);
CREATE TABLE copy_untracked (LIKE events_untracked $copy_like);
$copy_pk
CREATE TABLE copy_tracked (LIKE copy_untracked INCLUDING ALL);
ALTER TABLE events_tracked SET (autovacuum_enabled = off);
ALTER TABLE events_trigger SET (autovacuum_enabled = off);
ALTER TABLE copy_untracked SET (autovacuum_enabled = off);
ALTER TABLE copy_tracked SET (autovacuum_enabled = off);

-- the one-row counter, kept by a trigger
CREATE TABLE event_stats_trigger (total bigint NOT NULL);
INSERT INTO event_stats_trigger VALUES (0);
CREATE FUNCTION event_stats_trigger_count() RETURNS trigger
    LANGUAGE plpgsql AS \$\$
BEGIN
    IF TG_OP = 'INSERT' THEN
        UPDATE event_stats_trigger SET total = total + 1;
    ELSE
        UPDATE event_stats_trigger SET total = total - 1;
    END IF;
    RETURN NULL;
END \$\$;
CREATE TRIGGER events_trigger_count AFTER INSERT OR DELETE ON events_trigger
    FOR EACH ROW EXECUTE FUNCTION event_stats_trigger_count();

SELECT event_stats.track('events_tracked') \g /dev/null
SELECT event_stats.track('copy_tracked') \g /dev/null
SQL
TRACKED_COUNTER=$(load_sql "SELECT counter FROM event_stats.counters WHERE tracks = 'events_tracked'::regclass")
COPY_COUNTER=$(load_sql "SELECT counter FROM event_stats.counters WHERE tracks = 'copy_tracked'::regclass")
SHARDS=$(load_sql "SELECT shards FROM event_stats.counters WHERE tracks = 'events_tracked'::regclass")
PG_VERSION=$(load_sql "SHOW server_version")
es_log "tracking counters: $TRACKED_COUNTER, $COPY_COUNTER ($SHARDS shards)"

# ---------------------------------------------------------------------------
# (a) Synapse-shaped single-row INSERT transactions, three variants
# ---------------------------------------------------------------------------
EVENT_COLUMNS="topological_ordering, event_id, type, room_id, content, processed, outlier, depth,
    origin_server_ts, received_ts, sender, contains_url, instance_name, state_key"
for variant in "${VARIANTS[@]}"; do
  # shellcheck disable=SC2016  # $ and :names are for SQL and pgbench
  load_script "insert_$variant" "$ISOLATION_NAME" \
    '\set room random(1, 1000)' \
    '\set user random(1, 10000)' \
    '\set depth random(1, 1000000)' \
    "INSERT INTO events_$variant ($EVENT_COLUMNS)
  VALUES (:depth, '\$' || gen_random_uuid(), 'm.room.message', '!room' || :room || ':example.org',
    '{\"msgtype\":\"m.text\",\"body\":\"a message from the event_stats tracking benchmark\"}',
    true, false, :depth, (extract(epoch FROM now()) * 1000)::bigint,
    (extract(epoch FROM now()) * 1000)::bigint, '@user' || :user || ':example.org',
    false, 'master', NULL);" >/dev/null
done

# counter_sql VARIANT -- what the variant's counter is ("count(*)" if none)
counter_sql() {
  case $1 in
    untracked) echo "count(*)" ;;
    tracked) echo "event_stats.value('$TRACKED_COUNTER')" ;;
    trigger) echo "(SELECT total FROM event_stats_trigger)" ;;
  esac
}

RESULTS="$LOAD_DIR/results.tsv"
printf 'clients\tvariant\tround\ttps\tcommitted\tfailed\tfailed_pct\taborted\trc\trows\tcounter\texact\n' >"$RESULTS"

# insert_run CLIENTS VARIANT ROUND
insert_run() {
  local clients=$1 variant=$2 round=$3 log out rows counter exact desc
  log="$LOAD_DIR/insert_${clients}_${variant}_${round}.log"
  # empties this variant's table (and zeroes the trigger's row with its
  # table); the others keep their last run's rows for the final check
  if [ "$variant" = trigger ]; then
    LOAD_ROW_TABLES=event_stats_trigger load_reset events_trigger
  else
    LOAD_ROW_TABLES="" load_reset "events_$variant"
  fi
  load_run "$log" "$clients" "$JOBS" "$DURATION" "$LOAD_DIR/insert_$variant.sql"
  # one snapshot: the rows, and the counter the same snapshot sees
  out=$(load_sql "SELECT count(*), $(counter_sql "$variant") FROM events_$variant")
  read -r rows counter <<<"$out"

  # every committed transaction inserted one row; the counter must equal them
  exact=yes
  [ "$rows" = "$LOAD_OK" ] || exact=no
  [ "$counter" = "$rows" ] || exact=no
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$clients" "$variant" \
    "$round" "$LOAD_TPS" "$LOAD_OK" "$LOAD_FAILED" "$LOAD_FAILED_PCT" "$LOAD_ABORTED" \
    "$LOAD_RC" "$rows" "$counter" "$exact" >>"$RESULTS"

  desc=$(printf '%3s clients round %s/%s %-10s %s' "$clients" "$round" "$ROUNDS" \
    "$variant" "$(load_describe)")
  [ "$variant" = untracked ] || desc+=", counter $counter"
  es_log "$desc, count(*) $rows, exact: $exact"
  if [ "$exact" != yes ]; then
    wrong=1
    es_log "NOT EXACT ($variant): count(*) $rows, pgbench committed $LOAD_OK, counter $counter"
  fi
  load_check_clean "$log" "$clients clients ($variant)" || broke=1
  # anything pgbench reports besides the counted serialization failures
  # (every line but the version banner: "pgbench: error: ..." counts)
  if grep -v -E '^pgbench \(' "$log" | grep -q -i -E 'error|fatal|abort'; then
    es_log "$clients clients ($variant): pgbench printed errors (see $log):"
    load_show_errors "$log"
    broke=1
  fi
  if [ "$variant" = tracked ] && [ "$LOAD_FAILED" != 0 ]; then
    es_log "the tracked variant had $LOAD_FAILED failed transactions:"
    load_show_errors "$log"
  fi
}

es_log "(a) INSERT transactions, $ISOLATION_NAME: clients {$CLIENTS_LIST}," \
  "$ROUNDS rounds of (${VARIANTS[*]}), $DURATION s each"
for clients in $CLIENTS_LIST; do
  for ((r = 0; r < ROUNDS; r++)); do
    for ((k = 0; k < ${#VARIANTS[@]}; k++)); do
      insert_run "$clients" "${VARIANTS[(r + k) % ${#VARIANTS[@]}]}" "$((r + 1))"
    done
  done
done

# The final check: each table still holds its last run's rows.
out=$(load_sql "SELECT count(*), event_stats.value('$TRACKED_COUNTER') FROM events_tracked")
read -r FINAL_ROWS FINAL_VALUE <<<"$out"
out=$(load_sql "SELECT count(*), (SELECT total FROM event_stats_trigger) FROM events_trigger")
read -r FINAL_TRIGGER_ROWS FINAL_TRIGGER_TOTAL <<<"$out"
if [ "$FINAL_ROWS" = "$FINAL_VALUE" ] && [ "$FINAL_ROWS" -gt 0 ]; then
  FINAL_EXACT=yes
else
  FINAL_EXACT=no
  wrong=1
fi
es_log "(a) at the end: events_tracked count(*) $FINAL_ROWS, value() $FINAL_VALUE, equal: $FINAL_EXACT;" \
  "events_trigger count(*) $FINAL_TRIGGER_ROWS, trigger total $FINAL_TRIGGER_TOTAL"

# ---------------------------------------------------------------------------
# (b) COPY into an empty table, untracked vs tracked
# ---------------------------------------------------------------------------
COPY_FILE="$LOAD_DIR/copy.data"
es_log "(b) COPY of $COPY_ROWS rows (indexes: $COPY_INDEXES), $COPY_ROUNDS rounds of (untracked tracked)"
# The rows, written once by the server: event_ids like Synapse's (a
# base64 hash, so in random order), 1000 rooms, 10000 senders.
load_sql "COPY (SELECT g, '\$' || rtrim(encode(sha256(g::text::bytea), 'base64'), '='),
                 'm.room.message', '!room' || (g % 1000) || ':example.org',
                 '{\"msgtype\":\"m.text\",\"body\":\"message ' || g || ' from the event_stats tracking benchmark\"}',
                 true, false, g, 1700000000000 + g, 1700000000005 + g,
                 '@user' || (g % 10000) || ':example.org', false, 'master', NULL
            FROM generate_series(1, $COPY_ROWS) g) TO '$COPY_FILE'"

COPY_RESULTS="$LOAD_DIR/copy.tsv"
printf 'variant\tround\tms\trows\tcounter\texact\n' >"$COPY_RESULTS"

# copy_run VARIANT ROUND
copy_run() {
  local variant=$1 round=$2 table=copy_$1 out ms rows counter exact
  LOAD_ROW_TABLES="" load_reset "$table"
  out=$(es_psql "$LOAD_DIR" "$PORT" -At <<SQL
\\timing on
COPY $table ($EVENT_COLUMNS) FROM '$COPY_FILE';
SQL
  )
  ms=$(awk '/^Time: / { print $2 }' <<<"$out")
  if [ -z "$ms" ]; then
    es_log "COPY into $table: no timing (psql said: $out)"
    broke=1
    ms=0
  fi
  if [ "$variant" = tracked ]; then
    out=$(load_sql "SELECT count(*), event_stats.value('$COPY_COUNTER') FROM $table")
  else
    out=$(load_sql "SELECT count(*), count(*) FROM $table")
  fi
  read -r rows counter <<<"$out"
  exact=yes
  [ "$rows" = "$COPY_ROWS" ] && [ "$counter" = "$rows" ] || exact=no
  printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$variant" "$round" "$ms" "$rows" "$counter" "$exact" >>"$COPY_RESULTS"
  es_log "$(printf 'COPY round %s/%s %-10s %10.1f ms, %.0f rows/s, count(*) %s' "$round" \
    "$COPY_ROUNDS" "$variant" "$ms" "$(awk -v n="$rows" -v t="$ms" 'BEGIN { print t ? n * 1000 / t : 0 }')" \
    "$rows")$([ "$variant" = tracked ] && echo ", value() $counter"), exact: $exact"
  if [ "$exact" != yes ]; then
    wrong=1
    es_log "NOT EXACT (COPY $variant): expected $COPY_ROWS rows, count(*) $rows, counter $counter"
  fi
}

for ((r = 0; r < COPY_ROUNDS; r++)); do
  if ((r % 2 == 0)); then order=(untracked tracked); else order=(tracked untracked); fi
  for variant in "${order[@]}"; do copy_run "$variant" "$((r + 1))"; done
done
rm -f "$COPY_FILE"

# ---------------------------------------------------------------------------
# (c) value() vs count(*) on the tracked table with COPY_ROWS rows
# ---------------------------------------------------------------------------
es_log "(c) value() vs count(*) at $COPY_ROWS rows: $REPEAT server-side loops of" \
  "$VALUE_CALLS value() / $COUNT_CALLS count(*) calls; pgbench -c 1 -M prepared, $VALUE_SECONDS s each"
load_psql <<SQL
VACUUM (ANALYZE) copy_tracked;
VACUUM (ANALYZE) event_stats.counter_shards;
CHECKPOINT;
-- the same loop for both: a cached plan run n times, microseconds per call
CREATE FUNCTION bench_value_loop(c event_stats.counter, n integer) RETURNS float8
    LANGUAGE plpgsql AS \$\$
DECLARE t0 timestamptz := clock_timestamp();
BEGIN
    FOR i IN 1 .. n LOOP
        PERFORM event_stats.value(c);
    END LOOP;
    RETURN 1e6 * extract(epoch FROM clock_timestamp() - t0) / n;
END \$\$;
CREATE FUNCTION bench_count_loop(n integer) RETURNS float8
    LANGUAGE plpgsql AS \$\$
DECLARE t0 timestamptz := clock_timestamp();
BEGIN
    FOR i IN 1 .. n LOOP
        PERFORM count(*) FROM copy_tracked;
    END LOOP;
    RETURN 1e6 * extract(epoch FROM clock_timestamp() - t0) / n;
END \$\$;
CREATE FUNCTION bench_empty_loop(n integer) RETURNS float8
    LANGUAGE plpgsql AS \$\$
DECLARE t0 timestamptz := clock_timestamp();
BEGIN
    FOR i IN 1 .. n LOOP
        PERFORM 1;
    END LOOP;
    RETURN 1e6 * extract(epoch FROM clock_timestamp() - t0) / n;
END \$\$;
-- warm the caches
SELECT count(*) FROM copy_tracked \g /dev/null
SELECT bench_value_loop('$COPY_COUNTER', 1000) \g /dev/null
SQL
COUNT_PLAN=$(load_sql "EXPLAIN (COSTS OFF) SELECT count(*) FROM copy_tracked" |
  grep -o -E '(Parallel )?(Seq Scan|Index Only Scan|Index Scan|Bitmap Heap Scan)' | head -1 || true)
out=$(load_sql "SELECT count(*), event_stats.value('$COPY_COUNTER') FROM copy_tracked")
read -r C_ROWS C_VALUE <<<"$out"
if [ "$C_ROWS" != "$C_VALUE" ]; then
  wrong=1
  es_log "NOT EXACT: copy_tracked count(*) $C_ROWS, value() $C_VALUE"
fi

us_value=() us_count=() us_empty=()
for ((i = 1; i <= REPEAT; i++)); do
  us_value+=("$(load_sql "SELECT round(bench_value_loop('$COPY_COUNTER', $VALUE_CALLS)::numeric, 2)")")
  us_count+=("$(load_sql "SELECT round(bench_count_loop($COUNT_CALLS)::numeric, 0)")")
  us_empty+=("$(load_sql "SELECT round(bench_empty_loop($VALUE_CALLS)::numeric, 2)")")
  es_log "  $i/$REPEAT server-side per call: value() ${us_value[-1]} us, count(*) ${us_count[-1]} us," \
    "empty loop ${us_empty[-1]} us"
done
US_VALUE=$(load_median "${us_value[@]}")
US_COUNT=$(load_median "${us_count[@]}")
US_EMPTY=$(load_median "${us_empty[@]}")

# latency_us NAME SQL -- sets LAT to pgbench -c 1 -M prepared's average latency (us)
latency_us() {
  local log="$LOAD_DIR/latency_$1.log" script="$LOAD_DIR/latency_$1.sql"
  printf '%s\n' "$2" >"$script"
  chmod 644 "$script"
  LOAD_PGBENCH_ARGS="-M prepared" load_run "$log" 1 1 "$VALUE_SECONDS" "$script"
  LAT=$(awk -v l="$LOAD_LATENCY_MS" 'BEGIN { printf "%.1f", l * 1000 }')
  if ! load_check_clean "$log" "pgbench $1" || [ "$LAT" = 0.0 ]; then
    broke=1
    LAT=0
  fi
  es_log "  pgbench -c 1 -M prepared: $2 $LAT us, $LOAD_OK transactions"
}
latency_us select1 "SELECT 1;"
LAT_SELECT1=$LAT
latency_us value "SELECT event_stats.value('$COPY_COUNTER');"
LAT_VALUE=$LAT
latency_us count "SELECT count(*) FROM copy_tracked;"
LAT_COUNT=$LAT

# The DELETE path, once: every 10th row.  value() must equal count(*) inside
# the deleting transaction (the README: value() reads the transaction's own
# changes, and equals count(*) "in every transaction") and after its commit.
out=$(es_psql "$LOAD_DIR" "$PORT" -At -F ' ' <<SQL
BEGIN;
DELETE FROM copy_tracked WHERE stream_ordering % 10 = 0;
SELECT 'inside', count(*), event_stats.value('$COPY_COUNTER') FROM copy_tracked;
COMMIT;
SELECT 'after', count(*), event_stats.value('$COPY_COUNTER') FROM copy_tracked;
SQL
)
read -r _ DEL_IN_ROWS DEL_IN_VALUE <<<"$(grep '^inside ' <<<"$out")"
read -r _ DEL_ROWS DEL_VALUE <<<"$(grep '^after ' <<<"$out")"
DEL_EXPECTED=$((COPY_ROWS - COPY_ROWS / 10))
DEL_EXACT=yes DEL_IN_EXACT=yes
[ "$DEL_ROWS" = "$DEL_VALUE" ] && [ "$DEL_ROWS" = "$DEL_EXPECTED" ] || DEL_EXACT=no
[ "$DEL_IN_ROWS" = "$DEL_IN_VALUE" ] && [ "$DEL_IN_ROWS" = "$DEL_EXPECTED" ] || DEL_IN_EXACT=no
es_log "DELETE of every 10th row: inside its transaction count(*) $DEL_IN_ROWS, value() $DEL_IN_VALUE," \
  "equal: $DEL_IN_EXACT; after commit count(*) $DEL_ROWS, value() $DEL_VALUE, equal: $DEL_EXACT"
[ "$DEL_EXACT" = yes ] && [ "$DEL_IN_EXACT" = yes ] || wrong=1

# ---------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------
# tps_median CLIENTS VARIANT, copy_median VARIANT -- medians over the rounds
tps_median() {
  local v
  mapfile -t v < <(awk -F'\t' -v c="$1" -v x="$2" 'NR > 1 && $1 == c && $2 == x { print $4 }' "$RESULTS")
  load_median "${v[@]}"
}
copy_median() {
  local v
  mapfile -t v < <(awk -F'\t' -v x="$1" 'NR > 1 && $1 == x { print $3 }' "$COPY_RESULTS")
  load_median "${v[@]}"
}
# failed CLIENTS VARIANT -- "failed (pct%)" over all rounds, and aborted clients
failed() {
  awk -F'\t' -v c="$1" -v x="$2" \
    'NR > 1 && $1 == c && $2 == x { f += $6; o += $5; a += $8 }
     END { printf "%d (%.1f%%)", f, (f + o) ? 100 * f / (f + o) : 0; if (a) printf ", %d aborted", a }' "$RESULTS"
}
failed_total() {
  awk -F'\t' -v c="$1" -v x="$2" 'NR > 1 && $1 == c && $2 == x { f += $6 + $8 } END { print f + 0 }' "$RESULTS"
}
exact_count() {
  awk -F'\t' -v c="$1" -v x="$2" 'NR > 1 && $1 == c && $2 == x { n++; if ($12 == "yes") k++ }
     END { printf "%d/%d", k, n }' "$RESULTS"
}
ratio() { awk -v x="$1" -v y="$2" 'BEGIN { if (y > 0) printf "%.2f", x / y; else print "-" }'; }
ratio3() { awk -v x="$1" -v y="$2" 'BEGIN { if (y > 0) printf "%.3f", x / y; else print "-" }'; }
at_least() { awk -v x="$1" -v t="$2" 'BEGIN { exit !(x != "-" && x + 0 >= t + 0) }'; }
verdict() { if "$@"; then echo PASS; else echo MISS; fi; }
equal_word() { if [ "$1" = yes ]; then echo equal; else echo "NOT EQUAL"; fi; }
# tps_target_met RATIO FAILED -- the (a) target: ratio high enough, nothing failed
tps_target_met() { at_least "$1" "$TARGET_TPS" && [ "$2" = 0 ]; }

echo
echo "## Every run"
echo
echo "(a) INSERT transactions:"
awk -F'\t' '{ printf "%-8s %-10s %-6s %11s %10s %8s %11s %8s %3s %9s %9s %6s\n",
                 $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12 }' "$RESULTS"
echo
echo "(b) COPY:"
awk -F'\t' '{ printf "%-10s %-6s %12s %9s %9s %6s\n", $1, $2, $3, $4, $5, $6 }' "$COPY_RESULTS"
echo
echo "## Trigger-free row counting: benchmark figures"
echo
echo "PostgreSQL $PG_VERSION, $(nproc) CPU cores shared by pgbench and the server, fsync on," \
  "max_connections = $MAX_CONNECTIONS, max_wal_size = 16GB, tracking counters with $SHARDS shards." \
  "Produced by \`bash test/bench_tracking.sh\` ($(date -u +%Y-%m-%d)," \
  "BENCH_DURATION=$DURATION BENCH_ROUNDS=$ROUNDS BENCH_COPY_ROUNDS=$COPY_ROUNDS" \
  "BENCH_COPY_INDEXES=$COPY_INDEXES${LOAD_PGBENCH_ARGS:+ BENCH_PGBENCH_ARGS=\"$LOAD_PGBENCH_ARGS\"})."
echo
echo "### (a) One-row INSERT transactions into a Synapse-shaped events table, $ISOLATION_NAME"
echo
echo "Median tps of $ROUNDS interleaved rounds of $DURATION s; pgbench -j $JOBS${LOAD_PGBENCH_ARGS:+ $LOAD_PGBENCH_ARGS}," \
  "--max-tries=1 (a serialization failure is a failed transaction, not retried); each run" \
  "into its table emptied, vacuumed and checkpointed."
echo
echo "| clients | untracked | tracked | trigger | tracked/untracked | trigger/untracked | failed untracked | failed tracked | failed trigger | exact tracked / trigger | target: tracked ≥ $TARGET_TPS×, 0 failed |"
echo "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|"
TPS_VERDICTS=()
for clients in $CLIENTS_LIST; do
  tu=$(tps_median "$clients" untracked)
  tt=$(tps_median "$clients" tracked)
  tg=$(tps_median "$clients" trigger)
  rt=$(ratio "$tt" "$tu")
  rt3=$(ratio3 "$tt" "$tu")
  tv=$(verdict tps_target_met "$rt3" "$(failed_total "$clients" tracked)")
  TPS_VERDICTS+=("$clients clients: $rt3× untracked, $(failed "$clients" tracked) failed -> $tv")
  printf '| %s | %.0f | %.0f | %.0f | %s | %s | %s | %s | %s | %s / %s | %s |\n' \
    "$clients" "$tu" "$tt" "$tg" "$rt" "$(ratio "$tg" "$tu")" \
    "$(failed "$clients" untracked)" "$(failed "$clients" tracked)" "$(failed "$clients" trigger)" \
    "$(exact_count "$clients" tracked)" "$(exact_count "$clients" trigger)" "$tv"
done
echo
echo "Each transaction: \`BEGIN ISOLATION LEVEL $ISOLATION_NAME; INSERT INTO events_<variant> (...)" \
  "VALUES (...); COMMIT\`, one row of 14 columns (event_id '\$' || gen_random_uuid(), random room" \
  "of 1000, random sender of 10000, a JSON-ish content string) into a table with a primary key," \
  "a unique event_id and three secondary indexes. untracked: no counter; tracked:" \
  "\`event_stats.track('events_tracked')\`; trigger: \`AFTER INSERT OR DELETE FOR EACH ROW\`" \
  "trigger running \`UPDATE event_stats_trigger SET total = total + 1\`. failed: pgbench's failed" \
  "transactions (serialization and deadlock failures), all rounds; exact: runs after which" \
  "count(*) = transactions committed = the counter. At the end, events_tracked:" \
  "count(*) $FINAL_ROWS, value() $FINAL_VALUE ($(equal_word "$FINAL_EXACT"));" \
  "events_trigger: count(*) $FINAL_TRIGGER_ROWS, trigger total $FINAL_TRIGGER_TOTAL."
echo
CU=$(copy_median untracked)
CT=$(copy_median tracked)
COPY_RATIO3=$(ratio3 "$CU" "$CT")
COPY_VERDICT=$(verdict at_least "$COPY_RATIO3" "$TARGET_COPY")
copy_exact=$(awk -F'\t' 'NR > 1 && $1 == "tracked" { n++; if ($6 == "yes") k++ } END { printf "%d/%d", k, n }' "$COPY_RESULTS")
copy_times() {
  awk -F'\t' -v x="$1" 'NR > 1 && $1 == x { printf "%s%.0f", sep, $3; sep = ", " }' "$COPY_RESULTS"
}
echo "### (b) COPY of $COPY_ROWS rows into an empty table"
echo
echo "| | median time | rows/s | all rounds (ms) |"
echo "|---|---:|---:|---|"
printf '| untracked | %.0f ms | %.0f | %s |\n' "$CU" "$(awk -v n="$COPY_ROWS" -v t="$CU" 'BEGIN { print t ? n * 1000 / t : 0 }')" "$(copy_times untracked)"
printf '| tracked | %.0f ms | %.0f | %s |\n' "$CT" "$(awk -v n="$COPY_ROWS" -v t="$CT" 'BEGIN { print t ? n * 1000 / t : 0 }')" "$(copy_times tracked)"
echo
echo "Tracked/untracked throughput: **$COPY_RATIO3** (target ≥ $TARGET_COPY: $COPY_VERDICT)." \
  "$COPY_ROUNDS interleaved rounds; \`COPY ... FROM\` a server-side file in autocommit" \
  "(psql's timing, commit included) into a table with the columns of (a) and" \
  "$([ "$COPY_INDEXES" = pk ] && echo "its primary key only" || echo "all the indexes of (a)"), emptied" \
  "(TRUNCATE), vacuumed and checkpointed before every COPY. value() = count(*) = $COPY_ROWS after" \
  "$copy_exact tracked COPYs."
echo
SPEEDUP=$(awk -v c="$US_COUNT" -v v="$US_VALUE" 'BEGIN { if (v > 0) printf "%.0f", c / v; else print 0 }')
SPEEDUP_E2E=$(awk -v c="$LAT_COUNT" -v v="$LAT_VALUE" 'BEGIN { if (v > 0) printf "%.0f", c / v; else print 0 }')
SPEEDUP_VERDICT=$(verdict at_least "$SPEEDUP" "$TARGET_SPEEDUP")
SPEEDUP_E2E_VERDICT=$(verdict at_least "$SPEEDUP_E2E" "$TARGET_SPEEDUP")
echo "### (c) Row count of a $COPY_ROWS-row table: value() vs count(*)"
echo
echo "| query | server-side, per call | pgbench -c 1 -M prepared, latency |"
echo "|---|---:|---:|"
echo "| \`SELECT 1\` / empty loop | $US_EMPTY µs | $LAT_SELECT1 µs |"
echo "| \`SELECT event_stats.value('$COPY_COUNTER')\` | $US_VALUE µs | $LAT_VALUE µs |"
# shellcheck disable=SC2016  # backquotes for markdown
printf '| `SELECT count(*) FROM copy_tracked` (%s) | %.0f µs | %s µs |\n' "${COUNT_PLAN:-?}" "$US_COUNT" "$LAT_COUNT"
echo "| **count(*) / value()** | **${SPEEDUP}×** (target ≥ ${TARGET_SPEEDUP}×: $SPEEDUP_VERDICT) | ${SPEEDUP_E2E}× ($SPEEDUP_E2E_VERDICT) |"
echo
echo "Server-side: plpgsql loops of \`PERFORM\` with a cached plan, $VALUE_CALLS value() calls" \
  "and $COUNT_CALLS count(*) calls, median of $REPEAT (value(): $(IFS=,; echo "${us_value[*]}") µs;" \
  "count(*): $(IFS=,; echo "${us_count[*]}") µs); the loop's own cost per iteration is the" \
  "first row, and is not subtracted. pgbench: one client, $VALUE_SECONDS s each, round trip" \
  "included. Warm cache, table freshly vacuumed."
echo
echo "Then one transaction deleted every 10th row: inside it count(*) $DEL_IN_ROWS, value()" \
  "$DEL_IN_VALUE ($(equal_word "$DEL_IN_EXACT")); after its commit count(*) $DEL_ROWS," \
  "value() $DEL_VALUE ($(equal_word "$DEL_EXACT"))."
echo
echo "### Targets"
echo
for tv in "${TPS_VERDICTS[@]}"; do
  echo "- tracked ≥ $TARGET_TPS× untracked tps, zero failed transactions, $tv"
done
echo "- COPY tracked ≥ $TARGET_COPY× untracked throughput: $COPY_RATIO3× -> $COPY_VERDICT"
echo "- value() ≥ ${TARGET_SPEEDUP}× faster than count(*) at $COPY_ROWS rows: ${SPEEDUP}× server-side -> $SPEEDUP_VERDICT" \
  "(end to end, round trip included: ${SPEEDUP_E2E}× -> $SPEEDUP_E2E_VERDICT)"
echo

status=0
if [ "$wrong" != 0 ]; then
  echo "bench: a counter was NOT equal to count(*) (see NOT EXACT / NOT EQUAL above): a bug"
  status=1
fi
if [ "$broke" != 0 ]; then
  echo "bench: something went wrong (see the messages above); the figures are not trustworthy"
  status=1
fi
[ "$status" = 0 ] || exit "$status"
echo "bench: ok"
