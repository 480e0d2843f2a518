#!/bin/sh
# Entrypoint of the postgres:15 stand-in: on an empty data directory, initdb with the password
# from POSTGRES_PASSWORD or POSTGRES_PASSWORD_FILE (password auth over TCP, trust on the local
# socket), create POSTGRES_DB, run /docker-entrypoint-initdb.d/*.sql|*.sh; then serve on all
# addresses.
set -eu
user=${POSTGRES_USER:-postgres}
db=${POSTGRES_DB:-$user}

password() {
  if [ -n "${POSTGRES_PASSWORD_FILE:-}" ]; then cat "$POSTGRES_PASSWORD_FILE"; else printf '%s\n' "${POSTGRES_PASSWORD:-}"; fi
}

init_cluster() {
  pwfile=$(mktemp)
  password >"$pwfile"
  if [ ! -s "$pwfile" ] || [ "$(tr -d '\n' <"$pwfile")" = "" ]; then
    echo "postgres stand-in: set POSTGRES_PASSWORD or POSTGRES_PASSWORD_FILE" >&2
    exit 1
  fi
  initdb -D "$PGDATA" -U "$user" --pwfile="$pwfile" --auth-host=scram-sha-256 --auth-local=trust >/dev/null
  rm -f "$pwfile"
  echo "host all all 0.0.0.0/0 scram-sha-256" >>"$PGDATA/pg_hba.conf"
  postgres -D "$PGDATA" -c listen_addresses='' &
  pid=$!
  until pg_isready -q -h /run/postgresql; do sleep 0.2; done
  if [ "$db" != postgres ]; then createdb -h /run/postgresql -U "$user" "$db"; fi
  for f in /docker-entrypoint-initdb.d/*; do
    case "$f" in
      *.sql) psql -v ON_ERROR_STOP=1 -h /run/postgresql -U "$user" -d "$db" -f "$f" ;;
      *.sh) . "$f" ;;
    esac
  done
  kill "$pid"
  wait "$pid" || true
}

[ -s "$PGDATA/PG_VERSION" ] || init_cluster
[ "${1:-}" = postgres ] && shift
exec postgres -D "$PGDATA" -c listen_addresses='*' "$@"
