"""Optimizers: SGD (stochastic, minibatch or full batch; momentum; weight decay), Adam
and AdamW, learning-rate schedules, and damped Newton's method with a line search.

SGD follows PyTorch: d = g + λ p; b = μ b + d (b = d at the first step); p -= lr b.
Adam and AdamW follow PyTorch too (``torch.optim.Adam``/``AdamW`` without amsgrad).
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np

__all__ = [
    "SGD",
    "Adam",
    "AdamW",
    "Newton",
    "StepLR",
    "CosineLR",
    "newton",
    "newton_iteration",
    "NewtonResult",
]


def _parameters(params, optimizer: str) -> dict:
    """The parameters an optimizer updates, keyed by name where names are known.

    Takes the model, ``model.named_parameters()`` (pairs, or a dict of them) or
    ``model.parameters()`` (arrays, keyed by position until :meth:`bind` names them).
    """
    if hasattr(params, "named_parameters") and callable(params.named_parameters):
        params = params.named_parameters()
    if isinstance(params, dict):
        items = list(params.items())
    elif isinstance(params, np.ndarray):
        items = None
    else:
        try:
            items = list(params)
        except TypeError:
            items = None
    if items is not None and all(
        isinstance(i, tuple) and len(i) == 2 and isinstance(i[0], str) for i in items
    ):
        named = dict(items)
    elif items is not None and all(isinstance(i, np.ndarray) for i in items):
        named = dict(enumerate(items))
    else:
        raise TypeError(
            f"{optimizer}: pass the model, model.named_parameters() or model.parameters(), "
            f"not {type(params).__name__}"
        )
    if not named:
        raise ValueError(f"{optimizer}: got an empty parameter list")
    for key, value in named.items():
        if not (isinstance(value, np.ndarray) and value.dtype.kind == "f"):
            raise TypeError(f"{optimizer}: parameter {key!r} is not a float numpy array")
    return named


class _Optimizer:
    """What every optimizer shares: its parameters, the learning rate, naming by model."""

    params: dict

    def bind(self, model) -> "_Optimizer":
        """Key parameters given by position (``model.parameters()``) by their names in
        ``model``, the names gradients arrive under; a no-op when they have names."""
        if all(isinstance(k, str) for k in self.params):
            return self
        by_id = {id(v): k for k, v in model.named_parameters()}
        missing = [k for k, v in self.params.items() if id(v) not in by_id]
        if missing:
            raise ValueError(
                f"{type(self).__name__}: parameter {missing[0]} is not an array of this model"
            )
        self.params = {by_id[id(v)]: v for v in self.params.values()}
        return self

    def _gradients(self, grads) -> dict:
        """``grads`` keyed like the parameters: a dict, or a sequence in their order."""
        if isinstance(grads, dict):
            missing = [k for k in self.params if k not in grads]
            if missing:
                raise KeyError(
                    f"{type(self).__name__}.step: no gradient for parameter {missing[0]!r}"
                    + (
                        " (parameters given by position: call optimizer.bind(model) to "
                        "name them, or pass the gradients as a list)"
                        if not isinstance(missing[0], str)
                        else ""
                    )
                )
            return grads
        grads = list(grads)
        if len(grads) != len(self.params):
            raise ValueError(
                f"{type(self).__name__}.step: {len(grads)} gradients for "
                f"{len(self.params)} parameters"
            )
        return dict(zip(self.params, grads))


class SGD(_Optimizer):
    """Stochastic gradient descent on a dict of parameter arrays (updated in place).

    Args:
        params: the model, ``model.named_parameters()`` or ``model.parameters()``.
        lr: learning rate (> 0).
        momentum: μ in [0, 1).
        weight_decay: λ >= 0 (L2 penalty λ/2 ‖p‖²).

    Raises:
        ValueError: a learning rate, momentum or weight decay out of range.

    >>> import numpy as np
    >>> from diffkit import train
    >>> params = {"w": np.array([1.0, 2.0])}
    >>> train.SGD(params, lr=0.1).step({"w": np.array([1.0, 1.0])})  # w - lr g
    >>> params["w"].tolist()
    [0.9, 1.9]
    """

    def __init__(self, params: dict, lr: float, momentum: float = 0.0, weight_decay: float = 0.0):
        if not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0):
            raise ValueError(f"SGD: learning rate must be a positive number, got {lr!r}")
        if not 0 <= momentum < 1:
            raise ValueError(f"SGD: momentum must be in [0, 1), got {momentum!r}")
        if weight_decay < 0:
            raise ValueError(f"SGD: weight_decay must be non-negative, got {weight_decay!r}")
        self.params = _parameters(params, "SGD")
        self.lr, self.base_lr = float(lr), float(lr)
        self.momentum, self.weight_decay = float(momentum), float(weight_decay)
        self.buffers: dict[str, np.ndarray] = {}

    def step(self, grads) -> None:
        grads = self._gradients(grads)
        for name, p in self.params.items():
            g = grads[name]
            if self.weight_decay:
                g = g + self.weight_decay * p
            if self.momentum:
                buf = self.buffers.get(name)
                if buf is None:
                    buf = self.buffers[name] = np.array(g, dtype=p.dtype)
                else:
                    buf *= self.momentum
                    buf += g
                g = buf
            p -= (self.lr * g).astype(p.dtype, copy=False)

    def state_dict(self) -> dict:
        return {"lr": self.lr, "buffers": {k: v.copy() for k, v in self.buffers.items()}}

    def load_state_dict(self, state: dict) -> None:
        self.lr = float(state["lr"])
        self.buffers = {k: np.array(v) for k, v in state["buffers"].items()}


class Adam(_Optimizer):
    """Adam (Kingma & Ba) as PyTorch's ``torch.optim.Adam``, on a dict of parameter arrays
    (updated in place): m = β1 m + (1-β1) g, v = β2 v + (1-β2) g², and
    p -= lr m̂ / (sqrt(v̂) + eps) with the bias corrections m̂ = m/(1-β1^t), v̂ = v/(1-β2^t).

    Args:
        params: the model, ``model.named_parameters()`` or ``model.parameters()``.
        lr: learning rate (> 0).
        betas: (β1, β2), each in [0, 1).
        eps: added to the denominator.
        weight_decay: λ >= 0, added to the gradient as λ p (Adam) or applied to the
            parameters directly as p -= lr λ p (AdamW, decoupled).

    >>> import numpy as np
    >>> from diffkit import train
    >>> params = {"w": np.array([1.0])}
    >>> train.Adam(params, lr=0.1).step({"w": np.array([2.0])})  # first step: lr g / (|g| + eps)
    >>> round(float(params["w"][0]), 6)
    0.9
    """

    decoupled = False

    def __init__(
        self,
        params: dict,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
    ):
        name = type(self).__name__
        if not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0):
            raise ValueError(f"{name}: learning rate must be a positive number, got {lr!r}")
        if len(betas) != 2 or not all(0 <= b < 1 for b in betas):
            raise ValueError(f"{name}: betas must be two numbers in [0, 1), got {betas!r}")
        if not eps > 0 or weight_decay < 0:
            raise ValueError(f"{name}: eps must be positive and weight_decay non-negative")
        self.params = _parameters(params, name)
        self.lr, self.base_lr = float(lr), float(lr)
        self.betas, self.eps, self.weight_decay = tuple(map(float, betas)), float(eps), weight_decay
        self.t = 0
        self.m: dict[str, np.ndarray] = {}
        self.v: dict[str, np.ndarray] = {}

    def step(self, grads) -> None:
        grads = self._gradients(grads)
        b1, b2 = self.betas
        self.t += 1
        c1, c2 = 1 - b1**self.t, 1 - b2**self.t
        for name, p in self.params.items():
            g = np.asarray(grads[name], dtype=p.dtype)
            if self.weight_decay and self.decoupled:
                p -= (self.lr * self.weight_decay * p).astype(p.dtype, copy=False)
            elif self.weight_decay:
                g = g + self.weight_decay * p
            m = self.m.setdefault(name, np.zeros_like(p))
            v = self.v.setdefault(name, np.zeros_like(p))
            m *= b1
            m += (1 - b1) * g
            v *= b2
            v += (1 - b2) * g * g
            update = (self.lr / c1) * m / (np.sqrt(v / c2) + self.eps)
            p -= update.astype(p.dtype, copy=False)

    def state_dict(self) -> dict:
        return {
            "lr": self.lr,
            "t": self.t,
            "m": {k: v.copy() for k, v in self.m.items()},
            "v": {k: v.copy() for k, v in self.v.items()},
        }

    def load_state_dict(self, state: dict) -> None:
        self.lr, self.t = float(state["lr"]), int(state["t"])
        self.m = {k: np.array(v) for k, v in state["m"].items()}
        self.v = {k: np.array(v) for k, v in state["v"].items()}


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter), as ``torch.optim.AdamW``:
    p -= lr λ p before the Adam step. Its default weight decay is PyTorch's, 0.01.

    Args:
        params: the model, ``model.named_parameters()`` or ``model.parameters()``.
        lr: learning rate (> 0).
        betas: the decay rates of the first and second moments.
        eps: added to the root of the second moment.
        weight_decay: λ: each step first scales the parameters by 1 - lr λ.

    >>> import numpy as np
    >>> from diffkit import train
    >>> params = {"w": np.array([1.0])}
    >>> train.AdamW(params, lr=0.1).step({"w": np.array([0.0])})  # only the decay: 1 - 0.1 · 0.01
    >>> params["w"].tolist()
    [0.999]
    """

    decoupled = True

    def __init__(
        self,
        params: dict,
        lr: float = 1e-3,
        betas=(0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.01,
    ):
        super().__init__(params, lr, betas, eps, weight_decay)


class StepLR:
    """lr = base · gamma^(epoch // step_size).

    Args:
        step_size: the epochs between two decays.
        gamma: the factor of each decay.

    Call it as ``schedule(base, epoch, epochs)``.

    >>> from diffkit import train
    >>> train.StepLR(10, gamma=0.5)(1.0, 25, 100)  # 0.5 ** (25 // 10)
    0.25
    """

    def __init__(self, step_size: int, gamma: float = 0.1):
        self.step_size, self.gamma = int(step_size), float(gamma)

    def __call__(self, base: float, epoch: int, epochs: int) -> float:
        return base * self.gamma ** (epoch // self.step_size)


class CosineLR:
    """lr = base · (1 + cos(π epoch / epochs)) / 2.

    Call it as ``schedule(base, epoch, epochs)``.

    >>> from diffkit import train
    >>> train.CosineLR()(1.0, 50, 100), train.CosineLR()(1.0, 100, 100)  # cos(pi/2), cos(pi)
    (0.5, 0.0)
    """

    def __call__(self, base: float, epoch: int, epochs: int) -> float:
        return base * 0.5 * (1 + math.cos(math.pi * epoch / max(1, epochs)))


class NewtonResult:
    """The iterates of :func:`~diffkit.train.newton`: x, and per iteration loss, gradient
    norm, time."""

    def __init__(self):
        self.x = None
        self.losses: list[float] = []
        self.grad_norms: list[float] = []
        self.seconds: list[float] = []
        self.iterations = 0

    def __repr__(self) -> str:
        return (
            f"NewtonResult(iterations={self.iterations}, loss={self.losses[-1]:.6g}, "
            f"grad_norm={self.grad_norms[-1]:.3g})"
        )


def newton(
    loss: Callable[[np.ndarray], float],
    grad: Callable[[np.ndarray], np.ndarray],
    hess: Callable[[np.ndarray], np.ndarray],
    x0: np.ndarray,
    max_iter: int = 20,
    tol: float = 1e-10,
    damping: float = 1e-8,
    c1: float = 1e-4,
) -> NewtonResult:
    """Damped Newton's method with a backtracking (Armijo) line search.

    Each step solves (H + λI) d = -g, with λ raised until H + λI is positive definite
    (so d is a descent direction even where the loss is not convex), then halves the
    step until the loss decreases enough. λ shrinks after a full step and grows after
    a shortened one (Levenberg-Marquardt style), so near a minimum the steps become
    pure Newton steps and converge quadratically.

    Args:
        loss, grad, hess: functions of the flat parameter vector.
        x0: the starting point.
        max_iter: iteration limit.
        tol: stop when ‖g‖ < tol.
        damping: the smallest λ.
        c1: the Armijo constant of the line search.

    Returns:
        ~diffkit.train.optim.NewtonResult: the last iterate ``x`` and the history.

    >>> import numpy as np
    >>> from diffkit import train
    >>> A, b = np.diag([2.0, 4.0]), np.array([2.0, 4.0])  # minimum -b·A^-1 b / 2 at A^-1 b
    >>> def loss(x):
    ...     return float(x @ A @ x / 2 - b @ x)
    >>> result = train.newton(loss, lambda x: A @ x - b, lambda x: A, np.zeros(2))
    >>> result.x.tolist(), float(result.losses[-1])
    ([1.0, 1.0], -3.0)
    """
    import time

    result = NewtonResult()
    x = np.array(x0, dtype=np.float64)
    start = time.perf_counter()
    f, g = loss(x), grad(x)
    result.losses.append(f)
    result.grad_norms.append(float(np.linalg.norm(g)))
    result.seconds.append(0.0)
    lam = damping
    for _ in range(max_iter):
        if result.grad_norms[-1] < tol:
            break
        x, f, g, lam = newton_iteration(loss, grad, hess, x, f, g, lam, damping, c1)
        result.iterations += 1
        result.losses.append(f)
        result.grad_norms.append(float(np.linalg.norm(g)))
        result.seconds.append(time.perf_counter() - start)
    result.x = x
    return result


def newton_iteration(loss, grad, hess, x, f, g, lam, damping=1e-8, c1=1e-4):
    """One damped Newton step from ``x`` (loss ``f``, gradient ``g``, damping ``lam``):
    returns the new point, its loss and gradient, and the next damping."""
    H = hess(x)
    H = 0.5 * (H + H.T)
    eye = np.eye(len(x))
    while True:
        try:
            L = np.linalg.cholesky(H + lam * eye)
            d = -np.linalg.solve(L.T, np.linalg.solve(L, g))
            break
        except np.linalg.LinAlgError:
            lam = max(lam * 10, 1e-6)
    t = 1.0
    while True:
        fn = loss(x + t * d)
        if fn <= f + c1 * t * (g @ d) or t < 1e-10:
            break
        t *= 0.5
    lam = max(lam / 10, damping) if t == 1.0 else lam * 10
    x = x + t * d
    return x, fn, grad(x), lam


class Newton(_Optimizer):
    """Damped Newton's method (:func:`newton`) as an optimizer of a model: each call of
    :meth:`epoch` is one iteration on the full training set, on the mean cross-entropy
    plus weight_decay/2 ‖θ‖², with the Hessian by reverse mode (forward over reverse).
    For models of at most a few thousand parameters, in float64.

    Args:
        params: the model, ``model.named_parameters()`` or ``model.parameters()``.
        weight_decay: λ of the penalty λ/2 ‖θ‖².
        damping: the smallest damping of :func:`newton`.

    >>> import numpy as np
    >>> from diffkit import nn, train
    >>> images = np.random.default_rng(0).random((8, 1, 2, 2)).astype(np.float32)
    >>> data = train.Dataset(images, np.array([0, 1] * 4), 2)
    >>> model = nn.LogisticRegression(4, 2)
    >>> for _, p in model.named_parameters():
    ...     p[...] = 0  # the loss starts at ln 2
    >>> options = train.LoopOptions(epochs=2, batch_size=8, progress=False, plot=False)
    >>> result = train.fit(model, data, data, train.Newton(model), options)
    >>> losses = [h["train_loss"] for h in result.history]
    >>> losses[0] < float(np.log(2)), losses[1] <= losses[0]  # the line search only descends
    (True, True)
    """

    full_batch = True

    def __init__(self, params, weight_decay: float = 1e-4, damping: float = 1e-8):
        if weight_decay < 0 or not damping > 0:
            raise ValueError("Newton: weight_decay must be non-negative and damping positive")
        self.params = _parameters(params, "Newton")
        self.lr = self.base_lr = 1.0  # the line search chooses the step; schedules do not
        self.weight_decay, self.damping, self.lam = float(weight_decay), float(damping), damping
        self._problem = None

    def _setup(self, model, data):
        from ..differentiators.reverse import ReverseMode
        from ..ir.node import variable
        from ..ir.schedule import compile
        from ..nn.losses import CrossEntropyLoss
        from ..ops.reduce import sum as dsum
        from .data import one_hot

        key = (id(model), id(data.images), data.images.shape)
        if self._problem is not None and self._problem[0] == key:
            return self._problem
        params = dict(model.named_parameters())
        x = variable("input", data.images.shape)
        loss = CrossEntropyLoss()(model(x), variable("target", (len(data), data.num_classes)))
        for name, p in params.items():
            loss = loss + 0.5 * self.weight_decay * dsum(variable(name, p.shape) ** 2)
        names = list(params)
        shapes = [params[n].shape for n in names]
        splits = np.cumsum([int(np.prod(s)) for s in shapes])[:-1]
        fixed = {
            "input": data.images.astype(np.float64),
            "target": one_hot(data.labels, data.num_classes, np.float64),
        }
        program, rev = compile(loss), ReverseMode()

        def at(theta):
            parts = np.split(theta, splits)
            return {
                **model.inputs(),
                **fixed,
                **{n: q.reshape(s) for n, q, s in zip(names, parts, shapes)},
            }

        def f(theta):
            return float(program(at(theta), strict=False))

        def g(theta):
            grads = rev.gradient(loss, at(theta), wrt=names)
            return np.concatenate([np.ravel(grads[n]) for n in names])

        def h(theta):
            return rev.hessian(loss, at(theta), wrt=names)

        self._problem = (key, f, g, h, names, shapes, splits)
        return self._problem

    def epoch(self, model, data) -> tuple[float, float]:
        """One Newton iteration on all of ``data``; returns the new loss (with the
        penalty) and gradient norm."""
        _, f, g, h, names, shapes, splits = self._setup(model, data)
        params = dict(model.named_parameters())
        theta = np.concatenate([params[n].astype(np.float64).ravel() for n in names])
        x, fx, gx, self.lam = newton_iteration(
            f, g, h, theta, f(theta), g(theta), self.lam, self.damping
        )
        for n, part, s in zip(names, np.split(x, splits), shapes):
            params[n][...] = part.reshape(s)
        return fx, float(np.linalg.norm(gx))

    def step(self, grads) -> None:
        raise TypeError("Newton works on the full training set: call epoch(model, data)")

    def state_dict(self) -> dict:
        return {"lr": self.lr, "lam": self.lam}

    def load_state_dict(self, state: dict) -> None:
        self.lr, self.lam = float(state["lr"]), float(state["lam"])
