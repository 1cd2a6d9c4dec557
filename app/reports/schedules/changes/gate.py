"""A change report's decision, taken in the run's completing commit (like the alert's).

Inside the commit's transaction, after the alert (if any) chose the deliveries, the gate checks
that the scope's baseline is still the one the run was compared with, applies the schedule's
`unchanged` policy (nothing added, left or changed: skip / notice / send), marks the messages
with the changes (in `changes` mode their file is the list of changes), records the counts on
the run (`evaluation.changes`) and, when the run's deliveries are committed, points the scope's
baseline at this run's fingerprints. A test send, a failed or cancelled run, or a run whose
deliveries were all dropped never moves it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any

import structlog

from app.common.time import utcnow
from app.i18n import DEFAULT_LOCALE, LOCALES, translate
from app.observability import CHANGE_EVALUATIONS, CHANGE_REPORTS
from app.reports.deliveries.change_text import since_text
from app.reports.deliveries.models import (
    ChangesConfig,
    ChangesMode,
    DeliveryChanges,
    DeliveryKind,
    EmptyResultPolicy,
    ReportDelivery,
)
from app.reports.jobs.evaluation import ChangeOutcome, RunEvaluation
from app.reports.jobs.models import ReportJob
from app.reports.schedules.alerts.gate import scope_key
from app.reports.schedules.changes.models import ScopeBaseline
from app.reports.schedules.changes.words import said_in, summary_words
from app.reports.schedules.models import ReportSchedule
from app.reports.types.changes import ChangeSpec, change_spec
from app.storage import Storage

log = structlog.get_logger(__name__)


class BaselineMoved(RuntimeError):
    """Another run of the scope was delivered since this run was compared: it runs again."""


def delivery_changes(
    outcome: ChangeOutcome, spec: ChangeSpec | None = None, locale: str = DEFAULT_LOCALE
) -> DeliveryChanges:
    """The changes as a message in `locale` says them (the counts and lines said again in it
    when the type's `spec` is known; else as the run's evaluation has them)."""
    summary, lines = outcome.summary, [str(line) for line in outcome.lines]
    if spec is not None:
        summary = summary_words(spec, outcome, locale)
        lines = [said_in(spec, line, locale) for line in outcome.lines]
    return DeliveryChanges(
        first_run=outcome.first_run,
        since=outcome.since,
        counts={
            "added": outcome.added,
            "left": outcome.left,
            "changed": outcome.changed,
            "unchanged": outcome.unchanged,
        },
        transitions=dict(outcome.transitions),
        summary=summary,
        lines=lines,
    )


def marked(
    deliveries: Sequence[ReportDelivery],
    outcome: ChangeOutcome,
    config: ChangesConfig,
    file: ChangeFile | None,
    spec: ChangeSpec | None = None,
) -> list[ReportDelivery]:
    """The messages with the changes, each in its locale; `unchanged` notices when nothing
    changed; in `changes` mode the file they carry is the list of changes."""
    said: dict[str, DeliveryChanges] = {}
    notice = outcome.nothing_changed and config.unchanged == EmptyResultPolicy.NOTICE
    out = []
    for delivery in deliveries:
        locale = delivery.content.locale
        if locale not in LOCALES:
            locale = DEFAULT_LOCALE
        if locale not in said:
            said[locale] = delivery_changes(outcome, spec, locale)
        update: dict[str, Any] = {"changes": said[locale]}
        kind = delivery.kind
        if notice and kind == DeliveryKind.REPORT:
            kind = DeliveryKind.NOTICE
            name = delivery.content.report_name
            update["subject"] = translate(locale, "{report}: no changes").format(report=name)
            update["text"] = translate(
                locale,
                "The report {report!r} ran and nothing changed since {since}, so no file is sent.",
            ).format(report=name, since=since_text(outcome.since, locale))
        elif (  # the first run's message carries the report itself: the baseline
            config.mode == ChangesMode.CHANGES
            and file is not None
            and kind == DeliveryKind.REPORT
            and not outcome.first_run
        ):
            update |= {
                "file_name": file.name,
                "storage_key": outcome.file_key,
                "content_type": "text/csv; charset=utf-8",
                "size_bytes": file.size_bytes,
                "checksum_sha256": None,
                "row_count": file.rows,
            }
        content = delivery.content.model_copy(update=update)
        fields: dict[str, Any] = {"content": content, "kind": kind}
        if kind == DeliveryKind.NOTICE:
            fields["link_expires_at"] = None
        out.append(delivery.model_copy(update=fields))
    return out


class ChangeFile:
    """The list of changes as a file: its name, size and the rows it lists."""

    def __init__(self, name: str, size_bytes: int, rows: int) -> None:
        self.name, self.size_bytes, self.rows = name, size_bytes, rows


class ChangeGate:
    """One run's change decision (`choose`, handed to the commit after the alert's)."""

    def __init__(
        self, job: ReportJob, outcome: ChangeOutcome, file: ChangeFile | None, storage: Storage
    ) -> None:
        self.job = job
        self.outcome = outcome
        self.file = file
        self.storage = storage
        self.replaced: str | None = None  # the baseline file this run's replaced

    async def choose(
        self, deliveries: Sequence[ReportDelivery], session: Any
    ) -> Sequence[ReportDelivery]:
        job, outcome = self.job, self.outcome
        outcome.baseline_moved, self.replaced = False, None
        config = job.delivery.changes if job.delivery else None
        if config is None:
            return deliveries
        schedules = ReportSchedule.get_pymongo_collection()
        key = scope_key(job.scope)
        raw = await schedules.find_one(
            {"_id": job.schedule_id}, {f"change_baselines.{key}": 1}, session=session
        )
        stored = ((raw or {}).get("change_baselines") or {}).get(key)
        current = ScopeBaseline.model_validate(stored) if stored else None
        if (current.job_id if current else None) != outcome.baseline_job_id:
            raise BaselineMoved(f"the baseline of scope {key} moved since the run compared")
        chosen: Sequence[ReportDelivery] = deliveries
        if outcome.nothing_changed and config.unchanged == EmptyResultPolicy.SKIP:
            chosen = []
        chosen = marked(chosen, outcome, config, self.file, change_spec(job.report_type))
        now = utcnow()
        if chosen and not job.test_run and outcome.baseline_key:
            moved = ScopeBaseline(
                key=outcome.baseline_key,
                job_id=str(job.id),
                taken_at=job.scheduled_for or job.created_at,
                rows=outcome.added + outcome.changed + outcome.unchanged,
                moved_at=now,
            )
            await schedules.update_one(
                {"_id": job.schedule_id},
                {"$set": {f"change_baselines.{key}": moved.model_dump(), "updated_at": now}},
                session=session,
            )
            outcome.baseline_moved = True
            self.replaced = current.key if current else None
        jobs = ReportJob.get_pymongo_collection()
        had = await jobs.find_one({"_id": job.id}, {"evaluation": 1}, session=session)
        # Stored as text: the lines in English (each message said them in its own locale).
        said = outcome.model_copy(update={"lines": [str(line) for line in outcome.lines]})
        if had and isinstance(had.get("evaluation"), dict):  # beside the alert's evaluation
            fields = {"evaluation.evaluated_at": now, "evaluation.changes": said.model_dump()}
        else:
            fields = {"evaluation": RunEvaluation(evaluated_at=now, changes=said).model_dump()}
        await jobs.update_one({"_id": job.id}, {"$set": fields}, session=session)
        return chosen

    async def committed(self) -> None:
        """After the commit: counted in /metrics (once: a retried transaction decided again,
        only the last decision was committed); the fingerprints nobody compares with any more
        go (best effort)."""
        outcome = self.outcome
        if self.job.delivery is not None and self.job.delivery.changes is not None:
            found = "first-run" if outcome.first_run else "changed"
            found = "unchanged" if outcome.nothing_changed else found
            moved = "yes" if outcome.baseline_moved else "no"
            CHANGE_REPORTS.labels(self.job.report_type, found, moved).inc()
            if not self.job.test_run:  # a test send is no run (like the alert's count)
                CHANGE_EVALUATIONS.labels(self.job.report_type, found).inc()
        gone = self.replaced if self.outcome.baseline_moved else self.outcome.baseline_key
        if gone:
            with contextlib.suppress(Exception):
                await self.storage.delete(gone)
