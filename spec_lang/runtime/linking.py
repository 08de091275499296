"""Compiling large graphs in less time.

PyTensor's Numba linker turns the whole rewritten graph into one Python function and Numba compiles it as one
function, with every node's own Numba function inlined into it: LLVM's work grows with every node, even when N
feature stacks repeat the same nodes N times, and faster than the graph (a spec of 80 stacks sharing a head spent
minutes there). Its inplace rewrites grow faster than the graph too (the destroy handler checks for cycles at every
candidate). A graph with more than `LARGE_GRAPH` Apply nodes is therefore compiled

- without inplace rewrites (every mode): values are written to new arrays, never over their inputs;
- with elementwise loops of at most `FUSED_OPERANDS` inputs and outputs, and sums kept as written (`_bounded_fusion`):
  PyTensor otherwise merges the sum of N loss terms into one addition and fuses it, and its gradient, into loops of
  about 2N operands, whose Numba compile grows faster than N;
- in the NUMBA mode, by `ChunkedNumbaLinker`: the rewritten graph is cut, in the linker's order, into pieces of
  `ChunkedNumbaLinker.chunk_nodes` nodes (one), each compiled by PyTensor's own conversion (so its cache keys and
  its on-disk cache apply) and called in turn from Python. Pieces with the same cache key share one compiled
  function, so N identical stacks compile their distinct nodes once.

The price is the step: a Python call per node (about 5 µs each: 6.7 ms for the 1,415 nodes of 80 stacks). Smaller
graphs, every example and benchmark model among them, are compiled as PyTensor compiles them.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from typing import Any

import numpy as np
import pytensor
from pytensor.compile.mode import Mode, get_mode
from pytensor.graph.basic import Apply, Constant, Variable
from pytensor.graph.fg import FunctionGraph
from pytensor.graph.traversal import applys_between
from pytensor.link.numba.linker import NumbaLinker
from pytensor.scalar.basic import ScalarType

LARGE_GRAPH = 2000  # Apply nodes before rewriting, updates included; the examples have at most 477
FUSED_OPERANDS = 32  # in a large graph (as in PyTensor's Python Elemwise)


def function(
    inputs: list, outputs: Any, updates: Sequence = (), mode: str | Mode | None = None, large: int | None = None
):
    """`pytensor.function(inputs, outputs, updates=..., mode=...)`, in the large-graph mode (`large_graph_mode`)
    when the graph has more than `large` Apply nodes (default `LARGE_GRAPH`).

    >>> import pytensor.tensor as pt
    >>> x = pt.vector("x")
    >>> f = function([x], [(x * 2).sum()], mode="FAST_COMPILE", large=1)
    >>> float(f([1.0, 2.0])[0])
    6.0
    """
    large_graph = graph_size(inputs, outputs, updates) > (LARGE_GRAPH if large is None else large)
    chosen: str | Mode | None = large_graph_mode(mode) if large_graph else mode
    if isinstance(mode, str) and mode.upper() == "FAST_COMPILE":
        # Its Python Elemwise takes at most 32 operands: a sum of 32 or more loss terms, which this rewrite merges
        # into one addition, could not run (NotImplementedError); the terms are added as written instead.
        chosen = get_mode(chosen).excluding("local_add_canonizer")
    with _bounded_fusion() if large_graph else nullcontext():
        return pytensor.function(inputs, outputs, updates=list(updates), mode=chosen, on_unused_input="ignore")


def graph_size(inputs: list, outputs: Any, updates: Sequence = ()) -> int:
    """The number of Apply nodes between the inputs and the outputs with the updates' new values."""
    ends = list(outputs) if isinstance(outputs, list | tuple) else [outputs]
    return sum(1 for _ in applys_between(inputs, ends + [value for _, value in updates]))


def large_graph_mode(mode: str | Mode | None) -> Mode:
    """A PyTensor mode (a name, or None for PyTensor's configured one) without inplace rewrites, without merging
    nested sums into one, and with the `ChunkedNumbaLinker` instead of PyTensor's Numba linker."""
    base = get_mode(mode)
    if isinstance(base.linker, NumbaLinker):
        base = Mode(linker=ChunkedNumbaLinker(), optimizer=base.provided_optimizer)
    return base.excluding("inplace", "local_add_canonizer", "add_mul_fusion")


@contextmanager
def _bounded_fusion() -> Iterator[None]:
    """While a large graph is rewritten: elementwise operations fuse into loops of at most `FUSED_OPERANDS` inputs
    and outputs. The sum of N loss terms, and its gradient, otherwise fuse into one loop of about 2N operands whose
    Numba compile grows faster than N (12 s for 200 operands, 3 s for 50)."""
    from pytensor.tensor.rewriting import elemwise

    limit = elemwise.elemwise_max_operands_fct
    elemwise.elemwise_max_operands_fct = lambda node: FUSED_OPERANDS
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "Loop fusion failed", UserWarning)
            yield
    finally:
        elemwise.elemwise_max_operands_fct = limit


class ChunkedNumbaLinker(NumbaLinker):
    """PyTensor's Numba linker, compiling the graph in pieces of at most `chunk_nodes` nodes, in the linker's order;
    pieces with the same cache key share their compiled function.

    Pieces are only safe without nodes that write over their inputs (their order across a piece's boundary would
    not be kept): a graph with such nodes is compiled whole, as `NumbaLinker` does.
    """

    # Larger pieces call Python less often, but are rarely alike: each is compiled, with its nodes inlined by LLVM
    chunk_nodes = 1

    def fgraph_convert(  # the optional arguments suit both of PyTensor's signatures (JITLinker's, NumbaLinker's)
        self,
        fgraph: FunctionGraph,
        order: Sequence[Apply] = (),
        input_storage=None,
        output_storage=None,
        storage_map=None,
        **kwargs,
    ) -> Callable:
        nodes = list(order) or fgraph.toposort()  # `JITLinker` passes the order it scheduled
        if any(node.op.destroy_map for node in nodes):
            storage = {"input_storage": input_storage, "output_storage": output_storage, "storage_map": storage_map}
            return self._compile(fgraph, order=order, **storage, **kwargs)
        finals: dict[Callable, Callable] = {}  # pieces with the same cache key share their compiled function

        def compiled(piece: FunctionGraph) -> Callable:
            function, key = NumbaLinker.fgraph_convert(self, piece)
            if key is None:
                return NumbaLinker.jit_compile(self, (function, key))
            if function not in finals:
                finals[function] = NumbaLinker.jit_compile(self, (function, key))
            return finals[function]

        with _one_function_per_key():
            return _Pieces(fgraph, nodes, self.chunk_nodes, compiled)

    def jit_compile(self, fn: Callable) -> Callable:
        return fn  # compiled by `fgraph_convert`

    def _compile(self, fgraph: FunctionGraph, **kwargs: Any) -> Callable:
        return super().jit_compile(super().fgraph_convert(fgraph, **kwargs))


@contextmanager
def _one_function_per_key() -> Iterator[None]:
    """While a graph is converted: nodes whose Numba functions have the same cache key share one function.
    PyTensor makes a new one for every node, which Numba then compiles, or loads from its disk cache, once per
    node: N identical stacks cost N times their nodes; shared, they cost their distinct nodes once."""
    from pytensor.link.numba.dispatch import basic

    convert = basic.numba_funcify_ensure_cache
    made: dict[tuple, tuple[Callable, str]] = {}

    def shared(op: Any, node: Apply | None = None, **kwargs: Any) -> tuple[Callable, str | None]:
        function, key = convert(op, node=node, **kwargs)
        if key is None:
            return function, None
        # PyTensor's key leaves out what Numba's own cache keys by: the types of the arguments (and their number)
        ends = node or op
        return made.setdefault(
            (key, *(tuple(v.type for v in vs) for vs in (ends.inputs, ends.outputs))), (function, key)
        )

    basic.numba_funcify_ensure_cache = shared
    try:
        yield
    finally:
        basic.numba_funcify_ensure_cache = convert


class _Pieces:
    """The graph's function: each piece's compiled function called in turn, values passed between them in slots."""

    def __init__(self, fgraph: FunctionGraph, nodes: list[Apply], size: int, compiled: Callable[..., Callable]):
        chunks = [nodes[start : start + size] for start in range(0, len(nodes), size)]
        self._slots: dict[Variable, int] = {}
        self._constants: list[tuple[int, Any]] = []
        self._scalars: dict[int, Callable] = {}  # Numba returns Python numbers: the slots to give their dtype back
        self._inputs = [self._slot(v) for v in fgraph.inputs]
        wanted = {v: len(chunks) for v in fgraph.outputs}  # the last piece that reads a value (len: an output)
        for index, chunk in enumerate(chunks):
            for node in chunk:
                wanted.update({v: max(wanted.get(v, index), index) for v in node.inputs})
        self._steps: list[tuple[Callable, list[int], list[int], list[int]]] = []
        for index, chunk in enumerate(chunks):
            made = {v for node in chunk for v in node.outputs}
            reads = list(dict.fromkeys(v for node in chunk for v in node.inputs if v not in made))
            ins = [v for v in reads if not isinstance(v, Constant)]
            outs = [v for node in chunk for v in node.outputs if wanted.get(v, index) > index]
            piece = FunctionGraph(ins, outs, clone=True)
            done = [self._slot(v) for v in reads if wanted[v] == index and v not in fgraph.inputs]
            self._steps.append((compiled(piece), [self._slot(v) for v in ins], [self._slot(v) for v in outs], done))
        self._outputs = [self._slot(v) for v in fgraph.outputs]

    def _slot(self, variable: Variable) -> int:
        if variable not in self._slots:
            self._slots[variable] = len(self._slots)
            if isinstance(variable, Constant):
                self._constants.append((self._slots[variable], variable.data))
            if isinstance(variable.type, ScalarType):
                self._scalars[self._slots[variable]] = np.dtype(variable.type.dtype).type
        return self._slots[variable]

    def __call__(self, *values: Any) -> list[Any]:
        env: list[Any] = [None] * len(self._slots)
        for slot, value in self._constants:
            env[slot] = value
        for slot, value in zip(self._inputs, values, strict=True):
            env[slot] = value
        for run, ins, outs, done in self._steps:
            results = run(*[env[i] for i in ins])
            for slot, value in zip(outs, results, strict=True):
                env[slot] = self._scalars[slot](value) if slot in self._scalars else value
            for slot in done:
                env[slot] = None  # free what no later piece reads
        return [env[i] for i in self._outputs]
