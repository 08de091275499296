"""Stage 1, syntax: `.dann` text, JSON and the Python builder into one IR (frozen dataclasses with source spans), and
the canonical printer back to text. Free of PyTensor."""
