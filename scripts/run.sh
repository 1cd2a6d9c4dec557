#!/usr/bin/env bash
# make run: install what is missing, start (or reuse) MongoDB-compatible, Redis (and S3 when
# STORAGE_BACKEND=s3), seed demo data on first start, run the API and one worker, print the
# Swagger URL and demo tokens. Ctrl-C stops the API and the worker (servers keep running;
# `make stop` stops them).
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

"$ROOT/scripts/install.sh"
"$ROOT/scripts/servers.sh" start mongo redis mail
# Local development: webhooks may call a receiver on this machine (docs/delivery.md, SSRF).
export WEBHOOK_ALLOWED_NETWORKS="${WEBHOOK_ALLOWED_NETWORKS:-127.0.0.1/32}"
if [ "${STORAGE_BACKEND:-local}" = "s3" ]; then
  "$ROOT/scripts/servers.sh" start s3
  export S3_ENDPOINT_URL="${S3_ENDPOINT_URL:-http://$S3_HOST:$S3_PORT}"
  export S3_CREATE_BUCKET="${S3_CREATE_BUCKET:-true}"
  export S3_ACCESS_KEY_ID="${S3_ACCESS_KEY_ID:-local}" S3_SECRET_ACCESS_KEY="${S3_SECRET_ACCESS_KEY:-local}"
fi

say "demo data"
"$PY" -m scripts.seed_demo --if-empty

print_access() {
  echo
  say "Swagger UI:  http://$API_HOST:$API_PORT/docs   (ReDoc: /redoc, health: /readyz)"
  "$PY" -m scripts.mint_token --demo
}

if port_open "$API_HOST" "$API_PORT"; then
  say "an API is already listening on $API_HOST:$API_PORT: reusing it (not starting another)"
  if ! pid_alive "$RUN_DIR/worker.pid"; then
    say "starting a worker"
    nohup "$PY" -m worker >"$LOG_DIR/worker.log" 2>&1 &
    echo $! >"$RUN_DIR/worker.pid"
  else
    say "a worker is already running (pid $(cat "$RUN_DIR/worker.pid")): reusing it"
  fi
  print_access
  exit 0
fi

say "starting the API on http://$API_HOST:$API_PORT and one worker (logs in $LOG_DIR)"
"$PY" -m app --host "$API_HOST" --port "$API_PORT" > >(tee -a "$LOG_DIR/api.log") 2>&1 &
api_pid=$!
echo "$api_pid" >"$RUN_DIR/api.pid"
worker_pid=""
if pid_alive "$RUN_DIR/worker.pid"; then
  say "a worker is already running (pid $(cat "$RUN_DIR/worker.pid")): reusing it"
else
  "$PY" -m worker >>"$LOG_DIR/worker.log" 2>&1 &
  worker_pid=$!
  echo "$worker_pid" >"$RUN_DIR/worker.pid"
fi

stop_all() {
  trap - INT TERM EXIT
  [ -n "$worker_pid" ] && stop_pidfile "$RUN_DIR/worker.pid" worker
  stop_pidfile "$RUN_DIR/api.pid" api
}
trap stop_all INT TERM EXIT

wait_port "$API_HOST" "$API_PORT" 60 "the API" || exit 1
print_access
say "running; press Ctrl-C to stop the API and the worker"
wait "$api_pid"
