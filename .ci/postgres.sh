# shellcheck shell=bash
# Sourced by .ci/run: install Debian's PostgreSQL server binaries and export
# POS_LOYALTY_REQUIRE_PG=1, so the PostgreSQL variants of the tests run (and fail rather than
# skip if something is missing).
#
# No shared server is started: each pytest-xdist worker starts its own throwaway cluster
# (tests/pg.py), because transaction ids are cluster-wide and the PostgreSQL pull cursor waits
# for every transaction older than its horizon, so one worker's open transaction would hold back
# another worker's pulls on a shared server. (POS_LOYALTY_PG_URL still points the tests, run
# with -n 0, or the benches, at a server of your own.)

_pg_root=0
[ "$(id -u)" -eq 0 ] && _pg_root=1
_pg_priv() { if [ "$_pg_root" -eq 1 ]; then "$@"; else sudo "$@"; fi; }

if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  _pg_priv apt-get update -q
  _pg_priv apt-get install -y -q --no-install-recommends postgresql
fi
# initdb refuses to run as root: tests/pg.py then runs the cluster as the postgres user
if [ "$_pg_root" -eq 1 ] && ! id postgres >/dev/null 2>&1; then
  echo "postgres.sh: running as root and there is no 'postgres' user for initdb" >&2
fi
unset POS_LOYALTY_PG_URL
export POS_LOYALTY_REQUIRE_PG=1
_pg_bin="$(dirname "$(ls -d /usr/lib/postgresql/*/bin/initdb | sort -V | tail -n 1)")"
echo "PostgreSQL $("$_pg_bin/postgres" --version | awk '{print $3}'): one throwaway cluster per test worker" >&2
