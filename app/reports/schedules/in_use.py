"""What the schedules tell other packages before they let go of something: a template or a
webhook endpoint a schedule still uses cannot be deleted (409 naming the schedules the caller
may see; other users' are counted, not named)."""

from __future__ import annotations

from typing import Any

from app.errors import Conflict
from app.reports.deliveries.models import WebhookEndpoint
from app.reports.schedules import repository
from app.reports.schedules.models import ReportSchedule
from app.reports.templates.models import ReportTemplate
from app.security import Principal


def _named(principal: Principal, users: list[ReportSchedule]) -> tuple[str, dict[str, Any]]:
    """The schedules of a 409: those the caller may see by name, the others counted."""
    shown = [s for s in users if principal.is_admin or s.owner.user_id == principal.user_id]
    parts = [
        f"{s.name!r} ({s.id}, {s.status.value}"
        + (f", pinned to version {s.template_version})" if s.template_version else ")")
        for s in shown
    ]
    hidden = len(users) - len(shown)
    if hidden:
        parts.append(f"{hidden} schedule{'s' if hidden > 1 else ''} of other users")
    extra = {
        "schedules": [
            {
                "id": str(s.id),
                "name": s.name,
                "status": s.status.value,
                "templateVersion": s.template_version,
            }
            for s in shown
        ],
        "otherUsersSchedules": hidden,
    }
    return ", ".join(parts), extra


async def refuse_template_in_use(principal: Principal, template: ReportTemplate) -> None:
    """A template a schedule that has not ended still uses — following its newest version or
    pinned to one — cannot be deleted (409 naming the schedules the caller may see, with the
    version each pins; other users' are counted, not named)."""
    assert template.id is not None
    users = await repository.live_schedules_using_template(template.id)
    if not users:
        return
    names, extra = _named(principal, users)
    raise Conflict(
        f"The template is used by schedules that are not ended: {names}. "
        "Delete them or point them elsewhere first.",
        code="template-in-use",
        extra=extra,
    )


async def refuse_webhook_in_use(principal: Principal, endpoint: WebhookEndpoint) -> None:
    """A webhook endpoint a schedule still calls cannot be deleted (409 naming the schedules,
    as for templates)."""
    assert endpoint.id is not None
    users = await repository.schedules_calling(endpoint.id)
    if not users:
        return
    names, extra = _named(principal, users)
    raise Conflict(
        f"The webhook endpoint is called by schedules: {names}. "
        "Remove it from their `webhooks` first.",
        code="webhook-in-use",
        extra=extra,
    )
