"""veille: a social-listening daemon that wakes a community manager only for a bad buzz."""

__version__ = "0.1.0"
