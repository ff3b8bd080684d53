"""The version, in one place: the HTTP User-Agent, the health file and `--version` read it."""

__version__ = "0.1.0"
