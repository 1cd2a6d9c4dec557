"""P7: every report type's read explained by the server; a COLLSCAN over the large collections
fails the figure."""

from __future__ import annotations

import asyncio
from typing import Any

from bench import seed as seeding
from bench.figures import Figure, emit


def _plan_stages(plan: Any, found: list[str]) -> None:
    if isinstance(plan, dict):
        stage = plan.get("stage")
        if stage in ("COLLSCAN", "IXSCAN", "IDHACK", "EXPRESS_IXSCAN", "EOF", "COUNT_SCAN"):
            index = plan.get("indexName")
            found.append(f"{stage}({index})" if index else stage)
        for value in plan.values():
            _plan_stages(value, found)
    elif isinstance(plan, list):
        for value in plan:
            _plan_stages(value, found)


# Parameters whose read has a shape of its own, explained next to the type's defaults.
P7_VARIANTS: dict[str, list[dict[str, Any]]] = {"assessment-results": [{"groupBy": "course"}]}


def _p7_cases(types: dict[str, Any]) -> list[tuple[str, Any, dict[str, Any]]]:
    """(label, definition, parameters beyond the defaults) of every read P7 explains."""
    cases = []
    for key, definition in types.items():
        cases.append((key, definition, {}))
        for extra in P7_VARIANTS.get(key, []):
            label = ", ".join(f"{k}={v}" for k, v in extra.items())
            cases.append((f"{key} ({label})", definition, extra))
    return cases


async def _p7_async(rows: int) -> list[tuple[str, str, str, bool]]:
    from datetime import UTC, datetime

    from app.config import get_settings
    from app.db import Database
    from app.documents import DOCUMENTS
    from app.reports.types import REPORT_TYPES
    from app.security import DataScope

    database = Database(get_settings())
    await database.connect(DOCUMENTS)
    db = database.db
    out = []
    try:
        for key, definition, extra in _p7_cases(REPORT_TYPES):
            schema = definition.parameters_schema().get("properties", {})
            params: dict[str, Any] = {"timezone": "UTC", **extra}
            if "dateRange" in schema:
                params["dateRange"] = seeding.report_range(rows)
            resolved = definition.resolve(params, DataScope(), datetime.now(UTC))
            # The read the worker would run: pipeline and aggregate options of the type's plan.
            plan = await definition.plan(definition.typed(resolved.parameters), resolved.scope)
            coll_name = definition.source.get_pymongo_collection().name
            if plan.facts is not None:
                ok, plans = await _explain_facts(db, coll_name, plan.facts)
                out.append((key, coll_name, "; ".join(plans), ok))
                continue
            pipeline, options = plan.pipeline, dict(plan.options)
            cmd: dict[str, Any] = {"explain": True}
            if options.get("collation"):
                cmd["collation"] = options["collation"]
            if options.get("hint"):
                cmd["hint"] = dict(options["hint"])
            plans = []
            ok = True
            explain = await db.command("aggregate", coll_name, pipeline=pipeline, **cmd)
            found: list[str] = []
            _plan_stages(explain, found)
            if coll_name in ("enrollments", "learning_events") and (
                "COLLSCAN" in found or not found
            ):
                ok = False
            plans.append(f"{coll_name}: {', '.join(dict.fromkeys(found)) or 'no plan'}")
            # $lookup sub-pipelines over the big collections: explain their leading $match for
            # one value of the join key (explain does not descend into them).
            for stage in pipeline:
                lookup = stage.get("$lookup")
                if not lookup or lookup.get("from") not in ("enrollments", "learning_events"):
                    continue
                sub = lookup.get("pipeline") or []
                match = dict(sub[0]["$match"]) if sub and "$match" in sub[0] else {}
                if lookup.get("foreignField"):
                    sample = await db[lookup["from"]].find_one({}, {lookup["foreignField"]: 1})
                    match[lookup["foreignField"]] = (sample or {}).get(lookup["foreignField"])
                sub_explain = await db.command(
                    "aggregate", lookup["from"], pipeline=[{"$match": match}], explain=True
                )
                sub_found: list[str] = []
                _plan_stages(sub_explain, sub_found)
                if "COLLSCAN" in sub_found or not sub_found:
                    ok = False
                plans.append(
                    f"$lookup {lookup['as']}->{lookup['from']}: "
                    f"{', '.join(dict.fromkeys(sub_found)) or 'no plan'}"
                )
            out.append((key, coll_name, "; ".join(plans), ok))
    finally:
        await database.close()
    return out


async def _explain_facts(db: Any, coll_name: str, facts: Any) -> tuple[bool, list[str]]:
    """A fact read's plans: each of its reads (find with its filter, projection and sort), and
    the dimension fetches (`_id $in` over a sample of ids) the worker joins with."""
    ok, plans = True, []
    for read in facts.reads[:3]:
        find: dict[str, Any] = {"find": coll_name, "filter": read, "projection": facts.projection}
        if facts.sort:
            find["sort"] = dict(facts.sort)
        explain = await db.command("explain", find)
        found: list[str] = []
        _plan_stages(explain, found)
        if "COLLSCAN" in found or not found:
            ok = False
        plans.append(f"{coll_name} find: {', '.join(dict.fromkeys(found)) or 'no plan'}")
    if len(facts.reads) > 3:
        plans.append(f"(+{len(facts.reads) - 3} reads of the same shape)")
    for join in facts.joins:
        # Ids from the report's own first read (an index range), not a scan of the collection.
        first = (
            await db[coll_name].find(facts.reads[0], {join.field: 1}).to_list(5)
            if facts.reads
            else []
        )
        sample = [d[join.field] for d in first if d.get(join.field) is not None]
        explain = await db.command(
            "explain",
            {"find": join.collection, "filter": {"_id": {"$in": sample}},
             "projection": dict.fromkeys(join.fields, 1)},
        )  # fmt: skip
        found = []
        _plan_stages(explain, found)
        if "COLLSCAN" in found or not found:
            ok = False
        plans.append(f"join {join.collection} by _id $in: {', '.join(dict.fromkeys(found))}")
    return ok, plans


def p7(rows: int) -> None:
    for key, _coll, summary, ok in asyncio.run(_p7_async(rows)):
        print(f"   plan {key}: {summary}", flush=True)
        emit(Figure(f"P7 {key} uses indexes", "IXSCAN" if ok else "COLLSCAN", "-", None,
                    "no COLLSCAN", ok))  # fmt: skip
