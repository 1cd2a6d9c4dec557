#!/usr/bin/env bash
# make bench: performance figures P1-P8 against bare baselines (see docs/performance.md).
# Runs the real API and worker processes on their own database, queues and file folder:
#   MONGODB_DB=bench_reports, QUEUE_NAME=bench:reports:queue, LOCAL_STORAGE_DIR=.data/bench/files
# Arguments go to `python -m bench.run` (e.g. scripts/bench.sh --rows 100000 --only P1,P2).
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

"$ROOT/scripts/install.sh"
"$ROOT/scripts/servers.sh" start mongo redis
export MONGODB_DB="${BENCH_MONGODB_DB:-bench_reports}"
export QUEUE_NAME="bench:reports:queue" SCHEDULER_QUEUE_NAME="bench:reports:scheduler"
export LOCAL_STORAGE_DIR="$DATA/bench/files" STORAGE_BACKEND=local
mkdir -p "$DATA/bench"
say "benchmarks (database $MONGODB_DB; logs in $DATA/bench/logs)"
exec "$PY" -m bench.run "$@"
