"""The checked program: what the checker produces and lowering, reports and training read."""

from spec_lang.program.types import *  # noqa: F401,F403
from spec_lang.program.types import Scalar, Value  # noqa: F401
