"""Training: roles inferred from the program, data prepared for them, the loop, metrics and history."""

from spec_lang.training.loop import RUN_HINT, History, Interrupted, fit, infer_roles, metrics

__all__ = ["RUN_HINT", "History", "Interrupted", "fit", "infer_roles", "metrics"]
