"""P10: every grouping and row type's CSV against its read limit (`bench.baselines.bare_grouped`),
at the bench database's size (1,000,000 enrollments and 1,000,000 learning events in the
issue's figure). learner-progress is P1."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from bench import seed as seeding
from bench.common import BENCH_DIR, log, run_baseline, running, start_api, start_worker
from bench.figures import API_PORT, Figure, emit, med, product_run

# Events happen up to 200 hours after their enrollment (bench/seed.py `_event`).
EVENT_SLACK_DAYS = 9
TARGET = 1.5
P10_TYPES = (
    "department-summary",
    "course-completion",
    "learning-activity",
    "assessment-results",
    "compliance-status",
)


def full_range(rows: int) -> tuple[str, str]:
    """A date range holding every seeded enrollment and learning event."""
    enrolled = seeding.report_range(rows)
    last = seeding.BASE_DAY + timedelta(
        days=(date.fromisoformat(enrolled["to"]) - seeding.BASE_DAY).days + EVENT_SLACK_DAYS
    )
    return enrolled["from"], last.isoformat()


def report(report_type: str, rows: int) -> dict[str, Any]:
    first, last = full_range(rows)
    params: dict[str, Any] = {"timezone": "UTC"}
    if report_type != "compliance-status":
        params["dateRange"] = {"preset": "custom", "from": first, "to": last}
    return {"reportType": report_type, "format": "csv", "parameters": params}


def bare(report_type: str, rows: int) -> dict[str, float]:
    first, last = full_range(rows)
    out = BENCH_DIR / f"bare-{report_type}.csv"
    return run_baseline(["bench.baselines.bare_grouped", "--type", report_type, "--from", first,
                         "--to", last, "--out", str(out)])  # fmt: skip


def p10(rows: int, runs: int, types: tuple[str, ...] = P10_TYPES) -> None:
    with running([start_api(API_PORT), start_worker(0)]) as (_api, worker):
        for report_type in types:
            product_run(worker, API_PORT, report(report_type, 1000))  # warm-up
            prod, base = [], []
            for i in range(runs):
                base.append(bare(report_type, rows))
                prod.append(product_run(worker, API_PORT, report(report_type, rows)))
                log(f"P10 {report_type} run {i + 1}: read limit {base[-1]['wall']:.1f}s "
                    f"({int(base[-1]['read']):,} docs) product {prod[-1]['wall']:.1f}s "
                    f"(cpu {prod[-1]['cpu']:.1f}s, {prod[-1]['peak_mb']:.0f} MB)")  # fmt: skip
            wall, bwall = med(prod, "wall"), med(base, "wall")
            emit(Figure(f"P10 {report_type} {int(med(prod, 'rows')):,} rows "
                        f"({int(med(base, 'read')):,} docs)", f"{wall:.2f} s",
                        f"{bwall:.2f} s read", wall / bwall, f"<= {TARGET}x",
                        wall / bwall <= TARGET))  # fmt: skip
