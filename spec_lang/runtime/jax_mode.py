"""The JAX mode: PyTensor's JAX backend compiles a model with XLA, on a GPU when JAX finds one (`jax[cuda12]`).

XLA needs every shape when it compiles, and the graphs read the batch size (`split_rows` splits by it, `flatten` and
`reshape` reshape by it, the gradients allocate by it). So in this mode:

- parameters are shared variables with static shapes (`PyTensorBackend(..., static_shapes=True)`);
- each function is compiled once per signature of its inputs' shapes (`ShapedFunction`), from inputs whose every
  dimension is fixed: PyTensor then folds `x.shape[0]` into a constant. All signatures share the same shared
  variables (parameters, optimiser state, progress, run-time parameters, random generators);
- a random generator (dropout) is passed in and returned explicitly, so that every signature draws from one stream
  and its state stays in the model's shared variable (PyTensor's JAX linker would give each compiled function a
  private copy). Its state there becomes PyTensor's JAX form, a dictionary around a JAX key (`random_state`).

The compile cache (`compile_cache`) does not keep JAX-mode functions: XLA compiles at the first call of each
signature, which the cache could not save; JAX has a persistent cache of its own (`JAX_COMPILATION_CACHE_DIR`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from functools import cache
from typing import Any

import numpy as np
import pytensor
import pytensor.tensor as pt
from pytensor.compile import Function
from pytensor.compile.builders import OpFromGraph
from pytensor.graph.basic import Variable
from pytensor.graph.op import Op
from pytensor.graph.traversal import ancestors
from pytensor.tensor.random.type import RandomGeneratorType

from spec_lang.diagnostics import SpecError, file_error

JAX = "JAX"
MAX_SIGNATURES = 16  # compiled signatures kept per function; the oldest is dropped (and compiled again if needed)
OTHER_MODE = 'compile it in another mode: --mode numba (the default), or spec.compile("NUMBA")'


def uses_jax(mode: str | None) -> bool:
    """Whether a PyTensor mode name (None: PyTensor's configured mode) is the JAX mode."""
    return (mode or pytensor.config.mode) == JAX


def require_jax() -> None:
    """Set JAX up for specc's models (64-bit types: float64 models, int64 step counts), or raise E005 when it cannot
    be imported."""
    try:
        import jax
    except ImportError as error:
        raise file_error(
            None,
            "E005",
            f"the JAX mode needs the package jax, which cannot be imported ({error})",
            'install it: pip install jax (or "jax[cuda12]" for an NVIDIA GPU); or ' + OTHER_MODE,
        ) from None
    _outputs_in_their_declared_dtypes()  # imports PyTensor's JAX dispatch, which sets x64 after its floatX
    jax.config.update("jax_enable_x64", True)


@cache
def _outputs_in_their_declared_dtypes() -> None:
    """Some of PyTensor's JAX implementations return another dtype than their node declares (PyTensor 3.3.8): a
    float32 reduction comes back in its float64 accumulator's dtype, and `Alloc` and `AllocDiag` (in gradients:
    BSP's eigenvalues) broadcast a constant that JAX, with 64-bit types on, makes float64. A float32 model's
    parameters then turned float64 after one step (and every function was compiled again). Their outputs are cast
    to the dtypes of their nodes' outputs, as the other modes compute them."""
    from pytensor.link.jax.dispatch import jax_funcify
    from pytensor.tensor.basic import Alloc, AllocDiag
    from pytensor.tensor.elemwise import CAReduce

    for kind in (CAReduce, Alloc, AllocDiag):
        jax_funcify.register(kind)(_cast_to_declared(jax_funcify.dispatch(kind)))


def _cast_to_declared(funcify: Any) -> Any:
    """A JAX `funcify` like `funcify`, whose function returns its node's output in the output's declared dtype."""

    def cast(op: Op, node: Any, **kwargs: Any) -> Any:
        compute = funcify(op, node=node, **kwargs)
        dtype = node.outputs[0].dtype
        return lambda *inputs: compute(*inputs).astype(dtype)

    return cast


def _operations(outputs: Sequence[Variable]) -> Iterator[Op]:
    """Every operation the outputs are computed with, those inside composite operations included."""
    for variable in ancestors(outputs):
        if variable.owner is not None:
            yield variable.owner.op
            if isinstance(variable.owner.op, OpFromGraph):
                yield from _operations(variable.owner.op.inner_outputs)


def check_lowerable(outputs: Sequence[Variable]) -> None:
    """Raise E006 when an operation of the graph has no JAX implementation, before anything is compiled."""
    from pytensor.link.jax.dispatch import jax_funcify

    fallback = jax_funcify.dispatch(object)  # what an operation without a JAX implementation dispatches to
    missing = sorted({type(op).__name__ for op in _operations(outputs) if jax_funcify.dispatch(type(op)) is fallback})
    if missing:
        raise cannot_lower(f"PyTensor's JAX backend has no implementation of {', '.join(missing)}")


def cannot_lower(reason: str) -> SpecError:
    """E006: the JAX mode cannot compile the model, for `reason`."""
    return file_error(None, "E006", f"the JAX mode cannot compile this model: {reason}", OTHER_MODE)


class ShapedFunction:
    """A function compiled in the JAX mode once for each signature of its inputs' shapes (`MAX_SIGNATURES` kept).

    Called as a PyTensor `Function` is: arrays in the order of `inputs`; numpy arrays out, one or a list as
    `outputs` is one variable or a list. `updates` of shared variables apply as in PyTensor; those of random
    generators go through the call (see the module's docstring). An operation without a JAX implementation is an
    error (E006) when the function is made; one whose JAX implementation fails, when a signature is compiled."""

    def __init__(self, inputs: list[Variable], outputs: Variable | list[Variable], updates: Sequence = ()):
        self.inputs = inputs
        self.single = isinstance(outputs, Variable)
        self.outputs: list[Variable] = [outputs] if isinstance(outputs, Variable) else list(outputs)
        self.updates = [(v, u) for v, u in updates if not isinstance(v.type, RandomGeneratorType)]
        self.generators = [(v, u) for v, u in updates if isinstance(v.type, RandomGeneratorType)]
        check_lowerable([*self.outputs, *(update for _, update in updates)])
        self._compiled: dict[tuple[tuple[int, ...], ...], Function] = {}

    def __call__(self, *arrays: np.ndarray) -> Any:
        signature = tuple(np.shape(a) for a in arrays)
        function = self._compiled.get(signature)
        if function is None:
            if len(self._compiled) >= MAX_SIGNATURES:
                del self._compiled[next(iter(self._compiled))]
            function = self._compiled[signature] = self._compile(signature)
        states = [jax_state(generator.get_value(borrow=True)) for generator, _ in self.generators]
        values = function(*arrays, *states)
        count = len(self.outputs)
        for (generator, _), state in zip(self.generators, values[count:], strict=True):
            generator.set_value(state, borrow=True)
        results = [np.asarray(value) for value in values[:count]]
        return results[0] if self.single else results

    def _compile(self, signature: tuple[tuple[int, ...], ...]) -> Function:
        """The function for one signature: static inputs in place of the symbolic ones, and the generators as
        inputs and outputs."""
        static = [pt.tensor(v.name, dtype=v.type.dtype, shape=s) for v, s in zip(self.inputs, signature, strict=True)]
        states = [generator.type() for generator, _ in self.generators]
        givens = [*zip(self.inputs, static, strict=True), *zip([g for g, _ in self.generators], states, strict=True)]
        try:
            return pytensor.function(
                [*static, *states],
                [*self.outputs, *(update for _, update in self.generators)],
                updates=self.updates,
                givens=givens,
                mode=JAX,
                on_unused_input="ignore",
            )
        except NotImplementedError as error:  # an operation whose JAX implementation needs what the graph lacks
            raise cannot_lower(str(error).strip().splitlines()[0]) from None


# Random generators: their state in either form, as `CompiledProgram.random_state` gives it --------------------------


def jax_state(value: Any) -> Any:
    """A generator's value as the JAX mode takes it: a numpy `Generator` (as created, or set from a numpy state) in
    PyTensor's JAX form, its entries JAX arrays as a compiled function returns them (PyTensor's check of a generator's
    value reads the kind of generator from one); the JAX form as it is."""
    if not isinstance(value, np.random.Generator):
        return value
    import jax
    from pytensor.link.jax.dispatch import jax_typify

    return jax.tree.map(jax.numpy.asarray, jax_typify(value))


def random_state(value: Any) -> dict[str, Any]:
    """The JSON-able state of a generator's value: numpy's `bit_generator.state`, or, once the JAX mode has drawn
    from it, `{"bit_generator": "jax", "key": [two 32-bit words]}`."""
    if isinstance(value, np.random.Generator):
        return dict(value.bit_generator.state)
    return {"bit_generator": "jax", "key": [int(word) for word in np.asarray(value["jax_state"])]}


def generator_value(state: Mapping[str, Any], for_jax: bool) -> Any:
    """The value to give a generator for a state of `random_state`, in the JAX mode when `for_jax`. Each mode continues
    its own kind of state exactly; a JAX key given to another mode seeds numpy's default generator, and a numpy state
    given to the JAX mode becomes its JAX form (PyTensor's conversion): a resumed run then goes on reproducibly, with
    other draws than it would have made in the mode it was saved in."""
    if state["bit_generator"] != "jax":
        bit_generator = getattr(np.random, state["bit_generator"])()
        bit_generator.state = state
        return np.random.Generator(bit_generator)
    key = np.asarray(state["key"], dtype=np.uint32)
    if not for_jax:
        return np.random.default_rng(key)
    return {**jax_state(np.random.default_rng(key)), "jax_state": key}
