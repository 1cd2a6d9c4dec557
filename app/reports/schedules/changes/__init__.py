"""Change reports: a scheduled run compared with the last delivered run of the same schedule
and scope (tracker.py), the baseline moved in the run's completing commit (gate.py)."""
