"""The step-by-step executor the worker runs for one report job.

resolve -> count -> fetch (streamed in batches) -> render -> store -> finish

The job is claimed atomically in MongoDB with a lease; a heartbeat keeps the lease alive, saves
progress and notices cancel requests, lost leases and worker shutdown, and then cancels the
work (rendering included: PDF pages are laid out in separate processes that are killed). Only
the holder of the current lease can commit; a refused commit deletes the file it stored.

- ``lease``: claim, heartbeat, the fenced commit;
- ``pipeline``: rows from the report definition into the format's ``RowSink``, then storage;
- ``storing``: the file on its way to storage as it is produced (aborted unless committed);
- ``outcome``: completed / failed / cancelled / released, retries with back-off;
- ``executor``: ``JobExecutor``, composing the three.
"""

from app.reports.execution.executor import JobExecutor
from app.reports.execution.outcome import PermanentJobError
from app.reports.execution.pipeline import REPORTS_PREFIX, file_name_for, storage_prefix

__all__ = ["REPORTS_PREFIX", "JobExecutor", "PermanentJobError", "file_name_for", "storage_prefix"]
