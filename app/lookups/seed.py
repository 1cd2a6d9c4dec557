"""Idempotent seeding of the lookup categories: upsert by (category, code), labels updated in
place, nothing else touched (an operator's isActive switch survives a re-seed).

Each built-in label is written in every supported locale (`labels.<locale>`, from the message
catalogs); a label stored for a locale the service does not ship is left as it is."""

from __future__ import annotations

from dataclasses import dataclass

from pymongo import UpdateOne

from app.common.time import utcnow
from app.i18n import DEFAULT_LOCALE, supported_locales, translate
from app.lookups import validation
from app.lookups.catalog import CATEGORIES, category_values, unsupplied
from app.lookups.models import LookupValue


@dataclass
class SeedSummary:
    inserted: int
    updated: int
    unchanged: int


async def seed_lookups() -> SeedSummary:
    """Upserts every built-in code. The entry point must have provided the suppliers of the
    supplied categories (`app.lookup_sources`): seeding without them would store none of their
    codes, so it is refused."""
    missing = unsupplied()
    if missing:
        raise RuntimeError(
            f"no supplier for the lookup categories {', '.join(missing)}: the entry point "
            "calls app.lookup_sources.provide_lookup_sources() first"
        )
    now = utcnow()
    operations = []
    for category in CATEGORIES:
        for order, (code, label, description, metadata) in enumerate(category_values(category)):
            operations.append(
                UpdateOne(
                    {"category": category, "code": code},
                    {
                        "$set": {
                            "label": label,
                            **{
                                f"labels.{locale}": translate(locale, label)
                                for locale in supported_locales()
                                if locale != DEFAULT_LOCALE
                            },
                            "description": description,
                            "sort_order": order,
                            "metadata": metadata,
                        },
                        "$setOnInsert": {"is_active": True, "created_at": now, "updated_at": now},
                    },
                    upsert=True,
                )
            )
    result = await LookupValue.get_pymongo_collection().bulk_write(operations, ordered=False)
    inserted = result.upserted_count
    updated = result.modified_count
    validation.invalidate()
    return SeedSummary(
        inserted=inserted, updated=updated, unchanged=len(operations) - inserted - updated
    )
