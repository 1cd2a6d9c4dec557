"""Every stored document type, registered with Beanie at start-up by `app.db`.

A module of its own (importing only the model modules, which import nothing but `app.common`)
so the database adapter can list them at import time without an import cycle. A new domain adds
its documents here."""

from __future__ import annotations

from beanie import Document

from app.audit.models import AuditEvent
from app.learning_events.models import LearningEvent
from app.lookups.models import LookupValue
from app.platform.models import PLATFORM_DOCUMENTS
from app.reports.deliveries.models import DELIVERY_DOCUMENTS
from app.reports.jobs.models import IdempotencyRecord, ReportJob
from app.reports.schedules.models import ReportSchedule
from app.reports.templates.models import ReportTemplate
from app.runtime.models import WorkerProcess

DOCUMENTS: tuple[type[Document], ...] = (
    *PLATFORM_DOCUMENTS,
    LookupValue,
    LearningEvent,
    WorkerProcess,
    ReportJob,
    IdempotencyRecord,
    ReportTemplate,
    ReportSchedule,
    *DELIVERY_DOCUMENTS,
    AuditEvent,
)
