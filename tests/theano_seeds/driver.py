"""Trains a Theano program inside the Theano 1.0.5 virtual environment that tests/lowering/test_theano.py builds
(run by that test, not collected by pytest: it imports Theano).

    python driver.py emitted MODULE.py DATA.npz OUT.npz   # a module `specc compile --emit theano` wrote
    python driver.py seed_000 DATA.npz OUT.npz            # the seed programs, as written (seed_000.py, seed_003.py)
    python driver.py seed_003 DATA.npz OUT.npz

DATA holds `order` (the names of the training function's inputs, in order), the batches (`batch.STEP.NAME`) and,
for a seed, `names` and `init.NAME`: specc's initial parameters, which the seed's `theano.shared` calls receive in
order instead of its own draws. OUT gets `losses` (what the training function returns, one row a step) and
`init.NAME` and `final.NAME` of every parameter: an emitted module's own draws, and the values after training.
"""

import importlib.util
import sys
from pathlib import Path

import numpy as np
import theano

HERE = Path(__file__).resolve().parent
# The seeds' example calls, as their script lines make them.
SEED_CALLS = {
    "seed_000": ((10, [8, 6, 4, 8, 16], 32, 0.1, 0.01), {}),
    "seed_003": ((), dict(input_size=2, f_layer_sizes=[3, 4], y_layer_sizes=[7, 8], d_layer_sizes=[5, 6],
                          hp_lambda=.5, hp_mu=.01)),
}


def load(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def compile_seed(name, data):
    """The seed's `compile` with specc's initial parameters, and its shared variables in the order it made them."""
    seed = load(HERE / f"{name}.py", name)
    names = [str(n) for n in data["names"]]
    made, shared = [], theano.shared

    def specc_initial(value, *args, **kwargs):  # the k-th parameter the seed makes starts at specc's k-th
        expected = data[f"init.{names[len(made)]}"]
        assert np.shape(value) == expected.shape, (names[len(made)], np.shape(value), expected.shape)
        made.append(shared(expected.copy(), *args, **kwargs))
        return made[-1]

    theano.shared = specc_initial
    try:
        if name == "seed_003":  # what its main() does before compiling; seed 000's script line would fail (see tests)
            theano.config.compute_test_value = "raise"
            np.random.seed(1)
        args, kwargs = SEED_CALLS[name]
        train = seed.compile(*args, **kwargs)
    finally:
        theano.shared = shared
    assert len(made) == len(names)
    return train, dict(zip(names, made, strict=True)), {n: p.get_value() for n, p in zip(names, made, strict=True)}


def main(argv):
    if argv[0] == "emitted":
        module, (data_path, out_path) = load(argv[1], "generated"), argv[2:]
        data = np.load(data_path)
        train, _, params, *_ = module.compile_model()
        initial = {name: p.get_value() for name, p in params.items()}
    else:
        (data_path, out_path), data = argv[1:], np.load(argv[1])
        train, params, initial = compile_seed(argv[0], data)
    order = [str(n) for n in data["order"]]
    steps = len({key.split(".")[1] for key in data.files if key.startswith("batch.")})
    losses = [np.atleast_1d(train(*[data[f"batch.{i}.{n}"] for n in order])) for i in range(steps)]
    arrays = {f"init.{name}": value for name, value in initial.items()}
    arrays.update({f"final.{name}": p.get_value() for name, p in params.items()})
    np.savez(out_path, losses=np.array([[float(v) for v in row] for row in losses]), **arrays)


if __name__ == "__main__":
    main(sys.argv[1:])
