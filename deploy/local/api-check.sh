#!/usr/bin/env bash
# Runs schemathesis (PyPI) against live services' OpenAPI documents on the test stack: no 5xx for any generated
# input, and every status, content type and body matches the document. Usage: api-check.sh BIN_DIR RUN_DIR
# (FUNNEL_TEST_POSTGRES_URL and FUNNEL_TEST_KAFKA_BOOTSTRAP point at the test stack). /health/ready is left out:
# its documented 503 while a consumer joins its group is the one 5xx that is the contract.
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd); cd "$root"
bin=$1 run=$2
venv="$root/var/tools/schemathesis"
if [ ! -x "$venv/bin/schemathesis" ]; then
  python3 -m venv "$venv" && "$venv/bin/pip" install -q schemathesis==4.32.5 || { echo "could not install schemathesis"; exit 1; }
fi
status=0
check() { # service port [extra env...]
  local name=$1 port=$2; shift 2
  local schema; schema="apicheck_$(echo "$name" | tr - _)_$$"
  local log="$run/$name-apicheck.log"
  env FUNNEL_POSTGRES_URL="$FUNNEL_TEST_POSTGRES_URL" FUNNEL_KAFKA_BOOTSTRAP="$FUNNEL_TEST_KAFKA_BOOTSTRAP" FUNNEL_SCHEMA="$schema" \
      FUNNEL_TOPIC_PREFIX="$schema." FUNNEL_CONSUMER_GROUP="$schema" FUNNEL_HTTP_PORT="$port" FUNNEL_ADMIN_TOKEN=api-check-admin-token \
      FUNNEL_LOG_LEVEL=warning FUNNEL_KAFKA_PROPERTIES=fetch.wait.max.ms=5 "$@" "$bin/$name" serve > "$log" 2>&1 &
  local pid=$!
  for _ in $(seq 1 300); do curl -fs "http://127.0.0.1:$port/health/ready" >/dev/null 2>&1 && break; sleep 0.2; done
  echo "== schemathesis: $name (http://127.0.0.1:$port/openapi.json)"
  # From the run folder: schemathesis keeps its example cache in the working directory, and a stale cache must
  # neither land in git nor steer a later run.
  (cd "$run" && rm -rf .schemathesis .hypothesis && "$venv/bin/schemathesis" run "http://127.0.0.1:$port/openapi.json" --url "http://127.0.0.1:$port" \
      --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance \
      --max-examples "${FUNNEL_API_CHECK_EXAMPLES:-60}" --phases examples,fuzzing,coverage --seed 20261202 \
      --exclude-path /health/ready \
      -H "Authorization: Bearer api-check-admin-token" --no-color > "$name-schemathesis.txt" 2>&1)
  local result=$?
  tail -25 "$run/$name-schemathesis.txt"
  kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null
  [ "$result" -eq 0 ] || { echo "schemathesis found problems in $name (full report: $run/$name-schemathesis.txt, service log: $log)"; status=1; }
}
check marketing-intake 18081 FUNNEL_INTAKE_IP_RATE=100000 FUNNEL_INTAKE_SOURCE_RATE=100000
check online-chat 18082 FUNNEL_CHAT_SESSION_RATE=100000 FUNNEL_CHAT_MESSAGE_RATE=100000 FUNNEL_CHAT_IP_MESSAGE_RATE=100000 FUNNEL_CHAT_LONG_POLL_SECONDS=1
exit $status
