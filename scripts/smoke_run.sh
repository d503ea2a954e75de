#!/usr/bin/env bash
# The newcomer path, as CI proves it: `make run` in the background on the embedded default,
# wait for the gateway's /readyz?require=all (every service ready), make one authenticated call
# through it, stop everything.
set -uo pipefail
cd "$(dirname "$0")/.."
env -u DATABASE_URL -u REDIS_URL -u OIDC_ISSUER make run > var-run.log 2>&1 &
runner=$!
cleanup() { kill -TERM "$runner" 2>/dev/null; pkill -TERM -f "scripts/devsuite.py" 2>/dev/null; wait "$runner" 2>/dev/null; }
trap cleanup EXIT

ready=""
for _ in $(seq 240); do
  if curl -sf "http://127.0.0.1:8000/readyz?require=all" >/dev/null 2>&1; then ready=yes; break; fi
  if ! kill -0 "$runner" 2>/dev/null; then break; fi
  sleep 1
done
if [ -z "$ready" ]; then
  echo "the suite did not become ready; make run said:"; tail -50 var-run.log
  for f in var/log/*.log; do echo "--- $f"; tail -20 "$f"; done
  exit 1
fi
token=$(curl -sf -d grant_type=client_credentials -d client_id=town-worker -d client_secret=demo-town-worker \
  http://127.0.0.1:8000/oauth/token | python3 -c 'import sys, json; print(json.load(sys.stdin)["access_token"])')
code=$(curl -s -o var-call.json -w '%{http_code}' -H "Authorization: Bearer $token" \
  http://127.0.0.1:8000/api/v1/areas/330106001000)
echo "GET /api/v1/areas/330106001000 as town-worker -> $code"
head -c 400 var-call.json; echo
unauth=$(curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:8000/api/v1/areas/330106001000)
echo "same call without a token -> $unauth"
cleanup
trap - EXIT
# Every process must have exited after the stop.
sleep 1
# (only this checkout's processes: other checkouts on the machine may run their own)
if pgrep -f "$PWD/.venv/bin/python -m (gateway|registry|scoring|alerts|matching) serve" >/dev/null; then
  echo "processes were left running after the stop"; exit 1
fi
[ "$code" = 200 ] && [ "$unauth" = 401 ] && echo "newcomer path: ok"
