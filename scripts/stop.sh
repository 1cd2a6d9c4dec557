#!/usr/bin/env bash
# make stop: stops the API, the worker and the local servers these scripts started.
source "$(dirname "$0")/lib.sh"
stop_pidfile "$RUN_DIR/worker.pid" worker
stop_pidfile "$RUN_DIR/api.pid" api
"$ROOT/scripts/servers.sh" stop mongo redis s3 mail
