#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# test/pg_suites.sh WORKDIR PORT -- PostgreSQL's own suites with event_stats.
#
# Fetches PostgreSQL 15's source with Debian's source package (adding a
# deb-src entry for the same archive as root), builds only pg_regress,
# isolationtester and the regression test library, and runs the core
# regression schedule and the isolation schedule twice: (a) on a server
# without event_stats, (b) on one that preloads it.  (b) must fail exactly
# the tests (a) fails, with identical differences: Debian may serve a
# source a point release older than the installed server, so the expected
# files alone are no yardstick, (a) is.
#
# Prints one line per suite, "pg_suites: SAME <suite> (...)" or
# "pg_suites: DIFFERENT <suite> (...)" followed by the differences, and
# exits non-zero if any suite differs or could not run.
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
srcdir=$(es_fetch_pg_source) || { echo "pg_suites: DIFFERENT source (not available)"; exit 1; }
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

# --- two servers --------------------------------------------------------------

cleanup() {
  es_stop_cluster "$work/plain"
  es_stop_cluster "$work/preload"
}
trap cleanup EXIT
for kind in plain preload; do
  mkdir -p "$work/$kind"
  [ "$(id -u)" = 0 ] && chown "$(es_test_user)" "$work/$kind"
done
es_start_cluster "$work/plain" "$port" no || exit 1
es_start_cluster "$work/preload" "$((port + 1))" yes || exit 1

# run_suite NAME DIR DRIVER SCHEDULE -- runs it on both servers, compares.
different=0
run_suite() {
  local name=$1 dir=$2 driver=$3 schedule=$4 kind p
  for kind in plain preload; do
    p=$port
    [ "$kind" = preload ] && p=$((port + 1))
    (cd "$srcdir/$dir" && es_as_user "./$driver" --inputdir=. --bindir="$ES_PG_BIN" \
      --dlpath=. --schedule="$schedule" --host="$work/$kind" --port="$p" \
      --max-connections=20 --outputdir="$work/$kind/$name" \
      >"$work/$kind/$name.log" 2>&1)
    # the failing tests, and the differences without their file headers
    grep -E '\.\.\. FAILED|\.\.\. failed' "$work/$kind/$name.log" |
      awk '{print $1, $2}' | sort >"$work/$kind/$name.failed"
    if [ -f "$work/$kind/$name/regression.diffs" ]; then
      grep -vE '^(\+\+\+|---|diff) ' "$work/$kind/$name/regression.diffs" >"$work/$kind/$name.diffs"
    else
      : >"$work/$kind/$name.diffs"
    fi
  done
  local summary
  summary=$(grep -E 'tests (passed|failed)' "$work/plain/$name.log" | sed 's/^ *//')
  if [ -z "$summary" ]; then
    echo "pg_suites: DIFFERENT $name (did not run)"
    tail -20 "$work/plain/$name.log"
    different=$((different + 1))
  elif cmp -s "$work/plain/$name.failed" "$work/preload/$name.failed" &&
    cmp -s "$work/plain/$name.diffs" "$work/preload/$name.diffs"; then
    echo "pg_suites: SAME $name (without event_stats: $summary; with it preloaded: the same tests fail, the same differences)"
  else
    echo "pg_suites: DIFFERENT $name (without event_stats: $summary)"
    diff "$work/plain/$name.failed" "$work/preload/$name.failed"
    diff "$work/plain/$name.diffs" "$work/preload/$name.diffs" | head -200
    different=$((different + 1))
  fi
}

es_log "core regression schedule, without and with event_stats preloaded"
run_suite regress src/test/regress pg_regress parallel_schedule
es_log "isolation schedule, without and with event_stats preloaded"
run_suite isolation src/test/isolation pg_isolation_regress isolation_schedule

[ "$different" = 0 ]
