#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# test/bench_storage.sh -- what counters cost in storage and time, as the
# storage is today: the baseline the storage rework (lazily created, densely
# packed shard rows, compaction) is measured against.
#
# On a throwaway preloaded server with max_connections = 200 (so a counter
# has MaxBackends shard rows by default), prints one table:
#   - for 1, 64 and 1000 counters: the time create_counter() took for all of
#     them, and the size of the state tables (counter_definitions and
#     counter_shards with their indexes and TOAST) per counter, in bytes;
#   - value() of one counter that 64 sessions have written: server-side
#     time per call (10,000 calls in one statement);
#   - the counters view over the 1000 counters: time to read it;
#   - a transaction that increments 10, 100 and 1000 counters: commit time;
#     then the state tables per counter, each of the 1000 written once.
# Times are server-side (EXPLAIN ANALYZE's execution time, so without the
# commit) except the commits, which psql times.  About a minute.
# Usage: bash test/bench_storage.sh [PORT]
set -euo pipefail
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/bench/load.sh"

es_install_packages
es_build_install
load_start_server "${1:-54790}" 200 0
load_sql "CREATE EXTENSION event_stats" >/dev/null

# ms SQL -- server-side milliseconds of SQL (one statement), from EXPLAIN
# ANALYZE's execution time.
ms() {
  load_sql "EXPLAIN (ANALYZE, TIMING OFF, FORMAT JSON) $1" |
    grep -o '"Execution Time": [0-9.]*' | awk '{print $3}'
}

state_bytes() {
  load_sql "SELECT pg_total_relation_size('event_stats.counter_shards')
                 + pg_total_relation_size('event_stats.counter_definitions')"
}

printf '%-46s %14s\n' "measure" "value"
for n in 1 64 1000; do
  load_sql "SELECT event_stats.drop_counter(counter) FROM event_stats.counters" >/dev/null
  load_psql <<<"VACUUM FULL event_stats.counter_shards; VACUUM FULL event_stats.counter_definitions;"
  empty=$(state_bytes)
  t=$(ms "SELECT count(event_stats.create_counter('s' || g)) FROM generate_series(1, $n) g")
  bytes=$(state_bytes)
  printf '%-46s %14s\n' "create_counter() x $n, ms" "$t"
  printf '%-46s %14s\n' "state tables per counter ($n counters), bytes" $(((bytes - empty) / n))
done
shards=$(load_sql "SELECT shards FROM event_stats.counters LIMIT 1")
printf '%-46s %14s\n' "shard rows per counter (default)" "$shards"

# one counter written by 64 sessions
echo "SELECT event_stats.increment('s1');" >"$LOAD_DIR/inc.sql"
es_pgbench "$LOAD_DIR" "$LOAD_PORT" -n -c 64 -j 2 -t 20 -f "$LOAD_DIR/inc.sql" postgres >"$LOAD_DIR/inc.log" 2>&1 ||
  { cat "$LOAD_DIR/inc.log"; exit 1; }
written=$(load_sql "SELECT count(*) FROM event_stats.counter_shards s
                      JOIN event_stats.counter_definitions d ON d.id = s.counter_id
                     WHERE d.name = 's1' AND s.value <> 0")
t=$(ms "SELECT count(event_stats.value('s1')) FROM generate_series(1, 10000)")
printf '%-46s %14s\n' "value(), 64 sessions wrote it ($written shards), us" \
  "$(awk -v t="$t" 'BEGIN {printf "%.1f", t * 1000 / 10000}')"
t=$(ms "SELECT count(value) FROM event_stats.counters")
printf '%-46s %14s\n' "counters view, 1000 counters, ms" "$t"

# one transaction incrementing n counters: its commit
for n in 10 100 1000; do
  t=$( {
    echo '\timing on'
    echo 'BEGIN;'
    echo "SELECT count(event_stats.increment(('s' || g)::event_stats.counter)) FROM generate_series(1, $n) g;"
    echo 'COMMIT;'
  } | es_psql "$LOAD_DIR" "$LOAD_PORT" | grep '^Time' | tail -1 | awk '{print $2}')
  printf '%-46s %14s\n' "commit of a transaction incrementing $n, ms" "$t"
done
printf '%-46s %14s\n' "state tables per counter, 1000 written, bytes" $((($(state_bytes) - empty) / 1000))
