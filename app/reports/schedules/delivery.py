"""Who a schedule's runs reach and how: recipients (validated with the delivery rules), the
e-mail mode, the empty-result policy, the audience and its webhook endpoints (created here, the
new secrets returned once)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from beanie import PydanticObjectId

from app.config import Settings
from app.errors import FieldError, Problems, ValidationFailed
from app.platform.models import Department
from app.reports.deliveries import repository as deliveries
from app.reports.deliveries import signing
from app.reports.deliveries.models import Audience, Recipient, WebhookEndpoint
from app.reports.deliveries.recipients import validate_recipients, validate_webhook_url
from app.reports.deliveries.schemas import WebhookOut
from app.reports.schedules import bursting
from app.reports.schedules.models import DepartmentManagers, ReportSchedule
from app.reports.schedules.optout import check_relisting
from app.reports.schedules.recipient_schemas import WebhookIn
from app.security import DataScope

DELIVERY_FIELDS = (
    "recipients",
    "delivery",
    "empty_result",
    "audience",
    "department_managers",
    "webhooks",
)


@dataclass
class DeliveryChanges:
    fields: dict[str, Any] = field(default_factory=dict)  # what the schedule document gets
    secrets: dict[PydanticObjectId, str] = field(default_factory=dict)  # shown once
    webhooks: Sequence[WebhookIn] | None = None  # the endpoints to create or keep


def check_audience(audience: Audience, recipients: Sequence[Recipient]) -> None:
    if audience != Audience.RECIPIENT:
        return
    errors = [
        FieldError(
            field=f"body.recipients.{index}",
            message=f"{recipient.address!r}: with audience `recipient` every recipient must be "
            "a platform user (a run in their own scope); external addresses are refused",
            type="external-recipient",
        )
        for index, recipient in enumerate(recipients)
        if recipient.user_id is None
    ]
    if errors:
        raise ValidationFailed.of(errors)


async def delivery_changes(
    settings: Settings, body: Any, current: ReportSchedule | None, scope: DataScope | None = None
) -> DeliveryChanges:
    """The delivery fields `body` sets (all of them on create, `current` None; those sent on
    update), checked: one 422 naming every refused recipient, webhook URL or missing value.
    The webhook endpoints are created by `create_endpoints`, once the whole request is valid."""
    sent = body.model_fields_set if current is not None else set(DELIVERY_FIELDS)
    changes = DeliveryChanges()
    problems = Problems()
    for name in ("delivery", "empty_result", "audience"):
        value = getattr(body, name)
        if name in sent and value is not None:
            changes.fields[name] = value
        elif name in sent and current is not None:
            problems.add(FieldError(field=f"body.{_camel(name)}", message="must not be null"))
    recipients: Sequence[Recipient] | None = current.delivery_recipients if current else []
    if "recipients" in sent:
        recipients = None
        if body.recipients is None:
            problems.add(FieldError(field="body.recipients", message="must not be null"))
        else:
            with problems.collect():
                recipients = await validate_recipients(body.recipients, settings)
                changes.fields["recipients"] = [r.user_id or r.address for r in recipients]
                changes.fields["delivery_recipients"] = recipients
                if current is not None:  # an unsubscribed person comes back only re-invited
                    left = check_relisting(current, recipients, body.reinvite)
                    if left is not None:
                        changes.fields["unsubscribed"] = left
    audience = changes.fields.get("audience") or (current.audience if current else Audience.OWNER)
    if recipients is not None:
        with problems.collect():
            check_audience(Audience(audience), recipients)
    with problems.collect():
        await _department_managers(settings, body, sent, current, changes, scope)
    if "webhooks" in sent and body.webhooks is not None:
        with problems.collect():
            await _check_webhooks(settings, body.webhooks, current)
        changes.webhooks = body.webhooks
    problems.raise_if_any()
    return changes


async def _department_managers(
    settings: Settings,
    body: Any,
    sent: set[str],
    current: ReportSchedule | None,
    changes: DeliveryChanges,
    scope: DataScope | None,
) -> None:
    """Audience `department-managers` needs `departmentManagers` (a department of the
    caller's scope, whose subtree is within the limits now) and no listed recipients; any other
    audience takes no `departmentManagers`."""
    audience = Audience(
        changes.fields.get("audience") or (current.audience if current else "owner")
    )
    given = body.department_managers if "department_managers" in sent else None
    wanted = (
        DepartmentManagers(
            department_id=PydanticObjectId(given.department_id),
            include_sub_departments=given.include_sub_departments,
        )
        if given is not None
        else (
            current.department_managers if current and "department_managers" not in sent else None
        )
    )
    field_name = "body.departmentManagers"
    if audience != Audience.DEPARTMENT_MANAGERS:
        if given is not None:
            raise ValidationFailed.of([FieldError(field=field_name, type="not-allowed",
                message="only with audience `department-managers`")])  # fmt: skip
        if current is not None and current.department_managers is not None:
            changes.fields["department_managers"] = None
        return
    problems = Problems()
    recipients = changes.fields.get(
        "delivery_recipients", current.delivery_recipients if current else []
    )
    if recipients:
        problems.add(FieldError(field="body.recipients", type="not-allowed",
            message="with audience `department-managers` the managers are the recipients: "
            "list none"))  # fmt: skip
    if wanted is None:
        problems.add(FieldError(field=field_name, type="missing",
            message="required with audience `department-managers`"))  # fmt: skip
        problems.raise_if_any()
        return
    assert wanted is not None
    department = await Department.get(wanted.department_id)
    if department is None:
        problems.add(FieldError(field=f"{field_name}.departmentId", type="not-found",
            message=f"no department {wanted.department_id}"))  # fmt: skip
    elif (
        scope is not None
        and scope.department_ids is not None
        and (str(wanted.department_id) not in scope.department_ids)
    ):
        problems.add(FieldError(field=f"{field_name}.departmentId", type="out-of-scope",
            message="a department outside your scope: you may burst to the managers of your "
            "own departments only"))  # fmt: skip
    elif scope is not None and not scope.unrestricted and scope.department_ids is None:
        problems.add(FieldError(field=f"{field_name}.departmentId", type="out-of-scope",
            message="only admins and managers burst a schedule to department managers"))  # fmt: skip
    else:
        try:
            bursting.check_limits(settings, await bursting.resolve(wanted))
        except bursting.BurstTooLarge as exc:
            problems.add(FieldError(field=field_name, type="too-large", message=str(exc)))
    problems.raise_if_any()
    changes.fields["department_managers"] = wanted


async def create_endpoints(
    changes: DeliveryChanges, owner_user_id: str, current: ReportSchedule | None
) -> None:
    """Creates the new endpoints of checked `changes` (their secrets go to `changes.secrets`,
    shown once); a URL the schedule has already keeps its endpoint and secret."""
    if changes.webhooks is None:
        return
    ids, changes.secrets = await _endpoints(changes.webhooks, owner_user_id, current)
    changes.fields["webhook_endpoint_ids"] = ids


async def _check_webhooks(
    settings: Settings, wanted: Sequence[WebhookIn], current: ReportSchedule | None
) -> None:
    """The new URLs are checked (SSRF); every refused one is named."""
    existing = (
        {(e.url, e.kind) for e in await endpoints_of(current.webhook_endpoint_ids)}
        if current
        else set()
    )
    problems = Problems()
    for index, hook in enumerate(wanted):
        if (hook.url, hook.kind) not in existing:
            with problems.collect():
                await validate_webhook_url(settings, hook.url, field=f"body.webhooks.{index}.url")
    problems.raise_if_any()


async def _endpoints(
    wanted: Sequence[WebhookIn], owner_user_id: str, current: ReportSchedule | None
) -> tuple[list[PydanticObjectId], dict[PydanticObjectId, str]]:
    """The endpoints of `wanted` (checked by `_check_webhooks`): a URL (of the same kind)
    the schedule has already keeps its endpoint (and secret); a new one is created, a webhook
    with a fresh signing secret (Slack and Teams messages are not signed: their URL is the
    secret)."""
    existing = (
        {(e.url, e.kind): e for e in await endpoints_of(current.webhook_endpoint_ids)}
        if current
        else {}
    )
    ids: list[PydanticObjectId] = []
    secrets: dict[PydanticObjectId, str] = {}
    for hook in wanted:
        endpoint = existing.get((hook.url, hook.kind))
        if endpoint is None:
            secret = None if hook.kind.chat else signing.generate_secret()
            endpoint = await deliveries.create_endpoint(
                owner_user_id=owner_user_id,
                url=hook.url,
                secret=secret,
                description=hook.description,
                kind=hook.kind,
            )
            assert endpoint.id is not None
            if secret is not None:
                secrets[endpoint.id] = secret
        assert endpoint.id is not None
        if endpoint.id not in ids:
            ids.append(endpoint.id)
    return ids, secrets


async def endpoints_of(ids: Sequence[PydanticObjectId]) -> list[WebhookEndpoint]:
    if not ids:
        return []
    return await WebhookEndpoint.find({"_id": {"$in": list(ids)}}).to_list()


async def webhooks_of(
    schedules: Sequence[ReportSchedule], secrets: dict[PydanticObjectId, str] | None = None
) -> dict[PydanticObjectId, list[WebhookOut]]:
    """Each schedule's endpoints (one query for a page of schedules), new secrets shown."""
    wanted = [i for s in schedules for i in s.webhook_endpoint_ids]
    found = {e.id: e for e in await endpoints_of(wanted)}
    shown = secrets or {}
    out: dict[PydanticObjectId, list[WebhookOut]] = {}
    for schedule in schedules:
        assert schedule.id is not None
        out[schedule.id] = [
            WebhookOut.from_document(found[i], shown.get(i))
            for i in schedule.webhook_endpoint_ids
            if i in found
        ]
    return out


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p.title() for p in rest)
