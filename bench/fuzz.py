"""The long fuzzing campaign of the front end: many mutated specs through `specc check`, in this process.

    .venv/bin/python bench/fuzz.py --inputs 100000 --seed 0

Input number i of seed s is always the same (drawn from `random.Random(f"{s}:{i}")`, see `tests/fuzzing.py`), so
a failure can be replayed with `--first i --inputs 1`. Prints how many inputs were tried through each door, how
each ended (accepted; rejected with located diagnostics; or a failure: an unlocated diagnostic, a crash or a hang)
and one line per kind of failure; writes each failing input to the failures folder. Exit status 1 if any failed.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import random
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from fuzzing import Input, Outcome, make_input, prepare, run  # noqa: E402

_folder: Path | None = None


def _start_worker() -> None:
    global _folder
    _folder = prepare(Path(tempfile.mkdtemp(prefix="specc-fuzz-")))


def _one(task: tuple[int, int, float]) -> tuple[int, Input, Outcome]:
    seed, index, budget = task
    made = make_input(random.Random(f"{seed}:{index}"))
    assert _folder is not None
    return index, made, run(made, _folder, budget)


def main() -> int:
    options = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    options.add_argument("--inputs", type=int, default=100_000, help="how many inputs (default 100000)")
    options.add_argument("--seed", type=int, default=0, help="the campaign's seed (default 0)")
    options.add_argument("--first", type=int, default=0, help="the number of the first input (default 0)")
    options.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="worker processes (default: all CPUs)")
    options.add_argument("--budget", type=float, default=10.0, help="seconds one input may take (default 10)")
    options.add_argument("--failures", type=Path, default=Path("bench/fuzz-failures"),
                         help="where failing inputs are written (default bench/fuzz-failures)")
    args = options.parse_args()
    started = time.perf_counter()
    doors: Counter[str] = Counter()
    kinds: Counter[str] = Counter()
    classes: Counter[str] = Counter()
    examples: dict[str, int] = {}
    tasks = [(args.seed, index, args.budget) for index in range(args.first, args.first + args.inputs)]
    with multiprocessing.Pool(args.jobs, initializer=_start_worker) as pool:
        for index, made, outcome in pool.imap_unordered(_one, tasks, chunksize=64):
            doors[made.suffix] += 1
            kinds[outcome.kind] += 1
            if outcome.failed:
                key = f"{outcome.kind}: {outcome.detail}"
                classes[key] += 1
                examples.setdefault(key, index)
                args.failures.mkdir(parents=True, exist_ok=True)
                (args.failures / f"{args.seed}-{index}{made.suffix}").write_bytes(made.data)
                (args.failures / f"{args.seed}-{index}.txt").write_text(f"{made.how}\n{key}\n", encoding="utf-8")
    seconds = time.perf_counter() - started
    failed = sum(classes.values())
    print(f"inputs: {sum(doors.values())} (.dann {doors['.dann']}, .json {doors['.json']}), seed {args.seed}, "
          f"{args.jobs} jobs, {seconds:.0f} s")
    print(f"accepted: {kinds['accepted']}, rejected with located diagnostics: {kinds['diagnostics']}")
    print(f"failures: {failed} (crashes {kinds['crash']}, hangs {kinds['hang']}, unlocated {kinds['unlocated']})")
    for key, count in classes.most_common():
        print(f"  {count:6}  {key}  (e.g. input {examples[key]}, in {args.failures})")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
