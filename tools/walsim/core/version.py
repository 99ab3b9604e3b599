"""walsim's version (one place: the CLI, run.json and the package metadata read it)."""

__version__ = "0.1.0"
