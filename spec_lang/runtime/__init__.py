"""Stage 4, runtime: the compiled update, evaluate and predict functions, their state, checkpoint files and the
compile cache."""
