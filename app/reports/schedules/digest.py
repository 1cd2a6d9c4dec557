"""The owner's daily summary of who unsubscribed from their schedule.

An unsubscribe is recorded on the schedule at once (`optout.unsubscribe`); the owner is told
by e-mail at most once a day per schedule, not per click: the scheduler tick finds schedules
with unsubscribes not yet told whose last summary is a day old (or that never had one), and
plans one notice to the owner through the outbox. A compare-and-set on the schedule (its last
summary time and the length of its list) makes one worker send it, and an unsubscribe that
lands meanwhile waits for the next summary rather than being marked told unsaid.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import structlog

from app.common.time import as_utc, utcnow
from app.config import Settings
from app.i18n import DEFAULT_LOCALE, human_formats, translate
from app.platform.repository import user_by_id
from app.reports.deliveries import outbox
from app.reports.deliveries import repository as deliveries
from app.reports.deliveries.models import Recipient
from app.reports.deliveries.planning import plan_notice
from app.reports.deliveries.recipients import user_locale
from app.reports.schedules.models import ReportSchedule, Unsubscribed

log = structlog.get_logger(__name__)

DIGEST_EVERY = timedelta(days=1)
BATCH = 200


async def send_unsubscribe_digests(settings: Settings, now: datetime | None = None) -> int:
    """Plans the summaries due now; returns how many were planned."""
    now = as_utc(now) if now else utcnow()
    due = (
        await ReportSchedule.find(
            {
                "unsubscribed": {"$elemMatch": {"told_at": None}},
                "$or": [
                    {"unsubscribe_digest_at": None},
                    {"unsubscribe_digest_at": {"$lte": now - DIGEST_EVERY}},
                ],
            }
        )
        .limit(BATCH)
        .to_list()
    )
    planned = 0
    for schedule in due:
        try:
            planned += await _digest(settings, schedule, now)
        except Exception:  # one schedule's summary must not stop the others
            log.exception("unsubscribe_digest_failed", schedule_id=str(schedule.id))
    if planned:
        outbox.wake_senders()
    return planned


async def _digest(settings: Settings, schedule: ReportSchedule, now: datetime) -> int:
    assert schedule.id is not None
    untold = [u for u in schedule.unsubscribed if u.told_at is None]
    told = [
        u.model_copy(update={"told_at": u.told_at or now}).model_dump()
        for u in schedule.unsubscribed
    ]
    claimed = await ReportSchedule.get_pymongo_collection().update_one(
        {
            "_id": schedule.id,
            "unsubscribe_digest_at": schedule.unsubscribe_digest_at,
            "unsubscribed": {"$size": len(schedule.unsubscribed)},
        },
        {"$set": {"unsubscribed": told, "unsubscribe_digest_at": now}},
    )
    if claimed.modified_count != 1:
        return 0  # another worker sent it, or the list changed: the next tick looks again
    user = await user_by_id(schedule.owner.user_id)
    address = user.email if user is not None else schedule.owner.email
    if not address:
        return 0
    owner = Recipient(user_id=schedule.owner.user_id, address=address, locale=user_locale(user))
    locale = owner.locale or schedule.locale or DEFAULT_LOCALE
    notice = plan_notice(
        settings,
        recipient=owner,
        subject=translate(locale, "{schedule}: recipients unsubscribed").format(
            schedule=schedule.name
        ),
        text=digest_text(schedule, untold, locale),
        locale=locale,
        report_name=schedule.name,
        report_type=schedule.report_type,
        schedule_id=schedule.id,
        now=now,
    )
    await deliveries.insert_many([notice])
    return 1


def digest_text(schedule: ReportSchedule, untold: list[Unsubscribed], locale: str) -> str:
    day = human_formats(locale).date
    people = "\n".join(f"- {u.address or u.user_id} ({day(as_utc(u.at).date())})" for u in untold)
    return translate(
        locale,
        "These recipients unsubscribed from the scheduled report {schedule!r} with the link "
        "in its e-mails; its runs no longer send to them:\n\n{people}\n\n"
        "To send to one of them again, list them in the schedule's recipients and in "
        "`reinvite` (PATCH /api/v1/reports/schedules/{id}).",
    ).format(schedule=schedule.name, people=people, id=schedule.id)
