"""walsim: a test-and-simulation harness for PostgreSQL physical streaming replication."""

__version__ = "0.1.0"
