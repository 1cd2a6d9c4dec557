"""The database commands a job costs: the API and one worker run under `bench.commands`;
ten small (14-row) jobs one after another, then the P5 mix once (40 jobs at once), each
tallied per job, the worker's and the API's commands apart, with the database server's CPU.

    python -m bench.job_commands [--small 10] [--mix 40]
"""

from __future__ import annotations

import argparse
import time

from bench.common import (
    BENCH_DIR,
    PY,
    api_client,
    apply_bench_env,
    cpu_seconds,
    run_job,
    running,
    start,
    wait_http,
)

apply_bench_env()

from bench.commands import Tally, print_tallies, read_tally, tally_difference  # noqa: E402
from bench.figures import ADMIN, API_PORT, SMALL_REPORT  # noqa: E402
from bench.jobs import _batch, database_server_pid  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.job_commands")
    parser.add_argument("--small", type=int, default=10)
    parser.add_argument("--mix", type=int, default=40)
    args = parser.parse_args(argv)
    BENCH_DIR.mkdir(parents=True, exist_ok=True)
    paths = {"worker": BENCH_DIR / "commands-worker.json", "api": BENCH_DIR / "commands-api.json"}
    for p in paths.values():
        p.unlink(missing_ok=True)
    api = start("api-commands", [PY, "-m", "bench.commands", "--out", str(paths["api"]), "api",
                                 "--port", str(API_PORT)])  # fmt: skip
    server = database_server_pid()

    def snap() -> tuple[dict[str, Tally], float]:
        time.sleep(1.2)  # the tallies are written twice a second
        return {k: read_tally(p) for k, p in paths.items()}, cpu_seconds(server) if server else 0

    def report(title: str, before: tuple[dict[str, Tally], float], jobs: int) -> None:
        after = snap()
        for k in paths:
            print_tallies(f"{title}, {k}, per job", tally_difference(before[0][k], after[0][k]),
                          jobs)  # fmt: skip
        print(f"-- {title}: database server CPU {(after[1] - before[1]) / jobs * 1000:.0f} ms "
              "per job (idle heartbeats and polls included)")  # fmt: skip

    with running([api]):
        wait_http(f"http://127.0.0.1:{API_PORT}/healthz", api)
        worker = start("worker-commands", [PY, "-m", "bench.commands", "--out",
                                           str(paths["worker"]), "worker"])  # fmt: skip
        with running([worker]), api_client(API_PORT, ADMIN) as client:
            rows = run_job(client, SMALL_REPORT).body["result"]["rowCount"]  # warm-up
            before = snap()
            for _ in range(args.small):
                run_job(client, SMALL_REPORT, poll=0.05)
            report(f"{args.small} small jobs of {rows} rows, one after another", before,
                   args.small)  # fmt: skip
            if args.mix:
                before = snap()
                seconds = _batch(args.mix)
                report(f"P5 mix of {args.mix} jobs ({seconds:.1f} s)", before, args.mix)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
