"""What test modules share: session settings, tokens, polling, processes and data builders.

Test modules import from here (or from `tests.factories`), never from `conftest.py` or from one
another."""
