"""Stage 3, lowering: one walker over the checked program with two backends, PyTensor (`pytensor/`) and emitted
Python source (`python/`), and the switchable passes that batch stacks and fuse losses."""
