# shellcheck shell=bash
# test/lib.sh -- shell helpers shared by run_tests.sh, demo.sh and bench_counters.sh.
#
# Sourced, not run.  Everything here works the same for root (CI, a fresh
# Debian 12 machine) and for an ordinary user: as root it installs the OS
# packages it needs and runs PostgreSQL as the unprivileged user "postgres";
# otherwise it runs everything as the calling user and expects the packages
# to be there already.

ES_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# A copy of the PostgreSQL installation elsewhere works too (its paths are
# relative), so parallel work can install into its own: ES_PG_BIN=/opt/x/...
ES_PG_BIN=${ES_PG_BIN:-/usr/lib/postgresql/15/bin}
ES_PACKAGES="postgresql-15 postgresql-server-dev-15 postgresql-client-15 \
  libipc-run-perl make gcc libfaketime bzip2"

es_log() { printf '==> %s\n' "$*" >&2; }

# The OS user that owns throwaway clusters and runs the tests.
es_test_user() {
  if [ "$(id -u)" = 0 ]; then echo postgres; else id -un; fi
}

# Runs a command as the test user, with the PostgreSQL binaries first on PATH.
es_as_user() {
  local user
  user=$(es_test_user)
  if [ "$(id -u)" = 0 ]; then
    runuser -u "$user" -- env PATH="$ES_PG_BIN:$PATH" "$@"
  else
    env PATH="$ES_PG_BIN:$PATH" "$@"
  fi
}

# Installs the packages that are missing (root only; apt-get update once).
es_install_packages() {
  local missing=() p
  for p in $ES_PACKAGES; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" \
      || missing+=("$p")
  done
  [ ${#missing[@]} = 0 ] && return 0
  if [ "$(id -u)" != 0 ]; then
    es_log "missing packages: ${missing[*]} (run as root to install them)"
    return 1
  fi
  es_log "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq "${missing[@]}" >/dev/null
}

# Builds warning-free (-Werror is in the Makefile) and installs the extension.
es_build_install() {
  es_log "building and installing event_stats"
  make -C "$ES_ROOT" -s clean >/dev/null 2>&1 || true
  make -C "$ES_ROOT" -s PG_CONFIG="$ES_PG_BIN/pg_config" >/dev/null &&
    if [ "$(id -u)" = 0 ]; then
      make -C "$ES_ROOT" -s install PG_CONFIG="$ES_PG_BIN/pg_config" >/dev/null
    else
      sudo make -C "$ES_ROOT" -s install PG_CONFIG="$ES_PG_BIN/pg_config" >/dev/null
    fi
}

# A scratch directory the test user owns: ES_WORKDIR (/tmp/event_stats)
# followed by a dot and a random suffix.
es_workdir() {
  local dir
  dir=$(mktemp -d "${ES_WORKDIR:-/tmp/event_stats}.XXXXXX")
  chmod 755 "$dir"
  [ "$(id -u)" = 0 ] && chown "$(es_test_user)" "$dir"
  echo "$dir"
}

# es_start_cluster DIR PORT PRELOAD(yes|no) [extra postgresql.conf lines]
# initdb + start a throwaway server listening only on a socket in DIR.
es_start_cluster() {
  local dir=$1 port=$2 preload=$3 extra=${4:-}
  es_as_user initdb -D "$dir/data" -A trust -U postgres --no-sync >/dev/null || return 1
  {
    echo "port = $port"
    echo "listen_addresses = ''"
    echo "unix_socket_directories = '$dir'"
    echo "max_prepared_transactions = 20"
    echo "fsync = on"
    [ "$preload" = yes ] && echo "shared_preload_libraries = 'event_stats'"
    printf '%s\n' "$extra"
  } | es_as_user tee -a "$dir/data/postgresql.conf" >/dev/null
  es_as_user pg_ctl -D "$dir/data" -l "$dir/server.log" -w -t 60 start >/dev/null
}

es_stop_cluster() {
  local dir=$1
  if [ -d "$dir/data" ]; then
    es_as_user pg_ctl -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
  fi
}

# es_psql DIR PORT [psql args...] -- as the test user, database postgres.
es_psql() {
  local dir=$1 port=$2
  shift 2
  es_as_user psql -X -q -v ON_ERROR_STOP=1 -h "$dir" -p "$port" -U postgres -d postgres "$@"
}

# es_pgbench DIR PORT [pgbench args...]
es_pgbench() {
  local dir=$1 port=$2
  shift 2
  es_as_user pgbench -h "$dir" -p "$port" -U postgres "$@"
}
