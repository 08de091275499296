"""The convolution and pooling Ops (`spec_lang.lowering.pytensor.kernels`): in every mode (Numba kernels, NumPy
`perform`, JAX) they compute what the window gather they replaced computed, what SciPy and PyTorch compute, and
gradients that agree with finite differences; each kernel can be cached by Numba; the package imports without JAX.
"""

from __future__ import annotations

import subprocess
import sys
from importlib.util import find_spec

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
from gradients import check_gradient
from scipy.signal import correlate

from spec_lang.lowering.pytensor import ops
from spec_lang.lowering.pytensor.kernels import (
    AvgPool,
    AvgPoolGrad,
    Conv2d,
    Conv2dInputGrad,
    Conv2dWeightGrad,
    MaxPool,
    MaxPoolGrad,
)

try:
    import torch
    import torch.nn.functional as F
except ImportError:  # PyTorch is an independent reference, not a dependency: SciPy checks the forward without it
    torch = None

MODES = ["NUMBA", "FAST_COMPILE",
         pytest.param("JAX", marks=pytest.mark.skipif(find_spec("jax") is None, reason="JAX is not installed"))]
TOLERANCE = {"float64": 1e-10, "float32": 1e-5}

# (batch, channels, height, width, filters, kernel, stride, padding): batch 1, several channels, odd and unequal
# sides, stride 2 and 3, padding, a kernel as large as the image, and windows that do not reach the last row
CONVOLUTIONS = [
    (2, 3, 9, 9, 4, 3, 1, 0),
    (1, 2, 7, 8, 3, 3, 2, 1),
    (3, 5, 10, 11, 2, 4, 3, 2),
    (2, 1, 5, 5, 2, 5, 1, 2),
]
# (batch, channels, height, width, size, stride): tiling windows, overlapping ones, and ones that leave a border
POOLS = [
    (2, 3, 8, 8, 2, 2),
    (1, 2, 7, 9, 3, 2),
    (2, 3, 6, 7, 3, 1),
    (3, 1, 9, 7, 2, 3),
]


# The window gather that conv2d and the pools were lowered to before these Ops (spec_lang 0.1, ops.py) -----------


def gather_windows(x, size, stride):
    def offsets(length):
        return pt.arange(size)[:, None] + stride * pt.arange((length - size) // stride + 1)[None, :]

    rows, columns = offsets(x.shape[2]), offsets(x.shape[3])
    return x[:, :, rows[:, None, :, None], columns[None, :, None, :]]


def gather_conv2d(x, weights, stride, padding):
    if padding:  # the zero border written into a zero image, not pt.pad: its inner graph compiles C code (~12 s)
        n, c, h, w = x.shape
        frame = pt.zeros((n, c, h + 2 * padding, w + 2 * padding), dtype=x.dtype)
        x = pt.set_subtensor(frame[:, :, padding:-padding, padding:-padding], x)
    patches = gather_windows(x, weights.shape[2], stride)
    return pt.tensordot(patches, weights, axes=[[1, 2, 3], [1, 2, 3]]).dimshuffle(0, 3, 1, 2)


def gather_pool(x, size, stride, kind):
    patches = gather_windows(x, size, stride)
    return patches.max(axis=(2, 3)) if kind == "max" else patches.mean(axis=(2, 3))


# Helpers --------------------------------------------------------------------------------------------------------


def assert_close(ours: np.ndarray, reference: np.ndarray, dtype: str) -> None:
    """Equal to the dtype's tolerance, relative to the reference's largest magnitude."""
    assert ours.dtype == dtype and ours.shape == reference.shape
    scale = max(1.0, float(np.abs(reference).max(initial=0)))
    np.testing.assert_allclose(ours, reference, rtol=TOLERANCE[dtype], atol=TOLERANCE[dtype] * scale)


def conv_data(case: tuple[int, ...], dtype: str, rng: np.random.Generator) -> list[np.ndarray]:
    """x, w and an output cotangent gy for a convolution case."""
    n, c, h, w, f, k, s, p = case
    rows, columns = (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
    return [rng.normal(size=shape).astype(dtype) for shape in [(n, c, h, w), (f, c, k, k), (n, f, rows, columns)]]


def pool_data(case: tuple[int, ...], dtype: str, rng: np.random.Generator) -> list[np.ndarray]:
    n, c, h, w, size, s = case
    shapes = [(n, c, h, w), (n, c, (h - size) // s + 1, (w - size) // s + 1)]
    return [rng.normal(size=shape).astype(dtype) for shape in shapes]


def forward_and_gradients(builds: list, dtype: str, count: int, mode: str | None, wrt: list[int]):
    """One compiled function for several cases: for each build, `count` 4-d inputs and a cotangent gy. Called with
    each case's arrays (the inputs, then gy), it returns each case's y = build(*inputs) and the gradients of
    Σ y · gy with respect to the inputs numbered in `wrt`."""
    inputs, outputs = [], []
    for build in builds:
        case = [pt.tensor4(dtype=dtype) for _ in range(count)]
        gy = pt.tensor4(dtype=dtype)
        y = build(*case)
        inputs += [*case, gy]
        outputs += [y, *pytensor.grad((y * gy).sum(), [case[i] for i in wrt])]
    function = pytensor.function(inputs, outputs, mode=mode)
    width = 1 + len(wrt)

    def run(cases: list[list[np.ndarray]]) -> list[list[np.ndarray]]:
        values = function(*[array for case in cases for array in case])
        return [[np.asarray(v) for v in values[i : i + width]] for i in range(0, len(values), width)]

    return run


def convolutions(make) -> list:
    """A build for each convolution case: make(stride, padding)(x, w)."""
    return [lambda x, w, s=case[6], p=case[7]: make(s, p)(x, w) for case in CONVOLUTIONS]


def pools(make) -> list:
    """A build for each kind (max, then mean) and pooling case: make(kind, size, stride)(x)."""
    return [lambda x, kind=kind, size=case[4], s=case[5]: make(kind, size, s)(x)
            for kind in ("max", "mean") for case in POOLS]


# Equality with the gather, SciPy and PyTorch, in every mode ---------------------------------------------------


@pytest.fixture(scope="module")
def conv_references() -> dict:
    """For each dtype and convolution case: the data and (y, gx, gw) of the gather formulation (float64)."""
    gather = forward_and_gradients(convolutions(lambda s, p: lambda x, w: gather_conv2d(x, w, s, p)), "float64", 2,
                                   "FAST_COMPILE", [0, 1])
    references = {}
    for dtype in TOLERANCE:
        rng = np.random.default_rng(0)
        data = [conv_data(case, dtype, rng) for case in CONVOLUTIONS]
        references[dtype] = data, gather([[d.astype("float64") for d in case] for case in data])
    return references


@pytest.fixture(scope="module")
def pool_references() -> dict:
    """For each dtype, kind (max, then mean) and pooling case: the data and (y, gx) of the gather formulation."""
    gather = forward_and_gradients(pools(lambda kind, size, s: lambda x: gather_pool(x, size, s, kind)), "float64", 1,
                                   "FAST_COMPILE", [0])
    references = {}
    for dtype in TOLERANCE:
        rng = np.random.default_rng(3)
        data = [pool_data(case, dtype, rng) for _ in ("max", "mean") for case in POOLS]
        references[dtype] = data, gather([[d.astype("float64") for d in case] for case in data])
    return references


@pytest.mark.parametrize("dtype", TOLERANCE)
@pytest.mark.parametrize("mode", MODES)
def test_convolution_and_its_gradients_match_the_gather_formulation(conv_references: dict, mode: str,
                                                                    dtype: str) -> None:
    data, expected = conv_references[dtype]
    ours = forward_and_gradients(convolutions(Conv2d), dtype, 2, mode, [0, 1])(data)
    for case_ours, case_expected in zip(ours, expected, strict=True):
        for value, reference in zip(case_ours, case_expected, strict=True):
            assert_close(value, reference, dtype)


@pytest.mark.parametrize("case", CONVOLUTIONS)
def test_the_numpy_convolution_is_scipy_correlate(case: tuple[int, ...]) -> None:
    x, w, _ = conv_data(case, "float64", np.random.default_rng(1))
    s, p = case[6:]
    padded = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
    expected = np.stack([np.stack([correlate(image, weights, mode="valid")[0, ::s, ::s] for weights in w])
                         for image in padded])
    y = pytensor.function([], Conv2d(s, p)(x, w), mode="FAST_COMPILE")()
    assert_close(y, expected, "float64")


@pytest.mark.skipif(torch is None, reason="PyTorch is not installed (an optional, independent reference)")
@pytest.mark.parametrize("dtype", TOLERANCE)
@pytest.mark.parametrize("mode", MODES)
def test_convolution_and_its_gradients_match_pytorch(mode: str, dtype: str) -> None:
    rng = np.random.default_rng(2)
    data = [conv_data(case, dtype, rng) for case in CONVOLUTIONS]
    ours = forward_and_gradients(convolutions(Conv2d), dtype, 2, mode, [0, 1])(data)
    for case, (x, w, gy), case_ours in zip(CONVOLUTIONS, data, ours, strict=True):
        tx, tw = (torch.tensor(v.astype("float64"), requires_grad=True) for v in (x, w))
        ty = F.conv2d(tx, tw, stride=case[6], padding=case[7])
        expected = [ty, *torch.autograd.grad(ty, (tx, tw), torch.tensor(gy.astype("float64")))]
        for value, reference in zip(case_ours, expected, strict=True):
            assert_close(value, reference.detach().numpy(), dtype)


@pytest.mark.parametrize("dtype", TOLERANCE)
@pytest.mark.parametrize("mode", MODES)
def test_pooling_and_its_gradient_match_the_gather_formulation_and_pytorch(pool_references: dict, mode: str,
                                                                          dtype: str) -> None:
    data, expected = pool_references[dtype]
    ours = forward_and_gradients(pools(lambda kind, size, s: (MaxPool if kind == "max" else AvgPool)(size, s)),
                                 dtype, 1, mode, [0])(data)
    cases = [(kind, case) for kind in ("max", "mean") for case in POOLS]
    for (kind, case), (x, gy), case_ours, case_expected in zip(cases, data, ours, expected, strict=True):
        for value, reference in zip(case_ours, case_expected, strict=True):
            assert_close(value, reference, dtype)
        if torch is not None:
            tx = torch.tensor(x.astype("float64"), requires_grad=True)
            ty = (F.max_pool2d if kind == "max" else F.avg_pool2d)(tx, case[4], case[5])
            (tgx,) = torch.autograd.grad(ty, tx, torch.tensor(gy.astype("float64")))
            assert_close(case_ours[1], tgx.numpy(), dtype)


@pytest.mark.parametrize("mode", MODES)
def test_max_pooling_sends_the_gradient_to_the_first_largest_element_of_each_window(mode: str) -> None:
    """Ties (a ReLU's zeros) go to the first of the largest elements, read row by row, as in PyTorch; overlapping
    windows add up."""
    x = np.zeros((1, 1, 5, 6))
    x[0, 0, 0, 1] = x[0, 0, 1, 0] = 1.0  # window (0, 0) holds both: its gradient goes to (0, 1), read first
    gy = np.arange(1.0, 13.0).reshape(1, 1, 3, 4)  # windows (2, 3) and others hold only zeros: their first one
    ((_, gx),) = forward_and_gradients([MaxPool(3, 1)], "float64", 1, mode, [0])([[x, gy]])
    expected = np.zeros((5, 6))
    for r in range(3):
        for c in range(4):
            window = x[0, 0, r : r + 3, c : c + 3]
            i, j = np.unravel_index(np.argmax(window), window.shape)  # numpy's argmax: the first largest
            expected[r + i, c + j] += gy[0, 0, r, c]
    assert expected[0, 1] == 1 + 2 and expected[2, 3] == 12
    np.testing.assert_array_equal(gx[0, 0], expected)
    if torch is not None:
        tx = torch.tensor(x, requires_grad=True)
        (tgx,) = torch.autograd.grad(F.max_pool2d(tx, 3, 1), tx, torch.tensor(gy))
        np.testing.assert_array_equal(gx, tgx.numpy())


def test_the_building_blocks_add_the_bias_and_pool() -> None:
    x, w, b = pt.tensor4(), pt.tensor4(), pt.vector()
    rng = np.random.default_rng(4)
    xv, wv, bv = rng.normal(size=(2, 3, 7, 7)), rng.normal(size=(4, 3, 3, 3)), rng.normal(size=4)
    y, m, a = pytensor.function([x, w, b], [ops.conv2d(x, w, b, 2, 1), ops.max_pool(x, 3, 2), ops.avg_pool(x, 2, 1)],
                                mode="FAST_COMPILE")(xv, wv, bv)
    gather = pytensor.function([x, w, b], [gather_conv2d(x, w, 2, 1) + b[None, :, None, None],
                                           gather_pool(x, 3, 2, "max"), gather_pool(x, 2, 1, "mean")],
                             mode="FAST_COMPILE")
    for ours, reference in zip((y, m, a), gather(xv, wv, bv), strict=True):
        assert_close(ours, reference, "float64")


# Gradients against finite differences ----------------------------------------------------------------------------


@pytest.mark.parametrize("case", CONVOLUTIONS)
def test_convolution_gradients(case: tuple[int, ...]) -> None:
    rng = np.random.default_rng(5)
    x, w, gy = conv_data(case, "float64", rng)
    s, p = case[6:]
    check_gradient(lambda x, w: Conv2d(s, p)(x, w), [x, w], rng)
    # second order: each gradient Op is linear in the weights (or the image) and in gy
    check_gradient(lambda w, gy: Conv2dInputGrad(s, p)(pt.constant(x), w, gy), [w, gy], rng)
    check_gradient(lambda x, gy: Conv2dWeightGrad(s, p)(x, pt.constant(w), gy), [x, gy], rng)


@pytest.mark.parametrize("case", POOLS)
def test_pooling_gradients(case: tuple[int, ...]) -> None:
    rng = np.random.default_rng(6)
    x, gy = pool_data(case, "float64", rng)
    size, s = case[4:]
    check_gradient(lambda x: MaxPool(size, s)(x), [x], rng)
    check_gradient(lambda x: AvgPool(size, s)(x), [x], rng)
    check_gradient(lambda gy: AvgPoolGrad(size, s)(pt.constant(x), gy), [gy], rng)
    assert MaxPoolGrad(size, s)(x, gy).eval(mode="FAST_COMPILE").shape == x.shape


# Shapes, props, caching, imports --------------------------------------------------------------------------------


def test_static_shapes_and_the_shape_graph() -> None:
    x, w = pt.tensor4(shape=(None, 3, 9, 8)), pt.tensor4(shape=(4, 3, 3, 3))
    y = Conv2d(2, 1)(x, w)
    assert y.type.shape == (None, 4, 5, 4)
    assert MaxPool(3, 2)(x).type.shape == (None, 3, 4, 3)
    shape = pytensor.function([x, w], y.shape, mode="FAST_COMPILE")
    assert tuple(shape(np.zeros((2, 3, 9, 8)), np.zeros((4, 3, 3, 3)))) == (2, 4, 5, 4)
    assert str(Conv2d(2, 1)) == "Conv2d{stride=2, padding=1}" and Conv2d(2, 1) == Conv2d(2, 1) != Conv2d(1, 1)


@pytest.mark.parametrize("make, message", [
    (lambda: Conv2d(0, 0), "stride ≥ 1 and padding ≥ 0"),
    (lambda: Conv2d(1, -1), "stride ≥ 1 and padding ≥ 0"),
    (lambda: MaxPool(0, 1), "size ≥ 1 and stride ≥ 1"),
    (lambda: Conv2d()(pt.matrix(), pt.tensor4()), "4-dimensional"),
    (lambda: Conv2d()(pt.tensor4(dtype="int32"), pt.tensor4(dtype="int32")), "float tensors"),
])
def test_bad_arguments_are_refused(make, message: str) -> None:
    with pytest.raises((ValueError, TypeError), match=message):
        make()


def test_every_kernel_has_a_numba_cache_key_that_follows_its_props() -> None:
    from pytensor.link.numba.dispatch.basic import numba_funcify_and_cache_key

    x, w, gy = pt.tensor4(), pt.tensor4(), pt.tensor4()
    nodes = [Conv2d(2, 1)(x, w), Conv2dInputGrad(2, 1)(x, w, gy), Conv2dWeightGrad(2, 1)(x, w, gy),
             MaxPool(2, 2)(x), MaxPoolGrad(2, 2)(x, gy), AvgPool(2, 2)(x), AvgPoolGrad(2, 2)(x, gy)]
    keys = [numba_funcify_and_cache_key(v.owner.op, node=v.owner)[1] for v in nodes]
    assert all(isinstance(key, str) for key in keys) and len(set(keys)) == len(keys)
    other = Conv2d(1, 1)(x, w).owner
    assert numba_funcify_and_cache_key(other.op, node=other)[1] != keys[0]


def test_the_kernels_import_without_jax() -> None:
    code = ("import sys; sys.modules['jax'] = None\n"
            "import spec_lang.lowering.pytensor.kernels as k\n"
            "assert 'spec_lang.lowering.pytensor.kernels.jax' not in sys.modules\n"
            "import pytensor, numpy as np\n"
            "x = pytensor.tensor.tensor4()\n"
            "print(pytensor.function([x], k.MaxPool(2, 2)(x), mode='FAST_COMPILE')(np.ones((1, 1, 2, 2))).item())\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "1.0"
