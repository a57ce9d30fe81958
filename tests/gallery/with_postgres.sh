#!/usr/bin/env bash
# Runs a command with a private PostgreSQL server (Debian's `postgresql`
# package): initdb in a temporary folder, as an unprivileged user (`nobody`
# when run as root, as CI does), listening only on a Unix socket, password
# authentication (scram-sha-256); stopped and removed at the end.
#   with_postgres.sh COMMAND ARGS...
# The command gets
#   REID_TEST_PG        postgresql://reid:PASSWORD@/reid?host=SOCKET_DIR
#   REID_TEST_PG_STOP   a shell command that stops the server (fast shutdown)
#   REID_TEST_PG_START  a shell command that starts it again
# Without the server binaries the command runs with REID_TEST_PG unset (its
# PostgreSQL cases skip).
set -euo pipefail
bindir=""
for d in /usr/lib/postgresql/*/bin; do [ -x "$d/initdb" ] && bindir=$d; done
if [ -z "$bindir" ]; then
  echo "with_postgres: no PostgreSQL server binaries (apt-get install postgresql): PostgreSQL cases skip" >&2
  exec "$@"
fi
tmp=$(mktemp -d /tmp/reid-pg.XXXXXX)
chmod 755 "$tmp"
as_user=()
if [ "$(id -u)" -eq 0 ]; then
  chown nobody "$tmp"
  as_user=(runuser -u nobody --)
fi
password="reid-test-$RANDOM$RANDOM"
echo "$password" > "$tmp/pw"
chmod 644 "$tmp/pw"
mkdir -p "$tmp/sock" && [ ${#as_user[@]} -gt 0 ] && chown nobody "$tmp/sock"
ctl="${as_user[*]} $bindir/pg_ctl -D $tmp/data -l $tmp/log -w -t 30"
cleanup() {
  $ctl stop -m immediate >/dev/null 2>&1 || true
  rm -rf "$tmp"
}
trap cleanup EXIT
"${as_user[@]}" "$bindir/initdb" -D "$tmp/data" -U reid --auth=scram-sha-256 --pwfile="$tmp/pw" \
  -E UTF8 --no-locale >"$tmp/initdb.log" 2>&1 || { cat "$tmp/initdb.log" >&2; exit 1; }
opts="-c listen_addresses='' -c unix_socket_directories=$tmp/sock -c fsync=off -c max_connections=60"
start="$ctl -o \"$opts\" start"
eval "$start" >/dev/null || { cat "$tmp/log" >&2; exit 1; }
PGPASSWORD=$password "$bindir/psql" -q -h "$tmp/sock" -U reid -d postgres -c "CREATE DATABASE reid" >/dev/null
export REID_TEST_PG="postgresql://reid:$password@/reid?host=$tmp/sock"
export REID_TEST_PG_STOP="$ctl stop -m fast"
export REID_TEST_PG_START="$start"
"$@"
