"""veille: a social-listening daemon that wakes a community manager only for a bad buzz."""

from veille.core.version import __version__

__all__ = ["__version__"]
