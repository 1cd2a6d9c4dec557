"""Before a schedule goes out: POST /schedules/{id}/test (to the caller only) and
GET /schedules/{id}/audience (who will receive what, without running)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response
from pydantic import Field

from app.audit import AuditAction, record_run
from app.common.http import IdempotencyKey, RequestId
from app.common.schemas import ApiModel
from app.deps import ResourcesDep, SettingsDep
from app.errors import problem_responses
from app.reports.deliveries.schemas import SkippedRecipientOut
from app.reports.jobs.responses import ACCEPTED, REPLAYED, accepted
from app.reports.jobs.schemas import JobOut
from app.reports.schedules import service, trial
from app.security import CurrentPrincipal

router = APIRouter(prefix="/api/v1/reports/schedules", tags=["report-schedules"])


class AudienceMemberOut(ApiModel):
    recipient: str = Field(description="The e-mail address, or the endpoint's URL (Slack and "
                           "Teams redacted)")  # fmt: skip
    channel: str = Field(description="email, webhook, slack or teams")
    user_id: str | None = Field(default=None, description="The platform user, if one")
    locale: str = Field(description="The language of their message")
    reason: str = Field(description="Why they receive it: `listed`, `manager of <department>`, "
                        "`<kind> endpoint`")  # fmt: skip
    scope: str = Field(description="The data their report holds, in words")
    estimated_rows: int | None = Field(
        default=None, description="About how many rows their report has now (null: not counted "
        "within the time budget)"
    )  # fmt: skip
    estimate_exact: bool = Field(default=False, description="`estimatedRows` is an exact count")


class AudienceOut(ApiModel):
    members: list[AudienceMemberOut]
    skipped: list[SkippedRecipientOut] = Field(
        description="Who the next run would leave out, and why (inactive, unsubscribed, a "
        "department without a manager)"
    )


@router.get(
    "/{schedule_id}/audience",
    name="schedules_audience",
    summary="Who the next run will reach, with which data (nothing runs)",
    description=(
        "Every recipient of the next run as it would be made now: e-mail recipients (listed, "
        "or the managers found for a `department-managers` audience), webhook, Slack and Teams "
        "endpoints; each with the channel, the language, the data scope in words, an estimate "
        "of their rows (counted within a few seconds for all scopes together) and why they are "
        "included; then who would be left out and why."
    ),
    response_model=AudienceOut,
    responses=problem_responses(401, 404, 409, 422),
)
async def audience(
    schedule_id: str, settings: SettingsDep, principal: CurrentPrincipal
) -> AudienceOut:
    schedule = await service.get_visible(principal, schedule_id)
    members, skipped = await trial.audience(settings, principal, schedule)
    return AudienceOut(
        members=[AudienceMemberOut(**vars(m)) for m in members],
        skipped=[SkippedRecipientOut(**s.model_dump()) for s in skipped],
    )


@router.post(
    "/{schedule_id}/test",
    name="schedules_test",
    summary="Send the schedule's report now to you only (a test, not a run)",
    description=(
        "Runs the schedule now as it would run (the owner's scope), or as one of its recipients "
        "gets it (`asRecipient`: a platform user id among them; an admin may ask for anyone's, "
        "the owner for a recipient within their own scope), and e-mails the result to the "
        "caller alone, titled `[Test] <name>`. Listed in the run history with `test: true`; it "
        "counts as no run: no failure count, no alert state, no webhook, Slack or Teams call. "
        "Counts against the caller's job quota."
    ),
    status_code=202,
    response_model=JobOut,
    responses={**ACCEPTED, **REPLAYED, **problem_responses(401, 403, 404, 409, 422, 429, 503)},
)
async def test_send(
    schedule_id: str,
    response: Response,
    resources: ResourcesDep,
    principal: CurrentPrincipal,
    request_id: RequestId,
    idempotency_key: IdempotencyKey = None,
    as_recipient: Annotated[
        str | None, Query(alias="asRecipient", pattern=r"^[0-9a-fA-F]{24}$")
    ] = None,
) -> JobOut:
    schedule = await service.get_visible(principal, schedule_id)
    submission = await trial.test_send(
        resources,
        principal,
        schedule,
        as_recipient=as_recipient,
        idempotency_key=idempotency_key,
        request_id=request_id,
    )
    await record_run(
        AuditAction.SCHEDULE_TESTED, principal, submission.job, replayed=submission.replayed
    )
    return accepted(response, submission)
