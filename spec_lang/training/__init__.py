"""Training: roles inferred from the program, data prepared for them, the loop, metrics and history."""

from spec_lang.training.evaluation import metrics
from spec_lang.training.history import History
from spec_lang.training.interrupts import Interrupted
from spec_lang.training.loop import RUN_HINT, fit
from spec_lang.training.roles import infer_roles
from spec_lang.training.trainer import Trainer

__all__ = ["RUN_HINT", "History", "Interrupted", "Trainer", "fit", "infer_roles", "metrics"]
