"""Report schedules (API-ISS-028/032): recurring reports run by the worker's scheduler tick."""
