"""Platform users deactivated (or deleted) after a schedule listed them: each run leaves them
out and says so on the run, instead of mailing someone who left the organisation. They stay on
the schedule's list, so reactivating them in the platform is all it takes to send again."""

from __future__ import annotations

import re
from collections.abc import Sequence

from beanie import PydanticObjectId

from app.platform.models import User
from app.reports.deliveries.models import Recipient, SkippedRecipient

_OBJECT_ID = re.compile(r"^[0-9a-fA-F]{24}$")


async def without_inactive(
    recipients: Sequence[Recipient],
) -> tuple[list[Recipient], list[SkippedRecipient]]:
    """The recipients to send to now, and those skipped with the reason (one read)."""
    ids = [
        PydanticObjectId(r.user_id) for r in recipients if r.user_id and _OBJECT_ID.match(r.user_id)
    ]
    if not ids:
        return list(recipients), []
    found = {
        str(doc["_id"]): str(doc.get("status") or "active")
        async for doc in User.get_pymongo_collection().find({"_id": {"$in": ids}}, {"status": 1})
    }
    kept: list[Recipient] = []
    skipped: list[SkippedRecipient] = []
    for recipient in recipients:
        if recipient.user_id is None:
            kept.append(recipient)
            continue
        status = found.get(recipient.user_id)
        if status == "active":
            kept.append(recipient)
        else:
            reason = "deleted" if status is None else "inactive"
            skipped.append(
                SkippedRecipient(
                    user_id=recipient.user_id, address=recipient.address, reason=reason
                )
            )
    return kept, skipped
