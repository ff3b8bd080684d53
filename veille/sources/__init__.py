"""Source drivers, one module per network; see `base.py` for the interface."""
