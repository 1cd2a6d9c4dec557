"""Audience `department-managers`: a schedule bursts to the managers of a department subtree,
found in the platform data at each run (nobody keeps a list).

Every department in the subtree (the root alone when `includeSubDepartments` is false) is
resolved to its managers now: active platform users with the role `manager` whose department
it is. Each manager becomes a recipient of their own scope (their department and its
sub-departments, as `security.resolve_scope` gives any manager); the runner then runs each
distinct scope once and sends it to every manager of that scope, like a `recipient` audience.
Departments without a manager of their own are named on the run (`DeliveryConfig.skipped`)
and the owner is told once per change of that list. A manager added or removed in the platform
counts from the next run on, with no edit of the schedule.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from beanie import PydanticObjectId
from bson import ObjectId

from app.config import Settings
from app.platform.models import Department, User
from app.reports.deliveries import outbox
from app.reports.deliveries.models import Recipient, SkippedRecipient
from app.reports.deliveries.recipients import user_locale
from app.reports.schedules import repository
from app.reports.schedules.models import DepartmentManagers, ReportSchedule

MANAGER_ROLE = "manager"


@dataclass
class Burst:
    """The managers of the subtree now (as recipients, each with why) and the departments
    without one."""

    recipients: list[Recipient] = field(default_factory=list)
    reasons: dict[str, str] = field(default_factory=dict)  # user id -> "manager of Finance"
    skipped: list[SkippedRecipient] = field(default_factory=list)
    departments: int = 0
    # The departments with a manager: each is one scope (a manager sees their department and
    # its sub-departments), so one run each.
    scopes: set[str] = field(default_factory=set)


class BurstTooLarge(ValueError):
    """More managers or distinct scopes than a run may have (BURST_MAX_*): the message says
    which limit and by how much."""


async def subtree(root: DepartmentManagers) -> list[Department]:
    """The root and (unless asked not to) its sub-departments, by name."""
    query: dict[str, object] = {"_id": ObjectId(root.department_id)}
    if root.include_sub_departments:
        query = {"$or": [query, {"ancestor_ids": ObjectId(root.department_id)}]}
    found = await Department.find(query).to_list()
    return sorted(found, key=lambda d: (len(d.ancestor_ids), d.name.casefold(), str(d.id)))


async def resolve(root: DepartmentManagers) -> Burst:
    """Who the schedule reaches now: one recipient per active manager of a department of the
    subtree (in department, then name order), and the departments without one."""
    departments = await subtree(root)
    ids = [d.id for d in departments]
    managers = await User.find(
        {"department_id": {"$in": ids}, "roles": MANAGER_ROLE, "status": "active"}
    ).to_list()
    by_department: dict[PydanticObjectId | None, list[User]] = {}
    for user in sorted(managers, key=lambda u: (u.name.casefold(), str(u.id))):
        by_department.setdefault(user.department_id, []).append(user)
    burst = Burst(departments=len(departments))
    for department in departments:
        found = by_department.get(department.id, [])
        if not found:
            burst.skipped.append(
                SkippedRecipient(
                    department_id=str(department.id),
                    department_name=department.name,
                    reason="no-manager",
                )
            )
        if found:
            burst.scopes.add(str(department.id))
        for user in found:
            user_id = str(user.id)
            burst.recipients.append(
                Recipient(user_id=user_id, address=user.email, locale=user_locale(user))
            )
            burst.reasons[user_id] = f"manager of {department.name}"
    return burst


def check_limits(settings: Settings, burst: Burst) -> None:
    """BurstTooLarge when the subtree has more managers than a run may send to. Every manager
    has a scope of their own department, so managers sharing a department share one run: the
    distinct scopes are the departments with a manager."""
    if len(burst.recipients) > settings.burst_max_recipients:
        raise BurstTooLarge(
            f"the subtree has {len(burst.recipients)} managers; a run sends to at most "
            f"{settings.burst_max_recipients} (BURST_MAX_RECIPIENTS)"
        )
    scopes = len(burst.scopes)
    if scopes > settings.burst_max_scopes:
        raise BurstTooLarge(
            f"the subtree has {scopes} departments with managers, each a run of its own; a "
            f"schedule runs at most {settings.burst_max_scopes} (BURST_MAX_SCOPES)"
        )


async def managers_now(
    settings: Settings, schedule: ReportSchedule, root: DepartmentManagers
) -> tuple[list[Recipient], list[SkippedRecipient]]:
    """The managers of the schedule's subtree now (BurstTooLarge past the limits); the owner
    is told when the departments without one changed since they were last told (one worker
    tells: a compare-and-set on the schedule)."""
    burst = await resolve(root)
    left = {u.key for u in schedule.unsubscribed}
    for recipient in [r for r in burst.recipients if r.key() in left]:
        burst.recipients.remove(recipient)
        burst.skipped.append(
            SkippedRecipient(
                user_id=recipient.user_id, address=recipient.address, reason="unsubscribed"
            )
        )
    check_limits(settings, burst)
    told = sorted(s.department_id for s in burst.skipped if s.department_id)
    if told != sorted(schedule.burst_skipped_told) and schedule.id is not None:
        changed = await repository.set_fields(
            schedule.id,
            {"burst_skipped_told": told},
            where={"burst_skipped_told": schedule.burst_skipped_told},
        )
        if changed is not None:
            await outbox.insert_burst_skipped_notice(
                settings,
                owner=schedule.owner,
                schedule_id=schedule.id,
                schedule_name=schedule.name,
                report_type=schedule.report_type,
                departments=[s.department_name for s in burst.skipped if s.department_name],
                schedule_locale=schedule.locale,
            )
    return burst.recipients, burst.skipped
