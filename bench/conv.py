"""The image part of `bench/run.py` (`--only conv,conv-compile`): the DANN paper's MNIST→MNIST-M network
(`examples/digits_dann.dann`: conv 5×5×32, max-pool 2, conv 5×5×48, max-pool 2, a dense label predictor and a dense
domain classifier behind gradient reversal; SGD with momentum 0.9), float32, 3×28×28 images, a source batch and a
target batch of the same size.

Contenders, all from specc's seeded initial parameters and checked to start at the same loss: specc in Numba mode
(the default) and in JAX mode, and the same network in PyTorch eager with one thread and with two (source and
target batches joined into one pass through the extractor, as Transfer-Learning-Library's DANN does). The train
steps are measured interleaved, as in the MLP part; the compile part times `Spec.compile` and the first step in new
processes with empty caches (cold) and again with the caches those left (warm).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from timing import interleaved, median, seconds

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "digits_dann.dann"
PROBE = Path(__file__).resolve().parent / "conv_probe.py"
SIZES = (64, 128)  # images per domain in a batch: 64 + 64 and 128 + 128
CLASSES, MOMENTUM, LEARNING_RATE = 10, 0.9, 0.01  # the example's at progress 0, where λ = dann_lambda(0) = 0


def batch(size: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    images = (size, 3, 28, 28)
    return {"xs": rng.normal(size=images).astype("float32"), "xt": rng.normal(size=images).astype("float32"),
            "ys": rng.integers(0, CLASSES, size).astype("int32")}


def pytorch_step(initial: dict[str, np.ndarray], threads: int) -> Callable[..., float]:
    """The example in PyTorch eager: the same layers, losses (the sum of two domain means), SGD with momentum, and
    a gradient reversal with λ = 0 (the example's λ at progress 0, where the benchmark keeps it)."""
    import torch
    import torch.nn.functional as F

    p = {n: torch.nn.Parameter(torch.from_numpy(np.array(v, dtype="float32"))) for n, v in initial.items()}
    optimizer = torch.optim.SGD(p.values(), lr=LEARNING_RATE, momentum=MOMENTUM)

    class Reverse(torch.autograd.Function):
        @staticmethod
        def forward(ctx: Any, x: Any) -> Any:
            return x.view_as(x)

        @staticmethod
        def backward(ctx: Any, gradient: Any) -> Any:
            return -0.0 * gradient

    def dense(z: Any, stack: str, layer: int) -> Any:
        return torch.addmm(p[f"{stack}.{layer}.b"], z, p[f"{stack}.{layer}.W"])

    def step(xs: Any, xt: Any, ys: Any) -> float:
        torch.set_num_threads(threads)
        h = F.max_pool2d(F.relu(F.conv2d(torch.cat([xs, xt]), p["features.0.W"], p["features.0.b"])), 2)
        f = F.max_pool2d(F.relu(F.conv2d(h, p["features.2.W"], p["features.2.b"])), 2).flatten(1)
        fs = f[: len(xs)]
        logits = dense(F.relu(dense(F.relu(dense(fs, "label", 0)), "label", 1)), "label", 2)
        z = dense(F.relu(dense(Reverse.apply(f), "domain", 0)), "domain", 1)
        domain_loss = (F.binary_cross_entropy_with_logits(z[: len(xs)], torch.zeros_like(z[: len(xs)]))
                       + F.binary_cross_entropy_with_logits(z[len(xs):], torch.ones_like(z[len(xs):])))
        loss = F.cross_entropy(logits, ys) + domain_loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return loss.item()

    return step


def contenders(size: int) -> tuple[dict[str, Callable[[], float]], dict[str, str]]:
    """name → a no-argument train step returning its loss, and name → why a contender could not run."""
    import spec_lang

    spec = spec_lang.load(EXAMPLE)
    data = batch(size)
    steps: dict[str, Callable[[], float]] = {}
    missing: dict[str, str] = {}
    initial: dict[str, np.ndarray] = {}
    for name, mode in (("specc (Numba)", "NUMBA"), ("specc (JAX)", "JAX")):
        try:
            model = spec.compile(mode)
        except Exception as error:  # a backend that cannot run here is reported, not fatal
            missing[name] = f"{type(error).__name__}: {str(error).splitlines()[0][:120]}"
            continue
        initial = initial or model.parameters
        steps[name] = (lambda m: lambda: m.train_step(**data)["objective"])(model)
    try:
        import torch

        tensors = {"xs": torch.from_numpy(data["xs"]), "xt": torch.from_numpy(data["xt"]),
                   "ys": torch.from_numpy(data["ys"].astype("int64"))}
        for threads in (1, 2):
            step = pytorch_step(initial, threads)
            steps[f"PyTorch eager, {threads} thread{'s' if threads > 1 else ''}"] = \
                (lambda s: lambda: s(**tensors))(step)
    except ImportError:
        missing["PyTorch eager"] = "torch is not installed (the bench extra)"
    return steps, missing


def train_steps(rounds: int) -> dict:
    results = {}
    for size in SIZES:
        steps, missing = contenders(size)
        first = {name: step() for name, step in steps.items()}  # the loss before the first step: the same start
        reference = first["specc (Numba)"]
        for name, loss in first.items():
            if not np.isclose(loss, reference, rtol=1e-4):
                raise AssertionError(f"{name} starts at loss {loss}, specc (Numba) at {reference}")
        for step in steps.values():  # warm up: caches, allocations, thread pools
            step()
        times = interleaved({n: (s, max(1, int(0.3 / seconds(s)))) for n, s in steps.items()}, rounds)
        row = {"batch": f"{size}+{size}", "median_s": {n: median(t) for n, t in times.items()},
               "ratio_to_pytorch_1_thread": {}, "missing": missing, "rounds": rounds}
        if "PyTorch eager, 1 thread" in times:
            torch_times = times["PyTorch eager, 1 thread"]
            row["ratio_to_pytorch_1_thread"] = {n: median([a / b for a, b in zip(t, torch_times, strict=True)])
                                                for n, t in times.items()}
        results[f"{size}+{size}"] = row
        shown = ", ".join(f"{n} {s * 1e3:.1f} ms" for n, s in row["median_s"].items())
        print(f"  conv step {size}+{size}: {shown}" + (f" (missing: {missing})" if missing else ""), flush=True)
    return results


def compile_times(modes: tuple[str, ...] = ("NUMBA", "JAX")) -> dict:
    """`Spec.compile` and the first train step of the example (64 + 64) in new processes: cold (empty PyTensor,
    Numba and specc caches), then warm (a second process with the caches the first left)."""
    results = {}
    for mode in modes:
        with tempfile.TemporaryDirectory(prefix="specc-bench-conv-") as folder:
            env = dict(os.environ, PYTENSOR_FLAGS=f"base_compiledir={folder}",
                       NUMBA_CACHE_DIR=str(Path(folder) / "numba-own"), SPECC_CACHE_DIR=str(Path(folder) / "specc"),
                       JAX_COMPILATION_CACHE_DIR=str(Path(folder) / "jax"))
            try:
                cold = _probe(env, mode)
                warm = _probe(env, mode)
            except RuntimeError as error:
                results[mode] = {"error": str(error).splitlines()[-1][:200]}
                continue
        results[mode] = {"cold": cold, "warm": warm}
        print(f"  conv compile {mode}: cold {cold['compile_s']:.1f} s + first step {cold['first_step_s']:.1f} s; "
              f"warm {warm['compile_s']:.1f} s + {warm['first_step_s']:.1f} s", flush=True)
    return results


def _probe(env: dict[str, str], mode: str) -> dict:
    done = subprocess.run([sys.executable, str(PROBE), mode], env=env, capture_output=True, text=True, cwd=ROOT,
                          check=False)
    if done.returncode != 0:
        raise RuntimeError(f"conv probe failed in {mode} mode:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def report(steps: dict | None, compiles: dict | None) -> list[str]:
    lines: list[str] = []
    if steps:
        lines += ["", "The paper's image net (examples/digits_dann.dann), float32, train step, median ms (ratio to "
                      "PyTorch eager with one thread; targets: ≤ 1.0 in the default mode, ≤ 0.8 in JAX mode):"]
        names = list(dict.fromkeys(n for row in steps.values() for n in row["median_s"]))
        lines += ["| contender | " + " | ".join(steps) + " |", "|---|" + "---|" * len(steps)]
        for name in names:
            cells = [_cell(row, name) for row in steps.values()]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
        for row in steps.values():
            for name, why in row["missing"].items():
                lines.append(f"({row['batch']}: {name} did not run: {why})")
    if compiles:
        lines += ["", "The image net, compile and first step (64 + 64) in a new process (targets: ≤ 20 s cold, ≤ 2 s "
                      "warm):", "| mode | cold: compile | cold: first step | warm: compile | warm: first step |",
                  "|---|---|---|---|---|"]
        for mode, row in compiles.items():
            if "error" in row:
                lines.append(f"| {mode} | {row['error']} | | | |")
                continue
            cold, warm = row["cold"], row["warm"]
            lines.append(f"| {mode} | {cold['compile_s']:.1f} s | {cold['first_step_s']:.1f} s | "
                         f"{warm['compile_s']:.1f} s | {warm['first_step_s']:.1f} s |")
    return lines


def _cell(row: dict, name: str) -> str:
    if name not in row["median_s"]:
        return "—"
    ratio = row["ratio_to_pytorch_1_thread"].get(name)
    return f"{row['median_s'][name] * 1e3:.1f} ms" + (f" ({ratio:.2f}×)" if ratio is not None else "")


def first_step_probe(mode: str) -> dict:
    """Run in a new process by `conv_probe.py`: compile the example and take one step, timed."""
    import spec_lang

    spec = spec_lang.load(EXAMPLE)
    start = time.perf_counter()
    model = spec.compile(mode)
    compiled = time.perf_counter()
    losses = model.train_step(**batch(SIZES[0]))
    stepped = time.perf_counter()
    assert np.isfinite(losses["objective"])
    return {"compile_s": compiled - start, "first_step_s": stepped - compiled}
