"""run.ray."""
