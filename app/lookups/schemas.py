"""What the API answers about lookup categories and values."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from app.common.schemas import ApiModel


class LookupCategoryOut(ApiModel):
    category: str
    label: str
    count: int = Field(description="Active values")


class LookupValueOut(ApiModel):
    code: str
    label: str = Field(description="In the locale asked for (`locale`, Accept-Language)")
    labels: dict[str, str] = Field(
        default_factory=dict,
        description="The label in every locale that has one of its own, by locale code",
    )
    description: str | None = None
    sort_order: int
    is_active: bool
    metadata: dict[str, Any]
