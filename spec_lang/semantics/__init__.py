"""Stage 2, semantics: the IR checked into a `Program` (parameters applied, loops unrolled, templates instantiated,
shapes, dtypes and gradient reversal checked), every problem a located diagnostic. Free of PyTensor."""
