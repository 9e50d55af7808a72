#!/usr/bin/env bash
# A private PostgreSQL cluster in a folder of the repo: postgres.sh start DIR PORT | stop DIR | url PORT
# Runs as the invoking user, or as 'postgres' when invoked as root (the server refuses to run as root).
set -euo pipefail
cmd=$1; dir=$(realpath -m "$2")
bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
as_owner() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
case "$cmd" in
  start)
    port=$3
    mkdir -p "$dir"
    [ "$(id -u)" -eq 0 ] && chown postgres: "$dir"
    if [ ! -f "$dir/PG_VERSION" ]; then
      as_owner "$bindir/initdb" -D "$dir" -U funnel --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null
      cat >> "$dir/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$dir'
max_connections = 300
shared_buffers = 256MB
fsync = on
synchronous_commit = on
max_wal_size = 2GB
log_min_messages = warning
CONF
    fi
    if ! as_owner "$bindir/pg_ctl" -D "$dir" status >/dev/null 2>&1; then
      # Write-heavy settings we recommend for production too (README): after each checkpoint the first change of a
      # page writes the whole page to the WAL; lz4 shrinks those images, and larger WAL buffers keep backends from
      # writing WAL themselves in a burst. (1 GB of shared buffers was tried too: it left so much dirty data after a
      # bulk load that commits stalled for hundreds of milliseconds behind the writes.)
      as_owner "$bindir/pg_ctl" -D "$dir" -l "$dir/server.log" -w -t 60 \
        -o "-c wal_buffers=64MB -c wal_compression=lz4" start >/dev/null
    fi
    for _ in $(seq 1 50); do
      "$bindir/psql" -h 127.0.0.1 -p "$port" -U funnel -d postgres -Atqc "select 1" >/dev/null 2>&1 && break
      sleep 0.2
    done
    "$bindir/psql" -h 127.0.0.1 -p "$port" -U funnel -d postgres -Atqc "select 1 from pg_database where datname='funnel'" | grep -q 1 \
      || "$bindir/psql" -h 127.0.0.1 -p "$port" -U funnel -d postgres -qc "create database funnel"
    ;;
  stop)
    [ -f "$dir/PG_VERSION" ] && as_owner "$bindir/pg_ctl" -D "$dir" -m fast -w stop >/dev/null 2>&1 || true
    ;;
  *) echo "usage: postgres.sh start DIR PORT | stop DIR" >&2; exit 2 ;;
esac
