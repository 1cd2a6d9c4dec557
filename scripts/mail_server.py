"""A local SMTP server for development and tests: every message it receives is kept as one
`.eml` file in a directory (default `.data/mail`), nothing is relayed anywhere.

    .venv/bin/python -m scripts.mail_server --host 127.0.0.1 --port 1025 --dir .data/mail

`scripts/servers.sh start mail` runs it; `python -m scripts.mailbox` lists what arrived.
"""

from __future__ import annotations

import argparse
import asyncio
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session


class FileMailbox:
    """aiosmtpd handler: writes each message to `<dir>/<UTC time>-<random>.eml` (written to a
    temporary name first, so a reader never sees half a message), with the envelope's
    recipients in `X-Envelope-To` headers (Bcc recipients appear only there)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        envelope_headers = [f"X-Envelope-From: {envelope.mail_from}"] + [
            f"X-Envelope-To: {rcpt}" for rcpt in envelope.rcpt_tos
        ]
        data = ("\r\n".join(envelope_headers) + "\r\n").encode() + content
        name = f"{datetime.now(UTC):%Y%m%dT%H%M%S%f}-{uuid.uuid4().hex[:8]}"
        await asyncio.to_thread(self._write, name, data)
        return f"250 Message accepted for delivery as {name}"

    def _write(self, name: str, data: bytes) -> None:
        temp = self.directory / f".{name}.tmp"
        temp.write_bytes(data)
        temp.replace(self.directory / f"{name}.eml")


async def serve(host: str, port: int, directory: Path) -> None:
    loop = asyncio.get_running_loop()

    def factory() -> Any:
        return SMTP(FileMailbox(directory), hostname="report-system.local")

    server = await loop.create_server(factory, host=host, port=port)
    print(f"mail server on {host}:{port}, messages in {directory}", flush=True)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=1025)
    parser.add_argument("--dir", type=Path, default=Path(".data/mail"))
    args = parser.parse_args()
    asyncio.run(serve(args.host, args.port, args.dir))


if __name__ == "__main__":
    main()
