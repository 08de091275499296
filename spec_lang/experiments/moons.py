"""Reproductions of published results with bundled examples.

`reproduce_moons` is the DANN paper's toy experiment (Ganin et al. 2016, JMLR 17(59), §5.1): a shallow network
trained on the labelled source moons, with and without the domain-adversarial branch, evaluated on the target
moons rotated by 35°. `spec_lang.cli.reproduce` makes it the command `specc reproduce moons`.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from spec_lang.api import load
from spec_lang.data import two_moons
from spec_lang.experiments.accuracies import Accuracies, example
from spec_lang.files import prepare_folder, write_atomic
from spec_lang.reports.plots import plot_history, plot_moons, require_matplotlib

if TYPE_CHECKING:
    from spec_lang.model import CompiledModel  # imports PyTensor

MOONS_EXAMPLES = {"NN": "moons_nn.dann", "DANN": "moons_dann.dann"}
MOONS_EPOCHS = 500  # the authors' maxiter in experiments_moons.py


def reproduce_moons(
    seeds: int = 5,
    out_dir: str | Path = "moons",
    *,
    epochs: int = MOONS_EPOCHS,
    specs: dict[str, Path] | None = None,
    mode: str | None = None,
    force: bool = False,
    report: Callable[[str], None] | None = None,
) -> Accuracies:
    """Train each model of `specs` (name → spec path; default: the examples moons_nn and moons_dann, as "NN" and
    "DANN") on the two-moons toy (`data.two_moons`) once per seed 0, 1, …, `seeds` - 1, with `CompiledModel.fit`
    for `epochs` epochs of one source and one target point per step (the authors' online SGD); the seed sets the
    spec's `init_seed` parameter (which every spec must have) and fit's order of the points. Writes to `out_dir`:
    `moons.json` (every run's final accuracies and the summary), `moons.png` (the paper's figure, from seed 0's
    models) and `moons_<model>_history.png` (seed 0's training curves). Existing files are replaced only when
    `force`. `report` receives a line per finished run. Returns the accuracies; `result.table()` is the table.
    """
    if seeds < 1:
        raise ValueError(f"seeds must be at least 1, got {seeds}")
    specs = specs or {name: example(file) for name, file in MOONS_EXAMPLES.items()}
    names = {"json": "moons.json", "figure": "moons.png", **{n: f"moons_{n.lower()}_history.png" for n in specs}}
    paths = dict(zip(names, prepare_folder(out_dir, names.values(), force), strict=True))
    require_matplotlib()  # before minutes of training, not after
    data = two_moons()
    runs: dict[str, list[dict]] = {name: [] for name in specs}
    first: dict[str, tuple[CompiledModel, list[dict]]] = {}
    for name, spec_path in specs.items():
        for seed in range(seeds):
            started = time.perf_counter()
            model = load(spec_path, init_seed=seed).compile(mode)
            history = model.fit(data, epochs=epochs, batch_size=1, seed=seed)
            final = history.final
            assert final is not None  # `fit` returns when training ended, with its final record
            runs[name].append(
                {
                    "seed": seed,
                    **{key: final[key] for key in ("source_accuracy", "target_accuracy", "domain_accuracy")},
                    "seconds": round(time.perf_counter() - started, 2),
                }
            )
            if seed == 0:
                first[name] = (model, history.records)
            if report:
                report(
                    f"{name} seed {seed}: source {final['source_accuracy']:.1%}, target "
                    f"{final['target_accuracy']:.1%} ({runs[name][-1]['seconds']} s)"
                )
    result = Accuracies(runs)
    setup = {
        "data": "two_moons(): 150 source and 150 target points, target rotated by 35°",
        "epochs": epochs,
        "seeds": seeds,
        "specs": {name: os.path.relpath(path) for name, path in specs.items()},
    }
    document = {"setup": setup, "summary": result.summary(), "runs": runs}
    result.files.append(write_atomic(paths["json"], json.dumps(document, indent=2) + "\n"))
    result.files.append(
        plot_moons({name: model for name, (model, _) in first.items()}, data, paths["figure"], force=force)
    )
    for name, (model, records) in first.items():
        result.files.append(
            plot_history(
                records,
                paths[name],
                hyperparameters=model.hyperparameters,
                title=f"{name} on the two moons, seed 0",
                force=force,
            )
        )
    return result
