"""Compile time against graph size (not a test): N feature stacks (`dense 8 relu` each) applied to one input, each
feeding one shared head and a loss term of its own, all summed in the objective, for growing N. Each compile runs in
a new process with fresh, private PyTensor and Numba caches, so every figure is a cold compile (with `--warm`, the
caches are shared and first filled by a run of one stack more than the largest N: the compiled code of every
operation but those whose size depends on N is then on disk, as after any earlier run, and what is left is what
grows with N):

    .venv/bin/python bench/compile_scaling.py                          # N = 10, 20, 40, 80, NUMBA mode
    .venv/bin/python bench/compile_scaling.py --stacks 10,20,40,80,160 --modes NUMBA,CVM,FAST_COMPILE
    .venv/bin/python bench/compile_scaling.py --whole                  # as before `runtime.linking`: graphs whole
    .venv/bin/python bench/compile_scaling.py --warm --stacks 20,40,80,160

Per N: the Apply nodes of the training graph before rewriting, the seconds of PyTensor's rewrites, the rest of the
compile (lowering, gradients, linking, and Numba's machine code, built at the first step), both together (wall and
CPU: user + system, which another process's load does not inflate as much), the median of 20 later steps, and the
objective at the first step (the same with and without `--whole`). The growth is judged by the increments: with
t(N) the total, the ratio (t(4N) - t(2N)) / (t(2N) - t(N)) is 2 for a linear growth above a constant, 4 for a
quadratic one.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _sum(terms: list[str]) -> str:
    """A sum in brackets as a balanced tree: a flat sum of N terms is N levels deep (E108 above 100)."""
    if len(terms) <= 8:
        return " + ".join(terms)
    half = len(terms) // 2
    return f"({_sum(terms[:half])}) + ({_sum(terms[half:])})"


def spec_text(stacks: int) -> str:
    """N stacks sharing one head, a loss each, all in the objective."""
    lines = ["model many_stacks()", "input x : float[batch, 4]", "input y : int[batch] < 3"]
    lines += [f"stack s{i} {{ dense 8 relu }}" for i in range(1, stacks + 1)]
    lines += ["stack head { dense 3 softmax }"]
    lines += [f"loss l{i} = crossentropy(head(s{i}(x)), y)" for i in range(1, stacks + 1)]
    lines += ["optimize sgd(lr = 0.1) minimize " + _sum([f"l{i}" for i in range(1, stacks + 1)])]
    return "\n".join(lines) + "\n"


def _cpu() -> float:
    times = os.times()
    return times.user + times.system


def probe(stacks: int, mode: str, large: int | None) -> dict:
    """One cold compile and first step in this process."""
    sys.path.insert(0, str(ROOT))
    import numpy as np
    from pytensor.compile.debug import profiling

    import spec_lang
    from spec_lang.lowering.passes import Optimizations
    from spec_lang.runtime import linking

    if large is not None:
        linking.LARGE_GRAPH = large
    sizes: list[int] = []
    measure = linking.graph_size
    linking.graph_size = lambda *args: sizes.append(measure(*args)) or sizes[-1]  # type: ignore[assignment]
    spec = spec_lang.loads(spec_text(stacks))
    wall, cpu = time.perf_counter(), _cpu()
    model = spec.compile(mode, Optimizations(compile_cache=False))
    rng = np.random.default_rng(0)
    losses = model.train_step(x=rng.normal(size=(16, 4)), y=rng.integers(0, 3, 16))
    total, cpu = time.perf_counter() - wall, _cpu() - cpu
    rewrite = profiling.total_graph_rewrite_time
    steps = []
    for _ in range(20):
        started = time.perf_counter()
        model.train_step(x=rng.normal(size=(16, 4)), y=rng.integers(0, 3, 16))
        steps.append(time.perf_counter() - started)
    return {
        "stacks": stacks,
        "mode": mode,
        "large_graph": linking.LARGE_GRAPH,
        "nodes": sizes[0],
        "rewrite_s": round(rewrite, 2),
        "rest_s": round(total - rewrite, 2),
        "total_s": round(total, 2),
        "cpu_s": round(cpu, 2),
        "step_ms": round(1000 * float(np.median(steps)), 2),
        "objective": losses["objective"],
    }


def run(stacks: int, mode: str, large: int | None, warm: str | None) -> dict:
    """One probe in a new process, with fresh caches, or with the caches in the folder `warm`."""
    with tempfile.TemporaryDirectory(prefix="specc-scaling-") as fresh:
        folder = warm or fresh
        env = dict(os.environ, PYTENSOR_FLAGS=f"base_compiledir={folder}", NUMBA_CACHE_DIR=f"{folder}/numba-own")
        command = [sys.executable, __file__, "--probe", str(stacks), "--modes", mode]
        command += [] if large is None else ["--large-graph", str(large)]
        done = subprocess.run(command, env=env, capture_output=True, text=True, cwd=ROOT, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"probe failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def growth(rows: list[dict], key: str) -> str:
    """(t(4N) - t(2N)) / (t(2N) - t(N)) for each doubling of N measured, 2 for linear growth."""
    by = {row["stacks"]: row[key] for row in rows}
    ratios = [
        f"{n}→{2 * n}→{4 * n}: {(by[4 * n] - by[2 * n]) / (by[2 * n] - by[n]):.2f}"
        for n in sorted(by)
        if 2 * n in by and 4 * n in by and by[2 * n] > by[n]
    ]
    return ", ".join(ratios) or "-"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stacks", default="10,20,40,80", help="the values of N, comma-separated")
    parser.add_argument("--modes", default="NUMBA", help="PyTensor modes, comma-separated: NUMBA, CVM, FAST_COMPILE")
    parser.add_argument("--whole", action="store_true", help="compile every graph whole, as before runtime.linking")
    parser.add_argument("--large-graph", type=int, help="the nodes above which a graph is large (runtime.linking)")
    parser.add_argument(
        "--warm",
        action="store_true",
        help="share one cache folder, filled first by a run of one stack more than "
        "the largest N: only what grows with N is left",
    )
    parser.add_argument("--probe", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.probe is not None:
        print(json.dumps(probe(args.probe, args.modes, args.large_graph)))
        return 0
    print(f"Command: {' '.join([Path(sys.executable).name, *sys.argv])}; load average {os.getloadavg()[0]:.2f}")
    print("| mode | N | nodes | rewrite s | rest s | total s | CPU s | step ms | objective |")
    print("|---|---|---|---|---|---|---|---|---|")
    large = sys.maxsize if args.whole else args.large_graph
    stacks_list = [int(n) for n in args.stacks.split(",")]
    for mode in args.modes.split(","):
        rows = []
        with tempfile.TemporaryDirectory(prefix="specc-scaling-warm-") as shared:
            warm = shared if args.warm else None
            if warm:
                run(max(stacks_list) + 1, mode, large, warm)
            for stacks in stacks_list:
                row = run(stacks, mode, large, warm)
                rows.append(row)
                cells = ("mode", "stacks", "nodes", "rewrite_s", "rest_s", "total_s", "cpu_s", "step_ms", "objective")
                print("| " + " | ".join(str(row[c]) for c in cells) + " |", flush=True)
        print(
            f"growth of {mode} (2 = linear, 4 = quadratic): total {growth(rows, 'total_s')}; "
            f"CPU {growth(rows, 'cpu_s')}; rewrites {growth(rows, 'rewrite_s')}",
            flush=True,
        )
    print(f"load average at the end {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
