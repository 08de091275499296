"""One compile of the benchmark model in this process, for `bench/run.py` (which runs it in new processes, with
chosen cache folders). Prints one JSON line: seconds to import spec_lang, to compile, for the first train step,
and for the whole process so far; whether specc's compile cache had the model."""

import time

STARTED = time.perf_counter()

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

warnings.filterwarnings("ignore", message="PyTensor could not link to a BLAS")
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

parser = argparse.ArgumentParser()
parser.add_argument("--inputs", type=int, default=784)
parser.add_argument("--batch", type=int, default=256)
parser.add_argument("--no-compile-cache", action="store_true")
args = parser.parse_args()

import models  # noqa: E402
import numpy as np  # noqa: E402

start = time.perf_counter()
import spec_lang  # noqa: E402
from spec_lang.lowering.passes import Optimizations  # noqa: E402

imported = time.perf_counter()
spec = spec_lang.loads(models.spec_text(), inputs=args.inputs)
loaded = time.perf_counter()
model = spec.compile("NUMBA", Optimizations(compile_cache=not args.no_compile_cache))
compiled = time.perf_counter()
losses = model.train_step(**models.batch(args.inputs, args.batch))
stepped = time.perf_counter()
assert np.isfinite(losses["objective"])
print(json.dumps({"import_s": imported - start, "compile_s": compiled - loaded, "first_call_s": stepped - compiled,
                  "process_s": stepped - STARTED, "cache_hit": getattr(model, "cache_hit", None)}))
