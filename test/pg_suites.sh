#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# test/pg_suites.sh WORKDIR PORT -- PostgreSQL's own suites with event_stats.
#
# Fetches PostgreSQL 15's source with Debian's source package (adding a
# deb-src entry for the same archive as root), builds only pg_regress,
# isolationtester and the regression test library, and runs the core
# regression schedule and the isolation schedule three times:
#   (a) on a server without event_stats;
#   (b) on one that preloads it: (b) must fail exactly the tests (a) fails,
#       with identical differences.  Debian may serve a source a point
#       release older than the installed server, so the expected files
#       alone are no yardstick, (a) is;
#   (c) on one that preloads it, with event_stats and the test harness
#       extension event_stats_pgsuite (test/pg_suites/, installed into the
#       server's share directory for this run only) created in every test
#       database: every new permanent table is tracked, and value() is
#       checked against count(*) before each DROP and, for every tracked
#       table left, at the end.  No check may find a difference or fail,
#       and each test's output must equal (a)'s, but for the tests the
#       allow-list test/pg_suites/allowed_differences names, each with the
#       documented refusal (or harness object) that must show in it and
#       with exactly the differences recorded in test/pg_suites/expected/
#       (ES_PG_SUITES_ACCEPT=1 records them anew: read them before
#       committing).
#
# Prints two lines per suite, "pg_suites: SAME <suite>..." or
# "pg_suites: DIFFERENT <suite>..." followed by the differences, and exits
# non-zero if any differs or could not run.  ES_PG_SUITES_SOURCE names an
# unpacked source tree to use instead of downloading one.
set -uo pipefail
. "$(dirname "$0")/lib.sh"

work=$1
port=$2
mkdir -p "$work"

# --- the source ---------------------------------------------------------------

# Adds deb-src entries mirroring the deb ones (root only; once).
es_enable_deb_src() {
  local list=/etc/apt/sources.list.d/event_stats-deb-src.sources
  if apt-cache showsrc postgresql-15 2>/dev/null | grep -q '^Version:'; then
    return 0
  fi
  [ "$(id -u)" = 0 ] || { es_log "no deb-src entries, and not root to add them"; return 1; }
  local src
  for src in /etc/apt/sources.list.d/debian.sources /etc/apt/sources.list; do
    [ -f "$src" ] || continue
    if [[ $src == *.sources ]]; then
      sed 's/^Types: deb$/Types: deb-src/' "$src" >"$list"
    else
      grep '^deb ' "$src" | sed 's/^deb /deb-src /' >"${list%.sources}.list"
    fi
    break
  done
  apt-get update -qq >/dev/null
}

# Downloads and unpacks postgresql-15's source into $work; prints its dir.
# Tries the installed version first, then the others the archive lists,
# newest first (a version the index lists may be gone from the pool).
es_fetch_pg_source() {
  local installed v
  installed=$(dpkg-query -W -f='${Version}' postgresql-15 2>/dev/null)
  es_enable_deb_src || return 1
  for v in $installed $(apt-cache showsrc postgresql-15 | awk '/^Version:/ {print $2}' | sort -rV); do
    (cd "$work" && apt-get source --download-only -qq "postgresql-15=$v" >/dev/null 2>&1) || continue
    local orig
    orig=$(ls "$work"/postgresql-15_*.orig.tar.* 2>/dev/null | head -1)
    [ -n "$orig" ] || continue
    tar -C "$work" -xf "$orig" || return 1
    ls -d "$work"/postgresql-15.*/ | head -1
    return 0
  done
  es_log "could not download the source of postgresql-15"
  return 1
}

es_log "PostgreSQL's own suites: fetching and building the test drivers"
if [ -n "${ES_PG_SUITES_SOURCE:-}" ]; then
  srcdir=$ES_PG_SUITES_SOURCE   # an unpacked source tree, to skip the download
else
  srcdir=$(es_fetch_pg_source) || { echo "pg_suites: DIFFERENT source (not available)"; exit 1; }
fi
srcdir=${srcdir%/}
es_log "source: $srcdir"
(cd "$srcdir" && ./configure -q --without-readline --without-icu --without-zlib \
    >"$work/configure.log" 2>&1 &&
  make -s -C src/test/regress >"$work/build.log" 2>&1 &&
  make -s -C src/test/isolation >>"$work/build.log" 2>&1) || {
  tail -20 "$work/configure.log" "$work/build.log"
  echo "pg_suites: DIFFERENT build (failed)"
  exit 1
}
[ "$(id -u)" = 0 ] && chown -R "$(es_test_user)" "$work"

# --- three servers ------------------------------------------------------------

# The harness extension of stage (c), installed for this run only: files
# this run did not install (a run alongside) are left alone.
extdir=$("$ES_PG_BIN/pg_config" --sharedir)/extension
harness=(event_stats_pgsuite.control event_stats_pgsuite--1.0.sql)
installed=()
cleanup() {
  local kind f
  for kind in plain preload tracked; do es_stop_cluster "$work/$kind"; done
  for f in "${installed[@]}"; do rm -f "$extdir/$f"; done
}
trap cleanup EXIT
for f in "${harness[@]}"; do
  cmp -s "$ES_ROOT/test/pg_suites/$f" "$extdir/$f" && continue
  install -m 644 "$ES_ROOT/test/pg_suites/$f" "$extdir/$f" || {
    echo "pg_suites: DIFFERENT harness (cannot install into $extdir)"
    exit 1
  }
  installed+=("$f")
done
for kind in plain preload tracked; do
  mkdir -p "$work/$kind"
  [ "$(id -u)" = 0 ] && chown "$(es_test_user)" "$work/$kind"
done
es_start_cluster "$work/plain" "$port" no || exit 1
es_start_cluster "$work/preload" "$((port + 1))" yes || exit 1
es_start_cluster "$work/tracked" "$((port + 2))" yes || exit 1
port_of() {
  case $1 in plain) echo "$port" ;; preload) echo $((port + 1)) ;; tracked) echo $((port + 2)) ;; esac
}

# The tests a run failed and its differences, without their file headers.
failed_and_diffs() {
  local out=$1
  grep -E '\.\.\. FAILED|\.\.\. failed' "$out.log" | awk '{print $1, $2}' | sort >"$out.failed"
  if [ -f "$out/regression.diffs" ]; then
    grep -vE '^(\+\+\+|---|diff) ' "$out/regression.diffs" >"$out.diffs"
  else
    : >"$out.diffs"
  fi
}

# Lines of the tracked server's log that the harness wrote since byte $2.
harness_lines() {
  tail -c +"$(($2 + 1))" "$1" | grep -o 'es_pgsuite: .*'
}

# run_suite NAME DIR DRIVER SCHEDULE DATABASE -- runs it on the three
# servers and compares (b) and (c) with (a).
different=0
run_suite() {
  local name=$1 dir=$2 driver=$3 schedule=$4 db=$5 kind extra log_start
  for kind in plain preload tracked; do
    extra=()
    if [ "$kind" = tracked ]; then
      extra=(--load-extension=event_stats --load-extension=event_stats_pgsuite)
      log_start=$(stat -c %s "$work/tracked/server.log")
    fi
    (cd "$srcdir/$dir" && es_as_user "./$driver" --inputdir=. --bindir="$ES_PG_BIN" \
      --dlpath=. --schedule="$schedule" --host="$work/$kind" --port="$(port_of "$kind")" \
      --max-connections=20 --outputdir="$work/$kind/$name" "${extra[@]}" \
      >"$work/$kind/$name.log" 2>&1)
    failed_and_diffs "$work/$kind/$name"
  done
  local summary
  summary=$(grep -E 'tests (passed|failed)' "$work/plain/$name.log" | sed 's/^ *//')
  if [ -z "$summary" ]; then
    echo "pg_suites: DIFFERENT $name (did not run)"
    tail -20 "$work/plain/$name.log"
    different=$((different + 1))
    return
  fi

  # (b) the preload alone changes nothing
  if cmp -s "$work/plain/$name.failed" "$work/preload/$name.failed" &&
    cmp -s "$work/plain/$name.diffs" "$work/preload/$name.diffs"; then
    echo "pg_suites: SAME $name (without event_stats: $summary; with it preloaded: the same tests fail, the same differences)"
  else
    echo "pg_suites: DIFFERENT $name (without event_stats: $summary)"
    diff "$work/plain/$name.failed" "$work/preload/$name.failed"
    diff "$work/plain/$name.diffs" "$work/preload/$name.diffs" | head -200
    different=$((different + 1))
  fi

  # (c) every new table tracked: the final check of every tracked table
  # left, then the checks' outcome, and each test's output against (a)'s
  : >"$work/tracked/$name.harness"
  es_as_user psql -X -q -h "$work/tracked" -p "$(port_of tracked)" -U postgres -d "$db" \
    -c 'SELECT event_stats_pgsuite.check_tables(true)' >"$work/tracked/$name.final" 2>&1 ||
    echo "es_pgsuite: final check could not run" >>"$work/tracked/$name.harness"
  harness_lines "$work/tracked/server.log" "$log_start" >>"$work/tracked/$name.harness"
  tracked_check "$name"
}

# The lines of test T's output in stage (c) that are not in (a)'s, and
# those of (a) missing from (c) ("> " and "< " lines of diff), numbers of
# five digits or more (OIDs) written as N.
output_diff() {
  local name=$1 t=$2
  diff "$work/plain/$name/results/$t.out" "$work/tracked/$name/results/$t.out" |
    grep -E '^[<>]' | sed -E 's/[0-9]{5,}/N/g'
}

# tracked_check NAME -- stage (c) of suite NAME.  Every line the harness
# logs has one of the shapes event_stats_pgsuite--1.0.sql lists; a line of
# another shape fails the run too.
tracked_check() {
  local name=$1 h="$work/tracked/$1.harness" expected="$ES_ROOT/test/pg_suites/expected/$1"
  local tracked refused checks skipped mismatches failed other
  # (table names may hold spaces: "schema_one"."table two")
  tracked=$(grep -cE '^es_pgsuite: tracked .+$' "$h")
  refused=$(grep -cE '^es_pgsuite: not tracked .+ \([0-9A-Z]{5}: .*\)$' "$h")
  checks=$(grep -cE '^es_pgsuite: check .+ value -?[0-9]+ count [0-9]+$' "$h")
  skipped=$(grep -cE '^es_pgsuite: skipped .+ \(.*\)$' "$h")
  mismatches=$(grep -cE '^es_pgsuite: MISMATCH .+ value -?[0-9]+ count [0-9]+$' "$h")
  failed=$(grep -cE '^es_pgsuite: (check failed .+ \(.*\)$|final check could not run$)' "$h")
  other=$(($(wc -l <"$h") - tracked - refused - checks - skipped - mismatches - failed))
  local bad=0 t unexpected=() unused=() shows added wrong=()
  # the tests whose output differs from (a)'s
  local differing=()
  for t in "$work/plain/$name/results"/*.out; do
    t=$(basename "$t" .out)
    cmp -s "$work/plain/$name/results/$t.out" "$work/tracked/$name/results/$t.out" ||
      differing+=("$t")
  done
  local listed
  listed=$(allowed_tests "$name")
  for t in "${differing[@]}"; do
    if ! grep -qx -- "$t" <<<"$listed"; then
      unexpected+=("$t")
      continue
    fi
    added=$(output_diff "$name" "$t")
    if [ "${ES_PG_SUITES_ACCEPT:-0}" = 1 ]; then
      mkdir -p "$expected" && printf '%s\n' "$added" >"$expected/$t.diff"
    fi
    # the refusal named shows, and nothing else differs than the differences
    # recorded (and read) in test/pg_suites/expected/SUITE/TEST.diff
    while IFS= read -r shows; do
      grep -qE -- "$shows" <<<"$added" || wrong+=("$t: the output shows no line matching \"$shows\"")
    done < <(allowed_shows "$name" "$t")
    [ -n "$(allowed_shows "$name" "$t")" ] || wrong+=("$t: its allow-list entry has no \"shows\" line")
    if ! printf '%s\n' "$added" | cmp -s - "$expected/$t.diff"; then
      wrong+=("$t: the differences are not those recorded in test/pg_suites/expected/$name/$t.diff")
      echo "-- $t: differences, recorded (<) and now (>):" >>"$work/tracked/$name.wrong"
      printf '%s\n' "$added" | diff "$expected/$t.diff" - >>"$work/tracked/$name.wrong" 2>&1
    fi
  done
  local differing_list
  differing_list=$(printf '%s\n' "${differing[@]}")
  while read -r t; do
    [ -n "$t" ] || continue
    grep -qx -- "$t" <<<"$differing_list" || unused+=("$t")
  done <<<"$listed"
  [ "$mismatches" = 0 ] && [ "$failed" = 0 ] && [ "$refused" = 0 ] && [ "$other" = 0 ] &&
    [ "${#unexpected[@]}" = 0 ] && [ "${#unused[@]}" = 0 ] && [ "${#wrong[@]}" = 0 ] &&
    [ "$checks" -gt 0 ] && [ "$tracked" -gt 0 ] || bad=1
  local counts="tables tracked: $tracked, refused by track(): $refused, checks of value() = count(*): $checks (and $skipped skipped), mismatches: $mismatches, failed checks: $failed; tests whose output differs from (a): ${#differing[@]}, each by the recorded differences"
  if [ "$bad" = 0 ]; then
    echo "pg_suites: SAME $name, every new table tracked ($counts)"
    return
  fi
  echo "pg_suites: DIFFERENT $name, every new table tracked (${counts%, each by*})"
  grep -vE '^es_pgsuite: (tracked .+|check .+ value -?[0-9]+ count [0-9]+|skipped .+ \(.*\))$' "$h" | head -50
  for t in "${unexpected[@]}"; do
    echo "-- $t differs from (a), and the allow-list does not name it:"
    diff "$work/plain/$name/results/$t.out" "$work/tracked/$name/results/$t.out" | head -60
  done
  for t in "${unused[@]}"; do
    echo "-- $t is on the allow-list but its output equals (a)'s: take it off"
  done
  for t in "${wrong[@]}"; do
    echo "-- $t"
  done
  [ -f "$work/tracked/$name.wrong" ] && head -100 "$work/tracked/$name.wrong"
  different=$((different + 1))
}

# The allow-list, test/pg_suites/allowed_differences: its tests of a suite,
# and the "shows" patterns of one test.  A line of an entry that is neither
# "  why: " nor "  shows: " is an error.
allowed_tests() {
  awk -v suite="$1" '/^[^#[:space:]]/ && $1 == suite { print $2 }' "$ES_ROOT/test/pg_suites/allowed_differences"
}
allowed_shows() {
  awk -v suite="$1" -v test="$2" '
    /^[^#[:space:]]/ { on = ($1 == suite && $2 == test); next }
    on && /^  shows: / { sub(/^  shows: /, ""); print; next }
    on && /^[[:space:]]/ && !/^  why: / { print "malformed allow-list line: " $0; exit }' \
    "$ES_ROOT/test/pg_suites/allowed_differences"
}

es_log "core regression schedule: (a) without event_stats, (b) preloaded, (c) every new table tracked"
run_suite regress src/test/regress pg_regress parallel_schedule regression
es_log "isolation schedule: (a) without event_stats, (b) preloaded, (c) every new table tracked"
run_suite isolation src/test/isolation pg_isolation_regress isolation_schedule isolation_regression

[ "$different" = 0 ]
