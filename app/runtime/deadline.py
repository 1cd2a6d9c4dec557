"""A deadline on each request's own work (`REQUEST_DEADLINE_SECONDS`, 10 s by default).

The clock starts once the request's body has arrived (a slow client's upload is not the
service's work) and stops at the first byte of the answer: a large download keeps streaming as
long as the client reads. Until then

- every MongoDB call of the request runs under `pymongo.timeout(...)` (client-side operation
  timeouts, `maxTimeMS` sent to the server): none waits past the deadline (a database known to
  be down gets `MONGODB_TIMEOUT_MS`, and the 503 `database-unavailable` comes as quickly as
  before);
- anything else still running at the deadline is cancelled and the answer is a 503 problem
  `service-busy` with `Retry-After`.

Nothing a request stores outlives an answer that says it failed: what it stores registers an
undo with `on_unanswered`, run in the background once the request ends without a success (the
deadline, or any error after the store). It runs outside the request's deadline (an empty
context), is retried until the database answers and runs once more a few seconds later, so a
job written just as the database stalled, whose client was told 503, is removed once the
database is back.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pymongo
import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.errors import SERVICE_BUSY_RETRY_AFTER, problem_body

log = structlog.get_logger(__name__)

RETRY_AFTER_SECONDS = SERVICE_BUSY_RETRY_AFTER
UNDO_TRY_SECONDS = 10.0  # one try of an undo
UNDO_GIVE_UP_SECONDS = 600.0  # then it is logged as not done
UNDO_SETTLE_SECONDS = 5.0

Undo = Callable[[], Awaitable[Any]]


@dataclass
class RequestDeadline:
    seconds: float
    expires_at: float = 0.0
    status: int | None = None  # of the answer, once it started
    undo: list[tuple[str, Undo]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.expires_at = time.monotonic() + self.seconds

    @property
    def passed(self) -> bool:
        return time.monotonic() >= self.expires_at

    @property
    def answered(self) -> bool:
        """A success (or a redirect) went out: what the request stored stays."""
        return self.status is not None and self.status < 400


_current: contextvars.ContextVar[RequestDeadline | None] = contextvars.ContextVar(
    "request_deadline", default=None
)


def current() -> RequestDeadline | None:
    return _current.get()


def passed() -> bool:
    """True inside a request whose deadline has passed."""
    deadline = _current.get()
    return deadline is not None and deadline.passed


def on_unanswered(what: str, undo: Undo) -> Callable[[], None]:
    """Runs `undo` after this request if it ends without a success. Outside a request (the
    worker, the scheduler): nothing. Returns what withdraws it (nothing was stored after all)."""
    deadline = _current.get()
    if deadline is None:
        return lambda: None
    entry = (what, undo)
    deadline.undo.append(entry)
    return lambda: deadline.undo.remove(entry) if entry in deadline.undo else None


_detached: set[asyncio.Task[None]] = set()


def detach(what: str, action: Undo) -> None:
    """Runs `action` in the background, outside any request's deadline, trying again (with
    back-off) until it succeeds or `UNDO_GIVE_UP_SECONDS` have passed; then once more after
    `UNDO_SETTLE_SECONDS`: a write the database received before the request gave up on it (a
    stalled server works off its backlog when it resumes, in no set order between connections)
    may be applied after the first run."""
    task = asyncio.get_running_loop().create_task(
        _twice(what, action), context=contextvars.Context()
    )
    _detached.add(task)
    task.add_done_callback(_detached.discard)


async def drain(timeout: float) -> None:
    """At shutdown: lets undos still running finish for up to `timeout` seconds."""
    pending = set(_detached)
    if pending:
        await asyncio.wait(pending, timeout=timeout)
    left = [task for task in _detached if not task.done()]
    if left:
        log.warning("undo_abandoned_at_shutdown", undos=len(left))
    for task in left:
        task.cancel()


async def _twice(what: str, action: Undo) -> None:
    if await _until_done(what, action):
        await asyncio.sleep(UNDO_SETTLE_SECONDS)
        await _until_done(what, action)


async def _until_done(what: str, action: Undo) -> bool:
    give_up = time.monotonic() + UNDO_GIVE_UP_SECONDS
    delay = 0.25
    while True:
        try:
            with pymongo.timeout(UNDO_TRY_SECONDS):
                if await action() is True:  # it found something to undo
                    log.info("unanswered_request_undone", what=what)
            return True
        except Exception as exc:
            if time.monotonic() >= give_up:
                log.error("undo_not_done", what=what, error=str(exc)[:200])
                return False
        await asyncio.sleep(delay)
        delay = min(delay * 2, 5.0)


async def _body_first(receive: Receive) -> Receive:
    """Reads the request's body before the clock starts; the app gets it replayed."""
    held: list[Message] = []
    while True:
        message = await receive()
        held.append(message)
        if message["type"] != "http.request" or not message.get("more_body", False):
            break

    async def replay() -> Message:
        return held.pop(0) if held else await receive()

    return replay


class RequestDeadlineMiddleware:
    """Applies the deadline (see the module's docstring) to every HTTP request.

    The request runs as a task of its own, watched from here: at the deadline, one decision is
    taken, with nothing else running meanwhile. An answer that has started goes on (a download
    streams); otherwise the task is cancelled and the busy answer goes instead, so a database
    timeout turning into its own 503 at the same moment never races the cut."""

    def __init__(
        self,
        app: ASGIApp,
        seconds: float,
        *,
        database_reachable: Callable[[], bool] = lambda: True,
        unreachable_seconds: float | None = None,
    ) -> None:
        self.app = app
        self.seconds = seconds
        self.database_reachable = database_reachable
        self.unreachable_seconds = unreachable_seconds or seconds

    def _database_seconds(self) -> float:
        """The database's share: the whole deadline, unless the database is known to be
        unreachable. Under a client timeout the driver looks for a server for as long as the
        timeout lasts (not `MONGODB_TIMEOUT_MS`): a database that is down still answers 503
        `database-unavailable` after `MONGODB_TIMEOUT_MS`."""
        if self.database_reachable():
            return self.seconds
        return min(self.seconds, self.unreachable_seconds)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        receive = await _body_first(receive)
        deadline = RequestDeadline(self.seconds)
        token = _current.set(deadline)
        cut = False

        async def send_wrapper(message: Message) -> None:
            if cut:
                return  # the busy answer went instead
            if message["type"] == "http.response.start":
                deadline.status = message["status"]
            await send(message)

        async def run() -> None:
            await self.app(scope, receive, send_wrapper)

        try:
            # The task's context is a copy of this one: the deadline and the database timeout.
            with pymongo.timeout(self._database_seconds()):
                work = asyncio.create_task(run())
            try:
                await asyncio.wait({work}, timeout=self.seconds)
            except BaseException:
                work.cancel()  # this request itself is being cancelled (shutdown)
                raise
            if work.done() or deadline.status is not None:
                await work  # its answer, or its error; a started body streams on
                return
            cut = True
            work.cancel()
            try:
                await work
            except asyncio.CancelledError:
                if (me := asyncio.current_task()) is not None and me.cancelling():
                    raise  # not only the request's work: this task itself is being cancelled
            except Exception as exc:  # failing while it was being cut: the busy answer stands
                log.warning("request_cut_with_error", error=str(exc)[:200])
            log.warning("request_deadline_passed", seconds=self.seconds, path=scope.get("path"))
            deadline.status = 503
            await send_busy(scope, send, self.seconds)
        finally:
            _current.reset(token)
            if not deadline.answered:
                for what, undo in deadline.undo:
                    detach(what, undo)


def busy_detail(seconds: float) -> str:
    return (
        f"The service could not answer within {seconds:g} s and stored nothing; try again shortly."
    )


async def send_busy(scope: Scope, send: Send, seconds: float) -> None:
    request_id = (scope.get("state") or {}).get("request_id")
    body = problem_body(
        status=503,
        code="service-busy",
        title="Service busy",
        detail=busy_detail(seconds),
        instance=scope.get("path"),
        request_id=request_id if isinstance(request_id, str) else None,
    )
    encoded = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 503,
            "headers": [
                (b"content-type", b"application/problem+json"),
                (b"content-length", str(len(encoded)).encode()),
                (b"retry-after", str(RETRY_AFTER_SECONDS).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": encoded})
