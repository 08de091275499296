"""The Theano target of the emitter: `specc compile --emit theano`, a standalone module that builds the graph with
Theano 1.0.5."""
