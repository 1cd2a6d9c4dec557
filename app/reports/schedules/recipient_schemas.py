"""What a schedule's body says about who receives its runs besides its listed recipients:
the managers of a department subtree, and webhook, Slack and Teams endpoints."""

from __future__ import annotations

from pydantic import Field

from app.common.schemas import ApiInput
from app.reports.deliveries.models import EndpointKind


class DepartmentManagersIn(ApiInput):
    """The department whose managers (and, with `includeSubDepartments`, its sub-departments'
    managers) receive the runs: active platform users with the role `manager`, looked up at
    each run. Departments without one are named on the run, and the owner is told."""

    department_id: str = Field(pattern=r"^[0-9a-fA-F]{24}$")
    include_sub_departments: bool = True


REINVITE_DESCRIPTION = (
    "Recipients who unsubscribed (user ids or addresses) that this update lists again on "
    "purpose: without them here, listing an unsubscribed person is a 422 naming them "
    "(`unsubscribed`). Ignored on create and when `recipients` is not sent."
)


class WebhookIn(ApiInput):
    """An endpoint called after every run: a signed POST (Standard Webhooks, `kind`
    `webhook`), or a message to a Slack or Microsoft Teams channel through its incoming-webhook
    URL (`slack`, `teams`; the URL is a secret: answers show it redacted, send it again in
    full to keep the endpoint on a change)."""

    url: str = Field(min_length=8, max_length=2000, examples=["https://hooks.example.com/reports"])
    kind: EndpointKind = Field(
        default=EndpointKind.WEBHOOK,
        description="`webhook`: signed JSON (Standard Webhooks); `slack`: a Block Kit message; "
        "`teams`: an Adaptive Card",
    )
    description: str | None = Field(default=None, max_length=200)
