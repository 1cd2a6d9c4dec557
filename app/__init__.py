"""Report system for learning platforms."""
