"""Functional updates as JAX's: ``x.at[index].set(v)``, ``.add(v)``, ``.subtract(v)``,
``.multiply(v)``, ``.divide(v)``, ``.min(v)``, ``.max(v)`` and ``.get()``, registered as
the Function ``at``. Each update is a new node (``x`` is unchanged), built from the plan
with which :mod:`.indexing` reads ``x[index]`` and from that plan's adjoint, which adds
values back where they were read.
"""

from __future__ import annotations

import numpy as np

from ..ir.node import Node, ShapeError, apply, as_node, const
from ..ir.op import Sample, function
from .indexing import _adjoint, _plan, _run
from .shape import broadcast_to, reshape

#: ``at`` is reached as the method ``Node.at``, not as ``dk.at``
__all__: list[str] = []


# ---- functional updates: x.at[index].set(v), .add(v)... as JAX's ---------------------------


class _Indexer:
    """``x.at``: indexing it gives the updates of ``x`` at that index."""

    __slots__ = ("x",)

    def __init__(self, x: Node) -> None:
        self.x = x

    def __getitem__(self, index) -> "_Updates":
        return _Updates(self.x, index)

    def __repr__(self) -> str:
        return f"_Indexer({self.x!r})"


def _no_options(method: str, mode=None, fill_value=None) -> None:
    if mode not in (None, "promise_in_bounds"):
        raise ValueError(
            f"at[...].{method}: mode={mode!r} is not supported; indices are checked when the "
            f"graph is built, and one out of bounds raises IndexError"
        )
    if fill_value is not None:
        raise ValueError(f"at[...].{method}: fill_value is not supported (no index is dropped)")


class _Updates:
    """The functional updates of ``x`` at ``index``, each a new node (``x`` is unchanged).

    Every form of numpy's indexing is accepted. Repeated indices: ``add``/``subtract`` add
    every value (``np.add.at``); ``multiply``/``divide``/``min``/``max`` apply every value
    in index order; ``set`` keeps the last value written, as numpy's ``x[index] = v``
    does, and the overwritten values get no gradient.
    """

    __slots__ = ("x", "plan")

    def __init__(self, x: Node, index) -> None:
        self.x = x
        self.plan = _plan(x.shape, index, op="at")

    def _values(self, values, method: str) -> Node:
        v, shape = as_node(values), self.plan.shape
        extra = v.ndim - len(shape)
        if extra > 0 and all(d == 1 for d in v.shape[:extra]):
            v = reshape(v, v.shape[extra:])  # numpy drops leading unit axes of the values
        try:
            fits = np.broadcast_shapes(v.shape, shape) == shape
        except ValueError:
            fits = False
        if not fits:
            raise ShapeError(
                f"at[...].{method}: values of shape {as_node(values).shape} do not broadcast "
                f"to the indexed shape {shape}"
            )
        return broadcast_to(v, shape) if v.shape != shape else v

    def _rounds(self):
        """Per round, the broadcast index positions it writes (each target once per round:
        the k-th write of every repeated target in round k) laid out to broadcast against
        the indexed shape, and the mask of ``x`` it writes."""
        plan = self.plan
        if not int(np.prod(plan.shape, dtype=np.int64)):
            return []
        keys = plan.keys.ravel()
        order = np.argsort(keys, kind="stable")
        ordered = keys[order]
        first = np.r_[True, ordered[1:] != ordered[:-1]]
        start = np.maximum.accumulate(np.where(first, np.arange(keys.size), 0))
        rank = np.empty(keys.size, dtype=np.intp)
        rank[order] = np.arange(keys.size) - start
        layout = (1,) * plan.at + plan.b + (1,) * (len(plan.shape) - plan.at - len(plan.b))
        rounds = []
        for r in range(int(rank.max()) + 1):
            chosen = (rank == r).reshape(layout)
            full = np.broadcast_to(chosen, plan.shape).astype(np.float64)
            hit = _adjoint(full, plan.steps, numeric=True) > 0
            rounds.append((None if chosen.all() else chosen, hit))
        return rounds

    def _scattered(self, values: Node, chosen) -> Node:
        part = values if chosen is None else apply("where", const(chosen), values, 0.0)
        return _adjoint(part, self.plan.steps)

    def _combine(self, values, method: str, step) -> Node:
        out = self.x
        for chosen, hit in self._rounds():
            scattered = self._scattered(values, chosen)
            out = step(out, scattered, const(hit), hit.all())
        return out

    def get(self, *, indices_are_sorted=False, unique_indices=False, mode=None, fill_value=None):
        """``x[index]``."""
        _no_options("get", mode, fill_value)
        return _run(self.x, self.plan.steps)

    def set(self, values, *, indices_are_sorted=False, unique_indices=False, mode=None):
        """``x`` with ``values`` written at ``index`` (numpy's ``x[index] = values``)."""
        _no_options("set", mode)
        # d/dx: zero at the written entries; d/dv: the cotangent gathered (last write only)
        values = self._values(values, "set")
        return self._combine(
            values, "set", lambda out, s, hit, full: s if full else apply("where", hit, s, out)
        )

    def add(self, values, *, indices_are_sorted=False, unique_indices=False, mode=None):
        """``x`` with ``values`` added at ``index`` (``np.add.at``: repeated indices add up)."""
        _no_options("add", mode)
        # d/dx = identity; d/dv = the cotangent gathered at index
        return self.x + _adjoint(self._values(values, "add"), self.plan.steps)

    def subtract(self, values, *, indices_are_sorted=False, unique_indices=False, mode=None):
        """``x`` with ``values`` subtracted at ``index`` (``np.subtract.at``)."""
        _no_options("subtract", mode)
        return self.x - _adjoint(self._values(values, "subtract"), self.plan.steps)

    def multiply(self, values, *, indices_are_sorted=False, unique_indices=False, mode=None):
        """``x`` multiplied by ``values`` at ``index`` (``np.multiply.at``)."""
        _no_options("multiply", mode)
        values = self._values(values, "multiply")
        # d(x * s) = s dx + x ds, with s = 1 off the index
        return self._combine(
            values, "multiply", lambda out, s, hit, full: out * (s if full else _where(hit, s, 1))
        )

    def divide(self, values, *, indices_are_sorted=False, unique_indices=False, mode=None):
        """``x`` divided by ``values`` at ``index`` (``np.divide.at``)."""
        _no_options("divide", mode)
        values = self._values(values, "divide")
        # d(x / s) = dx / s - x ds / s^2, with s = 1 off the index
        return self._combine(
            values, "divide", lambda out, s, hit, full: out / (s if full else _where(hit, s, 1))
        )

    def min(self, values, *, indices_are_sorted=False, unique_indices=False, mode=None):
        """``x`` with ``minimum(x, values)`` at ``index`` (``np.minimum.at``); ties split the
        gradient evenly, as ``minimum``'s."""
        _no_options("min", mode)
        values = self._values(values, "min")
        return self._combine(values, "min", _extremal("minimum"))

    def max(self, values, *, indices_are_sorted=False, unique_indices=False, mode=None):
        """``x`` with ``maximum(x, values)`` at ``index`` (``np.maximum.at``); ties split the
        gradient evenly, as ``maximum``'s."""
        _no_options("max", mode)
        values = self._values(values, "max")
        return self._combine(values, "max", _extremal("maximum"))

    def __repr__(self) -> str:
        return f"_Updates({self.x!r}, shape={self.plan.shape})"


def _where(hit, a, b):
    return apply("where", hit, a, b)


def _extremal(name: str):
    def step(out, s, hit, full):
        # d max(x, s) selects the larger (halves at ties); off the index x passes unchanged
        both = apply(name, out, s)
        return both if full else _where(hit, both, out)

    return step


_AT_SAMPLES = (
    Sample(((4, 5), (2,)), {"index": (1, [0, 3]), "method": "set"}),
    Sample(((4, 5), (3, 5)), {"index": [2, 0, 2], "method": "set"}),
    Sample(((3, 4, 2), (2, 3)), {"index": ([0, 2], slice(1, None), 1), "method": "add"}),
    Sample(((4, 3), (4, 3)), {"index": ([1, 1, 0, 1],), "method": "add"}),
    Sample(((4, 3), (2, 3)), {"index": [3, 3], "method": "multiply"}, low=0.5),
    Sample(((4, 3), (3,)), {"index": (slice(None, 3), 2), "method": "divide"}, low=0.5),
    Sample(((4, 3), (3,)), {"index": ([0, 2, 0], [1, 1, 1]), "method": "min"}),
    Sample(((4, 3), ()), {"index": (np.array([1, 3]), slice(None)), "method": "max"}),
    Sample(((3, 4, 5),), {"index": (Ellipsis, None, [1, 0]), "method": "get"}),
    Sample(((3, 4, 5),), {"index": (2, slice(1, None), [1, 3]), "method": "get"}),
    Sample(((3, 4, 5),), {"index": ([[0], [2]], slice(None), [1, 4]), "method": "get"}),
    Sample(((3, 4, 5),), {"index": (slice(None), [0, 3], [[1], [2]]), "method": "get"}),
    Sample(((3, 4),), {"index": (np.array([True, False, True]),), "method": "get"}),
)


@function("at", samples=_AT_SAMPLES)
def at(x, values=None, *, index=None, method=None):
    """Functional updates at an index, as JAX's ``x.at[index]``: ``.get()``, ``.set(v)``,
    ``.add(v)``, ``.subtract(v)``, ``.multiply(v)``, ``.divide(v)``, ``.min(v)``,
    ``.max(v)``. With ``index`` and ``method``, the update itself.

    >>> import diffkit as dk, numpy as np
    >>> x = dk.variable("x", (3,))
    >>> y = x.at[np.array([0, 0, 2])].add(1.0)
    >>> dk.evaluate(y, {"x": np.zeros(3)}).tolist()
    [2.0, 0.0, 1.0]
    >>> z = x.at[1].set(x[0] * 5)
    >>> dk.gradient(dk.sum(z), {"x": np.ones(3)})["x"].tolist()
    [6.0, 0.0, 1.0]
    """
    updates = _Indexer(as_node(x))
    if index is None and method is None:
        return updates
    chosen = updates[index]
    if method == "get":
        return chosen.get()
    if method not in ("set", "add", "subtract", "multiply", "divide", "min", "max"):
        raise ValueError(f"at: unknown method {method!r}")
    return getattr(chosen, method)(values)
