"""What a schedule's body says about who receives its runs and how: recipients, audience (the
managers of a department subtree), webhook, Slack and Teams endpoints, alerts, re-invites."""

from __future__ import annotations

from pydantic import Field

from app.common.schemas import ApiInput
from app.reports.deliveries.models import Audience, DeliveryMode, EmptyResultPolicy, EndpointKind
from app.reports.schedules.alerts.models import AlertIn
from app.reports.schedules.changes.schemas import ChangesIn


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


RECIPIENTS_DESCRIPTION = (
    "Platform user ids (24 hex characters; the message goes to their address) and / or e-mail "
    "addresses on a domain in ALLOWED_RECIPIENT_DOMAINS (default: the domains of the platform's "
    "users); anything else is a 422 naming the entry. With audience `owner` every recipient "
    "receives what the schedule's OWNER can see (the run uses the owner's scope); with audience "
    "`recipient` each platform user gets a run in their own scope and addresses are refused."
)


class DeliveryFields(ApiInput):
    delivery: DeliveryMode | None = Field(
        default=None,
        description="E-mail: `attach` the file (a link when over the size limit), send a "
        "`link` only, or `both`",
    )
    empty_result: EmptyResultPolicy | None = Field(
        default=None,
        description="No rows: `send` as usual, `skip` (the run is recorded, nothing is sent) "
        "or `notice` (a short message without a file)",
    )
    audience: Audience | None = Field(
        default=None,
        description="`owner`: one run in the owner's scope, sent to every recipient; "
        "`recipient`: each platform-user recipient gets a run in their own scope (identical "
        "scopes run once); external addresses are refused; `department-managers`: the "
        "managers of `departmentManagers`' subtree, found at each run, each in their own scope",
    )
    department_managers: DepartmentManagersIn | None = Field(
        default=None, description="With audience `department-managers`: whose managers"
    )
    webhooks: list[WebhookIn] | None = Field(
        default=None,
        max_length=10,
        description="Endpoints called after every run (SSRF-checked: no private, loopback, "
        "link-local or metadata address; https in production). Each new one gets a signing "
        "secret, shown once in the response. On update the list replaces the endpoints: a URL "
        "kept keeps its endpoint and secret.",
    )
    alert: AlertIn | None = Field(
        default=None,
        description="Threshold alerts: deliver only when the conditions become true (and on "
        "recovery when asked); absent: every run is delivered. On update, null removes it and a "
        "new alert starts from `not-met` in every scope.",
    )
    changes: ChangesIn | None = Field(
        default=None,
        description="Change reports: each run compared with the last delivered run of the same "
        "scope (added, left, changed rows with before → after). On update, null removes them; "
        "setting them starts every scope afresh (the next run is the baseline).",
    )
    reinvite: list[str] | None = Field(
        default=None, max_length=1000, description=REINVITE_DESCRIPTION
    )
