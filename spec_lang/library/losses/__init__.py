"""Loss functions: each declared once with its signature, its checks (shapes, dtypes, located errors), its lowering
(a numerically stable form from logits where there is one), its line in the compile summary and the role its term
plays for training (the label classifier's loss, or a domain classifier's). To add a loss, register a `LossKind`
(`kinds.py`) in the module of its family (`classification`, `discrepancy`, `disparity`, `regularisers`, `critics`);
the ops it calls live in `spec_lang.lowering.pytensor.ops`, or in the loss's own `formulas`.

>>> [kind.name for kind in LOSSES.entries()]  # doctest: +NORMALIZE_WHITESPACE
['crossentropy', 'bce', 'bce_domains', 'mse', 'entropy', 'l2', 'l1', 'wasserstein', 'gradient_penalty', 'mmd',
 'jmmd', 'coral', 'classifier_discrepancy', 'mdd', 'bce_weighted_by_entropy', 'bsp', 'mcc', 'afn']
"""

from spec_lang.library.losses import (
    classification,  # noqa: F401  (each family registers its losses)
    critics,  # noqa: F401
    discrepancy,  # noqa: F401
    disparity,  # noqa: F401
    regularisers,  # noqa: F401
)
from spec_lang.library.losses.classification import mean_over_domain_rows
from spec_lang.library.losses.kinds import (
    LOSSES,
    LossChecks,
    LossKind,
    LossLowering,
    TermRole,
    describe,
    label_classes,
    need_activation,
    predictions,
    same_shape,
)

__all__ = [
    "LOSSES",
    "LossChecks",
    "LossKind",
    "LossLowering",
    "TermRole",
    "describe",
    "label_classes",
    "mean_over_domain_rows",
    "need_activation",
    "predictions",
    "same_shape",
]
