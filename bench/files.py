"""P1 / P2 (a large CSV / Excel report against the database's read limit), P3 (a 5,000-row PDF
against single-process WeasyPrint) and P3-50k (a PDF at its 50,000-row cap)."""

from __future__ import annotations

from bench.common import log, running, start_api, start_worker
from bench.figures import API_PORT, Figure, bare_run, emit, lp_report, med, product_run
from bench.pdf_scale import main as pdf_scale

# -- P1 / P2 -------------------------------------------------------------------------------------


AGGREGATION_INFO_ROWS = 5000  # the old aggregation baseline, run once at this size (INFO)


def p1_p2(fmt: str, rows: int, small: int, runs: int, aggregation_info: bool = False) -> None:
    name = "P1 CSV" if fmt == "csv" else "P2 Excel"
    target = 1.5 if fmt == "csv" else 1.3
    with running([start_api(API_PORT), start_worker(0)]) as (_api, worker):
        product_run(worker, API_PORT, lp_report(fmt, small))  # warm-up (imports, caches)
        bare, prod, prod_small = [], [], []
        for i in range(runs):
            bare.append(bare_run(fmt, rows))
            prod.append(product_run(worker, API_PORT, lp_report(fmt, rows)))
            prod_small.append(product_run(worker, API_PORT, lp_report(fmt, small)))
            log(f"{name} run {i + 1}: read limit {bare[-1]['wall']:.1f}s "
                f"product {prod[-1]['wall']:.1f}s (cpu {prod[-1]['cpu']:.1f}s, "
                f"{prod[-1]['peak_mb']:.0f} MB) @{small:,} {prod_small[-1]['wall']:.1f}s "
                f"{prod_small[-1]['peak_mb']:.0f} MB")  # fmt: skip
        agg_rows = min(rows, AGGREGATION_INFO_ROWS)
        if aggregation_info:
            agg = bare_run(fmt, agg_rows, "aggregation")
            agg_prod = product_run(worker, API_PORT, lp_report(fmt, agg_rows))
    n = med(prod, "rows")
    wall, bwall = med(prod, "wall"), med(bare, "wall")
    emit(Figure(f"{name} {int(n):,} rows wall", f"{wall:.2f} s", f"{bwall:.2f} s read",
                wall / bwall, f"<= {target}x", wall / bwall <= target))  # fmt: skip
    if aggregation_info:
        emit(Figure(f"{name} {agg_rows:,} rows vs old aggregation", f"{agg_prod['wall']:.2f} s",
                    f"{agg['wall']:.2f} s agg", agg_prod["wall"] / agg["wall"], "info",
                    None))  # fmt: skip
    peak, peak_small = med(prod, "peak_mb"), med(prod_small, "peak_mb")
    cpu_row = med(prod, "cpu") / n * 1e6
    bcpu_row = med(bare, "cpu") / med(bare, "rows") * 1e6
    # The read limit's process does no joins and no ordering: the worker's CPU per row above
    # it is what joining and ordering in the worker cost (reported, not targeted).
    emit(Figure(f"{name} worker CPU/row", f"{cpu_row:.1f} us", f"{bcpu_row:.1f} us read",
                cpu_row / bcpu_row, "report", None))  # fmt: skip
    emit(Figure(f"{name} peak worker RSS", f"{peak:.0f} MB",
                f"{med(bare, 'peak_mb'):.0f} MB read", None, "<= 150 MB", peak <= 150))  # fmt: skip
    emit(Figure(f"{name} constant memory", f"{peak:.0f} MB @{int(n):,}",
                f"{peak_small:.0f} MB @{small:,}", peak / peak_small, "<= 1.2x",
                peak / peak_small <= 1.2))  # fmt: skip


# -- P3 --------------------------------------------------------------------------------------


def p3(runs: int, cap: int = 5000) -> None:
    with running([start_api(API_PORT), start_worker(0)]) as (_api, worker):
        product_run(worker, API_PORT, lp_report("pdf", 1000), tree=True)  # warm-up
        bare, prod = [], []
        for i in range(runs):
            bare.append(bare_run("pdf", cap))
            prod.append(product_run(worker, API_PORT, lp_report("pdf", cap), tree=True))
            log(f"P3 run {i + 1}: bare {bare[-1]['wall']:.1f}s product {prod[-1]['wall']:.1f}s")
    rate = med(prod, "rows") / med(prod, "wall")
    brate = med(bare, "rows") / med(bare, "wall")
    emit(Figure(f"P3 PDF {cap:,} rows rate", f"{rate:.0f} rows/s", f"{brate:.0f} rows/s",
                rate / brate, ">= 2x", rate / brate >= 2))  # fmt: skip
    emit(Figure("P3 PDF peak memory (worker+render)", f"{med(prod, 'peak_tree_mb'):.0f} MB",
                f"{med(bare, 'peak_mb'):.0f} MB bare", None, "<= 700 MB",
                med(prod, "peak_tree_mb") <= 700))  # fmt: skip
    # Rows per CPU second of the worker and its render processes together (the worker's own
    # share included, so a lower bound of one render process's layout rate).
    per_process = med(prod, "rows") / med(prod, "cpu")
    emit(Figure("P3 PDF per-process layout rate", f"{per_process:.0f} rows/cpu-s",
                f"{brate:.0f} rows/s", per_process / brate, "report", None))  # fmt: skip


def p3_50k() -> None:
    """A PDF at its 50,000-row cap, once (rows made in memory: bench/pdf_scale.py)."""
    pdf_scale(["--rows", "50000", "--runs", "1", "--no-baseline"])
