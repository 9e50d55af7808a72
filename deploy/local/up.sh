#!/usr/bin/env bash
# `make up`: the whole suite on this machine — local PostgreSQL (127.0.0.1:55432), devbroker (127.0.0.1:9092)
# and every built service — with logs under var/dev. `make down` stops it.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd); cd "$root"
run="$root/var/dev"; mkdir -p "$run"
deploy/local/install-deps.sh
echo "== build"
swift build 2>&1 | grep -E "error:|Build complete" || true
for exe in marketing-intake online-chat identity-merge sales-dispatch; do [ -x ".build/debug/$exe" ] || { echo "build failed"; exit 1; }; done
echo "== PostgreSQL on 127.0.0.1:55432 (data in var/dev/pg)"
deploy/local/postgres.sh start "$run/pg" 55432
echo "== devbroker on 127.0.0.1:9092 (in memory; control channel 127.0.0.1:9192)"
fresh_broker=1
[ -f "$run/devbroker.pid" ] && kill -0 "$(cat "$run/devbroker.pid")" 2>/dev/null && fresh_broker=0
deploy/local/devbroker.sh start "$root/.build/debug/devbroker" "$run" 127.0.0.1:9092 127.0.0.1:9192
if [ "$fresh_broker" = 1 ]; then
  # The devbroker keeps nothing across restarts: its topics start again at offset 0, and the positions the services
  # recorded against the last one (consumed_positions) would make them skip the new records as consumed already.
  psql -h 127.0.0.1 -p 55432 -U funnel -d funnel -Atqc "SELECT string_agg(format('DELETE FROM %I.consumed_positions', table_schema), '; ')
      FROM information_schema.tables WHERE table_name = 'consumed_positions'" \
    | { read -r forget; [ -n "$forget" ] && psql -h 127.0.0.1 -p 55432 -U funnel -d funnel -qc "$forget"; true; }
fi
export FUNNEL_POSTGRES_URL="postgresql://funnel@127.0.0.1:55432/funnel" FUNNEL_KAFKA_BOOTSTRAP="127.0.0.1:9092"
# The mock broker holds an empty fetch for the full fetch.wait.max.ms even when data arrives (Kafka answers at
# once), so on the devbroker a short wait keeps each hop fast.
export FUNNEL_KAFKA_PROPERTIES="${FUNNEL_KAFKA_PROPERTIES:-fetch.wait.max.ms=5}"

start_service() { # name port
  local name=$1 port=$2
  if [ -f "$run/$name.pid" ] && kill -0 "$(cat "$run/$name.pid")" 2>/dev/null; then return; fi
  FUNNEL_HTTP_PORT=$port nohup ".build/debug/$name" serve > "$run/$name.log" 2>&1 &
  echo $! > "$run/$name.pid"
  for _ in $(seq 1 150); do
    curl -fs "http://127.0.0.1:$port/health/ready" >/dev/null 2>&1 && { echo "== $name ready on http://127.0.0.1:$port (log var/dev/$name.log)"; return; }
    kill -0 "$(cat "$run/$name.pid")" 2>/dev/null || { echo "$name exited:"; tail -20 "$run/$name.log"; exit 1; }
    sleep 0.2
  done
  echo "$name did not become ready; see $run/$name.log"; exit 1
}
start_service marketing-intake 8081
start_service online-chat 8082
start_service identity-merge 8083
start_service sales-dispatch 8084

# A demo lead source; its key is shown once, so keep it for later runs.
if [ ! -s "$run/demo-source.json" ]; then
  .build/debug/marketing-intake sources create --name demo-landing-page --channel landing-page 2>/dev/null > "$run/demo-source.json" \
    || .build/debug/marketing-intake sources list 2>/dev/null > /dev/null
fi
# A demo chat site whose page is served by online-chat itself.
.build/debug/online-chat sites create --id demo --name "Demo school" --origin http://127.0.0.1:8082 --origin http://localhost:8082 >/dev/null 2>&1 || true
key=$(grep -o '"api_key" : "[^"]*"' "$run/demo-source.json" | cut -d'"' -f4 || true)
cat <<TXT

Funnel is up.
  PostgreSQL     postgresql://funnel@127.0.0.1:55432/funnel   (psql -h 127.0.0.1 -p 55432 -U funnel funnel)
  devbroker      127.0.0.1:9092   (memory only; for development and CI)
  marketing-intake http://127.0.0.1:8081   (/health/ready, /metrics; admin token: dev-admin-token)
  online-chat      http://127.0.0.1:8082   (widget demo: http://127.0.0.1:8082/demo?site=demo; operator token: dev-admin-token)
  identity-merge   http://127.0.0.1:8083   (operator token: dev-admin-token)
  sales-dispatch   http://127.0.0.1:8084   (employee JWTs: .build/debug/sales-dispatch token --employee ID --role rep|lead|admin)
  logs           var/dev/*.log

Post a lead (demo source "demo-landing-page", key in var/dev/demo-source.json):
  curl -s -X POST http://127.0.0.1:8081/v1/leads -H 'Authorization: Bearer ${key:-<key>}' \\
       -H 'Content-Type: application/json' \\
       -d '{"phone": "+86 138 0013 8001", "name": "张三", "course_interest": "java", "utm": {"source": "baidu"}}'

Push one onto the topic as marketing's tools do:
  echo '{"source": "demo-landing-page", "phone": "13912345678", "platformLeadId": "form-42"}' | \\
       kcat -b 127.0.0.1:9092 -P -t marketing.campaign-leads.v1 -H content-type=application/json

Read what came out (protobuf; headers carry the CloudEvents attributes):
  kcat -b 127.0.0.1:9092 -C -t leads.captured.v1 -o beginning -e -f 'key=%k headers=%h\n'
  kcat -b 127.0.0.1:9092 -C -t dlq.marketing-intake.v1 -o beginning -e -f '%h\n'

Chat as a visitor (or open http://127.0.0.1:8082/demo?site=demo in a browser), then answer as an operator:
  T=\$(curl -s -X POST http://127.0.0.1:8082/v1/chat/sessions -d '{"site": "demo"}' | sed 's/.*"token":"\([^"]*\)".*/\1/')
  for a in 李雷 IELTS 13800138002; do curl -s -X POST http://127.0.0.1:8082/v1/chat/messages -H "Authorization: Bearer \$T" -d "{\"text\": \"\$a\"}"; echo; done
  curl -s http://127.0.0.1:8082/v1/operator/conversations -H 'Authorization: Bearer dev-admin-token'
  curl -s -X POST http://127.0.0.1:8082/v1/operator/conversations/<id>/messages -H 'Authorization: Bearer dev-admin-token' -d '{"text": "您好"}'

The lead becomes a customer (identity-merge); look it up by phone, see why, and register the user:
  curl -s 'http://127.0.0.1:8083/v1/customers?phone=13800138001' -H 'Authorization: Bearer dev-admin-token'
  curl -s http://127.0.0.1:8083/v1/customers/<id>/history -H 'Authorization: Bearer dev-admin-token'
  echo '{"userId": "u-1001", "phone": "13800138001", "email": "zhang@example.com"}' | \\
       kcat -b 127.0.0.1:9092 -P -t identity.registrations.v1 -k u-1001 -H content-type=application/json
  kcat -b 127.0.0.1:9092 -C -t identity.customers.v1 -o beginning -e -f 'key=%k %h\n'

Sales dispatch: an org, a policy, and the customer above becomes an opportunity assigned to a rep:
  ADMIN=\$(.build/debug/sales-dispatch token --employee boss --role admin)
  curl -s -X PUT http://127.0.0.1:8084/v1/org-units/hq -H "Authorization: Bearer \$ADMIN" -d '{"name": "HQ"}'
  curl -s -X PUT http://127.0.0.1:8084/v1/teams/java -H "Authorization: Bearer \$ADMIN" -d '{"name": "Java", "org_unit_id": "hq"}'
  curl -s -X PUT http://127.0.0.1:8084/v1/reps/wang -H "Authorization: Bearer \$ADMIN" -d '{"team_id": "java", "name": "王"}'
  curl -s -X PUT http://127.0.0.1:8084/v1/policies -H "Authorization: Bearer \$ADMIN" -d '{"fallback_team": "java", "routing": [], "teams": {}}'
  (post another lead as above, then)
  curl -s http://127.0.0.1:8084/v1/opportunities/mine -H "Authorization: Bearer \$(.build/debug/sales-dispatch token --employee wang)"
  kcat -b 127.0.0.1:9092 -C -t sales.opportunities.v1 -o beginning -e -f 'key=%k %h\n'

Stop everything: make down
TXT
