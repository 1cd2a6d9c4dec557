"""The one road from a report request to a job.

Every way of asking for a report — `POST /jobs` with or without a template, a template's run,
a schedule's run-now, the scheduler's slot and a retry — builds a `ReportRequest` and calls
`submit`: validate → role → data scope → idempotency → quota → store → ring the doorbell.
Saving a template or a schedule runs the first three steps through `check`, storing nothing,
so a saved request fails when it is saved rather than at its first run.

This module knows jobs, report types and security only; templates and schedules build
requests and call it, never the other way round.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AsyncExitStack, contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from functools import partial
from typing import Any

import structlog
from beanie import PydanticObjectId
from pymongo.errors import DuplicateKeyError

from app.common.time import as_utc, utcnow
from app.config import Settings
from app.errors import (
    Conflict,
    FieldError,
    Forbidden,
    Problems,
    ValidationFailed,
)
from app.i18n import DEFAULT_LOCALE, locale_spec
from app.platform.repository import user_by_id
from app.reports.deliveries.models import DeliveryConfig
from app.reports.jobs import quota, repository
from app.reports.jobs.dispatch import dispatch
from app.reports.jobs.models import FileOptions, IdempotencyRecord, ReportJob, Requester
from app.reports.types import AnyReportDefinition, Resolved, get_report_type
from app.reports.types.choice import check_choice, choose_columns
from app.reports.types.parameters import requested_ids
from app.runtime import deadline
from app.runtime.resources import Resources
from app.security import Principal, resolve_scope

log = structlog.get_logger(__name__)
IDEMPOTENCY_PENDING = timedelta(seconds=60)


class ScheduleSlotTaken(Conflict):
    """A job for this (schedule, scheduled time) exists already: another worker ran the slot."""

    code = "schedule-slot-taken"


@dataclass(frozen=True)
class ReportRequest:
    """What is asked for, where it comes from and how it is to be made."""

    report_type: str
    format: str
    parameters: Mapping[str, Any] = field(default_factory=dict)
    options: FileOptions | None = None  # None: the defaults (and the idempotency hash says so)
    # None: the requester's platform locale, else the default (`resolve_locale`).
    locale: str | None = None
    columns: tuple[str, ...] | None = None  # None: every column (`types.choice`)
    template_id: PydanticObjectId | None = None
    template_version: int | None = None
    schedule_id: PydanticObjectId | None = None
    scheduled_for: datetime | None = None  # a scheduler slot; run-now and retries have none
    retry_of_job_id: PydanticObjectId | None = None
    idempotency_key: str | None = None
    request_id: str | None = None
    enforce_quota: bool = True  # scheduled runs do not count against the caller's quota
    delivery: DeliveryConfig | None = None  # who is told when the job ends
    test_run: bool = False  # a schedule's test send (to the caller only)


@dataclass(frozen=True)
class Submission:
    job: ReportJob
    replayed: bool = False  # an earlier job answered again for the same Idempotency-Key


def requester_of(principal: Principal) -> Requester:
    return Requester(
        user_id=principal.user_id,
        name=principal.name,
        email=principal.email,
        roles=[r.value for r in principal.roles],
        department_ids=list(principal.department_ids),
    )


@contextmanager
def prefixed_fields(prefix: str) -> Iterator[None]:
    """Names the fields of a 422 (or of the 403 for ids outside the scope) raised inside from
    the request body (`parameters.x` → `body.parameters.x`) for endpoints whose body holds the
    request."""
    try:
        yield
    except (ValidationFailed, Forbidden) as exc:
        if prefix:
            for error in exc.errors or []:
                if not error.field.startswith(prefix):
                    error.field = f"{prefix}{error.field}"
        raise


@dataclass(frozen=True)
class Resolution:
    """A request's first three steps done: its report type and its resolved parameters and
    effective data scope (`Resolved`)."""

    definition: AnyReportDefinition
    resolved: Resolved
    columns: list[str]  # the resolved choice (`types.choice.choose_columns`)


async def examine(
    settings: Settings,
    principal: Principal,
    report_type: str,
    fmt: str,
    parameters: Mapping[str, Any],
    *,
    role: bool = True,
    now: datetime | None = None,
    columns: Sequence[str] | None = None,
) -> Resolution:
    """Every problem of a request at once: a format the type does not offer, the parameters
    (shape, lookup codes, date bounds), unknown or repeated `columns`, ids outside the caller's
    data scope — one 422 naming each. Then a report type the role may not run (unless `role`
    is False: a template edit that keeps its type is not re-checked for it) and, when ids
    outside the scope are the only problem, the 403 for them. Returns the definition, the
    resolved request and its resolved choice of columns."""
    definition = get_report_type(report_type, field="body.reportType")
    problems = Problems()
    if fmt not in definition.formats:
        problems.add(
            FieldError(
                field="body.format",
                message=f"{fmt!r} is not available for {report_type}",
                allowed=list(definition.formats),
            )
        )
    params = None
    with problems.collect():
        params = definition.parse(parameters, settings=settings)
    now = now or utcnow()
    with problems.collect():
        check_choice(definition, params, columns, now)
    scope = await resolve_scope(principal)
    for name in ("departmentIds", "courseIds"):
        with problems.collect():
            scope.narrow(name, requested_ids(parameters, name))
    problems.raise_invalid()
    if role:
        _check_role(principal, definition)
    problems.raise_if_any()
    assert params is not None
    resolved = definition.resolve(params, scope, now, settings=settings)
    chosen = choose_columns(definition, resolved.parameters, columns)
    return Resolution(definition, resolved, chosen)


def _check_role(principal: Principal, definition: AnyReportDefinition) -> None:
    if not definition.allows(principal):
        raise Forbidden(
            f"The role {principal.role.value!r} may not run {definition.key} reports.",
            code="report-type-not-allowed",
        )


async def resolve_request(
    settings: Settings, principal: Principal, request: ReportRequest, now: datetime
) -> Resolution:
    """validate → role → data scope, as `submit` runs them (a 422, a 403 naming what is not
    allowed), resolved at `now`. A preview runs the request this far and reads the rows itself
    instead of storing a job."""
    return await examine(
        settings,
        principal,
        request.report_type,
        request.format,
        request.parameters,
        now=now,
        columns=request.columns,
    )


async def check(
    settings: Settings,
    principal: Principal,
    report_type: str,
    fmt: str,
    parameters: Mapping[str, Any],
    *,
    field_prefix: str = "body.",
    role: bool = True,
    columns: Sequence[str] | None = None,
) -> None:
    """`examine` without storing anything (saving a template or a schedule), the fields named
    with `field_prefix`."""
    with prefixed_fields(field_prefix):
        await examine(settings, principal, report_type, fmt, parameters, role=role, columns=columns)


def request_hash(report_type: str, fmt: str, parameters: Mapping[str, Any], extra: Any) -> str:
    canonical = json.dumps(
        {"reportType": report_type, "format": fmt, "parameters": parameters, "extra": extra},
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def _hash_of(request: ReportRequest) -> str:
    options = request.options.model_dump() if request.options else None
    extra: list[Any] = [str(request.template_id), options]
    if request.delivery is not None:
        # Who is told is part of the request: the same key with another `notify` or
        # `webhookUrl` is a 409, not a replay. (Appended only when set, so the hashes of
        # requests without deliveries stay what they were.)
        extra.append(request.delivery.model_dump(mode="json"))
    if request.locale is not None:
        extra.append({"locale": request.locale})  # likewise only when asked for
    if request.columns is not None:
        extra.append({"columns": list(request.columns)})
    return request_hash(request.report_type, request.format, dict(request.parameters), extra)


async def resolve_locale(asked: str | None, principal: Principal) -> str:
    """The locale a job is made in: the one asked for (the request's, or its template's or
    schedule's), else the requester's platform profile's, else the default."""
    if asked is not None:
        return asked
    user = await user_by_id(principal.user_id)
    if user is not None and user.locale:
        try:
            locale_spec(user.locale)
        except KeyError:  # a profile naming a locale this service does not offer
            return DEFAULT_LOCALE
        return user.locale
    return DEFAULT_LOCALE


def check_csv_separators(options: FileOptions | None, locale: str) -> None:
    """A CSV whose delimiter is its decimal separator could not be read back: a 422."""
    if options is None:
        return
    spec = locale_spec(locale)
    delimiter = options.csv_delimiter or spec.csv_delimiter
    decimal = options.csv_decimal or spec.csv_decimal
    if delimiter == decimal:
        raise ValidationFailed.one(
            "body.options.csvDecimal",
            f"the decimal separator {decimal!r} is also the delimiter (locale {locale}): "
            "choose another delimiter or decimal separator",
            type="csv-separators",
        )


def _in_progress() -> Conflict:
    return Conflict(
        "A request with this Idempotency-Key is still being processed; retry shortly.",
        code="idempotency-key-in-use",
        headers={"Retry-After": "1"},
    )


async def prepare(
    settings: Settings, principal: Principal, request: ReportRequest
) -> tuple[Resolution, str]:
    """`submit`'s checks, nothing stored: the request resolved now (validate → role → data
    scope), the locale it is made in, and its CSV separators checked in that locale."""
    resolution = await resolve_request(settings, principal, request, utcnow())
    locale = await resolve_locale(request.locale, principal)
    check_csv_separators(request.options, locale)
    return resolution, locale


async def submit(resources: Resources, principal: Principal, request: ReportRequest) -> Submission:
    """Validates, checks the caller's right and scope *now*, stores the job and rings the
    worker's doorbell. A job whose doorbell could not be rung stays queued; the reaper rings it."""
    settings = resources.settings
    resolution, locale = await prepare(settings, principal, request)

    key = request.idempotency_key
    hashed = _hash_of(request) if key else ""
    if key:
        existing = await _replay(principal.user_id, key, hashed)
        if existing:
            return Submission(existing, replayed=True)

    async with AsyncExitStack() as stack:
        if request.enforce_quota:
            await quota.reserve(stack, settings, principal.user_id)
        asked = replace(request, locale=locale, columns=tuple(resolution.columns))
        submission = await _store(settings, principal, asked, resolution.resolved, key, hashed)
    if submission.replayed:
        return submission
    job = submission.job
    await dispatch(resources, job, counted=True)
    log.info(
        "job_created", job_id=str(job.id), report_type=request.report_type, format=request.format
    )
    return Submission(job)


async def _store(
    settings: Settings,
    principal: Principal,
    request: ReportRequest,
    resolved: Resolved,
    key: str | None,
    hashed: str,
) -> Submission:
    """Stores the job (and its Idempotency-Key record); an earlier job for the same key is
    answered again instead."""
    job = ReportJob(
        report_type=request.report_type,
        format=request.format,
        parameters=dict(request.parameters),
        options=request.options or FileOptions(),
        locale=request.locale or DEFAULT_LOCALE,
        resolved_parameters=resolved.parameters,
        columns=list(request.columns) if request.columns is not None else None,
        scope=resolved.scope.to_document(),
        requested_by=requester_of(principal),
        template_id=request.template_id,
        template_version=request.template_version,
        schedule_id=request.schedule_id,
        scheduled_for=request.scheduled_for,
        retry_of_job_id=request.retry_of_job_id,
        request_id=request.request_id,
        delivery=request.delivery,
        test_run=request.test_run,
        max_attempts=settings.job_max_attempts,
        # Its first doorbell, rung right after the store (`submit`): counted here, not by a
        # write of its own.
        dispatch_count=1,
        dispatched_at=utcnow(),
    )
    job.id = PydanticObjectId()
    # A job whose request is not answered with it (its deadline passed, an error after the
    # store) goes again, with its key: a client told "not created" must not find it running.
    withdraw = deadline.on_unanswered(
        "job-not-answered", partial(repository.forget_unanswered, job.id)
    )
    record: IdempotencyRecord | None = None
    if key:
        record = IdempotencyRecord(
            user_id=principal.user_id, key=key, request_hash=hashed, job_id=job.id
        )
        try:
            await record.insert()
        except DuplicateKeyError as exc:
            withdraw()  # nothing of this request's was stored
            existing = await _replay(principal.user_id, key, hashed)
            if existing:
                return Submission(existing, replayed=True)
            raise _in_progress() from exc
    try:
        await job.insert()
    except DuplicateKeyError as exc:
        withdraw()
        if record:
            await record.delete()
        if request.schedule_id and request.scheduled_for:
            raise ScheduleSlotTaken("A job for this schedule and time already exists.") from exc
        raise
    return Submission(job)


async def _replay(user_id: str, key: str, hashed: str) -> ReportJob | None:
    record = await IdempotencyRecord.find_one({"user_id": user_id, "key": key})
    if record is None:
        return None
    if record.request_hash != hashed:
        raise Conflict(
            "This Idempotency-Key was already used with a different request.",
            code="idempotency-key-reused",
        )
    job = await repository.get(record.job_id)
    if job is not None:
        return job
    if utcnow() - as_utc(record.created_at) < IDEMPOTENCY_PENDING:
        raise _in_progress()  # the first request with this key is still storing its job
    await record.delete()  # its job was never stored: the key is free again
    return None
