"""The audit trail: who did what to which object, allowed or denied, from where (append-only,
kept `AUDIT_RETENTION_DAYS` by a TTL index). Actions call `record(...)` once; denials (403s) are
recorded by `AuditMiddleware`; admins read it at `GET /api/v1/reports/audit`."""

from app.audit.models import AuditAction, AuditEvent, AuditOutcome
from app.audit.service import record, record_job

__all__ = ["AuditAction", "AuditEvent", "AuditOutcome", "record", "record_job"]
