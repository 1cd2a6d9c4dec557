"""How far the render processes have got with a PDF, step by step and page by page, for the
job's progress.

A chunk of 500 rows takes its process many seconds, and the processes of one PDF finish their
chunks at about the same time: counting finished chunks only, a job's progress stood still for
most of its rendering and then jumped. So each render process follows WeasyPrint's progress log
(the ``weasyprint.progress`` logger: parsing, CSS, boxes, "Creating layout - Page N", creating
the PDF) and writes how far its chunk is to a small file beside it; the parent reads the files
when it reports progress. A file, not a queue: a process may be killed at any moment (a
cancel), and a file needs no lock and is handed over with nothing but its path. Two steps
WeasyPrint logs once are followed more closely: applying the CSS (element by element) and
painting the pages into the PDF (page by page). The process start (``warm_up``) and the join
report the same way.

A report is a share of the work done and a cap, the share of the next report: in between, the
reader moves the share on at the pace of the work so far, never past the cap (``Reading``), so
the progress moves through the steps that report nothing (building the boxes, the structure
tree, writing the file) and never runs ahead of the next real report.

The shares of the steps are what they cost in a tagged 500-row chunk (measured, see
docs/performance.md); a page is one page of the expected ones (``expected_pages``), and pages
past that estimate still move the share, by less and less, until the PDF is created.
"""

from __future__ import annotations

import contextlib
import logging
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Share of a chunk done when WeasyPrint logs the step: 1 parsing the HTML, 2 the CSS, 3
# applying it, 4 building the boxes, 5 laying out (page by page), 6 creating the PDF (painting
# the pages), 7 adding its metadata (then the fonts, the structure tree and writing the file).
STARTED = 0.003
STEP_SHARES = {"1": STARTED, "2": 0.035, "3": 0.043, "4": 0.20, "6": 0.59, "7": 0.84}
STYLING = (0.043, 0.134)  # the elements styled move the share between these
LAYOUT = (0.255, 0.59)  # laid out pages move it between these
PAINTING = (0.59, 0.84)  # painted pages move it between these
TAGGED = 0.92  # the structure tree is built; the file is written next
_NEXT = {STARTED: 0.035, 0.035: 0.043, 0.20: LAYOUT[0], 0.84: TAGGED, TAGGED: 1.0}
STYLED_REPORTS = 50  # reports while the CSS is applied

_STEP = re.compile(r"Step (\d)")
_PAGE = re.compile(r"Creating layout - Page (\d+)$")
PROGRESS_LOGGER = "weasyprint.progress"


def progress_path(work_path: str) -> str:
    return f"{work_path}.progress"


def layout_share(page: int, expected_pages: int) -> float:
    """Share of a chunk done when WeasyPrint starts laying out page ``page`` (1-based)."""
    low, high = LAYOUT
    done = page - 1
    expected = max(1, expected_pages)
    if done <= expected:
        return low + (high - low) * 0.9 * done / expected
    # More pages than expected: keep moving, each page by half the step before.
    return high - (high - low) * 0.1 * 0.5 ** (done - expected)


class RenderProgress(logging.Handler):
    """In a render process: writes how far its work is to ``path``. For a chunk, ``with
    RenderProgress(path, expected_pages).following(): ...`` follows WeasyPrint's steps (with
    ``styling`` and ``painting``); other work ``write``s its shares itself."""

    def __init__(self, path: str, expected_pages: int = 1) -> None:
        super().__init__(logging.INFO)
        self.path = path
        self.expected_pages = expected_pages
        self.share = self.cap = 0.0
        self.started = time.time()

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if page := _PAGE.search(message):
            number = int(page.group(1))
            self.write(
                layout_share(number, self.expected_pages),
                layout_share(number + 1, self.expected_pages),
            )
        elif (step := _STEP.match(message)) and (share := STEP_SHARES.get(step.group(1))):
            self.write(share, _NEXT.get(share, share))

    def write(self, share: float, cap: float | None = None) -> None:
        """Reports ``share`` done, the next report at ``cap`` (default: the end); a report
        behind the last one is dropped."""
        cap = max(share, 1.0 if cap is None else cap)
        if share < self.share or (share == self.share and cap <= self.cap):
            return
        self.share, self.cap = share, cap
        line = f"{share:.5f} {cap:.5f} {self.started:.3f} {time.time():.3f}"
        with contextlib.suppress(OSError):  # progress is never worth failing the work
            part = f"{self.path}.part"
            with open(part, "w", encoding="ascii") as fh:
                fh.write(line)
            Path(part).replace(self.path)

    def styling(self, html: Any) -> None:
        """Reports the elements of ``html`` (a parsed WeasyPrint ``HTML``) as CSS is applied to
        them, a step WeasyPrint logs once: it walks them with ``wrapper_element.iter_subtree``
        (once, in tree order)."""
        total = max(1, sum(1 for _ in html.etree_element.iter()))
        walk = html.wrapper_element.iter_subtree
        low, high = STYLING
        every = max(1, total // STYLED_REPORTS)

        def reporting() -> Iterator[Any]:
            # Other walks (finding the stylesheets, the metadata) come before and after.
            if self.share != STEP_SHARES["3"]:
                yield from walk()
                return
            self.write(low, low + (high - low) * every / total)
            for count, element in enumerate(walk(), start=1):
                if count % every == 0:
                    share = low + (high - low) * min(1.0, count / total)
                    self.write(share, min(high, share + (high - low) * every / total))
                yield element
            self.write(high, STEP_SHARES["4"])

        html.wrapper_element.iter_subtree = reporting

    def painting(self, document: Any) -> None:
        """Reports each page of ``document`` (a rendered WeasyPrint document) as it is
        painted into the PDF, a step WeasyPrint logs once."""
        pages = document.pages
        low, high = PAINTING
        step = (high - low) / max(1, len(pages))
        self.write(low, low + step)
        for number, page in enumerate(pages, start=1):
            page.paint = _reporting(page.paint, self, low + step * number, step)

    @contextlib.contextmanager
    def following(self) -> Iterator[None]:
        logger = logging.getLogger(PROGRESS_LOGGER)
        level, propagate = logger.level, logger.propagate
        logger.setLevel(logging.INFO)
        logger.propagate = False  # WeasyPrint's steps are not the service's log
        logger.addHandler(self)
        try:
            yield
        finally:
            logger.removeHandler(self)
            logger.setLevel(level)
            logger.propagate = propagate


def _reporting(
    paint: Callable[..., Any], progress: RenderProgress, share: float, step: float
) -> Callable[..., Any]:
    def painted(*args: Any, **kwargs: Any) -> Any:
        result = paint(*args, **kwargs)
        progress.write(share, share + step)
        return result

    return painted


@dataclass(frozen=True)
class Reading:
    """A report as read back: ``share`` done at wall time ``written``, the work having started
    at ``started``; the next report comes at ``cap``."""

    share: float = 0.0
    cap: float = 0.0
    started: float = 0.0
    written: float = 0.0

    def estimate(self, now: float) -> float:
        """The share done at ``now``: as reported, moved on at the pace of the work so far for
        the time since the report, never past ``cap``."""
        spent = self.written - self.started
        if spent <= 0 or self.share <= 0:
            return self.share
        pace = self.share / spent
        return min(self.cap, self.share + pace * max(0.0, now - self.written))


def read_progress(path: str | Path) -> Reading:
    """The last report in ``path`` (nothing done before the work starts)."""
    try:
        share, cap, started, written = (
            float(v) for v in Path(path).read_text(encoding="ascii").split()
        )
    except (OSError, ValueError):
        return Reading()
    share = min(1.0, max(0.0, share))
    return Reading(share, min(1.0, max(share, cap)), started, written)


def read_share(path: str | Path, now: float | None = None) -> float:
    """The share of the work in ``path`` done now (estimated between its reports)."""
    return read_progress(path).estimate(time.time() if now is None else now)
