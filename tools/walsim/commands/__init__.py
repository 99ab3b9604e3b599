"""Subcommands of walsim-cli, one module each (see walsim.cli)."""
