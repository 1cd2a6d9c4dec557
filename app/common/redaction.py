"""Secrets that travel in URL paths, kept out of logs and the audit trail.

A delivery link (`/api/v1/reports/deliveries/<token>`) is a credential for as long as it is
valid: whoever reads an access log or an audit record must not be able to use it. Its path is
written with the token replaced by `<token>`; the delivery id (recorded with the link's use)
says which link it was. Ids in other delivery paths (`/deliveries/<id>/resend`) are kept.
"""

from __future__ import annotations

import re

_DELIVERY_LINK = re.compile(r"^(/api/v1/reports/deliveries/)(?![0-9a-fA-F]{24}(?:/|$))[^/?]+")


def redact_path(path: str) -> str:
    """`path` with any secret it carries replaced by a placeholder."""
    return _DELIVERY_LINK.sub(r"\1<token>", path)
