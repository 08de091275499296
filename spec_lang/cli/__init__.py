"""The `specc` command line."""

from spec_lang.cli.main import main

__all__ = ["main"]
