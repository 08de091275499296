"""One compile and first train step of the image net in this process, for `bench/conv.py` (which runs it in new
processes with chosen cache folders). Prints one JSON line: seconds to compile and for the first step."""

import json
import sys
import warnings
from pathlib import Path

warnings.filterwarnings("ignore", message="PyTensor could not link to a BLAS")
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import conv  # noqa: E402

print(json.dumps(conv.first_step_probe(sys.argv[1])))
