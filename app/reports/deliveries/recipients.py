"""Who may receive what: recipients of a schedule and webhook URLs, checked when a schedule or
job is created or updated. Every refusal is a 422 naming the field (`body.recipients.2`).

A recipient is a platform user id (24 hex characters; the user must exist and be active, the
message goes to their address) or an e-mail address whose domain is in
ALLOWED_RECIPIENT_DOMAINS (empty: any domain a platform user's address has). Recipients receive
what the schedule's owner could see: the run uses the owner's scope.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from email_validator import EmailNotValidError, validate_email

from app.common.ssrf import UnsafeDestination, check_url, parse_networks, resolve_destination
from app.config import Environment, Settings
from app.errors import Problems, ValidationFailed
from app.platform.models import User
from app.platform.repository import user_by_id
from app.reports.deliveries.models import Recipient

_OBJECT_ID = re.compile(r"^[0-9a-fA-F]{24}$")


def allowed_domains(settings: Settings) -> set[str]:
    return {
        d.strip().lower().lstrip("@") for d in settings.allowed_recipient_domains.split(",") if d
    } - {""}


async def _domain_allowed(domain: str, settings: Settings) -> bool:
    configured = allowed_domains(settings)
    if configured:
        return domain in configured
    # Default: a domain some platform user's address has (case-insensitive, exact domain).
    pattern = f"@{re.escape(domain)}$"
    found = await User.get_pymongo_collection().find_one(
        {"email": {"$regex": pattern, "$options": "i"}}, projection={"_id": 1}
    )
    return found is not None


def normalize_address(value: str, field: str) -> str:
    """A syntactically valid address, normalized (domain lower-cased); 422 otherwise."""
    try:
        checked = validate_email(value, check_deliverability=False)
    except EmailNotValidError as exc:
        raise ValidationFailed.one(
            field, f"{value!r} is not a valid e-mail address: {exc}"
        ) from None
    return str(checked.normalized)


async def validate_recipients(
    values: Sequence[str], settings: Settings, *, field: str = "body.recipients"
) -> list[Recipient]:
    """Platform user ids and e-mail addresses -> recipients with their addresses (duplicates
    dropped, order kept)."""
    if len(values) > settings.delivery_max_recipients:
        raise ValidationFailed.one(
            field,
            f"at most {settings.delivery_max_recipients} recipients are allowed "
            f"(got {len(values)})",
            type="too-many",
        )
    seen: set[str] = set()
    recipients: list[Recipient] = []
    problems = Problems()  # every refused recipient is named
    for index, raw in enumerate(values):
        with problems.collect():
            recipient = await _recipient(raw.strip(), f"{field}.{index}", settings)
            assert recipient.address is not None
            if recipient.address.lower() not in seen:
                seen.add(recipient.address.lower())
                recipients.append(recipient)
    problems.raise_if_any()
    return recipients


async def _recipient(value: str, field: str, settings: Settings) -> Recipient:
    if _OBJECT_ID.match(value):
        return await _platform_user(value, field)
    address = normalize_address(value, field)
    domain = address.rsplit("@", 1)[1].lower()
    if not await _domain_allowed(domain, settings):
        raise ValidationFailed.one(
            field,
            f"{address!r}: the domain {domain!r} may not receive reports "
            "(see ALLOWED_RECIPIENT_DOMAINS)",
            type="domain-not-allowed",
        )
    return Recipient(address=address)


async def _platform_user(value: str, field: str) -> Recipient:
    user = await user_by_id(value)
    if user is None or user.status != "active":
        raise ValidationFailed.one(
            field, f"{value!r} is not an active platform user", type="unknown"
        )
    return Recipient(user_id=str(user.id), address=user.email)


async def validate_webhook_url(
    settings: Settings, url: str, *, field: str = "body.webhooks"
) -> str:
    """The URL's shape (https in production) and where it resolves to, now; the sender checks
    again before every call."""
    try:
        check_url(url, require_https=settings.app_env == Environment.PRODUCTION)
        await resolve_destination(
            url,
            allowed=parse_networks(settings.webhook_allowed_networks),
            require_https=settings.app_env == Environment.PRODUCTION,
        )
    except UnsafeDestination as exc:
        raise ValidationFailed.one(field, f"{url!r}: {exc}", type="unsafe-url") from None
    return url
