"""Threshold alerts of a schedule (docs/alerts.md): conditions on the report type's alertable
summary figures; a run is delivered only when they become true (and, when asked, when they
recover), decided in the run's completing commit together with its deliveries."""
