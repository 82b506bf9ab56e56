"""The version of reprokit (one place: the package metadata reads it from here too)."""

__version__ = "0.2.0.dev0"
