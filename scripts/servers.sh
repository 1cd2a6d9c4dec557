#!/usr/bin/env bash
# Local servers: start | stop | status  [mongo] [redis] [s3] [mail]   (default: mongo redis)
# A server already listening on its port is reused, never started twice. `stop` stops only
# servers these scripts started (they have a pid file under .data/run). The tests never use
# these: they start their own on free ports (tests/helpers/servers.py).
source "$(dirname "$0")/lib.sh"

action="${1:-status}"; shift || true
services=("$@"); ((${#services[@]})) || services=(mongo redis)

start_mongo() {
  if port_open "$MONGO_HOST" "$MONGO_PORT"; then
    say "MongoDB-compatible server already listening on $MONGO_HOST:$MONGO_PORT: reusing it"
    return 0
  fi
  [ -x "$TOOLS/secantus/bin/secantusd-py" ] || "$ROOT/scripts/install.sh"
  mkdir -p "$DATA/mongo"
  say "starting SecantusDB on $MONGO_HOST:$MONGO_PORT (data in $DATA/mongo)"
  nohup "$TOOLS/secantus/bin/secantusd-py" --host "$MONGO_HOST" --port "$MONGO_PORT" \
    --storage-path "$DATA/mongo" --log-level WARNING >"$LOG_DIR/mongo.log" 2>&1 &
  echo $! >"$RUN_DIR/mongo.pid"
  wait_port "$MONGO_HOST" "$MONGO_PORT" 60 "SecantusDB"
}

start_redis() {
  if port_open "$REDIS_HOST" "$REDIS_PORT"; then
    say "Redis already listening on $REDIS_HOST:$REDIS_PORT: reusing it"
    return 0
  fi
  ensure_redis_server
  mkdir -p "$DATA/redis"
  say "starting Redis on $REDIS_HOST:$REDIS_PORT"
  redis-server --daemonize yes --bind "$REDIS_HOST" --port "$REDIS_PORT" --save "" \
    --appendonly no --dir "$DATA/redis" --pidfile "$RUN_DIR/redis.pid" \
    --logfile "$LOG_DIR/redis.log"
  wait_port "$REDIS_HOST" "$REDIS_PORT" 20 "Redis"
}

start_s3() {
  if port_open "$S3_HOST" "$S3_PORT"; then
    say "S3 (moto) already listening on $S3_HOST:$S3_PORT: reusing it"
    return 0
  fi
  say "starting moto S3 server on $S3_HOST:$S3_PORT"
  nohup "$ROOT/.venv/bin/moto_server" -H "$S3_HOST" -p "$S3_PORT" >"$LOG_DIR/s3.log" 2>&1 &
  echo $! >"$RUN_DIR/s3.pid"
  wait_port "$S3_HOST" "$S3_PORT" 30 "moto S3 server"
}

start_mail() {
  if port_open "$MAIL_HOST" "$MAIL_PORT"; then
    say "SMTP server already listening on $MAIL_HOST:$MAIL_PORT: reusing it"
    return 0
  fi
  mkdir -p "$DATA/mail"
  say "starting the local mail server on $MAIL_HOST:$MAIL_PORT (messages in $DATA/mail)"
  nohup "$PY" -m scripts.mail_server --host "$MAIL_HOST" --port "$MAIL_PORT" \
    --dir "$DATA/mail" >"$LOG_DIR/mail.log" 2>&1 &
  echo $! >"$RUN_DIR/mail.pid"
  wait_port "$MAIL_HOST" "$MAIL_PORT" 20 "mail server"
}

status_one() { # name host port
  if port_open "$2" "$3"; then
    local who="external"; pid_alive "$RUN_DIR/$1.pid" && who="pid $(cat "$RUN_DIR/$1.pid")"
    echo "$1: up on $2:$3 ($who)"
  else
    echo "$1: down ($2:$3)"
  fi
}

for svc in "${services[@]}"; do
  case "$action:$svc" in
    start:mongo) start_mongo ;;
    start:redis) start_redis ;;
    start:s3) start_s3 ;;
    start:mail) (cd "$ROOT" && start_mail) ;;
    stop:mongo|stop:redis|stop:s3|stop:mail) stop_pidfile "$RUN_DIR/$svc.pid" "$svc" ;;
    status:mongo) status_one mongo "$MONGO_HOST" "$MONGO_PORT" ;;
    status:redis) status_one redis "$REDIS_HOST" "$REDIS_PORT" ;;
    status:s3) status_one s3 "$S3_HOST" "$S3_PORT" ;;
    status:mail) status_one mail "$MAIL_HOST" "$MAIL_PORT" ;;
    *) echo "usage: scripts/servers.sh start|stop|status [mongo] [redis] [s3] [mail]" >&2; exit 2 ;;
  esac
done
