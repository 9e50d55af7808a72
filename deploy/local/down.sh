#!/usr/bin/env bash
# `make down`: stops the services, devbroker and PostgreSQL that `make up` started.
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd); cd "$root"
run="$root/var/dev"
for pidfile in "$run"/*.pid; do
  [ -e "$pidfile" ] || continue
  name=$(basename "$pidfile" .pid)
  [ "$name" = devbroker ] && continue
  pid=$(cat "$pidfile"); kill "$pid" 2>/dev/null && for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  rm -f "$pidfile"; echo "stopped $name"
done
deploy/local/devbroker.sh stop "$run" && echo "stopped devbroker"
deploy/local/postgres.sh stop "$run/pg" && echo "stopped PostgreSQL"
