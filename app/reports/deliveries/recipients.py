"""Who may receive what: recipients of a schedule and webhook URLs, checked when a schedule or
job is created or updated. Every refusal is a 422 naming the field (`body.recipients.2`).

A recipient is a platform user id (24 hex characters; the user must exist and be active, the
message goes to their address) or an e-mail address whose domain is in
ALLOWED_RECIPIENT_DOMAINS (empty: any domain a platform user's address has). Recipients receive
what the schedule's owner could see: the run uses the owner's scope.

`admissible_address` is the one rule for every address mail goes to (the shape of
`addresses.normalize_address`, then the domain rule unless the platform holds the address as
its user's); the sender applies it again right before each message (`send_time_refusal`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from beanie import PydanticObjectId

from app.common.ssrf import UnsafeDestination, check_url, parse_networks, resolve_destination
from app.config import Environment, Settings
from app.errors import Problems, ValidationFailed
from app.i18n import LOCALES
from app.platform.models import User
from app.platform.repository import user_by_id
from app.reports.deliveries.addresses import AddressRefused, domain_of, normalize_address
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


async def admissible_address(settings: Settings, value: str, *, platform_user: bool) -> str:
    """`value` normalised if mail may go to it; AddressRefused (with the 422's type) if not.
    An address the platform holds for one of its users (`platform_user`) needs only the shape
    rules; any other one also needs an allowed domain."""
    address = normalize_address(value)
    if not platform_user:
        domain = domain_of(address)
        if not await _domain_allowed(domain, settings):
            raise AddressRefused(
                f"{address!r}: the domain {domain!r} may not receive reports "
                "(see ALLOWED_RECIPIENT_DOMAINS)",
                "domain-not-allowed",
            )
    return address


def refused_field(exc: AddressRefused, field: str) -> ValidationFailed:
    return ValidationFailed.one(field, str(exc), type=exc.code)


async def send_time_refusal(settings: Settings, recipient: Recipient) -> str | None:
    """Why the sender must not mail `recipient` now, or None: the same rules as when it was
    saved, the domain rule applied unless the address is still its platform user's."""
    address = recipient.address or ""
    try:
        await admissible_address(
            settings, address, platform_user=await _is_users_address(recipient.user_id, address)
        )
    except AddressRefused as exc:
        return f"recipient refused: {exc}"
    return None


async def _is_users_address(user_id: str | None, address: str) -> bool:
    if user_id is None:
        return False
    user = await user_by_id(user_id)
    return user is not None and user.email.strip().lower() == address.strip().lower()


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
            # Spaces around are forgiven; a control character anywhere is refused, not stripped.
            recipient = await _recipient(raw.strip(" "), f"{field}.{index}", settings)
            assert recipient.address is not None
            if recipient.address.lower() not in seen:
                seen.add(recipient.address.lower())
                recipients.append(recipient)
    problems.raise_if_any()
    return recipients


async def _recipient(value: str, field: str, settings: Settings) -> Recipient:
    if _OBJECT_ID.match(value):
        return await _platform_user(value, field, settings)
    try:
        address = await admissible_address(settings, value, platform_user=False)
    except AddressRefused as exc:
        raise refused_field(exc, field) from None
    return Recipient(address=address)


async def _platform_user(value: str, field: str, settings: Settings) -> Recipient:
    user = await user_by_id(value)
    if user is None or user.status != "active":
        raise ValidationFailed.one(
            field, f"{value!r} is not an active platform user", type="unknown"
        )
    try:
        await admissible_address(settings, user.email, platform_user=True)
    except AddressRefused as exc:
        raise ValidationFailed.one(
            field, f"this user's address cannot receive mail: {exc}", type=exc.code
        ) from None
    return Recipient(user_id=str(user.id), address=user.email)


def user_locale(user: User | None) -> str | None:
    """The locale a platform user chose, if this service offers it."""
    locale = user.locale if user is not None else None
    return locale if locale in LOCALES else None


async def with_user_locales(recipients: Sequence[Recipient]) -> list[Recipient]:
    """The recipients, each platform user with the locale of their profile now (None where
    they chose none: the job's locale applies); one read for all of them."""
    ids = [
        PydanticObjectId(r.user_id) for r in recipients if r.user_id and _OBJECT_ID.match(r.user_id)
    ]
    if not ids:
        return list(recipients)
    users = await User.find({"_id": {"$in": ids}}).to_list()
    locales = {str(u.id): user_locale(u) for u in users}
    return [
        r.model_copy(update={"locale": locales.get(r.user_id)}) if r.user_id else r
        for r in recipients
    ]


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
