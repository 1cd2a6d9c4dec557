"""Idempotent seeding of the lookup categories: upsert by (category, code), labels updated in
place, nothing else touched (an operator's isActive switch survives a re-seed)."""

from __future__ import annotations

from dataclasses import dataclass

from pymongo import UpdateOne

from app.common.time import utcnow
from app.lookups.catalog import CATEGORIES
from app.lookups.models import LookupValue


@dataclass
class SeedSummary:
    inserted: int
    updated: int
    unchanged: int


async def seed_lookups() -> SeedSummary:
    now = utcnow()
    operations = []
    for category, spec in CATEGORIES.items():
        for order, (code, label, description, metadata) in enumerate(spec["values"]):
            operations.append(
                UpdateOne(
                    {"category": category, "code": code},
                    {
                        "$set": {
                            "label": label,
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
    from app.lookups import validation

    validation.invalidate()
    return SeedSummary(
        inserted=inserted, updated=updated, unchanged=len(operations) - inserted - updated
    )
