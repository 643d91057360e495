#!/usr/bin/env bash
# Runs the two curl commands of the AgentBurn integration guide, as written there except for
# the host:port and the placeholders, against a fresh agentburn-server.
# Usage: seed_curl.sh PATH_TO_AGENTBURN_SERVER
set -euo pipefail

server=$1
work=$(mktemp -d)
pid=
cleanup() {
  if [[ -n $pid ]]; then kill -TERM "$pid" 2>/dev/null || true; wait "$pid" || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

YOUR_API_KEY=seed-test-key
mkfifo "$work/stdout"
"$server" --listen 127.0.0.1:0 --data "$work/data" --api-key "$YOUR_API_KEY" >"$work/stdout" &
pid=$!
exec 3<"$work/stdout"
read -r -t 20 -u 3 line || fail "the server printed no 'listening on' line within 20 s"
[[ $line == "listening on http://127.0.0.1:"* ]] || fail "unexpected first line: $line"
port=${line##*:}

# 1. Register an Agent (no key, as the guide shows).
agent=$(curl -X POST http://localhost:$port/api/agents \
-H "Content-Type: application/json" \
-d '{
"name": "My Agent",
"description": "Handles customer onboarding workflows",
"projectId": "onboarding",
"tags": ["support", "onboarding"]
}')
echo "agent: $agent"
AGENT_ID_HERE=$(printf '%s' "$agent" | sed -n 's/.*"id":"\(agt_[^"]*\)".*/\1/p')
[[ -n $AGENT_ID_HERE ]] || fail "no agent id in the answer"
[[ $agent == *'"name":"My Agent"'* ]] || fail "the answer lacks the name"
[[ $agent == *'"projectId":"onboarding"'* ]] || fail "the answer lacks the projectId"
[[ $agent == *'"tags":["support","onboarding"]'* ]] || fail "the answer lacks the tags"

# 2. Ingest Cost Events.
ingest=$(curl -X POST http://localhost:$port/api/ingest \
-H "Content-Type: application/json" \
-H "x-api-key: $YOUR_API_KEY" \
-d '{
"agentId": "'"$AGENT_ID_HERE"'",
"provider": "anthropic",
"model": "claude-3.5-sonnet",
"operation": "llm_call",
"inputTokens": 12500,
"outputTokens": 3200,
"costUsd": 0.0855,
"taskId": "ticket-CTMS-5109",
"workflowId": "sprint-42"
}')
echo "ingest: $ingest"
[[ $ingest == *'"ingested":1'* ]] || fail "the event was not ingested"

# What the server stored.
events=$(curl -sS -H "x-api-key: $YOUR_API_KEY" "http://127.0.0.1:$port/api/events")
echo "events: $events"
for field in '"agentId":"'"$AGENT_ID_HERE"'"' '"provider":"anthropic"' \
  '"model":"claude-3.5-sonnet"' '"operation":"llm_call"' '"inputTokens":12500' \
  '"outputTokens":3200' '"costUsd":0.0855' '"taskId":"ticket-CTMS-5109"' \
  '"workflowId":"sprint-42"'; do
  [[ $events == *"$field"* ]] || fail "stored event lacks $field"
done
costs=$(curl -sS -H "x-api-key: $YOUR_API_KEY" "http://127.0.0.1:$port/api/costs")
echo "costs: $costs"
[[ $costs == *'"totalCost":0.0855'* && $costs == *'"eventCount":1'* ]] || fail "wrong totals"

kill -TERM "$pid"
status=0
wait "$pid" || status=$?
pid=
[[ $status == 0 ]] || fail "the server exited with $status after SIGTERM"
echo "PASS"
