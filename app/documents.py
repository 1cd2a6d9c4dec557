"""Every stored document type. The entry points (`app.main`, `worker.main`, the scripts and the
tests) hand this list to `Resources.open` / `Database.connect`, so the database adapter names no
domain. A new domain adds its documents here."""

from __future__ import annotations

from beanie import Document

from app.audit.models import AuditEvent
from app.learning_events.models import LearningEvent
from app.lookups.models import LookupValue
from app.platform.models import PLATFORM_DOCUMENTS
from app.reports.deliveries.models import DELIVERY_DOCUMENTS
from app.reports.jobs.models import IdempotencyRecord, ReportJob
from app.reports.schedules.models import ReportSchedule
from app.reports.templates.models import ReportTemplate, ReportTemplateVersion
from app.runtime.models import WorkerProcess

DOCUMENTS: tuple[type[Document], ...] = (
    *PLATFORM_DOCUMENTS,
    LookupValue,
    LearningEvent,
    WorkerProcess,
    ReportJob,
    IdempotencyRecord,
    ReportTemplate,
    ReportTemplateVersion,
    ReportSchedule,
    *DELIVERY_DOCUMENTS,
    AuditEvent,
)
