"""Schedules API: endpoints under /api/v1/reports/schedules (the test send and the audience are
in trial_router.py, the unsubscribe pages in optout_router.py)."""

from __future__ import annotations

from typing import Annotated

from beanie import PydanticObjectId
from fastapi import APIRouter, Body, Query, Request, Response

from app.audit import AuditAction, record, record_run
from app.common.http import IdempotencyKey, RequestId, with_headers
from app.common.schemas import Page
from app.deps import ResourcesDep, SettingsDep
from app.errors import problem_responses
from app.reports.deliveries import repository as deliveries
from app.reports.deliveries.schemas import DeliveryOut, SkippedRecipientOut
from app.reports.jobs.models import RUN_SORTS, JobStatus
from app.reports.jobs.responses import ACCEPTED, REPLAYED, accepted
from app.reports.jobs.schemas import JobOut
from app.reports.schedules import service
from app.reports.schedules.alerts.preview import evaluate_now
from app.reports.schedules.alerts.schemas import EvaluationOut, RunEvaluationOut
from app.reports.schedules.delivery import webhooks_of
from app.reports.schedules.examine import SCHEDULE_DEPENDS, SCHEDULE_STAND_INS, examine_create
from app.reports.schedules.models import SCHEDULE_SORTS, ReportSchedule, ScheduleStatus
from app.reports.schedules.run_schemas import ScheduleRunOut
from app.reports.schedules.schemas import (
    ScheduleCreate,
    ScheduleOut,
    SchedulePause,
    ScheduleUpdate,
)
from app.runtime.body_checks import BodyParts, checks_body_parts
from app.security import CurrentPrincipal, Principal

PREFIX = "/api/v1/reports/schedules"
router = APIRouter(prefix=PREFIX, tags=["report-schedules"])


async def _out(
    schedule: ReportSchedule, secrets: dict[PydanticObjectId, str] | None = None
) -> ScheduleOut:
    return (await _outs([schedule], secrets))[0]


async def _outs(
    schedules: list[ReportSchedule], secrets: dict[PydanticObjectId, str] | None = None
) -> list[ScheduleOut]:
    webhooks = await webhooks_of(schedules, secrets)
    return [service.schedule_out(s, webhooks.get(s.id) if s.id else None) for s in schedules]


async def _check_create(request: Request, principal: Principal, body: ScheduleCreate) -> None:
    await examine_create(request.app.state.settings, principal, body)


async def _check_update(request: Request, principal: Principal, body: ScheduleUpdate) -> None:
    settings = request.app.state.settings
    await service.check_update(settings, principal, request.path_params["schedule_id"], body)


# The checks of each endpoint, run on the parts of a body whose shape failed
# (`app.runtime.body_checks`).
CREATE_PARTS = BodyParts(
    ScheduleCreate, _check_create, depends=SCHEDULE_DEPENDS, stand_ins=SCHEDULE_STAND_INS
)
UPDATE_PARTS = BodyParts(ScheduleUpdate, _check_update, depends=SCHEDULE_DEPENDS)


@router.post(
    "",
    name="schedules_create",
    summary="Create a recurring report",
    description=(
        "From a `templateId` (with optional `parameters` / `format` overrides) or an inline "
        "`reportType` + `parameters` + `format`. The schedule runs as you: your role and data "
        "scope are checked again at every run, and if you lose them the schedule pauses "
        "itself. After every run the `recipients` get an e-mail and the `webhooks` a signed call "
        "(through an outbox, at least once with a stable id). Recipients receive what YOU can "
        "see (audience `owner`), unless audience is `recipient`: then each platform-user "
        "recipient gets a run in their own scope. New webhook secrets are in this answer, once."
    ),
    status_code=201,
    response_model=ScheduleOut,
    responses=with_headers({201: ["Location"]}, problem_responses(401, 403, 422)),
)
@checks_body_parts(CREATE_PARTS)
async def create_schedule(
    body: ScheduleCreate, response: Response, settings: SettingsDep, principal: CurrentPrincipal
) -> ScheduleOut:
    schedule, secrets = await service.create_schedule(settings, principal, body)
    await record(AuditAction.SCHEDULE_CREATED, principal, object_id=schedule.id)
    response.headers["Location"] = f"{PREFIX}/{schedule.id}"
    return await _out(schedule, secrets)


@router.get(
    "",
    name="schedules_list",
    summary="List your schedules (admins: all)",
    description=(
        "Newest first unless `sort` says otherwise. Pages: pass `nextCursor` back as `cursor` "
        "with the same filters and sort; `total` counts the matching schedules when that is "
        "cheap, else it is null and `totalAtLeast` a lower bound."
    ),
    response_model=Page[ScheduleOut],
    responses=problem_responses(401, 422),
)
async def list_schedules(
    principal: CurrentPrincipal,
    status: ScheduleStatus | None = None,
    report_type: Annotated[str | None, Query(alias="reportType", max_length=64)] = None,
    template_id: Annotated[str | None, Query(alias="templateId", max_length=64)] = None,
    owner: Annotated[
        str | None, Query(max_length=64, description="Owner's user id (admins); `me` for yours")
    ] = None,
    q: Annotated[str | None, Query(max_length=100, description="Search in the name")] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
    sort: Annotated[str, SCHEDULE_SORTS.query()] = SCHEDULE_SORTS.default,
) -> Page[ScheduleOut]:
    listed = await service.list_schedules(
        principal,
        status=status.value if status else None,
        report_type=report_type,
        template_id=template_id,
        owner=principal.user_id if owner == "me" else owner,
        q=q,
        page=SCHEDULE_SORTS.request(sort, cursor, limit),
    )
    return listed.as_page(await _outs(listed.items))


@router.get(
    "/{schedule_id}",
    name="schedules_get",
    summary="A schedule, with its next 5 run times (local and UTC)",
    response_model=ScheduleOut,
    responses=problem_responses(401, 404),
)
async def get_schedule(schedule_id: str, principal: CurrentPrincipal) -> ScheduleOut:
    return await _out(await service.get_visible(principal, schedule_id))


@router.patch(
    "/{schedule_id}",
    name="schedules_update",
    summary="Change a schedule (recomputes nextRunAt when the timing changes)",
    description=(
        "Only the fields sent change. Changing the timing of an active schedule recomputes "
        "`nextRunAt` from now (a paused one gets it on resume; an ended one becomes active "
        "again when the new timing has runs left). Changed parameters or format are checked "
        "against the owner's role and data scope. Schedules carry no version: a change is "
        "always accepted and the last writer wins (no If-Match, never 412)."
    ),
    response_model=ScheduleOut,
    responses=problem_responses(401, 403, 404, 422),
)
@checks_body_parts(UPDATE_PARTS)
async def update_schedule(
    schedule_id: str, body: ScheduleUpdate, settings: SettingsDep, principal: CurrentPrincipal
) -> ScheduleOut:
    schedule, secrets = await service.update_schedule(settings, principal, schedule_id, body)
    await record(AuditAction.SCHEDULE_UPDATED, principal, object_id=schedule.id)
    return await _out(schedule, secrets)


@router.delete(
    "/{schedule_id}",
    name="schedules_delete",
    summary="Delete a schedule (the jobs it created stay)",
    status_code=204,
    response_class=Response,
    responses=problem_responses(401, 404),
)
async def delete_schedule(schedule_id: str, principal: CurrentPrincipal) -> Response:
    await service.delete_schedule(principal, schedule_id)
    await record(AuditAction.SCHEDULE_DELETED, principal, object_id=schedule_id)
    return Response(status_code=204)


@router.post(
    "/{schedule_id}/pause",
    name="schedules_pause",
    summary="Pause a schedule, optionally saying why",
    response_model=ScheduleOut,
    responses=problem_responses(401, 404, 409, 422),
)
async def pause_schedule(
    schedule_id: str,
    principal: CurrentPrincipal,
    body: Annotated[SchedulePause | None, Body()] = None,
) -> ScheduleOut:
    reason = body.reason if body else None
    schedule = await service.pause_schedule(principal, schedule_id, reason)
    await record(AuditAction.SCHEDULE_PAUSED, principal, object_id=schedule.id)
    return await _out(schedule)


@router.post(
    "/{schedule_id}/resume",
    name="schedules_resume",
    summary="Resume a paused schedule (the next run is computed from now; missed runs are not made up)",
    response_model=ScheduleOut,
    responses=problem_responses(401, 404, 409),
)
async def resume_schedule(schedule_id: str, principal: CurrentPrincipal) -> ScheduleOut:
    schedule = await service.resume_schedule(principal, schedule_id)
    await record(AuditAction.SCHEDULE_RESUMED, principal, object_id=schedule.id)
    return await _out(schedule)


@router.post(
    "/{schedule_id}/run-now",
    name="schedules_run_now",
    summary="Run the schedule's report once, now (outside its timetable)",
    description=(
        "Runs as the schedule's owner. Answers 202 with the job and its Location (200 with "
        "`Idempotent-Replayed: true` when an Idempotency-Key replays an earlier run)."
    ),
    status_code=202,
    response_model=JobOut,
    responses={**ACCEPTED, **REPLAYED, **problem_responses(401, 403, 404, 409, 422, 429, 503)},
)
async def run_now(
    schedule_id: str,
    response: Response,
    resources: ResourcesDep,
    principal: CurrentPrincipal,
    request_id: RequestId,
    idempotency_key: IdempotencyKey = None,
) -> JobOut:
    submission = await service.run_now(
        resources,
        principal,
        schedule_id,
        idempotency_key=idempotency_key,
        request_id=request_id,
    )
    await record_run(
        AuditAction.SCHEDULE_RUN_NOW, principal, submission.job, replayed=submission.replayed
    )
    return accepted(response, submission)


@router.post(
    "/{schedule_id}/evaluate",
    name="schedules_evaluate",
    summary="What a run now would measure and send (nothing is sent, no state moves)",
    description=(
        "Runs the schedule's report read and summary as its owner now, without making a file, "
        "within the preview budget (a read that does not fit is a 422 with its estimate; it "
        "counts against your previews a minute), and evaluates the schedule's alert against "
        "its stored state as a run's commit would: the metrics, each condition with its "
        "measured value (and, for a `versus: previous-period` change, the previous period's, "
        "read within the same budget), the state the alert would move to and what would be "
        "sent, to the recipients a run would send to (for audience `department-managers`, the "
        "subtree's managers now). Nothing is sent and no state is written."
    ),
    response_model=EvaluationOut,
    responses=problem_responses(401, 403, 404, 409, 422, 429),
)
async def evaluate_schedule(
    schedule_id: str, resources: ResourcesDep, principal: CurrentPrincipal
) -> EvaluationOut:
    schedule = await service.get_visible(principal, schedule_id)
    return await evaluate_now(resources, principal, schedule)


@router.get(
    "/{schedule_id}/runs",
    name="schedules_runs",
    summary="The jobs this schedule created, newest first",
    description=(
        "Newest first unless `sort` says otherwise; pages and `total` as in every list. "
        "Scheduled runs carry `scheduledFor`; run-now jobs and retries (`retryOfJobId`) have none. "
        "Each run lists its deliveries (e-mails, webhook calls, notices) with their status; a "
        "failed one can be sent again with POST /api/v1/reports/deliveries/{id}/resend."
    ),
    response_model=Page[ScheduleRunOut],
    responses=problem_responses(401, 404, 422),
)
async def list_runs(
    schedule_id: str,
    principal: CurrentPrincipal,
    status: JobStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
    sort: Annotated[str, RUN_SORTS.query()] = RUN_SORTS.default,
) -> Page[ScheduleRunOut]:
    listed = await service.list_runs(
        principal,
        schedule_id,
        status=status.value if status else None,
        page=RUN_SORTS.request(sort, cursor, limit),
    )
    planned = await deliveries.for_jobs([j.id for j in listed.items if j.id is not None])
    by_job: dict[PydanticObjectId | None, list[DeliveryOut]] = {}
    for delivery in sorted(planned, key=lambda d: d.created_at):
        by_job.setdefault(delivery.job_id, []).append(DeliveryOut.from_document(delivery))
    return listed.page(
        lambda j: ScheduleRunOut(
            **JobOut.from_document(j).model_dump(),
            deliveries=by_job.get(j.id, []),
            skipped_recipients=[
                SkippedRecipientOut(**s.model_dump())
                for s in (j.delivery.skipped_recipients if j.delivery else [])
            ],
            evaluation=RunEvaluationOut.of(j.evaluation),
        )
    )
