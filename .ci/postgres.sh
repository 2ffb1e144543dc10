# shellcheck shell=bash
# Sourced by .ci/run: install Debian's PostgreSQL, start a throwaway server on 127.0.0.1 on a
# free port, and export POS_LOYALTY_PG_URL and POS_LOYALTY_REQUIRE_PG=1 so the PostgreSQL
# variants of the tests run (and fail rather than skip if something is missing).
# initdb refuses to run as root, so as root the cluster belongs to the postgres user.

_pg_root=0
[ "$(id -u)" -eq 0 ] && _pg_root=1
_pg_priv() { if [ "$_pg_root" -eq 1 ]; then "$@"; else sudo "$@"; fi; }

if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  _pg_priv apt-get update -q
  _pg_priv apt-get install -y -q --no-install-recommends postgresql
fi

_pg_bin="$(dirname "$(ls -d /usr/lib/postgresql/*/bin/initdb | sort -V | tail -n 1)")"
_pg_dir="$(mktemp -d /tmp/pos-loyalty-ci-pg.XXXXXX)"
_pg_port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
if [ "$_pg_root" -eq 1 ]; then
  chown postgres:postgres "$_pg_dir"
  _pg_as=(runuser -u postgres --)
  _pg_user=postgres
else
  _pg_as=()
  _pg_user="$(id -un)"
fi

"${_pg_as[@]}" "$_pg_bin/initdb" -D "$_pg_dir/data" -A trust -U "$_pg_user" --no-sync -E UTF8 >/dev/null
"${_pg_as[@]}" "$_pg_bin/pg_ctl" -D "$_pg_dir/data" -l "$_pg_dir/log" -w -t 60 \
  -o "-p $_pg_port -h 127.0.0.1 -k $_pg_dir -F -c max_connections=200" start >/dev/null

_pg_stop() {
  "${_pg_as[@]}" "$_pg_bin/pg_ctl" -D "$_pg_dir/data" -m fast -w stop >/dev/null 2>&1 || true
  rm -rf "$_pg_dir"
}
trap _pg_stop EXIT

export POS_LOYALTY_PG_URL="postgresql+psycopg://$_pg_user@127.0.0.1:$_pg_port/postgres"
export POS_LOYALTY_REQUIRE_PG=1
echo "PostgreSQL $("$_pg_bin/postgres" --version | awk '{print $3}') on 127.0.0.1:$_pg_port for the tests" >&2
