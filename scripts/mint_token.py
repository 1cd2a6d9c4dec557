"""Signs bearer tokens for local use.

python -m scripts.mint_token --demo
    one line per demo account found in the database: role, user, token
python -m scripts.mint_token --sub ID --role manager [--role ...] [--department D1 ...] [--ttl 3600]
    prints one token with those claims
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from app.config import Settings, get_settings
from app.db import Database
from app.documents import DOCUMENTS
from app.platform.models import User
from app.security import Role, mint_token
from scripts.demo_data import DEMO_ACCOUNTS


async def demo_tokens(settings: Settings, ttl_seconds: int) -> list[str]:
    """`role  name <email> (id)  token` for each demo account that exists."""
    lines = []
    for role, email in DEMO_ACCOUNTS.items():
        user = await User.find_one({"email": email})
        if user is None:
            continue
        departments = [str(user.department_id)] if role == "manager" and user.department_id else []
        token = mint_token(
            settings,
            sub=str(user.id),
            name=user.name,
            email=user.email,
            roles=user.roles,
            department_ids=departments,
            ttl_seconds=ttl_seconds,
        )
        lines.append(f"{role:<10} {user.name} <{user.email}> ({user.id})  {token}")
    return lines


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m scripts.mint_token", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--demo", action="store_true", help="tokens for the demo accounts in the database"
    )
    parser.add_argument("--sub", help="subject (the user id)")
    parser.add_argument(
        "--role", action="append", choices=[r.value for r in Role], help="repeatable"
    )
    parser.add_argument(
        "--department", action="append", default=[], help="departmentIds claim (repeatable)"
    )
    parser.add_argument("--name", help="name claim (default: the sub)")
    parser.add_argument("--email", help="email claim")
    parser.add_argument(
        "--ttl", type=int, default=12 * 3600, help="seconds until it expires (default 12 h)"
    )
    args = parser.parse_args(argv)
    if not args.demo and not (args.sub and args.role):
        parser.error("pass --demo, or --sub and at least one --role")
    if args.ttl < 1:
        parser.error("--ttl must be positive")
    return args


async def _demo(settings: Settings, ttl: int) -> int:
    database = Database(settings)
    await database.connect(DOCUMENTS)
    try:
        lines = await demo_tokens(settings, ttl)
    finally:
        await database.close()
    if not lines:
        print("no demo accounts found; run: python -m scripts.seed_demo", file=sys.stderr)
        return 0
    print("Demo tokens (Authorization: Bearer <token>):")
    for line in lines:
        print(line)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    settings = get_settings()
    if args.demo:
        return asyncio.run(_demo(settings, args.ttl))
    print(
        mint_token(
            settings,
            sub=args.sub,
            name=args.name or args.sub,
            email=args.email,
            roles=args.role,
            department_ids=args.department,
            ttl_seconds=args.ttl,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
