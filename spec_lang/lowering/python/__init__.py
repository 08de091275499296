"""The emitted-Python backend: `specc compile --emit python`, a standalone module that builds the same graph."""
