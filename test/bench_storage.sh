#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR disable=SC2016
# test/bench_storage.sh -- what counters cost in storage and time: the
# previous release (OLD, git revision BENCH_OLD_REF) and this tree (NEW)
# side by side, in one run, on two throwaway servers running at the same
# time (max_connections = 200 each, so a 1.0 counter has 222 shard rows).
# Every timed measurement alternates between the two servers, round by
# round, and reports medians.
#
#  1. Space: pg_total_relation_size of counter_definitions + counter_shards
#     (indexes and TOAST included) divided by the number of counters, just
#     created and after one session wrote each counter once, at each size
#     of BENCH_OLD_SIZES / BENCH_NEW_SIZES; each size starts from a freshly
#     created extension.  A size that would need more disk than
#     BENCH_DISK_GB (or half the free space) is not measured: the table
#     shows the per-counter figure of the largest measured size, labelled
#     as an extrapolation.
#  2. value() of a counter 64 backends wrote (64 pgbench clients, one
#     commit each), server-side: count(value(c)) over generate_series minus
#     the same scan without the call.  Then, if the server has the GUC
#     event_stats.compaction_naptime, it is set to 1 s, the shard rows of
#     that counter are polled until they stop shrinking (at most
#     BENCH_COMPACT_WAIT s), and value() is measured again.
#  3. create_counter() x BENCH_CREATE_OLD (OLD) and x BENCH_CREATE_NEW
#     (NEW; also x BENCH_CREATE_OLD), server-side; the counters view at the
#     sizes of BENCH_VIEW_SIZES (from step 1); the COMMIT of one transaction
#     incrementing each of BENCH_COMMIT_SIZES counters, twice in a row
#     (NEW's first commit creates the rows, the second updates them; OLD's
#     rows exist from the start).
#  4. pgbench: BENCH_CLIENTS x READ COMMITTED, REPEATABLE READ x -M simple,
#     -M prepared; the no-counter INSERT (a) and the event_stats INSERT (c)
#     of test/bench_counters.sh, on both servers, BENCH_ROUNDS rounds of
#     BENCH_DURATION s per cell, the order of the four runs rotating from
#     round to round; median tps; failed transactions (must be 0 for (c))
#     and exactness (rows = committed = counter).
#  5. During every run of 4, a separate session samples pg_stat_activity
#     every BENCH_SAMPLE_MS ms (a procedure that commits between samples,
#     so it holds no snapshot) and counts the states of pgbench's backends
#     by wait event: how many wait on LWLock:BufferContent.
#
# Order: 4 and 5, then 1 and 3, then 2 (which turns compaction on at a
# 1 s naptime on NEW).  About 25 minutes with the defaults.
#
# Environment (defaults):
#   BENCH_OLD_BIN, BENCH_NEW_BIN  bin directories of two PostgreSQL 15
#     installations (copies of the packaged one work: pg_config is
#     relocatable).  Unset: the script copies /usr/lib/postgresql/15,
#     /usr/share/postgresql/15 and /usr/include/postgresql to
#     /tmp/event_stats-pg-{old,new} (root only; ES_WORKDIR replaces
#     /tmp/event_stats there and in the scratch directories).
#   BENCH_BUILD (1)  build and install OLD (BENCH_OLD_REF, d617bbd: release
#     1.0, from git archive) and NEW (this tree) first; 0 uses what is
#     installed.
#   BENCH_PORT (54790: OLD, +1: NEW), BENCH_DURATION (10), BENCH_ROUNDS (3),
#   BENCH_CLIENTS ("32 64"), BENCH_ISOLATIONS ("rc rr"), BENCH_MODES
#   ("simple prepared"), BENCH_JOBS (2), BENCH_SAMPLE_MS (10),
#   BENCH_OLD_SIZES ("1 64 1000"), BENCH_NEW_SIZES ("1 64 1000 100000
#   1000000"), BENCH_VIEW_SIZES ("1000 100000"), BENCH_CREATE_OLD (1000),
#   BENCH_CREATE_NEW (10000), BENCH_COMMIT_SIZES ("1000 2000 4000"),
#   BENCH_VALUE_CALLS (10000), BENCH_VALUE_ROUNDS (5), BENCH_COMPACT_WAIT
#   (120), BENCH_DISK_GB (12), BENCH_SKIP ("": any of "load value storage"
#   to leave parts out), BENCH_KEEP=1 keeps the scratch directories.
# Prints markdown tables on stdout, progress on stderr.  Exits non-zero if
# a run broke, an event_stats run had failed transactions, or a counter was
# not exact.
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=bench/load.sh
. "$(dirname "$0")/bench/load.sh"

OLD_REF=${BENCH_OLD_REF:-d617bbd}
BUILD=${BENCH_BUILD:-1}
PORT=${BENCH_PORT:-54790}
DURATION=${BENCH_DURATION:-10}
ROUNDS=${BENCH_ROUNDS:-3}
CLIENTS_LIST=${BENCH_CLIENTS:-32 64}
JOBS=${BENCH_JOBS:-2}
SAMPLE_MS=${BENCH_SAMPLE_MS:-10}
OLD_SIZES=${BENCH_OLD_SIZES:-1 64 1000}
NEW_SIZES=${BENCH_NEW_SIZES:-1 64 1000 100000 1000000}
VIEW_SIZES=${BENCH_VIEW_SIZES:-1000 100000}
CREATE_OLD=${BENCH_CREATE_OLD:-1000}
CREATE_NEW=${BENCH_CREATE_NEW:-10000}
COMMIT_SIZES=${BENCH_COMMIT_SIZES:-1000 2000 4000}
VALUE_CALLS=${BENCH_VALUE_CALLS:-10000}
VALUE_ROUNDS=${BENCH_VALUE_ROUNDS:-5}
COMPACT_WAIT=${BENCH_COMPACT_WAIT:-120}
DISK_GB=${BENCH_DISK_GB:-12}
SKIP=${BENCH_SKIP:-}
KEEP=${BENCH_KEEP:-0}
MAX_CONNECTIONS=200
ISOLATIONS=${BENCH_ISOLATIONS:-rc rr}
MODES=${BENCH_MODES:-simple prepared}
SERVERS=(old new)
BATCH=100000 # counters created, or written, per transaction

for v in PORT DURATION ROUNDS JOBS SAMPLE_MS CREATE_OLD CREATE_NEW VALUE_CALLS \
  VALUE_ROUNDS COMPACT_WAIT DISK_GB; do
  [[ ${!v} =~ ^[1-9][0-9]*$ ]] || { echo "BENCH_$v must be a positive integer" >&2; exit 2; }
done
for n in $CLIENTS_LIST $OLD_SIZES $NEW_SIZES $VIEW_SIZES $COMMIT_SIZES; do
  [[ $n =~ ^[1-9][0-9]*$ ]] || { echo "'$n' is not a positive integer" >&2; exit 2; }
done
for i in $ISOLATIONS; do load_isolation_name "$i" >/dev/null || exit 2; done
for m in $MODES; do
  case $m in simple | extended | prepared) ;; *) echo "BENCH_MODES: '$m' is not a pgbench -M mode" >&2; exit 2 ;; esac
done
skipped() { [[ " $SKIP " == *" $1 "* ]]; }
broke=0
fail() {
  broke=1
  es_log "PROBLEM: $*"
}

# ---------------------------------------------------------------------------
# Installations and servers
# ---------------------------------------------------------------------------

# pg_copy DIR -- a copy of the packaged PostgreSQL 15 under DIR; prints its bin
pg_copy() {
  local d=$1 p
  if [ ! -x "$d/usr/lib/postgresql/15/bin/postgres" ]; then
    [ "$(id -u)" = 0 ] || { es_log "set BENCH_OLD_BIN and BENCH_NEW_BIN (copies need root)"; exit 2; }
    es_log "copying PostgreSQL 15 to $d"
    for p in usr/lib/postgresql/15 usr/share/postgresql/15 usr/include/postgresql; do
      mkdir -p "$d/$(dirname "$p")"
      cp -a "/$p" "$d/$p"
    done
  fi
  echo "$d/usr/lib/postgresql/15/bin"
}

es_install_packages
OLD_BIN=${BENCH_OLD_BIN:-}
NEW_BIN=${BENCH_NEW_BIN:-}
[ -n "$OLD_BIN" ] || OLD_BIN=$(pg_copy "${ES_WORKDIR:-/tmp/event_stats}-pg-old")
[ -n "$NEW_BIN" ] || NEW_BIN=$(pg_copy "${ES_WORKDIR:-/tmp/event_stats}-pg-new")
[ "$(realpath "$OLD_BIN")" != "$(realpath "$NEW_BIN")" ] ||
  { es_log "BENCH_OLD_BIN and BENCH_NEW_BIN must be different installations"; exit 2; }

NEW_DESC="$(git -C "$ES_ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')"
[ -z "$(git -C "$ES_ROOT" status --porcelain --untracked-files=no 2>/dev/null)" ] ||
  NEW_DESC+=" with uncommitted changes"
OLD_DESC="$(git -C "$ES_ROOT" rev-parse --short "$OLD_REF" 2>/dev/null || echo "$OLD_REF")"
if [ "$BUILD" = 1 ]; then
  src=$(mktemp -d "${ES_WORKDIR:-/tmp/event_stats}-old-src.XXXXXX")
  es_log "building OLD ($OLD_REF) into $OLD_BIN"
  git -C "$ES_ROOT" archive "$OLD_REF" | tar -x -C "$src"
  make -C "$src" -s PG_CONFIG="$OLD_BIN/pg_config" >/dev/null
  make -C "$src" -s install PG_CONFIG="$OLD_BIN/pg_config" >/dev/null
  rm -rf "$src"
  ES_PG_BIN=$NEW_BIN es_build_install
else
  OLD_DESC="installed in $OLD_BIN"
  NEW_DESC="installed in $NEW_BIN"
fi

ES_PG_BIN=$OLD_BIN
load_start_server "$PORT" "$MAX_CONNECTIONS" "$KEEP"
load_name old
ES_PG_BIN=$NEW_BIN
load_start_server "$((PORT + 1))" "$MAX_CONNECTIONS" "$KEEP"
load_name new
OUT=$(es_workdir) # results and pgbench logs
[ "$KEEP" = 1 ] || trap 'load_cleanup; rm -rf "$OUT"' EXIT

# on SERVER SQL -- load_sql on that server
on() {
  load_use "$1"
  load_sql "$2"
}
# ms SERVER SQL -- server-side milliseconds of one statement (EXPLAIN
# ANALYZE's execution time: the statement runs, without its commit)
ms() {
  on "$1" "EXPLAIN (ANALYZE, TIMING OFF, FORMAT JSON) $2" |
    grep -o '"Execution Time": [0-9.]*' | awk '{ print $3 }'
}
# fresh SERVER -- the extension dropped and created again: empty state tables
fresh() {
  on "$1" "DROP EXTENSION IF EXISTS event_stats CASCADE" >/dev/null
  on "$1" "CREATE EXTENSION event_stats" >/dev/null
}
state_bytes() {
  on "$1" "SELECT pg_total_relation_size('event_stats.counter_definitions')
                + pg_total_relation_size('event_stats.counter_shards')"
}
shard_rows() { on "$1" "SELECT count(*) FROM event_stats.counter_shards"; }
# order ROUND -- the servers in the order of that round (alternating)
order() { if (($1 % 2)); then echo new old; else echo old new; fi; }
label() { if [ "$1" = old ]; then echo "OLD"; else echo "NEW"; fi; }
nrows() { if [ "$1" = 1 ]; then echo "1 row"; else echo "$1 rows"; fi; }
# fmtn N -- 1234567 -> 1,234,567
fmtn() { awk -v n="$1" 'BEGIN { s = sprintf("%.0f", n); r = "";
  while (length(s) > 3) { r = "," substr(s, length(s) - 2) r; s = substr(s, 1, length(s) - 3) }
  print s r }'; }
# free_bytes -- free space where the servers keep their data
free_bytes() { df -B1 --output=avail "$LOAD_DIR" | tail -1; }
# disk_ok SERVER BYTES -- true if BYTES fit: under BENCH_DISK_GB and half the free space
disk_ok() {
  load_use "$1"
  awk -v b="$2" -v g="$DISK_GB" -v f="$(free_bytes)" 'BEGIN { exit !(b < g * 2^30 && b < f / 2) }'
}
mb() { awk -v b="$1" 'BEGIN { printf "%.1f MB", b / 2^20 }'; }

for s in "${SERVERS[@]}"; do
  load_use "$s"
  load_setup >/dev/null
  load_psql <<'SQL'
-- The wait-event sampler: one sample of the states of pgbench's backends
-- every `every` seconds for `secs` seconds, into the caller's temporary
-- table bench_samples; commits between samples so that it holds no snapshot.
CREATE PROCEDURE bench_sample(secs float8, every float8) LANGUAGE plpgsql AS $$
DECLARE
    t_end timestamptz := clock_timestamp() + make_interval(secs => secs);
BEGIN
    WHILE clock_timestamp() < t_end LOOP
        PERFORM pg_stat_clear_snapshot();
        INSERT INTO bench_samples
            SELECT CASE WHEN wait_event IS NOT NULL THEN wait_event_type || ':' || wait_event
                        WHEN state = 'active' THEN 'running'
                        ELSE coalesce(state, 'unknown') END
              FROM pg_stat_activity
             WHERE application_name = 'pgbench' AND backend_type = 'client backend'
            UNION ALL SELECT '#samples';
        COMMIT;
        PERFORM pg_sleep(every);
    END LOOP;
END $$;
SQL
done
PG_VERSION=$(on new "SHOW server_version")
OLD_VERSION=$(on old "SELECT extversion FROM pg_extension WHERE extname = 'event_stats'")
NEW_VERSION=$(on new "SELECT extversion FROM pg_extension WHERE extname = 'event_stats'")
SHARDS_OLD=$(on old "SELECT shards FROM event_stats.counters WHERE name = 'events_total'")
SHARDS_NEW=$(on new "SELECT shards FROM event_stats.counters WHERE name = 'events_total'")
es_log "OLD: $OLD_DESC, extension $OLD_VERSION; NEW: $NEW_DESC, extension $NEW_VERSION"

# ---------------------------------------------------------------------------
# 4 and 5. pgbench, with the wait-event sampler
# ---------------------------------------------------------------------------
RESULTS="$OUT/load.tsv"
SAMPLES="$OUT/samples.tsv"
printf 'server\tclients\tiso\tmode\tvariant\tround\ttps\tcommitted\tfailed\taborted\trc\trows\tdelta\texact\n' >"$RESULTS"
printf 'server\tclients\tiso\tmode\tvariant\tround\twhat\tn\n' >"$SAMPLES"
VARIANTS=(a c)

# load_cell_run SERVER CLIENTS ISO MODE VARIANT ROUND
load_cell_run() {
  local s=$1 clients=$2 iso=$3 mode=$4 variant=$5 round=$6 log before after rows exact
  local key="${s}_${clients}_${iso}_${mode}_${variant}_$round" secs sampler out
  load_use "$s"
  log="$OUT/run_$key.log"
  LOAD_ROW_TABLES="" load_reset events >/dev/null
  before=0
  [ "$variant" = a ] || before=$(load_sql "SELECT event_stats.value('events_total')")
  # the sampler: from 1 s after the start to 1 s before the end
  secs=$((DURATION > 3 ? DURATION - 2 : 1))
  {
    sleep 1
    {
      echo "CREATE TEMP TABLE bench_samples (what text);"
      echo "CALL bench_sample($secs, $SAMPLE_MS / 1000.0);"
      echo "COPY (SELECT what, count(*) FROM bench_samples GROUP BY what) TO STDOUT;"
    } | es_psql "$LOAD_DIR" "$LOAD_PORT" -At
  } >"$OUT/samples_$key.txt" 2>&1 &
  sampler=$!
  LOAD_PGBENCH_ARGS="-M $mode" load_run "$log" "$clients" "$JOBS" "$DURATION" \
    "$LOAD_DIR/bench_${iso}_$variant.sql"
  wait "$sampler" || fail "the sampler failed: $(head -3 "$OUT/samples_$key.txt")"
  awk -F'\t' -v p="$s	$clients	$iso	$mode	$variant	$round" 'NF == 2 { print p "\t" $1 "\t" $2 }' \
    "$OUT/samples_$key.txt" >>"$SAMPLES"
  out=$(load_sql "SELECT count(*), $(if [ "$variant" = a ]; then echo 0; else echo "event_stats.value('events_total')"; fi) FROM events")
  read -r rows after <<<"$out"
  exact=yes
  [ "$rows" = "$LOAD_OK" ] || exact=no
  [ "$variant" = a ] || [ "$((after - before))" = "$rows" ] || exact=no
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$s" "$clients" "$iso" "$mode" \
    "$variant" "$round" "$LOAD_TPS" "$LOAD_OK" "$LOAD_FAILED" "$LOAD_ABORTED" "$LOAD_RC" \
    "$rows" "$((after - before))" "$exact" >>"$RESULTS"
  es_log "$(printf '%s %2s clients %s %-8s (%s) round %s/%s: %s, exact: %s' "$(label "$s")" \
    "$clients" "$iso" "$mode" "$variant" "$round" "$ROUNDS" "$(load_describe)" "$exact")"
  [ "$exact" = yes ] || fail "not exact: $rows rows, $LOAD_OK committed, counter +$((after - before))"
  load_check_clean "$log" "$key" || broke=1
  if [ "$variant" = c ] && [ "$LOAD_FAILED" != 0 ]; then
    fail "$key: $LOAD_FAILED failed transactions"
    load_show_errors "$log"
  fi
}

if ! skipped load; then
  for s in "${SERVERS[@]}"; do
    load_use "$s"
    for iso in $ISOLATIONS; do
      for v in "${VARIANTS[@]}"; do load_variant_script "bench_${iso}_$v" "$iso" "$v" >/dev/null; done
    done
  done
  # the four runs of a round: (server, variant), rotating
  RUNS=("old a" "new c" "new a" "old c")
  es_log "pgbench: clients {$CLIENTS_LIST} x {$ISOLATIONS} x {$MODES}, $ROUNDS rounds" \
    "of ${RUNS[*]}, $DURATION s each"
  for clients in $CLIENTS_LIST; do
    for iso in $ISOLATIONS; do
      for mode in $MODES; do
        for ((r = 0; r < ROUNDS; r++)); do
          for ((k = 0; k < ${#RUNS[@]}; k++)); do
            read -r s v <<<"${RUNS[(r + k) % ${#RUNS[@]}]}"
            load_cell_run "$s" "$clients" "$iso" "$mode" "$v" "$((r + 1))"
          done
        done
      done
    done
  done
fi

# ---------------------------------------------------------------------------
# 1 and 3. Space per counter, create_counter(), the counters view, commits
# ---------------------------------------------------------------------------
SIZES="$OUT/sizes.tsv"
printf 'server\tn\tcreate_ms\tbytes_created\tbytes_written\trows_created\trows_written\tview_created_ms\tview_written_ms\n' >"$SIZES"

# create_many SERVER FROM TO PREFIX -- creates counters PREFIX<FROM..TO>, in
# transactions of at most BATCH; prints the server-side milliseconds
create_many() {
  local s=$1 from=$2 to=$3 prefix=$4 a b total=0 t
  for ((a = from; a <= to; a += BATCH)); do
    b=$((a + BATCH - 1 < to ? a + BATCH - 1 : to))
    t=$(ms "$s" "SELECT count(event_stats.create_counter('$prefix' || g)) FROM generate_series($a, $b) g")
    total=$(awk -v x="$total" -v y="$t" 'BEGIN { print x + y }')
  done
  echo "$total"
}
# write_many SERVER FROM TO PREFIX -- one session increments each counter
# once, in transactions of at most BATCH counters
write_many() {
  local s=$1 from=$2 to=$3 prefix=$4 a b
  load_use "$s"
  for ((a = from; a <= to; a += BATCH)); do
    b=$((a + BATCH - 1 < to ? a + BATCH - 1 : to))
    echo "SELECT count(event_stats.increment(('$prefix' || g)::event_stats.counter)) FROM generate_series($a, $b) g;"
  done | load_psql >/dev/null
}
# view_ms SERVER -- median of 3 reads of the counters view, server-side
view_ms() {
  local ts=() i
  for i in 1 2 3; do ts+=("$(ms "$1" "SELECT count(value) FROM event_stats.counters")"); done
  load_median "${ts[@]}"
}
is_in() { [[ " $2 " == *" $1 "* ]]; }

# size_step SERVER N
size_step() {
  local s=$1 n=$2 create bc bw rc rw vc=- vw=- per need
  # the largest size measured so far predicts this one's disk
  per=$(awk -F'\t' -v s="$s" 'NR > 1 && $1 == s && $2 >= m { m = $2; p = $5 / $2 } END { print p + 0 }' "$SIZES")
  need=$(awk -v p="$per" -v n="$n" 'BEGIN { printf "%.0f", 1.2 * p * n }')
  if ! disk_ok "$s" "$need"; then
    es_log "$(label "$s") $n counters: not measured, would need about $(mb "$need") (BENCH_DISK_GB=$DISK_GB, free $(mb "$(free_bytes)"))"
    return 0
  fi
  fresh "$s"
  create=$(create_many "$s" 1 "$n" s)
  bc=$(state_bytes "$s")
  rc=$(shard_rows "$s")
  is_in "$n" "$VIEW_SIZES" && vc=$(view_ms "$s")
  write_many "$s" 1 "$n" s
  bw=$(state_bytes "$s")
  rw=$(shard_rows "$s")
  is_in "$n" "$VIEW_SIZES" && vw=$(view_ms "$s")
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$s" "$n" "$create" "$bc" "$bw" "$rc" "$rw" "$vc" "$vw" >>"$SIZES"
  es_log "$(label "$s") $n counters: created in $create ms, $((bc / n)) bytes/counter ($rc shard rows);" \
    "written once: $((bw / n)) bytes/counter ($rw shard rows); view $vc / $vw ms"
  on "$s" "SELECT sum(event_stats.value(counter)) = $n FROM event_stats.counters" | grep -qx t ||
    fail "$(label "$s") $n counters: the values do not add up to $n"
}

CREATES="$OUT/creates.tsv"
COMMITS="$OUT/commits.tsv"
printf 'server\tn\tround\tms\n' >"$CREATES"
printf 'server\tn\tround\tcommit\tms\n' >"$COMMITS"

# commit_ms SERVER PREFIX N -- in one session, two transactions each
# incrementing counters PREFIX1..PREFIXN once; prints the two COMMIT times
commit_ms() {
  load_use "$1"
  {
    printf '%s\n' '\timing on'
    for i in 1 2; do
      echo 'BEGIN;'
      echo "SELECT count(event_stats.increment(('$2' || g)::event_stats.counter)) FROM generate_series(1, $3) g;"
      printf '%s\n' '\echo @commit'
      echo 'COMMIT;'
    done
  } | load_psql | awk '/^@commit/ { t = 1; next } t && /^Time: / { printf "%s ", $2; t = 0 }'
}

if ! skipped storage; then
  # shellcheck disable=SC2086 # lists of numbers
  all_sizes=$(printf '%s\n' $OLD_SIZES $NEW_SIZES | sort -n -u)
  i=0
  for n in $all_sizes; do
    for s in $(order "$i"); do
      if { [ "$s" = old ] && is_in "$n" "$OLD_SIZES"; } || { [ "$s" = new ] && is_in "$n" "$NEW_SIZES"; }; then
        size_step "$s" "$n"
      fi
    done
    i=$((i + 1))
  done

  es_log "create_counter(): OLD x $CREATE_OLD, NEW x $CREATE_OLD and x $CREATE_NEW, $ROUNDS rounds"
  for ((r = 1; r <= ROUNDS; r++)); do
    for s in $(order "$r"); do
      for n in $CREATE_OLD $CREATE_NEW; do
        [ "$s" = old ] && [ "$n" != "$CREATE_OLD" ] && continue
        fresh "$s"
        t=$(create_many "$s" 1 "$n" s)
        printf '%s\t%s\t%s\t%s\n' "$s" "$n" "$r" "$t" >>"$CREATES"
        es_log "  round $r: $(label "$s") create_counter() x $n: $t ms"
        [ "$CREATE_OLD" != "$CREATE_NEW" ] || break
      done
    done
  done

  # commits: OLD's rows exist from the start, so one set of the largest size
  # serves every size and round; NEW gets fresh counters for every commit
  # pair, so that its first commit creates their rows
  # shellcheck disable=SC2086 # a list of numbers
  max_commit=$(printf '%s\n' $COMMIT_SIZES | sort -n | tail -1)
  commit_ok=()
  for s in "${SERVERS[@]}"; do
    fresh "$s"
    per=$(awk -F'\t' -v s="$s" 'NR > 1 && $1 == s && $2 >= m { m = $2; p = $5 / $2 } END { print p + 0 }' "$SIZES")
    need=$(awk -v p="$per" -v n="$max_commit" 'BEGIN { printf "%.0f", 1.2 * p * n }')
    if [ "$s" = old ] && ! disk_ok old "$need"; then
      es_log "OLD commits: not measured, $max_commit counters would need about $(mb "$need")"
      continue
    fi
    commit_ok+=("$s")
    [ "$s" = old ] && create_many old 1 "$max_commit" k >/dev/null
  done
  es_log "commits of one transaction incrementing {$COMMIT_SIZES} counters, $ROUNDS rounds"
  for ((r = 1; r <= ROUNDS; r++)); do
    for s in $(order "$r"); do
      is_in "$s" "${commit_ok[*]}" || continue
      for n in $COMMIT_SIZES; do
        prefix=k
        if [ "$s" = new ]; then
          prefix="k${r}_${n}_"
          create_many new 1 "$n" "$prefix" >/dev/null
        fi
        read -r t1 t2 <<<"$(commit_ms "$s" "$prefix" "$n")"
        printf '%s\t%s\t%s\t1\t%s\n%s\t%s\t%s\t2\t%s\n' "$s" "$n" "$r" "$t1" "$s" "$n" "$r" "$t2" >>"$COMMITS"
        es_log "  round $r: $(label "$s") $n counters: COMMIT $t1 ms, again $t2 ms"
      done
    done
  done
fi

# ---------------------------------------------------------------------------
# 2. value() of a counter 64 backends wrote, before and after compaction
# ---------------------------------------------------------------------------
VALUES="$OUT/value.tsv"
printf 'server\tphase\tround\tus\trows\n' >"$VALUES"
WRITERS=64
# rows_of SERVER -- shard rows of counter v64 (OLD: those written)
rows_of() {
  on "$1" "SELECT count(*) FROM event_stats.counter_shards s
              JOIN event_stats.counter_definitions d ON d.id = s.counter_id
             WHERE d.name = 'v64' $([ "$1" = old ] && echo 'AND s.value <> 0')"
}
all_rows_of() {
  on "$1" "SELECT count(*) FROM event_stats.counter_shards s
              JOIN event_stats.counter_definitions d ON d.id = s.counter_id WHERE d.name = 'v64'"
}
# value_round PHASE ROUND -- both servers, alternating, per call microseconds
value_round() {
  local s with without us
  for s in $(order "$2"); do
    with=$(ms "$s" "SELECT count(event_stats.value('v64')) FROM generate_series(1, $VALUE_CALLS)")
    without=$(ms "$s" "SELECT count(g) FROM generate_series(1, $VALUE_CALLS) g")
    us=$(awk -v a="$with" -v b="$without" -v n="$VALUE_CALLS" 'BEGIN { printf "%.2f", (a - b) * 1000 / n }')
    printf '%s\t%s\t%s\t%s\t%s\n' "$s" "$1" "$2" "$us" "$(all_rows_of "$s")" >>"$VALUES"
  done
}
HAS_COMPACTION=no
COMPACT_NOTE=""
if ! skipped value; then
  # NEW: no compaction until "before" is measured
  if [ "$(on new "SELECT count(*) FROM pg_settings WHERE name = 'event_stats.compaction'")" = 1 ]; then
    on new "ALTER SYSTEM SET event_stats.compaction = off" >/dev/null
    on new "SELECT pg_reload_conf()" >/dev/null
  fi
  for s in "${SERVERS[@]}"; do
    fresh "$s"
    on "$s" "SELECT event_stats.create_counter('v64')" >/dev/null
    load_use "$s"
    # each client sleeps first, so that all are connected before any commits
    printf '\\sleep 1 s\nBEGIN;\nSELECT event_stats.increment('"'v64'"');\nCOMMIT;\n' >"$LOAD_DIR/v64.sql"
    chmod 644 "$LOAD_DIR/v64.sql"
    es_pgbench "$LOAD_DIR" "$LOAD_PORT" -n -c "$WRITERS" -j "$JOBS" -t 1 -f "$LOAD_DIR/v64.sql" \
      >"$OUT/v64_$s.log" 2>&1 || fail "pgbench of v64 on $(label "$s"): $(tail -3 "$OUT/v64_$s.log")"
    [ "$(on "$s" "SELECT event_stats.value('v64')")" = "$WRITERS" ] || fail "$(label "$s"): value('v64') is not $WRITERS"
    on "$s" "VACUUM event_stats.counter_shards" >/dev/null
    es_log "$(label "$s"): v64 written by $(rows_of "$s") backend slots, $(all_rows_of "$s") shard rows"
  done
  WRITTEN_OLD=$(rows_of old)
  WRITTEN_NEW=$(rows_of new)
  es_log "value(): $VALUE_ROUNDS rounds of $VALUE_CALLS calls"
  for s in "${SERVERS[@]}"; do ms "$s" "SELECT count(event_stats.value('v64')) FROM generate_series(1, 100)" >/dev/null; done
  for ((r = 1; r <= VALUE_ROUNDS; r++)); do value_round before "$r"; done
  if [ "$(on new "SELECT count(*) FROM pg_settings WHERE name = 'event_stats.compaction_naptime'")" = 1 ]; then
    HAS_COMPACTION=yes
    load_use new
    {
      [ "$(on new "SELECT count(*) FROM pg_settings WHERE name = 'event_stats.compaction'")" = 1 ] &&
        echo "ALTER SYSTEM SET event_stats.compaction = on;"
      echo "ALTER SYSTEM SET event_stats.compaction_naptime = 1;"
      echo "SELECT pg_reload_conf();"
    } | load_psql >/dev/null
    start=$(date +%s)
    rows=$(all_rows_of new)
    last_change=0
    # poll until the rows reach 1, or have shrunk and then not for 10 s, or
    # time runs out
    while (($(date +%s) - start < COMPACT_WAIT)) && [ "$rows" -gt 1 ] &&
      { [ "$last_change" = 0 ] || (($(date +%s) - last_change < 10)); }; do
      sleep 1
      now_rows=$(all_rows_of new)
      if [ "$now_rows" != "$rows" ]; then rows=$now_rows; last_change=$(date +%s); fi
    done
    COMPACT_NOTE="after event_stats.compaction_naptime = 1: $(nrows "$(all_rows_of new)") after $(($(date +%s) - start)) s"
    es_log "NEW: $COMPACT_NOTE"
    [ "$(on new "SELECT event_stats.value('v64')")" = "$WRITERS" ] || fail "NEW: value('v64') changed by compaction"
    on new "VACUUM event_stats.counter_shards" >/dev/null
    for ((r = 1; r <= VALUE_ROUNDS; r++)); do value_round after "$r"; done
  else
    es_log "NEW has no event_stats.compaction_naptime: value() before compaction only"
  fi
fi

# ---------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------
# col FILE AWK-CONDITION FIELD -- the values of FIELD in the rows matching
col() { awk -F'\t' "NR > 1 && ($2) { print \$$3 }" "$1"; }
med() { load_median "$@"; }
mcol() {
  local v
  mapfile -t v < <(col "$@")
  load_median "${v[@]}"
}
ratio() { load_ratio "$@"; }
f0() { awk -v x="$1" 'BEGIN { printf "%.0f", x }'; }
f1() { awk -v x="$1" 'BEGIN { printf "%.1f", x }'; }
f2() { awk -v x="$1" 'BEGIN { printf "%.2f", x }'; }
ms_or() { if [ -n "$1" ]; then echo "$1 ms"; else echo "not measured"; fi; }
# commit_cell MS N -- "MS ms (µs per counter)", or "not measured" for 0
commit_cell() {
  if [ "$1" = 0 ]; then echo "not measured"; else
    awk -v t="$1" -v n="$2" 'BEGIN { printf "%.1f ms (%.1f µs/counter)", t, t * 1000 / n }'
  fi
}

echo
echo "## Counter storage, OLD (release $OLD_VERSION, $OLD_DESC) vs NEW (extension $NEW_VERSION, $NEW_DESC)"
echo
echo "PostgreSQL $PG_VERSION, $(nproc) CPU cores shared by pgbench and both servers, fsync on," \
  "max_connections = $MAX_CONNECTIONS (OLD: $SHARDS_OLD shard rows per counter; NEW: at most" \
  "$SHARDS_NEW), shared_buffers 128 MB. Both servers ran side by side; every timed" \
  "measurement alternates between them. $(date -u +%Y-%m-%d)."

if ! skipped storage; then
  echo
  echo "### 1. Space per counter (state tables: definitions + shards, indexes included, / counters)"
  echo
  echo "| counters | OLD created | OLD written once | NEW created | NEW written once | NEW/OLD written | shard rows OLD / NEW (written) |"
  echo "|---:|---:|---:|---:|---:|---:|---|"
  # shellcheck disable=SC2086 # lists of numbers
  all_sizes=$(printf '%s\n' $OLD_SIZES $NEW_SIZES | sort -n -u)
  for n in $all_sizes; do
    cells=() rows=()
    declare -A bw=()
    for s in "${SERVERS[@]}"; do
      line=$(awk -F'\t' -v s="$s" -v n="$n" 'NR > 1 && $1 == s && $2 == n' "$SIZES")
      if [ -n "$line" ]; then
        IFS=$'\t' read -r _ _ _ bc b rc rw _ _ <<<"$line"
        cells+=("$(fmtn "$((bc / n))") B" "$(fmtn "$((b / n))") B")
        bw[$s]=$((b / n))
        rows+=("$(fmtn "$rw")")
      else
        # the largest measured size below n: an extrapolation, labelled
        line=$(awk -F'\t' -v s="$s" -v n="$n" 'NR > 1 && $1 == s && $2 < n && $2 >= m { m = $2; l = $0 } END { print l }' "$SIZES")
        if [ -n "$line" ]; then
          IFS=$'\t' read -r _ m _ bc b _ _ _ _ <<<"$line"
          cells+=("~$(fmtn "$((bc / m))") B (extrapolated from $(fmtn "$m"), not measured: ~$(fmtn "$(awk -v x="$bc" -v m="$m" -v n="$n" 'BEGIN { print x / m * n / 2^30 }')") GB)"
            "~$(fmtn "$((b / m))") B (extrapolated)")
          bw[$s]=$((b / m))
          rows+=("not measured")
        else
          cells+=("not measured" "not measured")
          bw[$s]=0
          rows+=("-")
        fi
      fi
    done
    echo "| $(fmtn "$n") | ${cells[0]} | ${cells[1]} | ${cells[2]} | ${cells[3]} | $(ratio "${bw[new]}" "${bw[old]}" 4) | ${rows[0]} / ${rows[1]} |"
    unset bw
  done
  echo
  echo "Each size from a freshly created extension; \"written once\": one session incremented every counter" \
    "once (transactions of up to $(fmtn $BATCH) counters). pg_total_relation_size, all forks."
  echo
  echo "create_counter() time within those steps (one run each, server-side):" \
    "$(awk -F'\t' 'NR > 1 { printf "%s%s %s: %.0f ms", sep, ($1 == "old" ? "OLD" : "NEW"), $2, $3; sep = "; " }' "$SIZES")."

  echo
  echo "### 3. Creating counters, the counters view, committing many counters"
  echo
  echo "| measure | OLD | NEW | NEW/OLD |"
  echo "|---|---:|---:|---:|"
  co=$(mcol "$CREATES" "\$1 == \"old\" && \$2 == $CREATE_OLD" 4)
  cn1=$(mcol "$CREATES" "\$1 == \"new\" && \$2 == $CREATE_OLD" 4)
  cn=$(mcol "$CREATES" "\$1 == \"new\" && \$2 == $CREATE_NEW" 4)
  echo "| create_counter() x $(fmtn "$CREATE_OLD") | $(f0 "$co") ms ($(f1 "$(awk -v t="$co" -v n="$CREATE_OLD" 'BEGIN { print t * 1000 / n }')") µs each) | $(f1 "$cn1") ms ($(f1 "$(awk -v t="$cn1" -v n="$CREATE_OLD" 'BEGIN { print t * 1000 / n }')") µs each) | $(ratio "$cn1" "$co" 3) |"
  if [ "$CREATE_NEW" != "$CREATE_OLD" ]; then
    echo "| create_counter() x $(fmtn "$CREATE_NEW") | not measured (would write ~$(awk -v b="$CREATE_NEW" -v x="$(awk -F'\t' 'NR > 1 && $1 == "old" && $2 >= m { m = $2; p = $4 / $2 } END { print p + 0 }' "$SIZES")" 'BEGIN { printf "%.0f", x * b / 2^30 }') GB) | $(f1 "$cn") ms ($(f1 "$(awk -v t="$cn" -v n="$CREATE_NEW" 'BEGIN { print t * 1000 / n }')") µs each) | - |"
  fi
  for n in $VIEW_SIZES; do
    for st in created written; do
      fi_=$([ $st = created ] && echo 8 || echo 9)
      vo=$(col "$SIZES" "\$1 == \"old\" && \$2 == $n" "$fi_")
      vn=$(col "$SIZES" "\$1 == \"new\" && \$2 == $n" "$fi_")
      echo "| counters view over $(fmtn "$n") counters, $st$([ $st = written ] && echo ' once') | $(ms_or "$vo") | $(ms_or "$vn") | $(if [ -n "$vo" ] && [ -n "$vn" ]; then ratio "$vn" "$vo" 4; else echo -; fi) |"
    done
  done
  # shellcheck disable=SC2086 # a list of numbers
  min_commit=$(printf '%s\n' $COMMIT_SIZES | sort -n | head -1)
  for n in $COMMIT_SIZES; do
    for c in 1 2; do
      to=$(mcol "$COMMITS" "\$1 == \"old\" && \$2 == $n && \$4 == $c" 5)
      tn=$(mcol "$COMMITS" "\$1 == \"new\" && \$2 == $n && \$4 == $c" 5)
      desc=$([ $c = 1 ] && echo "first commit (NEW: inserts the rows)" || echo "second commit (updates)")
      echo "| COMMIT incrementing $(fmtn "$n") counters, $desc | $(commit_cell "$to" "$n") | $(commit_cell "$tn" "$n") | $(ratio "$tn" "$to") |"
    done
  done
  if [ "$min_commit" != "$max_commit" ]; then
    for c in 1 2; do
      sl=()
      for s in "${SERVERS[@]}"; do
        a=$(mcol "$COMMITS" "\$1 == \"$s\" && \$2 == $min_commit && \$4 == $c" 5)
        b=$(mcol "$COMMITS" "\$1 == \"$s\" && \$2 == $max_commit && \$4 == $c" 5)
        if [ "$a" = 0 ] || [ "$b" = 0 ]; then sl+=("-"); else
          sl+=("$(awk -v a="$a" -v b="$b" -v m="$min_commit" -v x="$max_commit" 'BEGIN { printf "%.1f", (b - a) * 1000 / (x - m) }')"); fi
      done
      echo "| COMMIT, each counter beyond $(fmtn "$min_commit") up to $(fmtn "$max_commit"), $([ $c = 1 ] && echo first || echo second) commit | ${sl[0]} µs | ${sl[1]} µs | $(ratio "${sl[1]}" "${sl[0]}") |"
    done
  fi
  echo
  echo "Medians of $ROUNDS rounds, the servers' order alternating. create_counter() and the view:" \
    "server-side (EXPLAIN ANALYZE execution time), view = median of 3 reads of" \
    "\`SELECT count(value) FROM event_stats.counters\` in the states of table 1." \
    "COMMIT: psql's timing of COMMIT after \`SELECT count(event_stats.increment(...)) FROM generate_series(1, n)\`;" \
    "OLD updates rows created with the counters ($(fmtn "$max_commit") counters, shared by every size and round)," \
    "NEW got new counters for every round and size. All commit rounds (ms):" \
    "$(awk -F'\t' 'NR > 1 { k = ($1 == "old" ? "OLD" : "NEW") " " $2 " #" $4; v[k] = v[k] (v[k] == "" ? "" : ",") $5; if (!(k in o)) { o[k] = ++n; key[n] = k } } END { for (i = 1; i <= n; i++) printf "%s%s: %s", (i > 1 ? "; " : ""), key[i], v[key[i]] }' "$COMMITS")."
fi

if ! skipped value; then
  echo
  echo "### 2. value() of a counter $WRITERS backends wrote (µs per call, server-side)"
  echo
  echo "| | OLD | NEW | NEW/OLD |"
  echo "|---|---:|---:|---:|"
  vo=$(mcol "$VALUES" '$1 == "old" && $2 == "before"' 4)
  vn=$(mcol "$VALUES" '$1 == "new" && $2 == "before"' 4)
  ro=$(mcol "$VALUES" '$1 == "old" && $2 == "before"' 5)
  rn=$(mcol "$VALUES" '$1 == "new" && $2 == "before"' 5)
  echo "| before compaction | $(f2 "$vo") µs ($(nrows "$ro")) | $(f2 "$vn") µs ($(nrows "$rn")) | $(ratio "$vn" "$vo") |"
  if [ "$HAS_COMPACTION" = yes ]; then
    vo=$(mcol "$VALUES" '$1 == "old" && $2 == "after"' 4)
    vn=$(mcol "$VALUES" '$1 == "new" && $2 == "after"' 4)
    ro=$(mcol "$VALUES" '$1 == "old" && $2 == "after"' 5)
    rn=$(mcol "$VALUES" '$1 == "new" && $2 == "after"' 5)
    echo "| after compaction (OLD has none) | $(f2 "$vo") µs ($(nrows "$ro")) | $(f2 "$vn") µs ($(nrows "$rn")) | $(ratio "$vn" "$vo") |"
  else
    echo "| after compaction | - | not measured: this build has no event_stats.compaction_naptime | - |"
  fi
  echo
  echo "$WRITERS pgbench clients (\`-c $WRITERS -t 1\`, each connected before any committed) each committed" \
    "one increment: $WRITTEN_OLD (OLD) / $WRITTEN_NEW (NEW) backend slots wrote it; rows = shard rows of the" \
    "counter when measured (after VACUUM). Per call: \`SELECT count(event_stats.value('v64')) FROM" \
    "generate_series(1, $VALUE_CALLS)\` minus the same scan without the call, EXPLAIN ANALYZE," \
    "median of $VALUE_ROUNDS rounds (OLD/NEW alternating): $(awk -F'\t' 'NR > 1 { k = ($1 == "old" ? "OLD" : "NEW") " " $2; v[k] = v[k] (v[k] == "" ? "" : ",") $4; if (!(k in o)) { o[k] = ++n; key[n] = k } } END { for (i = 1; i <= n; i++) printf "%s%s: %s", (i > 1 ? "; " : ""), key[i], v[key[i]] }' "$VALUES")." \
    "${COMPACT_NOTE:+NEW $COMPACT_NOTE.}"
fi

if ! skipped load; then
  echo
  echo "### 4. pgbench: one-row INSERT transactions, median tps"
  echo
  echo "| clients | isolation | protocol | no counter OLD | no counter NEW | event_stats OLD | event_stats NEW | NEW/OLD event_stats | NEW/OLD no counter | event_stats/no counter OLD | event_stats/no counter NEW | failed OLD / NEW (event_stats) | exact |"
  echo "|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---|"
  for clients in $CLIENTS_LIST; do
    for iso in $ISOLATIONS; do
      for mode in $MODES; do
        sel="\$2 == $clients && \$3 == \"$iso\" && \$4 == \"$mode\""
        ao=$(mcol "$RESULTS" "$sel && \$1 == \"old\" && \$5 == \"a\"" 7)
        an=$(mcol "$RESULTS" "$sel && \$1 == \"new\" && \$5 == \"a\"" 7)
        co=$(mcol "$RESULTS" "$sel && \$1 == \"old\" && \$5 == \"c\"" 7)
        cn=$(mcol "$RESULTS" "$sel && \$1 == \"new\" && \$5 == \"c\"" 7)
        fo=$(col "$RESULTS" "$sel && \$1 == \"old\" && \$5 == \"c\"" 9 | awk '{ s += $1 } END { print s + 0 }')
        fn=$(col "$RESULTS" "$sel && \$1 == \"new\" && \$5 == \"c\"" 9 | awk '{ s += $1 } END { print s + 0 }')
        ex=$(col "$RESULTS" "$sel" 14 | awk '{ n++; if ($1 == "yes") k++ } END { printf "%d/%d", k, n }')
        echo "| $clients | $(load_isolation_name "$iso") | $mode | $(f0 "$ao") | $(f0 "$an") | $(f0 "$co") | $(f0 "$cn") | **$(ratio "$cn" "$co")** | $(ratio "$an" "$ao") | $(ratio "$co" "$ao") | $(ratio "$cn" "$an") | $fo / $fn | $ex |"
      done
    done
  done
  echo
  echo "pgbench -j $JOBS -T $DURATION --max-tries=1, $ROUNDS rounds per cell, the four runs" \
    "(OLD/NEW x no counter/event_stats) rotating; events emptied, vacuumed and checkpointed before each run." \
    "No counter: \`$(load_variant_sql a)\`; event_stats: \`$(load_variant_sql c)\`;" \
    "each in \`BEGIN ISOLATION LEVEL ...; ...; COMMIT\`. exact: runs in which rows = committed" \
    "transactions (= the counter's change)."
  echo
  echo "### 5. Where pgbench's backends were: pg_stat_activity every $SAMPLE_MS ms during the runs of 4"
  echo
  echo "| clients | server | transaction | samples | backend states | BufferContent | % of states | % of states inside the server | top waits inside the server |"
  echo "|---:|---|---|---:|---:|---:|---:|---:|---|"
  for clients in $CLIENTS_LIST; do
    for s in "${SERVERS[@]}"; do
      for v in a c; do
        awk -F'\t' -v c="$clients" -v s="$s" -v v="$v" -v S="$(label "$s")" \
          -v V="$([ $v = a ] && echo "no counter" || echo event_stats)" '
          NR > 1 && $2 == c && $1 == s && $5 == v {
            if ($7 == "#samples") { samples += $8; next }
            n[$7] += $8; total += $8
            if ($7 != "Client:ClientRead" && $7 != "idle" && $7 != "idle in transaction") inside += $8
          }
          END {
            bc = n["LWLock:BufferContent"] + 0
            # the top four states inside the server
            top = ""
            for (k = 0; k < 4; k++) {
              best = ""; bn = 0
              for (w in n) if (w != "Client:ClientRead" && w != "idle" && w != "idle in transaction" && !(w in used) && n[w] > bn) { best = w; bn = n[w] }
              if (best == "") break
              used[best] = 1
              top = top (top == "" ? "" : ", ") sprintf("%s %.1f%%", best, inside ? 100 * bn / inside : 0)
            }
            printf "| %s | %s | %s | %d | %d | %d | %.2f | %.2f | %s |\n", c, S, V, samples, total, bc,
              total ? 100 * bc / total : 0, inside ? 100 * bc / inside : 0, top
          }' "$SAMPLES"
      done
    done
  done
  echo
  echo "All isolation levels, protocols and rounds of 4 together. A backend state is one pgbench" \
    "backend in one sample; \"inside the server\": not waiting for the client (ClientRead, idle)." \
    "\"running\": active without a wait event (on CPU or runnable)."
fi
if ! skipped load; then
  echo
  echo "### Every pgbench run"
  echo
  echo '```'
  awk -F'\t' '{ printf "%-6s %-7s %-3s %-8s %-7s %-5s %10s %9s %6s %7s %3s %9s %9s %5s\n",
                  $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14 }' "$RESULTS"
  echo '```'
fi
echo
if [ "$broke" != 0 ]; then
  echo "bench: something went wrong (see the messages above); the figures are not trustworthy"
  exit 1
fi
echo "bench: ok"
