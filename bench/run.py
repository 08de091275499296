"""specc benchmarks (not tests): train-step time against a hand-written PyTensor program and PyTorch eager, achieved
GFLOP/s against the machine's measured matmul peak, front-end time against spec size, and compile time (cold and
warm). One command, from the repository root:

    .venv/bin/python bench/run.py                 # everything, ~10 min on 2 cores; writes bench/results.json
    .venv/bin/python bench/run.py --quick         # fewer repetitions, ~3 min
    .venv/bin/python bench/run.py --only step     # one part: peak, step, frontend, compile, conv, conv-compile

Every time is the median of repeated measurements; the train steps of all contenders are measured interleaved
(round after round, each contender once per round, in a rotating order), and a ratio is the median of the
per-round ratios, so that load changing during the run hits both sides of a ratio alike. PyTorch is optional
(`pip install torch`, or the `bench` extra); without it that column is skipped.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _threads_option() -> str | None:
    """`--threads N` must take effect before NumPy, SciPy, Numba and PyTorch start their thread pools. One thread
    by default: contenders measured in turn in one process must not share cores with each other's idle, spinning
    thread pools (PyTorch's OpenMP, OpenBLAS), nor, on a busy machine, wait for a core another process holds; 0
    leaves every library its own default (all cores)."""
    for i, argument in enumerate(sys.argv):
        if argument == "--threads" and i + 1 < len(sys.argv):
            return None if sys.argv[i + 1] == "0" else sys.argv[i + 1]
        if argument.startswith("--threads="):
            return None if argument.endswith("=0") else argument.split("=", 1)[1]
    return "1"


THREADS = _threads_option()
if THREADS:
    for variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
        os.environ[variable] = THREADS

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import conv  # noqa: E402
import models  # noqa: E402
from timing import interleaved, median, seconds  # noqa: E402

SIZES = [(2, 32), (100, 128), (784, 256)]  # (inputs, batch)
PEAK_SHAPE = (2 * 256, 784, 256)  # the largest matrix product of a train step: both batches through layer 1
PARTS = ("peak", "step", "frontend", "compile", "conv", "conv-compile")


# Machine --------------------------------------------------------------------------------------------------------


def machine() -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import numba
    import pytensor

    info = {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(), "numpy": np.__version__,
            "pytensor": pytensor.__version__, "numba": numba.__version__, "load_start": os.getloadavg(),
            "threads": THREADS or "default"}
    try:
        import torch

        if THREADS:
            torch.set_num_threads(int(THREADS))
        info["torch"] = torch.__version__
        info["torch_threads"] = torch.get_num_threads()
    except ImportError:
        info["torch"] = None
    return info


# Matmul peak ----------------------------------------------------------------------------------------------------


def matmul_gflops(m: int, k: int, n: int, repeats: int, blas: str = "numpy") -> float:
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(m, k)).astype("float32"), rng.normal(size=(k, n)).astype("float32")
    if blas == "numpy":
        def run():
            np.dot(a, b)
    else:  # the OpenBLAS that Numba's np.dot calls (SciPy's, through scipy.linalg.cython_blas)
        from scipy.linalg.blas import sgemm

        def run():  # (A B)ᵀ = Bᵀ Aᵀ: Fortran-ordered views, so that no operand is copied
            sgemm(1.0, b.T, a.T)
    run()
    count = max(1, int(0.05 / max(seconds(run), 1e-6)))
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(count):
            run()
        times.append((time.perf_counter() - start) / count)
    return 2 * m * k * n / median(times) / 1e9


def peak(repeats: int) -> dict:
    shapes = {"train-step size (2·batch × inputs × width)": PEAK_SHAPE,
              "square 1024": (1024, 1024, 1024)}
    result = {}
    for name, (m, k, n) in shapes.items():
        result[name] = {"shape": [m, k, n], "numpy": matmul_gflops(m, k, n, repeats),
                        "scipy_sgemm": matmul_gflops(m, k, n, repeats, "scipy")}
    result["peak"] = result["train-step size (2·batch × inputs × width)"]["numpy"]
    return result


# Train step -----------------------------------------------------------------------------------------------------


def contenders(inputs: int, quick: bool, torch_ok: bool) -> dict:
    """name → (step function, its arguments) for one input size; every contender starts from the same
    parameters."""
    import spec_lang
    from spec_lang.lowering.passes import Optimizations

    spec = spec_lang.loads(models.spec_text(), inputs=inputs)
    found = {}
    variants = {"specc": Optimizations()}
    if not quick:
        variants |= {"specc, no batch_inputs": Optimizations(batch_inputs=False),
                     "specc, no merge_heads": Optimizations(merge_heads=False),
                     "specc, no fused_losses": Optimizations(fused_losses=False),
                     "specc, no fast_tanh": Optimizations(fast_tanh=False)}
    variants["specc, no optimisations"] = Optimizations.none()
    for name, optimizations in variants.items():
        model = spec.compile("NUMBA", optimizations)
        found[name] = (model, "specc")
    if not quick:
        found["specc, float64"] = (spec_lang.loads(models.spec_text("float64"), inputs=inputs).compile("NUMBA"),
                                   "specc64")
    initial = found["specc"][0].parameters
    found["hand-written PyTensor"] = (models.seed_style_pytensor(inputs, initial, mode="NUMBA"), "pytensor")
    if torch_ok:
        found["PyTorch eager"] = (models.pytorch_eager(initial), "torch")
    return found


def stepper(kind: str, thing, data: dict):
    """A no-argument call of one train step, and its loss."""
    if kind == "specc":
        return lambda: thing.train_step(**data)["objective"]
    if kind == "specc64":
        data64 = {n: v.astype("float64") if v.dtype.kind == "f" else v for n, v in data.items()}
        return lambda: thing.train_step(**data64)["objective"]
    if kind == "pytensor":
        xs, xt, ys = data["xs"], data["xt"], data["ys"]
        return lambda: float(thing(xs, xt, ys))
    tensors = models.torch_batch(data)
    return lambda: thing(**tensors)


def train_steps(rounds: int, quick: bool) -> dict:
    try:
        import torch  # noqa: F401

        torch_ok = True
    except ImportError:
        torch_ok = False
    results = {}
    for inputs, size in SIZES:
        data = models.batch(inputs, size)
        steps = {
            name: stepper(kind, thing, data) for name, (thing, kind) in contenders(inputs, quick, torch_ok).items()
        }
        first = {name: step() for name, step in steps.items()}  # the loss before the first step: the same start
        reference = first["hand-written PyTensor"]
        for name, loss in first.items():
            if "float64" not in name and not np.isclose(loss, reference, rtol=1e-4):
                raise AssertionError(f"{name} starts at loss {loss}, the hand-written program at {reference}")
        for step in steps.values():  # warm up: caches, allocations, BLAS threads
            for _ in range(3):
                step()
        count = max(2, int(0.04 / max(seconds(steps["specc"]), 1e-6)))  # steps per contender per round
        # the matmul peak, measured in the same rounds (same load): NumPy at the largest train-step product
        m, k, n = PEAK_SHAPE
        peak = functools.partial(np.dot, np.ones((m, k), "float32"), np.ones((k, n), "float32"))
        peak_count = max(2, int(0.04 / max(seconds(peak), 1e-6)))
        names = list(steps)
        times = interleaved({**{n: (s, count) for n, s in steps.items()},
                             "peak": (peak, peak_count)}, rounds)
        peak_times = times.pop("peak")
        flops = models.train_step_flops(inputs, size)
        row = {"inputs": inputs, "batch": size, "steps_per_round": count, "rounds": rounds, "flops": flops,
               "start_loss": first["specc"], "median_s": {n: median(t) for n, t in times.items()},
               "gflops": {n: flops / median(t) / 1e9 for n, t in times.items()}, "ratio_to_specc": {},
               "peak_gflops": median([2 * m * k * n / t / 1e9 for t in peak_times]),
               "fraction_of_peak": median([(flops / s) / (2 * m * k * n / t) for s, t in zip(times["specc"],
                                                                                            peak_times, strict=True)])}
        for name in names:  # median over rounds of (contender / specc) in the same round
            row["ratio_to_specc"][name] = median([a / b for a, b in zip(times[name], times["specc"], strict=True)])
        results[f"{inputs}/{size}"] = row
        print(f"  step {inputs}/{size}: " + ", ".join(f"{n} {row['median_s'][n] * 1e3:.3f} ms" for n in names),
              flush=True)
    return results


# Front end ------------------------------------------------------------------------------------------------------


def long_spec(layers: int) -> str:
    """A spec with `layers` dense layers in all: branches of ten layers (nine tanh, a softmax), each a stack of its
    own applied to the input, each with its loss. (One stack of thousands of layers is refused by the checker,
    E605: PyTensor's gradient recurses once per layer on a path.)"""
    stacks, losses = [], []
    for i in range(layers // 10):
        stacks.append(f"stack b{i} {{ " + "; ".join(["dense 16 tanh"] * 9) + "; dense 4 softmax }")
        losses.append(f"loss l{i} = crossentropy(b{i}(x), y)")
    return "\n".join(["model branches()", "input x : float[batch, 8]", "input y : int[batch] < 4", *stacks, *losses,
                      "optimize sgd(lr = 0.01)", ""])


def flat_spec(layers: int) -> str:
    """One stack of `layers` dense layers (parsed only: the checker refuses more than 250 on a path)."""
    body = "\n".join("  dense 16 tanh" for _ in range(layers))
    return f"model flat()\ninput x : float[batch, 8]\nstack net {{\n{body}\n}}\nhead p = net(x)\n"


def frontend(quick: bool) -> dict:
    import gc

    from spec_lang.api import from_ir
    from spec_lang.diagnostics import Source
    from spec_lang.syntax.parser import parse

    results = {}
    for layers in (10, 100, 1000, 10000):
        text, flat = long_spec(layers), flat_spec(layers)
        repeats = max(1, {10: 30, 100: 20, 1000: 7, 10000: 3}[layers] // (3 if quick else 1))
        parse_times, check_times, flat_times, no_gc_times = [], [], [], []
        for _ in range(repeats):
            gc.disable()  # the same without Python's cyclic garbage collector, whose passes grow with the heap
            try:
                start = time.perf_counter()
                from_ir(parse(text, "long.dann"), Source("long.dann", text))
                no_gc_times.append(time.perf_counter() - start)
            finally:
                gc.enable()
            start = time.perf_counter()
            model = parse(text, "long.dann")
            parsed = time.perf_counter()
            spec = from_ir(model, Source("long.dann", text))
            checked = time.perf_counter()
            parse(flat, "flat.dann")
            parse_times.append(parsed - start)
            check_times.append(checked - parsed)
            flat_times.append(time.perf_counter() - checked)
        assert sum(len(s.layers) for s in spec.program.stacks) == layers
        total = median([p + c for p, c in zip(parse_times, check_times, strict=True)])
        results[str(layers)] = {"layers": layers, "repeats": repeats, "parse_s": median(parse_times),
                                "check_s": median(check_times), "total_s": total, "per_layer_us": total / layers * 1e6,
                                "flat_parse_s": median(flat_times), "total_no_gc_s": median(no_gc_times),
                                "per_layer_no_gc_us": median(no_gc_times) / layers * 1e6}
        print(f"  front end {layers} layers: {total * 1e3:.1f} ms", flush=True)
    return results


# Compile --------------------------------------------------------------------------------------------------------

PROBE = ROOT / "bench" / "compile_probe.py"


def probe(env: dict, *arguments: str) -> dict:
    done = subprocess.run([sys.executable, str(PROBE), *arguments], env=env, capture_output=True, text=True,
                          cwd=ROOT, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"compile probe failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def compile_times(quick: bool) -> dict:
    """Compile of the largest model in new processes: cold (empty PyTensor, Numba and specc caches), then warm
    (the same caches: a second process, same spec), with specc's compile cache and without it (what PyTensor's and
    Numba's own caches give)."""
    inputs = str(SIZES[-1][0])
    with tempfile.TemporaryDirectory(prefix="specc-bench-cache-") as folder:
        env = dict(os.environ, PYTENSOR_FLAGS=f"base_compiledir={folder}",
                   NUMBA_CACHE_DIR=str(Path(folder) / "numba-own"))
        cold = probe(env, "--inputs", inputs)
        repeats = 2 if quick else 3
        warm = [probe(env, "--inputs", inputs) for _ in range(repeats)]
        uncached = [probe(env, "--inputs", inputs, "--no-compile-cache") for _ in range(repeats)]
    keys = ("import_s", "compile_s", "first_call_s", "process_s")

    def summary(runs):
        return {k: median([r[k] for r in runs]) for k in keys} | {"cache_hit": runs[-1]["cache_hit"],
                                                                    "runs": len(runs)}
    result = {"cold": summary([cold]), "warm": summary(warm), "warm, no specc cache": summary(uncached)}
    for name, row in result.items():
        print(f"  compile {name}: {row['compile_s']:.2f} s (+ first call {row['first_call_s']:.2f} s)", flush=True)
    return result


# Report ---------------------------------------------------------------------------------------------------------


def report(results: dict) -> str:
    lines = []
    info = results["machine"]
    lines.append(f"Machine: {info['cpu']}, {info['cores']} cores, threads: {info['threads']}; "
                 f"Python {info['python']}, NumPy {info['numpy']}, "
                 f"PyTensor {info['pytensor']}, Numba {info['numba']}, PyTorch {info.get('torch') or 'absent'}")
    lines.append(f"Load average (1, 5, 15 min): at start {_load(info['load_start'])}, at end "
                 f"{_load(info.get('load_end', os.getloadavg()))}")
    if "peak" in results:
        p = results["peak"]
        lines.append("")
        lines.append("Float32 matmul (GFLOP/s, median): " + "; ".join(
            f"{name} {tuple(v['shape'])}: NumPy {v['numpy']:.1f}, SciPy sgemm {v['scipy_sgemm']:.1f}"
            for name, v in p.items() if name != "peak"))
    if "step" in results:
        lines.append("")
        lines.append("Train step, float32, median ms per step (ratio to specc = contender / specc, median of "
                     "per-round ratios):")
        names = list(next(iter(results["step"].values()))["median_s"])
        lines.append("| contender | " + " | ".join(f"{k} (inputs/batch)" for k in results["step"]) + " |")
        lines.append("|---|" + "---|" * len(results["step"]))
        for name in names:
            cells = []
            for row in results["step"].values():
                cells.append(f"{row['median_s'][name] * 1e3:.3f} ms ({row['ratio_to_specc'][name]:.2f}×)")
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
        lines.append("")
        lines.append("| target | " + " | ".join(results["step"]) + " |")
        lines.append("|---|" + "---|" * len(results["step"]))
        for reference in ("hand-written PyTensor", "PyTorch eager"):
            if reference in names:
                lines.append(f"| specc / {reference} ≤ 0.8 | " + " | ".join(
                    _verdict(1 / row["ratio_to_specc"][reference], 0.8) for row in results["step"].values()) + " |")
        lines.append("| specc GFLOP/s (matmul flops / step time) | " + " | ".join(
            f"{row['gflops']['specc']:.1f}" for row in results["step"].values()) + " |")
        lines.append("| NumPy float32 matmul peak, same rounds (GFLOP/s) | " + " | ".join(
            f"{row['peak_gflops']:.1f}" for row in results["step"].values()) + " |")
        lines.append("| specc / peak (≥ 50 % at the largest size) | " + " | ".join(
            f"{row['fraction_of_peak']:.0%}" for row in results["step"].values()) + " |")
    if "frontend" in results:
        lines.append("")
        lines.append("Front end (text → IR → checked program), median; layers in stacks of ten, and one flat stack "
                     "(parse only):")
        lines.append("| layers | parse | check | total | per layer | per layer, GC off | flat stack: parse |")
        lines.append("|---|---|---|---|---|---|---|")
        for row in results["frontend"].values():
            lines.append(f"| {row['layers']:,} | {row['parse_s'] * 1e3:.1f} ms | {row['check_s'] * 1e3:.1f} ms | "
                         f"{row['total_s'] * 1e3:.1f} ms | {row['per_layer_us']:.0f} µs | "
                         f"{row['per_layer_no_gc_us']:.0f} µs | "
                         f"{row['flat_parse_s'] * 1e3:.1f} ms |")
    if "compile" in results:
        lines.append("")
        lines.append(f"Compile of the {SIZES[-1][0]}-input model in a new process (median; imports not included in "
                     "compile):")
        lines.append("| | import spec_lang | Spec.compile | first step | whole process |")
        lines.append("|---|---|---|---|---|")
        for name, row in results["compile"].items():
            lines.append(f"| {name} ({row['runs']} run{'s' if row['runs'] > 1 else ''}) | {row['import_s']:.2f} s | "
                         f"{row['compile_s']:.2f} s | {row['first_call_s']:.2f} s | {row['process_s']:.2f} s |")
    lines += conv.report(results.get("conv"), results.get("conv-compile"))
    return "\n".join(lines)


def _load(load) -> str:
    return ", ".join(f"{x:.2f}" for x in load)


def _verdict(ratio: float, target: float) -> str:
    return f"{ratio:.2f} {'met' if ratio <= target else 'missed'}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions and contenders")
    parser.add_argument("--only", default=",".join(PARTS), help=f"comma-separated parts: {', '.join(PARTS)}")
    parser.add_argument("--rounds", type=int, default=None, help="interleaved rounds per train-step size")
    parser.add_argument("--threads", default="1",
                        help="threads for BLAS, OpenMP and PyTorch (default 1; 0: each library's default)")
    parser.add_argument("--json", default=str(ROOT / "bench" / "results.json"), help="where to write the results")
    args = parser.parse_args(argv)
    parts = [p.strip() for p in args.only.split(",") if p.strip()]
    unknown = [p for p in parts if p not in PARTS]
    if unknown:
        parser.error(f"unknown part {', '.join(unknown)}; parts: {', '.join(PARTS)}")
    import warnings

    warnings.filterwarnings("ignore", message="PyTensor could not link to a BLAS")
    results: dict = {"machine": machine()}
    if "peak" in parts:
        results["peak"] = peak(5 if args.quick else 15)
    if "step" in parts:
        results["step"] = train_steps(args.rounds or (7 if args.quick else 21), args.quick)
    if "frontend" in parts:
        results["frontend"] = frontend(args.quick)
    if "compile" in parts:
        results["compile"] = compile_times(args.quick)
    if "conv" in parts:
        results["conv"] = conv.train_steps(args.rounds or (5 if args.quick else 15))
    if "conv-compile" in parts:
        results["conv-compile"] = conv.compile_times()
    results["machine"]["load_end"] = os.getloadavg()
    text = report(results)
    print()
    print(text)
    Path(args.json).write_text(json.dumps(results, indent=2), encoding="utf-8")
    print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
