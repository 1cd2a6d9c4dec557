"""Report data as JSON for a frontend: a preview of any request (`service.py`, within a time
budget, `budget.py`) and a completed job's stored rows, paged at any depth (`rows.py`)."""
