"""A scheduled run's change report, from the executor's side: the tracker fed in the rows'
pass (`tracker_for`), then the comparison with the scope's baseline (`compared`), whose
decision the completing commit takes (`ChangeGate`)."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from app.i18n import N_, translate
from app.reports.deliveries.change_text import since_text
from app.reports.jobs.evaluation import ChangeOutcome
from app.reports.jobs.models import ReportJob
from app.reports.reading.query import Row
from app.reports.rendering import Column, RenderContext
from app.reports.rendering.base import ChangeSection
from app.reports.rendering.present import Presentation
from app.reports.schedules.alerts.gate import scope_key
from app.reports.schedules.changes.gate import ChangeFile, ChangeGate
from app.reports.schedules.changes.models import ScopeBaseline
from app.reports.schedules.changes.tracker import ChangeTargets, ChangeTracker
from app.reports.schedules.changes.words import summary_words, value_text
from app.reports.schedules.models import ReportSchedule
from app.reports.types.changes import change_spec
from app.storage import Storage

BASELINES_PREFIX = "baselines/"  # every scope's fingerprints, outliving the run's file
MARKED_FORMATS = frozenset({"csv", "json"})  # files whose rows carry a `change` column
CHANGE_COLUMN = Column(
    key="change",
    label=N_("Change"),
    explained=True,
    description=N_(
        "The row compared with the last delivered run of this schedule: added (not in that "
        "run), changed (a compared field differs; the list of changes names it with before "
        "and after) or unchanged. Rows that left are in the list of changes only. On the "
        "first run every row is added."
    ),
)


def tracker_for(job: ReportJob, columns: Sequence[str], workdir: Path) -> ChangeTracker | None:
    """A tracker when the job is a run of a schedule with change reports (a test send too: it
    says what changed, and never moves the baseline)."""
    spec = change_spec(job.report_type)
    if job.schedule_id is None or job.delivery is None or job.delivery.changes is None:
        return None
    if spec is None:
        return None
    return ChangeTracker(spec, columns, workdir)


async def current_baseline(job: ReportJob) -> ScopeBaseline | None:
    raw = await ReportSchedule.get_pymongo_collection().find_one(
        {"_id": job.schedule_id}, {"change_baselines": 1}
    )
    stored = ((raw or {}).get("change_baselines") or {}).get(scope_key(job.scope))
    return ScopeBaseline.model_validate(stored) if stored else None


class DryComparison:
    """`POST /schedules/{id}/evaluate`'s comparison: the same fingerprints and join as a run,
    against the scope's baseline, with nothing stored and nothing moved."""

    def __init__(
        self, schedule: ReportSchedule, scope: Mapping[str, Any], columns: Sequence[str]
    ) -> None:
        spec = change_spec(schedule.report_type)
        self.baseline = schedule.change_baselines.get(scope_key(scope))
        self.workdir: Path | None = None
        self.tracker: ChangeTracker | None = None
        if schedule.changes is not None and spec is not None:
            self.workdir = Path(tempfile.mkdtemp(prefix="report-evaluate-"))
            self.tracker = ChangeTracker(spec, columns, self.workdir)

    def add(self, batch: Sequence[Row]) -> None:
        if self.tracker is not None:
            self.tracker.add(batch)

    async def outcome(self, storage: Storage) -> ChangeOutcome | None:
        if self.tracker is None:
            return None
        baseline = self.baseline.baseline() if self.baseline else None
        await self.tracker.pin(storage, baseline, marks=False)
        outcome, _, _ = await self.tracker.compare(storage, None)
        return outcome

    def close(self) -> None:
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)


async def pinned(
    job: ReportJob,
    tracker: ChangeTracker,
    storage: Storage,
    presentation: Presentation,
    context: RenderContext,
) -> tuple[Presentation, RenderContext]:
    """Pins the scope's baseline before the rows; a CSV or JSON Lines file then gets the
    `change` column (last), each row marked as it streams (`marked`)."""
    current = await current_baseline(job)
    marks = job.format in MARKED_FORMATS
    await tracker.pin(storage, current.baseline() if current else None, marks)
    if not marks:
        return presentation, context
    column = replace(
        CHANGE_COLUMN,
        label=translate(context.locale, CHANGE_COLUMN.label),
        description=translate(context.locale, CHANGE_COLUMN.description),
    )
    presentation = replace(presentation, columns=[*presentation.columns, column])
    definitions = [*context.definitions, (column.label, column.description)]
    return presentation, replace(context, definitions=definitions)


def marked(cells: list[tuple[Any, ...]], marks: list[str] | None) -> list[tuple[Any, ...]]:
    """The presented rows with their marks as the last cell (as they are without marks)."""
    if marks is None:
        return cells
    return [(*row, mark) for row, mark in zip(cells, marks, strict=True)]


async def compared(
    job: ReportJob, tracker: ChangeTracker, storage: Storage, prefix: str, file_stem: str
) -> ChangeGate:
    """The run compared with the baseline pinned before its rows; the fingerprints and the
    list of changes stored (under `prefix`, the attempt's, for the list)."""
    name = f"changes-{file_stem}.csv"
    targets = ChangeTargets(
        baseline_key=(
            f"{BASELINES_PREFIX}{job.schedule_id}/{scope_key(job.scope)}/"
            f"{job.id}-a{job.attempt}.jsonl.gz"
        ),
        file_key=f"{prefix}{name}",
    )
    outcome, size, rows = await tracker.compare(storage, targets)
    return ChangeGate(job, outcome, ChangeFile(name, size, rows), storage)


# The words of a file's change section (its table's header, the change kinds, the note).
SECTION_HEADER = (N_("Change"), N_("Row"), N_("Field"), N_("Before"), N_("After"))
KINDS = {"added": N_("Added"), "left": N_("No longer listed"), "changed": N_("Changed")}
MORE = N_("… and {count} more changes in the list of changes.")


def file_section(gate: ChangeGate, tracker: ChangeTracker, locale: str) -> ChangeSection:
    """The report file's "Changes since <date>" section (Excel sheet, PDF section), in the
    file's `locale`."""
    outcome = gate.outcome
    if outcome.first_run:
        heading = translate(locale, "Changes: first run (the baseline)")
    else:
        since = since_text(outcome.since, locale)
        heading = translate(locale, "Changes since {since}").format(since=since)
    spec = tracker.spec

    def shown(label: str, cell: str) -> str:  # a coded value as its label in `locale`
        return value_text(spec, label, cell, locale) if cell else cell

    rows = [
        (
            translate(locale, KINDS.get(kind, kind)),
            name,
            translate(locale, label),
            shown(label, b),
            shown(label, a),
        )
        for kind, name, label, b, a in tracker.section
    ]
    return ChangeSection(
        heading=heading,
        summary=summary_words(tracker.spec, outcome, locale),
        rows=rows,
        total=tracker.listed,
        header=tuple(translate(locale, t) for t in SECTION_HEADER),
        more=translate(locale, MORE),
    )
