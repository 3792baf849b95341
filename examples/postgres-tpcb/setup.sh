#!/bin/sh
# setup.sh RUN PORT: a PostgreSQL 15 cluster in RUN/pg, owned by the postgres user, with
# pgbench's tables at scale 1 (pgbench -i), made on a private socket and stopped again.
# Trust authentication on 127.0.0.1 only (the cluster listens nowhere else).
set -e
run=$1
port=$2
bin=/usr/lib/postgresql/15/bin
[ -x "$bin/postgres" ] || { echo "PostgreSQL 15 is not installed (apt-get install postgresql-15)" >&2; exit 1; }
as_pg() { setpriv --reuid=postgres --regid=postgres --clear-groups -- "$@"; }
mkdir -p "$run/pg" "$run/sock"
chown postgres:postgres "$run/pg" "$run/sock"
as_pg "$bin/initdb" -D "$run/pg" -A trust -U postgres --no-sync >/dev/null
as_pg "$bin/pg_ctl" -D "$run/pg" -w -l "$run/sock/setup.log" \
  -o "-c listen_addresses= -k $run/sock -p $port" start >/dev/null
as_pg pgbench -i -s 1 -q -h "$run/sock" -p "$port" -U postgres postgres >/dev/null 2>&1 ||
  { as_pg "$bin/pg_ctl" -D "$run/pg" -m immediate stop >/dev/null; echo "pgbench -i failed" >&2; exit 1; }
as_pg "$bin/pg_ctl" -D "$run/pg" -w -m fast stop >/dev/null
