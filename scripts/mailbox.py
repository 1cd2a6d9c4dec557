"""Lists the messages the local mail server kept (newest last): date, from, to, subject.

.venv/bin/python -m scripts.mailbox             # .data/mail
.venv/bin/python -m scripts.mailbox --show 3    # print the third message's text part
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path


@dataclass(frozen=True)
class Mail:
    path: Path
    date: str
    sender: str
    to: str
    subject: str
    message_id: str


def read(path: Path) -> EmailMessage:
    with path.open("rb") as handle:
        message = BytesParser(policy=policy.default).parse(handle)
    assert isinstance(message, EmailMessage)
    return message


def list_mail(directory: Path) -> list[Mail]:
    mails = []
    for path in sorted(directory.glob("*.eml")):
        message = read(path)
        to = ", ".join(message.get_all("X-Envelope-To", [])) or str(message.get("To", ""))
        mails.append(
            Mail(
                path=path,
                date=str(message.get("Date", "")),
                sender=str(message.get("From", "")),
                to=to,
                subject=str(message.get("Subject", "")),
                message_id=str(message.get("Message-ID", "")),
            )
        )
    return mails


def main() -> None:
    parser = argparse.ArgumentParser(description="List the messages under .data/mail")
    parser.add_argument("--dir", type=Path, default=Path(".data/mail"))
    parser.add_argument("--show", type=int, help="print message number N (1 = oldest)")
    args = parser.parse_args()
    mails = list_mail(args.dir)
    if args.show:
        message = read(mails[args.show - 1].path)
        body = message.get_body(preferencelist=("plain",))
        print(body.get_content() if body is not None else "(no text part)")
        for part in message.iter_attachments():
            print(f"[attachment] {part.get_filename()} ({part.get_content_type()})")
        return
    if not mails:
        print(f"no messages in {args.dir}")
    for number, mail in enumerate(mails, 1):
        print(f"{number:>3}  {mail.date}  from {mail.sender}  to {mail.to}\n     {mail.subject}")


if __name__ == "__main__":
    main()
