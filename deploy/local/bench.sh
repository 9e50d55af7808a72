#!/usr/bin/env bash
# `make bench`: release build, a private PostgreSQL (fsync on, 127.0.0.1:55434) and devbroker (127.0.0.1:19094),
# then the benchmarks. Results go to var/bench/results.txt (and are quoted in the README).
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd); cd "$root"
run="$root/var/bench"; mkdir -p "$run"
deploy/local/install-deps.sh || exit 1
echo "== release build"
swift build -c release > "$run/build.log" 2>&1 || { tail -30 "$run/build.log"; exit 1; }
bin=$(swift build -c release --show-bin-path)
cleanup() { deploy/local/devbroker.sh stop "$run"; deploy/local/postgres.sh stop "$run/pg"; }
trap cleanup EXIT
cleanup
deploy/local/postgres.sh start "$run/pg" 55434 || exit 1
# Schemas of earlier runs and benchmarks would keep autovacuum and checkpoints busy during the next one (the HTTP
# latency run right after the 300k-lead pipeline run measured p99 11.5 ms, 5.3 ms alone): every benchmark starts
# from an empty, checkpointed database.
quiesce() {
  psql -h 127.0.0.1 -p 55434 -U funnel -d funnel -Atqc "SELECT string_agg(format('DROP SCHEMA %I CASCADE', nspname), '; ') FROM pg_namespace WHERE nspname LIKE 'bench\_%'" \
    | { read -r drop; [ -n "$drop" ] && psql -h 127.0.0.1 -p 55434 -U funnel -d funnel -qc "$drop" >/dev/null 2>&1; true; }
  psql -h 127.0.0.1 -p 55434 -U funnel -d funnel -qc "CHECKPOINT" >/dev/null
}
quiesce
broker=127.0.0.1:19094 control=127.0.0.1:19194
export FUNNEL_TEST_POSTGRES_URL="postgresql://funnel@127.0.0.1:55434/funnel" FUNNEL_TEST_KAFKA_BOOTSTRAP="$broker"
export FUNNEL_TEST_BROKER_CONTROL="$control" FUNNEL_TEST_BIN_DIR="$bin"
export FUNNEL_BENCH_RESULTS="$run/results.txt"
{ echo "# funnel-bench $(date -u +%Y-%m-%dT%H:%MZ) on $(nproc) cores, $(git rev-parse --short HEAD 2>/dev/null)"; } > "$FUNNEL_BENCH_RESULTS"
# The share of CPU time the hypervisor gave to other guests (steal), from /proc/stat: on a shared host it explains
# a slow run, so every benchmark's result is followed by the steal measured while it ran.
cpu_times() { awk '/^cpu /{ t = 0; for (i = 2; i <= NF; i++) t += $i; print $9, t }' /proc/stat; }
only=${BENCH:-kafka intake-pipeline outbox-churn http-latency http-control webhook-latency identity dispatch chat}
for b in $only; do
  echo "== $b"
  quiesce
  # And a fresh broker: the mock keeps every topic and message of earlier benchmarks in memory and slows down as
  # they pile up (intake topic->topic measured 12.6k leads/s on a fresh one, 7.0-8.6k after the dispatch benchmark).
  deploy/local/devbroker.sh stop "$run"
  deploy/local/devbroker.sh start "$bin/devbroker" "$run" "$broker" "$control" || exit 1
  read -r steal0 total0 < <(cpu_times)
  case "$b" in
    webhook-latency) "$bin/funnel-bench" http-latency --webhook --port 18183 ;;
    http-control) "$bin/funnel-bench" http-latency --control --port 18184 ;;
    # Each round again with a live reader of the output (how it was measured before 12-04), interleaved.
    intake-pipeline) "$bin/funnel-bench" intake-pipeline --compare ;;
    *) "$bin/funnel-bench" "$b" ;;
  esac || { echo "benchmark $b failed"; exit 1; }
  read -r steal1 total1 < <(cpu_times)
  awk -v b="$b" -v s=$((steal1 - steal0)) -v t=$((total1 - total0)) \
    'BEGIN { printf "  (%s: CPU steal while it ran %.1f %%)\n", b, (t > 0 ? 100 * s / t : 0) }' | tee -a "$FUNNEL_BENCH_RESULTS"
done
echo; cat "$FUNNEL_BENCH_RESULTS"
