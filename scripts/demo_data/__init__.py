"""Demo data: a realistic organisation with users, courses, enrollments and learning events.

`generate(scale, seed, now)` is pure and deterministic (same seed and `now` -> the same documents,
ids included); `seed_demo(...)` writes it in bulk (`insert_many`, unordered, 10,000 documents a
batch, encoded to BSON in a thread while the server writes the previous batch; the secondary
indexes of enrollments and learning events built after the load) so millions of events stream
through in bounded memory.

Consistency rules the data follows (tests check them):
- every enrollment has one `course-enrolled` event at `enrolled_at`; `course-started` only when
  started; `course-completed` and `certificate-issued` only for completed enrollments;
- every course lists its final quiz (`quizzes`: id `final-quiz` and a title naming the course);
- `quiz-submitted` carries `quizId` and `score`, followed by `quiz-passed` when the score reaches
  the course's passing score and `quiz-failed` otherwise; completed enrollments end with a pass
  (score >= passing score), failed ones with a fail;
- `time_spent_minutes` is the enrollment's events' `durationSeconds` summed (rounded to minutes)
  and `last_activity_at` its last event; nothing happens after `now`;
- events carry the enrollment's course, the user's department and the enrollment id.
"""

from scripts.demo_data.catalogue import DEMO_ACCOUNTS, DEMO_DOMAIN, SCALES, parse_scale
from scripts.demo_data.generator import DemoData, generate
from scripts.demo_data.seed import (
    PLATFORM_COLLECTIONS,
    SeedReport,
    as_legacy,
    existing_users,
    reset_platform_data,
    seed_demo,
)

__all__ = [
    "DEMO_ACCOUNTS",
    "DEMO_DOMAIN",
    "PLATFORM_COLLECTIONS",
    "SCALES",
    "DemoData",
    "SeedReport",
    "as_legacy",
    "existing_users",
    "generate",
    "parse_scale",
    "reset_platform_data",
    "seed_demo",
]
