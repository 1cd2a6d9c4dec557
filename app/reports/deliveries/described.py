"""The run's parameters in words for its e-mails: the Parameters block a PDF or Excel file
prints (period, departments and courses by name, the type's options as labels), written in
each locale the job's messages need."""

from __future__ import annotations

import structlog

from app.i18n import LOCALES, use_locale
from app.reports.jobs.models import ReportJob
from app.reports.types import get_report_type
from app.security import DataScope

log = structlog.get_logger(__name__)

Described = dict[str, list[tuple[str, str]]]  # locale -> (label, value) pairs


async def parameters_by_locale(job: ReportJob) -> Described:
    """The job's resolved parameters described for people, per locale of its messages; empty
    when they cannot be described (the e-mail then goes without them, never not at all)."""
    wanted = {job.locale}
    if job.delivery is not None:
        wanted |= {r.locale for r in job.delivery.recipients if r.locale}
    out: Described = {}
    try:
        definition = get_report_type(job.report_type)
        resolved = dict(job.resolved_parameters or {})
        scope = DataScope.from_document(job.scope or {})
        for code in sorted(c for c in wanted if c in LOCALES):
            with use_locale(code):
                pairs = await definition.describe_for_people(resolved, scope)
            out[code] = [(label, str(value)) for label, value in pairs]
    except Exception:  # a report type gone or parameters of an older shape
        log.warning("delivery_parameters_not_described", job_id=str(job.id), exc_info=True)
        return {}
    return out
