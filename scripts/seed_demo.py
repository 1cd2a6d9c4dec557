"""Builds a realistic demo organisation: departments, people, courses, enrollments and events.

    python -m scripts.seed_demo [--scale tiny|small|medium|large|N] [--seed 42] [--if-empty] [--reset]

`--scale` is a preset or a number of enrollments (small = 1,000 and seeds in seconds; large =
1,000,000 enrollments and over 5,000,000 events). The same seed gives the same data.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from tqdm import tqdm

from app.config import get_settings
from app.db import Database
from app.documents import DOCUMENTS
from scripts.demo_data import (
    DEMO_ACCOUNTS,
    existing_users,
    parse_scale,
    reset_platform_data,
    seed_demo,
)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m scripts.seed_demo", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--scale",
        default="small",
        help="tiny, small (default), medium, large or a number of enrollments",
    )
    parser.add_argument("--seed", type=int, default=42, help="random seed (default 42)")
    parser.add_argument(
        "--if-empty", action="store_true", help="do nothing when users already exist"
    )
    parser.add_argument(
        "--reset", action="store_true", help="delete the platform data and learning events first"
    )
    parser.add_argument(
        "--batch-size", type=int, default=10_000, help="documents per insert (default 10000)"
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument(
        "--legacy-events",
        action="store_true",
        help="write the learning events in their pre-denormalization shape (what "
        "scripts.backfill_events repairs; for its benchmark and drills)",
    )
    args = parser.parse_args(argv)
    try:
        args.enrollments = parse_scale(args.scale)
    except ValueError as exc:
        parser.error(str(exc))
    if args.if_empty and args.reset:
        parser.error("--if-empty and --reset contradict each other")
    return args


async def main_async(args: argparse.Namespace) -> int:
    database = Database(get_settings())
    await database.connect(DOCUMENTS)
    try:
        if await existing_users():
            if args.if_empty:
                print("demo data: users already exist, nothing to do")
                return 0
            if not args.reset:
                print(
                    "seed_demo: the database already holds users; pass --reset to replace the "
                    "platform data or --if-empty to skip",
                    file=sys.stderr,
                )
                return 1
        if args.reset:
            await reset_platform_data()
        bar = tqdm(
            unit=" enrollments", disable=args.no_progress, dynamic_ncols=True, file=sys.stderr
        )
        events_seen = 0

        def start(total: int) -> None:
            bar.total = total
            bar.refresh()

        def advance(enrollments: int, events: int) -> None:
            nonlocal events_seen
            events_seen += events
            bar.update(enrollments)
            bar.set_postfix(events=f"{events_seen:,}", refresh=False)

        report = await seed_demo(
            args.enrollments,
            args.seed,
            batch_size=args.batch_size,
            legacy_events=args.legacy_events,
            progress=advance,
            on_start=start,
        )
        bar.close()
    finally:
        await database.close()

    parts = ", ".join(f"{n:,} {name.replace('_', ' ')}" for name, n in report.counts.items())
    print(f"seeded {parts}")
    print(
        f"{report.rows:,} rows in {report.seconds:.1f} s ({report.rows_per_second:,.0f} rows/s), "
        f"peak RSS {report.peak_rss_mb:,.0f} MB"
    )
    print(
        f"load {report.load_seconds:.1f} s ({report.events_per_second:,.0f} learning events/s), "
        f"indexes built in {report.index_seconds:.1f} s"
    )
    print(
        "demo accounts: "
        + ", ".join(DEMO_ACCOUNTS.values())
        + "  (tokens: .venv/bin/python -m scripts.mint_token --demo)"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    return asyncio.run(main_async(parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
