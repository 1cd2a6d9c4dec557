"""The audit trail: who did what to which object, allowed or denied, from where (append-only,
kept `AUDIT_RETENTION_DAYS` by a TTL index). Actions call `record(...)` once (report requests
`record_run`, which tells a new job from an Idempotency-Key replay); denials (403s) and denied
probes (another user's object answered 404, app/audit/probes.py) are recorded by
`AuditMiddleware`; admins read it at `GET /api/v1/reports/audit`."""

from app.audit.models import AuditAction, AuditEvent, AuditOutcome
from app.audit.service import record, record_job, record_run

__all__ = ["AuditAction", "AuditEvent", "AuditOutcome", "record", "record_job", "record_run"]
