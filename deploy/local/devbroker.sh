#!/usr/bin/env bash
# devbroker.sh start BIN RUNDIR LISTEN CONTROL | stop RUNDIR
set -euo pipefail
case "$1" in
  start)
    bin=$2; run=$3; listen=$4; control=$5
    mkdir -p "$run"
    if [ -f "$run/devbroker.pid" ] && kill -0 "$(cat "$run/devbroker.pid")" 2>/dev/null; then exit 0; fi
    nohup "$bin" --listen "$listen" --control "$control" > "$run/devbroker.log" 2>&1 &
    echo $! > "$run/devbroker.pid"
    for _ in $(seq 1 100); do grep -q '^control=' "$run/devbroker.log" 2>/dev/null && exit 0; sleep 0.1; done
    cat "$run/devbroker.log" >&2; exit 1
    ;;
  stop)
    run=$2
    [ -f "$run/devbroker.pid" ] || exit 0
    pid=$(cat "$run/devbroker.pid")
    kill "$pid" 2>/dev/null || true
    # Wait for it to exit (a restart right after must find its ports free); it holds nothing worth a slow stop.
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
    rm -f "$run/devbroker.pid"
    ;;
esac
