"""The HTTP protocol the API server speaks: uvicorn's httptools protocol with a cap on the size
of a request's line and headers.

httptools (what uvicorn uses when it is installed) reads headers of any size into memory, and
uvicorn's own `h11_max_incomplete_event_size` only applies to its h11 protocol (and answers 400).
Here the bytes before the end of the headers are counted as they arrive; past
`MAX_REQUEST_HEADER_BYTES` the request gets a 431, the rest of what the client sends is read
and dropped (so the client sees the answer rather than a reset), and the connection closes.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from app.config import get_settings
from app.errors import problem_body

END_OF_HEADERS = b"\r\n\r\n"
DRAIN_SECONDS = 5.0  # how long a refused client may keep sending before the connection closes


def _answer_431(limit: int) -> bytes:
    body = json.dumps(
        problem_body(
            status=431,
            code="request-header-too-large",
            title="Request header fields too large",
            detail=f"The request line and headers may have at most {limit} bytes.",
        )
    ).encode()
    head = (
        "HTTP/1.1 431 Request Header Fields Too Large\r\n"
        "content-type: application/problem+json\r\n"
        f"content-length: {len(body)}\r\n"
        "connection: close\r\n\r\n"
    ).encode()
    return head + body


class BoundedHeadersProtocol(HttpToolsProtocol):
    """`HttpToolsProtocol` refusing requests whose headers exceed the configured size."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Read here, not passed in: uvicorn builds this class in every server process itself.
        self.header_limit = get_settings().max_request_header_bytes
        self._header_bytes = 0
        self._in_headers = True
        self._refused = False

    def on_headers_complete(self) -> None:
        self._in_headers = False
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._in_headers = True  # a kept-alive connection's next request starts
        self._header_bytes = 0

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return  # dropped: the answer is sent, the connection closes soon
        if self._in_headers:
            end = data.find(END_OF_HEADERS)
            self._header_bytes += len(data) if end < 0 else end + len(END_OF_HEADERS)
            if self._header_bytes > self.header_limit:
                self._refuse()
                return
        super().data_received(data)

    def _refuse(self) -> None:
        self._refused = True
        transport: asyncio.Transport = self.transport
        transport.write(_answer_431(self.header_limit))
        if transport.can_write_eof():
            transport.write_eof()
        asyncio.get_running_loop().call_later(DRAIN_SECONDS, transport.close)
