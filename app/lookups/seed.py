"""Idempotent seeding of the lookup categories: upsert by (category, code), labels updated in
place, nothing else touched (an operator's isActive switch survives a re-seed)."""

from __future__ import annotations

from dataclasses import dataclass

from pymongo import UpdateOne

# Imported for their registries: they supply the report-type and report-format codes to the
# catalogue. (They import `app.lookups.validation` / `catalog`, never this module: no cycle.)
import app.reports.formats
import app.reports.types  # noqa: F401
from app.common.time import utcnow
from app.lookups import validation
from app.lookups.catalog import CATEGORIES, category_values
from app.lookups.models import LookupValue


@dataclass
class SeedSummary:
    inserted: int
    updated: int
    unchanged: int


async def seed_lookups() -> SeedSummary:
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
