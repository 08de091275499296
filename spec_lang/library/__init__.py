"""The vocabularies, each a registry whose entries are declared once with everything the stages need: layers, losses,
optimisers, schedules and initialisers. Used by the checker and the lowering; free of PyTensor."""
