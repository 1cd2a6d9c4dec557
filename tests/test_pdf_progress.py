"""A PDF job's progress moves while its render processes work: page by page, then the join,
saved between heartbeats, never backwards, with its rows and a step that says what runs."""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from weasyprint import HTML

from app.learning_events.models import LearningEvent  # noqa: F401 - documents registered
from app.reports.execution.pipeline import LAID_OUT
from app.reports.rendering.pdf.progress import (
    LAYOUT,
    Reading,
    RenderProgress,
    layout_share,
    read_progress,
    read_share,
)
from app.runtime.resources import Resources
from tests import factories as f
from tests.helpers.jobs import insert_enrollments
from tests.helpers.pdf_progress import render_following
from tests.helpers.processes import kill_group, start_worker
from tests.helpers.tokens import TokenFactory

JOBS = "/api/v1/reports/jobs"
STEPS = ["queued", "resolve", "count", "fetch", "render", "store", "finish"]


def test_laid_out_pages_move_a_chunk_share_and_never_past_the_layout() -> None:
    shares = [layout_share(page, expected_pages=10) for page in range(1, 30)]
    assert shares == sorted(shares) and len(set(shares)) == len(shares)  # every page moves it
    assert shares[0] == LAYOUT[0] and all(s < LAYOUT[1] for s in shares)


class _Recorded(RenderProgress):
    def __init__(self, path: str, expected_pages: int) -> None:
        super().__init__(path, expected_pages)
        self.seen: list[Reading] = []

    def write(self, share: float, cap: float | None = None) -> None:
        before = self.share
        super().write(share, cap)
        if self.share != before:  # a report that goes back or stays is not written (a cap can
            # still move on, unrecorded here)
            self.seen.append(read_progress(self.path))


def test_a_render_process_reports_weasyprint_steps_elements_and_pages(tmp_path: Path) -> None:
    path = str(tmp_path / "chunk.pdf.progress")
    progress = _Recorded(path, expected_pages=60)  # 80 pages come: 20 past the estimate
    paragraphs = "".join(f"<p style='break-after: page'>{i}</p>" for i in range(4))
    with progress.following():
        html = HTML(string=f"<html lang='en'><body>{paragraphs * 20}</body></html>")
        progress.styling(html)
        document = html.render()
        progress.painting(document)
        document.write_pdf()
    shares = [r.share for r in progress.seen]
    # Steps, the elements styled, 80 pages laid out and painted, each report once, in order.
    assert shares == sorted(shares) and len(set(shares)) >= 2 * 80
    assert 0 < shares[0] < 0.05 and shares[-1] > 0.8
    # A report's cap (where the next one is expected) is never beyond the next one: the share
    # estimated in between never runs ahead of what is reported next.
    pairs = zip(progress.seen, progress.seen[1:], strict=False)
    assert all(a.cap <= b.share + 1e-4 for a, b in pairs)  # written to 5 decimals
    assert read_share(tmp_path / "missing") == 0.0


def test_between_reports_the_share_moves_at_the_pace_so_far_up_to_the_cap() -> None:
    reading = Reading(share=0.2, cap=0.3, started=100.0, written=102.0)  # 0.1 a second
    assert reading.estimate(102.0) == 0.2
    assert reading.estimate(102.5) == pytest.approx(0.25)
    assert reading.estimate(110.0) == 0.3  # never past the next report
    assert Reading().estimate(5.0) == 0.0


async def test_pdf_progress_moves_within_each_chunk_and_through_the_join(tmp_path: Path) -> None:
    # WeasyPrint for every chunk: the direct table writer lays these 600 rows out in a few
    # tenths of a second, too fast for the 0.25 s the pipeline polls at to see it move ten times.
    sink, progress, seen = await render_following(tmp_path / "r.pdf", 600, 300, direct_tables=False)
    assert sink.rows_laid_out == 600
    assert progress.percent == LAID_OUT
    assert seen == sorted(seen)
    # Two chunks on one process: far more steps than the two chunk completions.
    assert len({p for p in seen if 45.0 < p < LAID_OUT}) >= 10
    left = await asyncio.to_thread(lambda: sorted(p.name for p in tmp_path.iterdir()))
    assert left == ["r.pdf"]  # no progress file, no chunk left behind


@pytest.mark.slow
async def test_a_1000_row_pdf_job_never_stands_still_for_2_seconds(
    client: httpx.AsyncClient, auth: TokenFactory, resources: Resources
) -> None:
    dept = await f.department("Operations", code="OPS")
    course = await f.course("OPS-1", title="Operations handbook for new starters")
    await insert_enrollments(course, dept, 1000)
    body = {
        "reportType": "learner-progress",
        "format": "pdf",
        "parameters": {"dateRange": {"preset": "custom", "from": "2026-01-01", "to": "2026-12-31"}},
    }
    headers = auth("admin")
    created = await client.post(JOBS, json=body, headers=headers)
    assert created.status_code == 202, created.text
    job_url = f"{JOBS}/{created.json()['id']}"
    # The production settings: 500-row chunks on two render processes, the lease renewed every
    # 5 s (the progress is saved every second in between).
    worker = start_worker(
        JOB_LEASE_SECONDS="60",
        JOB_HEARTBEAT_SECONDS="5",
        RENDER_PROCESSES="2",
        PDF_CHUNK_ROWS="500",
        # WeasyPrint for every chunk, as before the direct table writer: with it this job is
        # done in ~3 s, too soon for five samples a second apart.
        PDF_DIRECT_TABLES="false",
    )
    samples: list[tuple[float, dict[str, Any]]] = []
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            job = (await client.get(job_url, headers=headers)).json()
            if job["status"] == "running":
                samples.append((time.monotonic(), job["progress"]))
            if job["status"] in ("completed", "failed", "cancelled"):
                break
            await asyncio.sleep(1.0)
    finally:
        kill_group(worker, signal.SIGTERM)
        worker.wait(30)
    assert job["status"] == "completed", job
    assert len(samples) >= 5, samples
    percents = [p["percent"] for _, p in samples]
    assert percents == sorted(percents), percents  # never backwards
    steps = [STEPS.index(p["step"]) for _, p in samples]
    assert steps == sorted(steps), samples
    render = [p for _, p in samples if p["step"] == "render"]
    assert render and all(p["rowsProcessed"] == p["rowsTotal"] == 1000 for p in render)
    # The longest time the samples show the same progress.
    longest, since = 0.0, samples[0]
    for sample in samples[1:]:
        if sample[1] != since[1]:
            since = sample
        longest = max(longest, sample[0] - since[0])
    timeline = [(round(t - samples[0][0], 1), p["step"], p["percent"]) for t, p in samples]
    assert longest <= 2.0, "\n".join(map(str, timeline))


async def test_a_direct_written_pdfs_progress_moves_with_the_work(tmp_path: Path) -> None:
    """With the direct table writer (page one's chunk WeasyPrint's, weighted by its cost) the
    percent moves while the chunks are laid out, never back, and ends at ``LAID_OUT``."""
    sink, progress, seen = await render_following(tmp_path / "r.pdf", 600, 300)
    assert sink.rows_laid_out == 600 and progress.percent == LAID_OUT
    assert seen == sorted(seen) and len({p for p in seen if 45.0 < p < LAID_OUT}) >= 3
    left = await asyncio.to_thread(lambda: sorted(p.name for p in tmp_path.iterdir()))
    assert left == ["r.pdf"]
