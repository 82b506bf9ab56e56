"""aligning."""
