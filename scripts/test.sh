#!/usr/bin/env bash
# make test: install what is missing, start the servers the tests need (reusing running ones),
# run ruff, mypy and the whole pytest suite with coverage, then stop what this script started.
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

"$ROOT/scripts/install.sh"

started=()
for svc in mongo redis; do
  if ! port_open "$( [ $svc = mongo ] && echo "$MONGO_HOST" || echo "$REDIS_HOST")" \
                 "$( [ $svc = mongo ] && echo "$MONGO_PORT" || echo "$REDIS_PORT")"; then
    started+=("$svc")
  fi
done
cleanup() {
  if ((${#started[@]})); then "$ROOT/scripts/servers.sh" stop "${started[@]}" || true; fi
}
trap cleanup EXIT
"$ROOT/scripts/servers.sh" start mongo redis

say "ruff"
code_dirs=(); for d in app worker scripts tests bench; do [ -d "$d" ] && code_dirs+=("$d"); done
.venv/bin/ruff check "${code_dirs[@]}"
.venv/bin/ruff format --check "${code_dirs[@]}"
say "mypy"
.venv/bin/mypy app worker scripts
say "pytest"
set +e
.venv/bin/pytest -m "not soak" --cov=app --cov=worker --cov-report=term:skip-covered \
  --cov-report=xml:.data/coverage.xml -p no:cacheprovider "$@"
rc=$?
set -e
if [ "$rc" -eq 5 ]; then echo "error: pytest collected no tests" >&2; fi
exit "$rc"
