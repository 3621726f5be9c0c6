#!/usr/bin/env bash
# test/run_tests.sh -- every test of event_stats, from a fresh Debian 12 machine.
#
# Installs the OS packages it needs, builds (-Werror) and installs the
# extension, then, as an unprivileged user against throwaway servers:
#   1. pg_regress (sql/, expected/) on a server that preloads the library;
#   2. the isolation specs (test/isolation) on the same server;
#   3. pg_regress no_preload on a server that does not preload it;
#   4. the TAP tests (test/t), which start their own servers;
#   5. PostgreSQL's own regression and isolation suites, from Debian's
#      source package, without and with the preload (test/pg_suites.sh).
# Ends with one line "N passed, N failed" and exits non-zero on any failure.
set -uo pipefail
. "$(dirname "$0")/lib.sh"

PORT_PRELOAD=${ES_TEST_PORT:-54701}
PORT_PLAIN=$((PORT_PRELOAD + 1))

es_install_packages || exit 1
es_build_install || { echo "0 passed, 1 failed"; exit 1; }

work=$(es_workdir)
src="$work/src"
mkdir -p "$src"
tar -C "$ES_ROOT" --exclude=.git -cf - . | tar -C "$src" -xf -
[ "$(id -u)" = 0 ] && chown -R "$(es_test_user)" "$work"

cleanup() {
  es_stop_cluster "$work/preload"
  es_stop_cluster "$work/plain"
}
trap cleanup EXIT

mkdir -p "$work/preload" "$work/plain"
[ "$(id -u)" = 0 ] && chown "$(es_test_user)" "$work/preload" "$work/plain"
# Compaction off on the server of pg_regress and the isolation specs: they
# count shard rows and the shard table's tuple statistics, and wait for row
# locks, which folding cold rows into shard 0 would change while they run.
# (TAP test 019_compaction runs the workers on servers of its own.)
es_start_cluster "$work/preload" "$PORT_PRELOAD" yes "event_stats.compaction = off" ||
  { cat "$work/preload/server.log"; exit 1; }
es_start_cluster "$work/plain" "$PORT_PLAIN" no || { cat "$work/plain/server.log"; exit 1; }

passed=0
failed=0

# Adds up pg_regress's closing line ("All N tests passed." / "N of M tests
# failed."); a run that printed neither counts as one failure.
count_pg_regress() {
  local log=$1 line n m
  line=$(grep -E '^ *(All [0-9]+ tests passed|[0-9]+ of [0-9]+ tests (failed|passed))' "$log" | tail -1)
  if [[ $line =~ All\ ([0-9]+)\ tests\ passed ]]; then
    passed=$((passed + BASH_REMATCH[1]))
  elif [[ $line =~ ([0-9]+)\ of\ ([0-9]+)\ tests\ failed ]]; then
    n=${BASH_REMATCH[1]}; m=${BASH_REMATCH[2]}
    failed=$((failed + n)); passed=$((passed + m - n))
  else
    failed=$((failed + 1))
  fi
}

# Counts TAP test files by prove's per-file verdict lines.
count_prove() {
  local log=$1 ok bad
  ok=$(grep -cE '^test/t/.*\.pl \.+ ok' "$log")
  bad=$(grep -cE '^test/t/.*\.pl \.+ ' "$log")
  bad=$((bad - ok))
  [ "$ok" = 0 ] && [ "$bad" = 0 ] && bad=1
  passed=$((passed + ok)); failed=$((failed + bad))
}

run_make() {
  local log=$1 port=$2
  shift 2
  es_as_user make -C "$src" PG_CONFIG="$ES_PG_BIN/pg_config" \
    PGHOST="$work/$( [ "$port" = "$PORT_PLAIN" ] && echo plain || echo preload )" \
    PGPORT="$port" PGUSER=postgres "$@" >"$log" 2>&1
  cat "$log"
}

es_log "pg_regress"
run_make "$work/regress.log" "$PORT_PRELOAD" installcheck ISOLATION= TAP_TESTS=
count_pg_regress "$work/regress.log"
# the no_preload run below starts by deleting regression.diffs
[ -s "$src/regression.diffs" ] && cp "$src/regression.diffs" "$work/regress.diffs"

es_log "isolation specs"
run_make "$work/isolation.log" "$PORT_PRELOAD" installcheck REGRESS= TAP_TESTS=
count_pg_regress "$work/isolation.log"

es_log "pg_regress without shared_preload_libraries"
run_make "$work/no_preload.log" "$PORT_PLAIN" installcheck REGRESS=no_preload ISOLATION= TAP_TESTS=
count_pg_regress "$work/no_preload.log"

es_log "TAP tests"
run_make "$work/tap.log" "$PORT_PRELOAD" installcheck REGRESS= ISOLATION=
count_prove "$work/tap.log"

# PostgreSQL's own regression and isolation suites, without and with the
# preload: one test each, passed when both runs fail the same tests alike.
es_log "PostgreSQL's own suites"
bash "$ES_ROOT/test/pg_suites.sh" "$work/pg_suites" $((PORT_PRELOAD + 20)) >"$work/pg_suites.log" 2>&1
suites_status=$?
cat "$work/pg_suites.log"
# four verdicts (two suites, stages b and c), each a test; a run that ended
# early or failed without printing all four fails for the ones missing
suites_same=$(grep -c '^pg_suites: SAME' "$work/pg_suites.log")
suites_different=$(grep -c '^pg_suites: DIFFERENT' "$work/pg_suites.log")
if [ "$suites_status" != 0 ] || [ $((suites_same + suites_different)) != 4 ]; then
  suites_different=$((4 - suites_same))
  [ "$suites_different" -lt 1 ] && suites_different=1
  suites_same=$((4 - suites_different))
fi
passed=$((passed + suites_same)); failed=$((failed + suites_different))

for diffs in "$work"/regress.diffs "$src"/regression.diffs "$src"/test/isolation/output/regression.diffs; do
  [ -s "$diffs" ] && { echo "---- $diffs"; cat "$diffs"; }
done
if grep -qE '^test/t/.*\.pl \.+ (Failed|Dubious)' "$work/tap.log"; then
  for f in "$src"/tmp_check/log/regress_log_*; do
    echo "---- $f (last 60 lines)"; tail -60 "$f"
  done
fi

cleanup
trap - EXIT
[ "$failed" = 0 ] && rm -rf "$work"
echo "${passed} passed, ${failed} failed"
[ "$failed" = 0 ]
