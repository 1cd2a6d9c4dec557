"""The report worker process."""
