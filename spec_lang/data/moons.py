"""The DANN authors' two-moons toy (Ganin et al. 2016, section 5.1), drawn exactly as scikit-learn's `make_moons`.

>>> data = two_moons()
>>> data["xs"].shape, data["ys"].shape, data["xt"].shape
((150, 2), (150,), (150, 2))
"""

from __future__ import annotations

import numpy as np


def make_moons(n_samples: int, noise: float, random_state: int) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's `make_moons(n_samples, noise=noise, random_state=random_state)`, draw for draw
    (the same legacy `RandomState` calls: a shuffle of the indices, then the noise)."""
    generator = np.random.RandomState(random_state)
    n_out, n_in = n_samples // 2, n_samples - n_samples // 2
    outer = np.linspace(0, np.pi, n_out)
    inner = np.linspace(0, np.pi, n_in)
    x = np.vstack([np.append(np.cos(outer), 1 - np.cos(inner)), np.append(np.sin(outer), 1 - np.sin(inner) - 0.5)]).T
    y = np.hstack([np.zeros(n_out, dtype=np.intp), np.ones(n_in, dtype=np.intp)])
    order = np.arange(n_samples)
    generator.shuffle(order)
    x, y = x[order], y[order]
    return x + generator.normal(scale=noise, size=x.shape), y


def two_moons(n_samples: int = 150, noise: float = 0.05, angle: float = 35.0) -> dict[str, np.ndarray]:
    """The DANN paper's toy problem: source moons (random_state 1) and target moons (random_state 2) rotated
    by `angle` degrees, both centred on the source mean and scaled by 2. Keys: xs, ys, xt, yt (the target
    labels are for evaluation only)."""
    xs, ys = make_moons(n_samples, noise, 1)
    xt, yt = make_moons(n_samples, noise, 2)
    centre = xs.mean(axis=0)
    xs, xt = 2 * (xs - centre), 2 * (xt - centre)
    theta = np.deg2rad(angle)
    rotation = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    return {"xs": xs, "ys": ys.astype("int32"), "xt": xt @ rotation.T, "yt": yt.astype("int32")}
