"""Every error code the service answers with, in one registry.

A code is `<noun>-<problem>` in kebab-case: what it is about, then what is wrong with it
(`job-not-found`, `template-version-mismatch`, `scope-exceeded`). The registry is the one
source of the `Problem.code` enum in openapi.json, of
`GET /api/v1/reports/metadata/error-codes` and of docs/errors.md; tests/test_error_codes.py
checks that every code raised in app/ is registered here.

A code with an HTTP `status` is a problem+json answer. A code without one is only ever the
`error.code` of a failed job or the `code` of a rejected learning event in a batch (a job's
error can also carry any code of a problem raised while it ran). `formerly` keeps the old
spellings of a renamed code: jobs stored with one are shown with the new code.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

KEBAB = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")


@dataclass(frozen=True)
class ErrorCode:
    noun: str  # what the error is about, e.g. `job`, `template-version`
    problem: str  # what is wrong with it, e.g. `not-found`, `mismatch`
    status: int | None  # the HTTP status it is sent with; None: a job's or batch item's code
    title: str  # short, the same for every occurrence (the problem's `title`)
    when: str  # when it happens, for people reading the list
    formerly: tuple[str, ...] = ()

    @property
    def code(self) -> str:
        return f"{self.noun}-{self.problem}"


def _e(
    noun: str, problem: str, status: int | None, title: str, when: str, *formerly: str
) -> ErrorCode:
    return ErrorCode(noun, problem, status, title, when, tuple(formerly))


# fmt: off
_ALL = (
    # -- the request itself -----------------------------------------------------------------------
    _e("request", "invalid", 400, "Bad request",
       "The request could not be read.", "bad-request", "http-error"),
    _e("authentication", "required", 401, "Authentication required",
       "No bearer token, or one that is expired, not valid yet, badly signed or without a "
       "subject or a known role.", "unauthorized"),
    _e("permission", "denied", 403, "Forbidden",
       "Your role may not do this (e.g. resend a delivery of someone else's schedule).", "forbidden"),
    _e("admin", "required", 403, "Administrators only",
       "Only administrators may read the audit trail or change lookup values.", "admin-only"),
    _e("scope", "exceeded", 403, "Outside your data scope",
       "A departmentIds / courseIds filter names ids outside the data you may report on (the "
       "problem's `outOfScope` lists them). With other mistakes in the same request it is one of "
       "the `errors` of a 422 instead.", "out-of-scope"),
    _e("filter", "not-allowed", 403, "Filter not allowed",
       "A non-admin asked for other users' jobs (`userId`).", "forbidden-filter"),
    _e("resource", "not-found", 404, "Not found",
       "The thing asked for does not exist.", "not-found"),
    _e("route", "not-found", 404, "Not found",
       "No endpoint has this path."),
    _e("method", "not-allowed", 405, "Method not allowed",
       "The endpoint exists but not with this HTTP method."),
    _e("resource", "conflict", 409, "Conflict",
       "The request conflicts with the current state.", "conflict"),
    _e("resource", "gone", 410, "Gone",
       "The thing asked for existed but is gone.", "gone"),
    _e("precondition", "failed", 412, "Precondition failed",
       "An If-Match precondition does not hold."),
    _e("payload", "too-large", 413, "Payload too large",
       "The request body is larger than MAX_REQUEST_BODY_BYTES."),
    _e("media-type", "unsupported", 415, "Unsupported media type",
       "A body sent with another Content-Type than `application/json`.", "unsupported-media-type"),
    _e("validation", "failed", 422, "Validation failed",
       "The input is invalid; `errors` lists every problem found, each with its `field`, `code` "
       "and `message`."),
    _e("rate-limit", "exceeded", 429, "Too many requests",
       "Too many requests in a short time; wait for Retry-After.", "too-many-requests"),
    _e("request-header", "too-large", 431, "Request header fields too large",
       "The request line and headers are larger than the configured limit."),
    _e("server", "error", 500, "Internal error",
       "An unexpected error; it is logged with the request id.", "internal-error"),
    _e("service", "unavailable", 503, "Service unavailable",
       "A service the request needs is not available; try again after Retry-After."),
    _e("service", "busy", 503, "Service busy",
       "The request could not be answered within REQUEST_DEADLINE_SECONDS (the database is "
       "slow, or the per-user quota lock was busy); nothing was stored; try again after "
       "Retry-After."),
    _e("database", "unavailable", 503, "Service unavailable",
       "The database is not reachable; try again after Retry-After."),
    _e("queue", "unavailable", 503, "Service unavailable",
       "The job queue (Redis) is not reachable; try again after Retry-After."),
    _e("audit", "unavailable", 503, "Service unavailable",
       "An action that must be audited could not be recorded; nothing was done."),
    # -- report types, lookups --------------------------------------------------------------------
    _e("report-type", "not-found", 404, "Report type not found",
       "No report type has this key."),
    _e("report-type", "not-allowed", 403, "Report type not allowed",
       "Your role may not run this report type (learners: only their own reports)."),
    _e("lookup-category", "not-found", 404, "Lookup category not found",
       "No lookup category has this name."),
    _e("lookup-value", "not-found", 404, "Lookup value not found",
       "The category has no such code."),
    _e("lookup-value", "structural", 409, "Lookup value is structural",
       "The service depends on this code: it may be relabelled, not switched off.", "lookup-code-structural"),
    # -- jobs -------------------------------------------------------------------------------------
    _e("job", "not-found", 404, "Job not found",
       "No job with this id, or not one you may see."),
    _e("job", "not-cancellable", 409, "Job not cancellable",
       "The job has already finished."),
    _e("job", "not-retryable", 409, "Job not retryable",
       "Only a failed or cancelled job can be retried."),
    _e("job", "not-ready", 409, "Job not ready",
       "The job has not completed yet: there is no file to download.", "report-not-ready"),
    _e("job", "expired", 410, "Job expired",
       "The job's file was removed by retention; run the report again.", "report-expired"),
    _e("range", "not-satisfiable", 416, "Range not satisfiable",
       "A download's `Range` starts at or past the end of the file (or asks for its last 0 "
       "bytes); `Content-Range: bytes */<size>` gives the file's size."),
    _e("job-rows", "unavailable", 409, "Job rows unavailable",
       "The job's rows cannot be read as pages: it is not a CSV or JSON Lines job, it was made "
       "before row indexes existed, or its file no longer fits its report type's columns."),
    _e("preview", "too-large", 422, "Preview too large",
       "The report cannot be read within PREVIEW_BUDGET_MS; the problem carries the estimated "
       "rows and the parameters that would narrow it (or run it as a job)."),
    _e("preview-rate", "exceeded", 429, "Too many previews",
       "More than PREVIEW_RATE_PER_MINUTE previews in the current minute; see Retry-After."),
    _e("job-file", "missing", 410, "Report file missing",
       "The job completed but its file is no longer in storage.", "report-file-missing"),
    _e("job-access", "revoked", 403, "Access revoked",
       "You no longer have access to all of the data in the report (your scope shrank since it "
       "ran).", "access-revoked"),
    _e("job-quota", "exceeded", 429, "Too many active jobs",
       "You have MAX_ACTIVE_JOBS_PER_USER reports queued or running; wait for Retry-After."),
    _e("idempotency-key", "reused", 409, "Idempotency-Key reused",
       "The Idempotency-Key was used before with a different request."),
    _e("idempotency-key", "in-use", 409, "Idempotency-Key in use",
       "A request with this Idempotency-Key is still being processed; retry after Retry-After.", "idempotency-request-in-progress"),
    # -- templates --------------------------------------------------------------------------------
    _e("template", "not-found", 404, "Template not found",
       "No template with this id, or not one you may see."),
    _e("template", "not-owned", 403, "Not your template",
       "Only the template's owner (or an admin) may change or delete it.", "not-template-owner"),
    _e("template", "archived", 409, "Template archived",
       "An archived template cannot be run."),
    _e("template", "in-use", 409, "Template in use",
       "A schedule that has not ended still uses the template (the problem names them)."),
    _e("template-version", "not-found", 404, "Template version not found",
       "The template has no such version (GET /templates/{id}/versions lists them)."),
    _e("template-version", "mismatch", 412, "Template changed",
       "If-Match (or `version`) names an older version than the stored one (the answer's ETag is "
       "the current one).", "version-mismatch"),
    _e("template-visibility", "not-allowed", 403, "Visibility not allowed",
       "Only managers and admins may share a template with a department or the organization."),
    # -- schedules --------------------------------------------------------------------------------
    _e("schedule", "not-found", 404, "Schedule not found",
       "No schedule with this id, or not one you may see."),
    _e("schedule", "ended", 409, "Schedule ended",
       "The schedule has no run time left (before its endDate)."),
    _e("schedule", "broken", 409, "Schedule broken",
       "The schedule's report can no longer run as stored (e.g. its template is gone)."),
    _e("schedule-owner", "unavailable", 403, "Schedule owner unavailable",
       "The schedule's owner is no longer an active user who may run it."),
    _e("schedule-slot", "taken", 409, "Schedule slot taken",
       "A job for this schedule and time exists already (another worker ran it)."),
    # -- deliveries and webhooks ------------------------------------------------------------------
    _e("delivery", "not-found", 404, "Delivery not found",
       "No delivery with this id."),
    _e("delivery", "not-resendable", 409, "Delivery not resendable",
       "Only a sent or failed delivery can be sent again."),
    _e("delivery-link", "invalid", 404, "Unknown delivery link",
       "The link is not one this service issued (mistyped or cut off)."),
    _e("delivery-link", "expired", 410, "Delivery link expired",
       "The link's validity (DELIVERY_LINK_TTL_DAYS) is over."),
    _e("delivery-link", "revoked", 410, "Delivery link revoked",
       "The link was revoked (its schedule was paused or deleted)."),
    _e("webhook", "not-found", 404, "Webhook endpoint not found",
       "No webhook endpoint with this id of yours."),
    _e("webhook", "in-use", 409, "Webhook endpoint in use",
       "Schedules still call the endpoint (the problem names them); remove it from them first."),
    _e("schedule-recipient", "forbidden", 403, "Not your recipient's report",
       "Only an admin, or the schedule's owner for a recipient within their own scope, may test "
       "a schedule as one of its recipients."),
    _e("webhook", "unsigned", 409, "Endpoint not signed",
       "A Slack or Teams endpoint has no signing secret to rotate: its URL is the secret; "
       "replace the URL on the schedule instead."),
    _e("unsubscribe-link", "invalid", 404, "Unknown unsubscribe link",
       "The unsubscribe link is not one this service issued (mistyped, cut off or altered)."),
    _e("recipient", "not-found", 404, "Recipient not found",
       "No platform user with this id, or the value is not an e-mail address."),
    # -- learning events --------------------------------------------------------------------------
    _e("event-user", "mismatch", 403, "Not your event",
       "Only an admin may record events for another user.", "not-own-event"),
    # -- codes of failed jobs and rejected batch items (no HTTP answer of their own) --------------
    _e("job", "interrupted", None, "Job interrupted",
       "A temporary database or storage error stopped the job; it is retried, and fails with "
       "this code after JOB_MAX_ATTEMPTS.", "transient-error"),
    _e("job", "cancelled", None, "Job cancelled",
       "The job was cancelled at its owner's request (before or while it ran).", "cancelled"),
    _e("job-attempts", "exhausted", None, "Job attempts exhausted",
       "The job's worker was lost on every attempt (JOB_MAX_ATTEMPTS); it is not tried again.",
       "max-attempts-exceeded"),
    _e("job-request", "invalid", None, "Invalid report request",
       "The stored request no longer validates (e.g. a lookup code was switched off).", "invalid-report-request"),
    _e("report-format", "not-available", None, "Format not available",
       "The job's format is no longer offered."),
    _e("file", "too-large", None, "File too large",
       "The report file grew past the storage limit."),
    _e("row-limit", "exceeded", None, "Too many rows",
       "The report has more rows than the format allows; narrow the filters."),
    _e("event", "not-stored", None, "Event not stored",
       "A learning event of a batch could not be written (its `reason` says why).", "storage-failed"),
)
# fmt: on

ERROR_CODES: dict[str, ErrorCode] = {entry.code: entry for entry in _ALL}
if len(ERROR_CODES) != len(_ALL):
    raise RuntimeError("an error code is registered twice")
_FORMERLY = {old: entry.code for entry in _ALL for old in entry.formerly}


def problem_codes() -> list[str]:
    """The codes an HTTP problem answer may carry, in the registry's order."""
    return [code for code, entry in ERROR_CODES.items() if entry.status is not None]


def all_codes() -> list[str]:
    return list(ERROR_CODES)


def current_code(code: str) -> str:
    """The code under today's name (a stored job may carry a code from before a rename)."""
    return _FORMERLY.get(code, code)


def title_of(code: str, default: str) -> str:
    entry = ERROR_CODES.get(code)
    return entry.title if entry else default


def is_kebab(value: str) -> bool:
    return bool(KEBAB.match(value))
