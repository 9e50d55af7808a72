#!/usr/bin/env bash
# `make test`: installs what is missing, builds, starts a private PostgreSQL and devbroker, runs `swift test`,
# stops them, and exits non-zero on any failure (a compiler warning in our own code is a failure too).
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd); cd "$root"
run="$root/var/test"; mkdir -p "$run"
deploy/local/install-deps.sh || exit 1
echo "== build"
swift build --build-tests > "$run/build.log" 2>&1; built=$?
grep -E "error:|warning: |Build complete" "$run/build.log" | grep -v "swift-distributed-tracing" | sort -u | head -50
[ "$built" -eq 0 ] || { echo "build failed (full log: $run/build.log)"; exit 1; }
if grep -E "^/.*/(Shared|Services|Tests)/.*: warning:" "$run/build.log" | grep -v "/.build/" | sort -u | grep .; then
  echo "our code has compiler warnings (above): fix them"; exit 1
fi
cleanup() { deploy/local/devbroker.sh stop "$run"; deploy/local/postgres.sh stop "$run/pg"; }
trap cleanup EXIT
cleanup
echo "== start PostgreSQL (127.0.0.1:55433) and devbroker (127.0.0.1:19092)"
deploy/local/postgres.sh start "$run/pg" 55433 || exit 1
deploy/local/devbroker.sh start "$root/.build/debug/devbroker" "$run" 127.0.0.1:19092 127.0.0.1:19192 || exit 1
export FUNNEL_TEST_POSTGRES_URL="postgresql://funnel@127.0.0.1:55433/funnel"
export FUNNEL_TEST_KAFKA_BOOTSTRAP="127.0.0.1:19092"
export FUNNEL_TEST_BROKER_CONTROL="127.0.0.1:19192"
export FUNNEL_TEST_BIN_DIR="$root/.build/debug"
echo "== swift test"
swift test --skip-build "$@" 2>&1 | tee "$run/test.log"
status=${PIPESTATUS[0]}
if [ "$status" -ne 0 ]; then
  # CI shows only the tail of the output: repeat what failed here.
  echo "== what failed"
  grep -E "✘|Assertion|Fatal error|fatal error|Program crashed|error:" "$run/test.log" | grep -v "swift-runtime: failed to suspend" | head -40
fi
echo "== swift test exited $status"
# The services' OpenAPI documents against the live services (schemathesis from PyPI).
deploy/local/api-check.sh "$root/.build/debug" "$run"; api=$?
echo "== API check exited $api"
# The suite's own summary last, where CI looks for it.
grep -E "Test run with [0-9]+ tests? .*(passed|failed)" "$run/test.log" | tail -1
[ "$status" -ne 0 ] && exit "$status"
exit "$api"
