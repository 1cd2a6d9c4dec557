"""Before a schedule goes out: a test send to the caller only, and who will receive what.

`test_send` runs the schedule now, as it would run (the owner's scope) or as one of its
recipients would get it (`as_recipient`), and delivers the file to the caller alone. The job is
a test (`ReportJob.test_run`): listed in the run history as one, never counted as a run (no
failure count, no alert state), no webhook, Slack or Teams call, no unsubscribe link.

`audience` lists, without running anything, every recipient of the next run: channel,
language, the data scope in words, an estimate of the rows, and why they are included (listed,
manager of a department, an endpoint); and who is left out and why.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, replace

from bson import ObjectId

from app.common.time import utcnow
from app.config import Settings
from app.errors import FieldError, Forbidden, ValidationFailed
from app.i18n import DEFAULT_LOCALE
from app.platform.models import Department
from app.platform.repository import user_by_id
from app.reports.deliveries.chat import redact_url
from app.reports.deliveries.inactive import without_inactive
from app.reports.deliveries.models import (
    Audience,
    ChangesConfig,
    DeliveryConfig,
    EmptyResultPolicy,
    Recipient,
    SkippedRecipient,
)
from app.reports.deliveries.recipients import with_user_locales
from app.reports.jobs.requests import Submission, resolve_request, submit
from app.reports.schedules import bursting, runner
from app.reports.schedules.delivery import endpoints_of
from app.reports.schedules.models import ReportSchedule
from app.runtime.resources import Resources
from app.security import DataScope, Principal, principal_of, resolve_scope

ESTIMATE_SECONDS = 3.0  # for the row estimates of all scopes together
SCOPE_SECONDS = 0.5  # at most, per scope


async def audience_recipients(
    settings: Settings, schedule: ReportSchedule
) -> tuple[list[Recipient], dict[str, str], list[SkippedRecipient]]:
    """The e-mail recipients of the next run, why each, and who is left out (also what
    `POST /schedules/{id}/evaluate` says a run would send to)."""
    if schedule.audience == Audience.DEPARTMENT_MANAGERS and schedule.department_managers:
        burst = await bursting.resolve(schedule.department_managers)
        left = {u.key for u in schedule.unsubscribed}
        kept = [r for r in burst.recipients if r.key() not in left]
        skipped = burst.skipped + [
            SkippedRecipient(user_id=r.user_id, address=r.address, reason="unsubscribed")
            for r in burst.recipients
            if r.key() in left
        ]
        return await with_user_locales(kept), burst.reasons, skipped
    kept, skipped = await without_inactive(schedule.delivery_recipients)
    reasons = {r.key(): "listed" for r in kept}
    return await with_user_locales(kept), reasons, skipped


async def _scope_words(principal: Principal, scope: DataScope) -> str:
    """The data a recipient's report holds, in words (department names, not ids)."""
    if scope.department_ids is None or not principal.department_ids:
        return scope.description
    ids = [ObjectId(i) for i in principal.department_ids if ObjectId.is_valid(i)]
    found = await Department.find({"_id": {"$in": ids}}).to_list()
    names = ", ".join(sorted(d.name for d in found)) or "no department"
    return f"{names}, with their sub-departments"


@dataclass
class AudienceEntry:
    recipient: str
    channel: str
    user_id: str | None
    locale: str
    reason: str
    scope: str
    estimated_rows: int | None
    estimate_exact: bool


async def audience(
    settings: Settings, principal: Principal, schedule: ReportSchedule
) -> tuple[list[AudienceEntry], list[SkippedRecipient]]:
    """Who the next run reaches, each with their scope in words and its estimated rows."""
    owner = await runner.runner_for(schedule, principal)
    request = await runner.schedule_request(schedule, owner)
    recipients, reasons, skipped = await audience_recipients(settings, schedule)
    per_scope = schedule.audience in runner.PER_SCOPE
    started = time.monotonic()
    estimates: dict[str, tuple[str, int | None, bool]] = {}

    async def scope_of(as_whom: Principal) -> tuple[str, int | None, bool]:
        scope = await resolve_scope(as_whom)
        key = json.dumps([as_whom.role.value, scope.to_document()], sort_keys=True, default=str)
        if key not in estimates:
            words = await _scope_words(as_whom, scope)
            rows, exact = None, False
            left = ESTIMATE_SECONDS - (time.monotonic() - started)
            if left > 0:
                resolution = await resolve_request(settings, as_whom, request, utcnow())
                definition, resolved = resolution.definition, resolution.resolved
                counted = await definition.estimate(
                    resolved.parameters, resolved.scope, min(SCOPE_SECONDS, left)
                )
                if counted is None:
                    rows, exact = await definition.count(resolved.parameters, resolved.scope), True
                else:
                    rows, exact = counted
            estimates[key] = (words, rows, exact)
        return estimates[key]

    entries: list[AudienceEntry] = []
    for recipient in recipients:
        as_whom = owner
        if per_scope and recipient.user_id:
            user = await user_by_id(recipient.user_id)
            recipient_principal = principal_of(user) if user is not None else None
            if recipient_principal is None:
                continue
            as_whom = recipient_principal
        words, rows, exact = await scope_of(as_whom)
        if not per_scope:
            words = f"the owner's: {words}"
        entries.append(
            AudienceEntry(
                recipient=recipient.address or "",
                channel="email",
                user_id=recipient.user_id,
                locale=recipient.locale or schedule.locale or DEFAULT_LOCALE,
                reason=reasons.get(recipient.key()) or reasons.get(recipient.user_id or "", ""),
                scope=words,
                estimated_rows=rows,
                estimate_exact=exact,
            )
        )
    # Endpoints are called by every run: once per distinct scope of a per-scope audience.
    scopes = list(estimates.values()) if per_scope else [await scope_of(owner)]
    for endpoint in await endpoints_of(schedule.webhook_endpoint_ids):
        if endpoint.disabled_at is not None:
            continue
        for words, rows, exact in scopes:
            entries.append(
                AudienceEntry(
                    recipient=redact_url(endpoint.url) if endpoint.kind.chat else endpoint.url,
                    channel=endpoint.kind.channel.value,
                    user_id=None,
                    locale=schedule.locale or DEFAULT_LOCALE,
                    reason=f"{endpoint.kind.value} endpoint",
                    scope=words,
                    estimated_rows=rows,
                    estimate_exact=exact,
                )
            )
    return entries, skipped


async def test_send(
    resources: Resources,
    principal: Principal,
    schedule: ReportSchedule,
    *,
    as_recipient: str | None,
    idempotency_key: str | None,
    request_id: str | None,
) -> Submission:
    """Runs the schedule now and delivers to the caller only (see the module's docstring)."""
    me = await user_by_id(principal.user_id)
    address = me.email if me is not None else principal.email  # the platform's address first
    if not address:
        raise ValidationFailed.of(
            [FieldError(field="token.email", message="your token carries no e-mail address")]
        )
    as_whom = await runner.runner_for(schedule, principal)
    if as_recipient is not None:
        as_whom = await _as_recipient(resources.settings, principal, schedule, as_recipient)
    request = await runner.schedule_request(
        schedule, as_whom, idempotency_key=idempotency_key, request_id=request_id
    )
    caller = Recipient(user_id=principal.user_id if me else None, address=address)
    [caller] = await with_user_locales([caller])
    config = DeliveryConfig(
        mode=schedule.delivery,
        # A test shows what was found: an empty result is told, never silently skipped.
        empty_result=EmptyResultPolicy.NOTICE
        if schedule.empty_result == EmptyResultPolicy.SKIP
        else schedule.empty_result,
        recipients=[caller],
        title=f"[Test] {schedule.name}",
        # A change report's test says what changed since the last delivered run (never moving
        # it), and tells "no changes" rather than skipping.
        changes=_tested(schedule.changes),
    )
    return await submit(resources, as_whom, replace(request, delivery=config, test_run=True))


async def _as_recipient(
    settings: Settings, principal: Principal, schedule: ReportSchedule, user_id: str
) -> Principal:
    """One recipient of the schedule, as a caller: an admin may ask for anyone's scope, the
    owner only for a scope within their own."""
    recipients, _, _ = await audience_recipients(settings, schedule)
    if user_id not in {r.user_id for r in recipients}:
        raise ValidationFailed.of(
            [
                FieldError(
                    field="query.asRecipient",
                    type="not-a-recipient",
                    message=f"{user_id!r} is not an active recipient of this schedule",
                )
            ]
        )
    user = await user_by_id(user_id)
    as_whom = principal_of(user) if user is not None else None
    if as_whom is None:
        raise ValidationFailed.of(
            [FieldError(field="query.asRecipient", type="not-a-recipient",
                        message=f"{user_id!r} holds no role this service knows")]
        )  # fmt: skip
    if principal.is_admin:
        return as_whom
    mine, theirs = await resolve_scope(principal), await resolve_scope(as_whom)
    within = mine.unrestricted or (
        mine.department_ids is not None
        and theirs.department_ids is not None
        and theirs.department_ids <= mine.department_ids
    )
    if schedule.owner.user_id != principal.user_id or not within:
        raise Forbidden(
            "Only an admin, or the schedule's owner for a recipient within their own scope, may "
            "see a recipient's report.",
            code="schedule-recipient-forbidden",
        )
    return as_whom


def _tested(changes: ChangesConfig | None) -> ChangesConfig | None:
    if changes is None or changes.unchanged != EmptyResultPolicy.SKIP:
        return changes
    return changes.model_copy(update={"unchanged": EmptyResultPolicy.NOTICE})
