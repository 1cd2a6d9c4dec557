"""How a fact read over a date range is cut into consecutive slices of that range, each sized
from the density seen so far (`SLICE_DOCS`); `facts.py` reads them."""

from __future__ import annotations

from collections import OrderedDict, deque
from datetime import datetime, timedelta
from typing import Any

from app.reports.reading.query import FactRead

# A fact read over a date range is read in consecutive slices of that range holding about
# this many documents (the next slice's span follows the density seen so far): a server that
# builds a query's whole result before its first batch (SecantusDB, ~77 µs a document) then
# answers several times a second, never silent long enough for the driver's monitor to give
# up on it, and holds one slice in memory, not the whole report. A slice comes in one reply
# and the next two are asked for while the worker joins it (`facts._sliced`): three slices in
# the worker's memory at most (~2 MB each). On MongoDB a slice is one reply of one index range;
# the rows are the same and the order is made in the worker.
SLICE_DOCS = 1500
FIRST_SLICE = 1 / 512  # of the range, while nothing is known of its density
GROWTH = 8  # the most a slice's span grows or shrinks from one slice to the next
_MS = timedelta(milliseconds=1)  # BSON datetimes are whole milliseconds
# The density (documents a second of the range) of the last sliced reads of this process, by
# their shape (`Slices.shape`: collection, equality filters, sliced field): a read of a shape
# seen before starts with a slice expected to hold SLICE_DOCS instead of FIRST_SLICE of its
# range (a 14-row report of one department in one day: one query, not seven growing slices
# and five counts). A guess wrong by up to 2x still makes one reply (2 × SLICE_DOCS); a worse
# one makes the server build a larger slice, which the worker still takes a reply at a time.
DENSITIES: OrderedDict[tuple[Any, ...], float] = OrderedDict()
DENSITIES_KEPT = 4096


class Slices:
    """The queries of one fact read: the read itself, or, when it bounds `field` by a datetime
    range, consecutive slices of that range (`SLICE_DOCS`); together they hold exactly the
    read's documents (each slice `[start, stop)` begins where the last one ended). Slices may
    be asked for before the earlier ones are read: `observe` takes the documents of the
    oldest one not observed yet, and the next span follows that slice's density."""

    def __init__(self, read: dict[str, Any], field: str | None, collection: str | None = None):
        self.read = read
        self.field = field
        self.count = 0  # queries handed out
        self.seen = 0  # documents observed
        bounds = read.get(field) if field else None
        if not (
            isinstance(bounds, dict)
            and set(bounds) == {"$gte", "$lt"}
            and all(isinstance(v, datetime) for v in bounds.values())
        ):
            self.field = None
            return
        self.start: datetime = bounds["$gte"]
        self.end: datetime = bounds["$lt"]
        self.first = self.read_to = self.start  # the range, and how far it has been read
        self.span = max((self.end - self.start) * FIRST_SLICE, _MS)
        self.spans: deque[timedelta] = deque()  # of the slices handed out, not yet observed
        # The last slice observed held few documents or none, so the next span grows past what
        # is known of the density: the reader counts that slice before asking for it (`recut`).
        self.blind = False
        self.shape = None if collection is None else _shape(collection, read, self.field)
        density = DENSITIES.get(self.shape) if self.shape is not None else None
        if density:  # the first slice holds about SLICE_DOCS, as last time (a small read: all)
            self.span = max(self.span, timedelta(seconds=SLICE_DOCS / density))

    def next(self) -> dict[str, Any] | None:
        """The next query; None when done."""
        if self.field is None:
            self.count += 1
            return self.read if self.count == 1 else None
        if self.start >= self.end:
            return None
        stop = self.start + self.span
        if stop + self.span / 4 >= self.end:  # no sliver of a last slice
            stop = self.end
        else:  # on a whole millisecond: the bound the server compares is the one used next
            stop = max(stop - timedelta(microseconds=stop.microsecond % 1000), self.start + _MS)
        return self._hand_out(self.start, stop)

    def _hand_out(self, start: datetime, stop: datetime) -> dict[str, Any]:
        assert self.field is not None
        self.spans.append(stop - start)
        self.start = stop
        self.count += 1
        return {**self.read, self.field: {"$gte": start, "$lt": stop}}

    def recut(self, docs: int) -> dict[str, Any] | None:
        """The slice just handed out holds `docs` documents (counted). Past twice `SLICE_DOCS`,
        it is cut back to the span that holds about `SLICE_DOCS` at that density, and its new
        query returned: data that begins after a long empty stretch of the range then costs a
        count there, not one slice of all of it (which a server that builds a whole result
        before answering builds in one silent go)."""
        if self.field is None or not self.spans or docs <= 2 * SLICE_DOCS:
            return None
        span = self.spans.pop()
        start = self.start - span
        self.count -= 1
        stop = start + max(span * (SLICE_DOCS / docs), _MS)
        stop = max(stop - timedelta(microseconds=stop.microsecond % 1000), start + _MS)
        if stop >= self.start:  # nothing narrower on whole milliseconds
            return self._hand_out(start, self.start)
        self.span = stop - start
        return self._hand_out(start, stop)

    def observe(self, docs: int) -> None:
        """The oldest slice not observed yet held `docs` documents."""
        if self.field is None or not self.spans:
            return
        span = self.spans.popleft()
        self.read_to += span
        self.seen += docs
        if self.read_to >= self.end:
            self._remember()
        self.blind = docs * 2 < SLICE_DOCS  # the span grows more than twofold
        grow = SLICE_DOCS / docs if docs else GROWTH
        self.span = max(span * min(GROWTH, max(1 / GROWTH, grow)), _MS)

    def _remember(self) -> None:
        """Notes the density of the whole read for the next read of its shape."""
        if self.shape is None:
            return
        seconds = (self.end - self.first).total_seconds()
        DENSITIES.pop(self.shape, None)
        if self.seen and seconds > 0:
            DENSITIES[self.shape] = self.seen / seconds
            while len(DENSITIES) > DENSITIES_KEPT:
                DENSITIES.popitem(last=False)

    def share(self) -> float:
        """The share of the range read so far (0 for a read that is not sliced)."""
        if self.field is None:
            return 0.0
        return float((self.read_to - self.first) / (self.end - self.first))


def slice_field(facts: FactRead) -> str | None:
    """The field `facts` is read in slices of, if any. Slices follow one another in its
    ascending order: only for a read sorted by nothing, or first by that field ascending (each
    slice is sorted by the server; later keys only order ties within a slice)."""
    sort = list((facts.sort or {}).items())
    return facts.slice_field if not sort or sort[0] == (facts.slice_field, 1) else None


def _shape(collection: str, read: dict[str, Any], field: str | None) -> tuple[Any, ...]:
    """What makes two reads alike for their density: the collection, the sliced field and the
    read's other conditions (equalities of the index prefix)."""
    return (collection, field, repr(sorted((k, v) for k, v in read.items() if k != field)))
