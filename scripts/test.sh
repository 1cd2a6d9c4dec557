#!/usr/bin/env bash
# make test: install what is missing, run ruff, mypy and the whole pytest suite with coverage
# (failing below COVERAGE_FLOOR).
#
# The tests start their own SecantusDB and Redis on free ports with temporary data directories
# (tests/helpers/servers.py) and stop them at the end: a `make run` on this machine (from this
# clone or another) is never used, stopped or flushed, whichever starts first. Idempotent.
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

COVERAGE_FLOOR="${COVERAGE_FLOOR:-92}"  # coverage follows the spawned PDF render processes ([tool.coverage.run] in pyproject.toml)

"$ROOT/scripts/install.sh"
ensure_redis_server

say "ruff"
code_dirs=(); for d in app worker scripts tests bench; do [ -d "$d" ] && code_dirs+=("$d"); done
.venv/bin/ruff check "${code_dirs[@]}"
.venv/bin/ruff format --check "${code_dirs[@]}"
say "mypy"
.venv/bin/mypy app worker scripts tests
say "pytest (own database and Redis on free ports)"
cov=(--cov=app --cov=worker --cov-report=term:skip-covered --cov-report=xml:.data/coverage.xml
     --cov-fail-under="$COVERAGE_FLOOR")
for arg in "$@"; do [ "$arg" = "--no-cov" ] && cov=(); done
set +e
.venv/bin/pytest -m "not soak" "${cov[@]}" -p no:cacheprovider --durations=25 "$@"
rc=$?
set -e
if [ "$rc" -eq 5 ]; then echo "error: pytest collected no tests" >&2; fi
exit "$rc"
