"""Checkpointing (rematerialization): trade memory for recomputation in reverse mode.

Reverse mode keeps every intermediate of the forward pass for the backward pass.
``checkpoint(f, policy=...)`` marks the nodes ``f`` builds as a *region*: the VJP of the
region keeps only its inputs (and what the policy saves) and recomputes the rest in the
backward pass, just before its cotangents need them (``jax.checkpoint``,
``torch.utils.checkpoint``). Policies, as JAX's ``jax.checkpoint_policies``:

- :data:`nothing_saveable` (the default): keep only the region's inputs;
- :data:`everything_saveable`: keep everything (no recomputation);
- :data:`dots_saveable`: keep the outputs of matrix products and convolutions;
- :func:`save_only_these_names`: keep the values named with :func:`checkpoint_name`;
- any callable ``policy(node) -> bool`` (save the node when true).

Regions nest: a region inside a checkpointed region is recomputed, in turn, from its own
inputs when the outer region's backward pass reaches it. The backward pass applies the
same VJP rules in the same order to the same values (recomputed ones are bit-identical),
so gradients are bit-identical to the unchecked ones.

:func:`saved_residuals` lists what a function's backward pass keeps, as JAX's
``print_saved_residuals``; :func:`checkpoint_chain` places checkpoints on
chains (segments, the binomial revolve schedule).

>>> import numpy as np
>>> import diffkit as dk
>>> from diffkit.differentiators.checkpoint import checkpoint
>>> def loss(x):
...     layer = checkpoint(lambda h: np.tanh(np.tanh(h)))
...     return np.sum(layer(layer(x)))
>>> x = np.linspace(-1.0, 1.0, 4)
>>> bool(np.array_equal(dk.grad(loss)(x), dk.grad(lambda x: np.sum(np.tanh(
...     np.tanh(np.tanh(np.tanh(x))))))(x)))
True
"""

from __future__ import annotations

import functools
import itertools
import math
from typing import Any, Callable, NamedTuple

import numpy as np

from ..ir.node import Node, apply, as_node, topological_order
from ..ops.checkpoint import CHECKPOINT_OUT, NAME, checkpoint_name, is_dot, recompute_after

__all__ = [
    "checkpoint",
    "remat",
    "checkpoint_name",
    "Region",
    "nothing_saveable",
    "everything_saveable",
    "dots_saveable",
    "save_only_these_names",
    "saved_residuals",
    "Residual",
    "checkpoint_chain",
    "run_segments",
    "segment_bounds",
    "revolve_recomputations",
    "package_revolve_recomputations",
    "binomial_steps",
]

_COUNTER = itertools.count()


# ---- policies --------------------------------------------------------------------------


def nothing_saveable(node: Node) -> bool:
    """Save nothing inside a region: keep its inputs only (JAX's ``nothing_saveable``)."""
    return False


def everything_saveable(node: Node) -> bool:
    """Save every value (no recomputation; JAX's ``everything_saveable``)."""
    return True


def dots_saveable(node: Node) -> bool:
    """Save the outputs of matrix products and convolutions (JAX's ``dots_saveable``): the
    ops whose records carry the ``"remat": "dot"`` rule (:func:`diffkit.ops.checkpoint.is_dot`).
    """
    return is_dot(node.op)


def save_only_these_names(*names: str) -> Callable[[Node], bool]:
    """A policy saving the values named with :func:`checkpoint_name` as one of ``names``.

    >>> policy = save_only_these_names("h")
    >>> import diffkit as dk
    >>> policy(checkpoint_name(dk.variable("x") * 2, "h"))
    True
    """
    wanted = frozenset(names)
    bad = [n for n in wanted if not isinstance(n, str)]
    if bad:
        raise TypeError(f"save_only_these_names: names must be strings, got {bad[0]!r}")

    def policy(node: Node) -> bool:
        return node.op is NAME and node.attrs.get("name") in wanted

    policy.__name__ = f"save_only_these_names{tuple(sorted(wanted))}"
    return policy


_POLICIES = {
    None: nothing_saveable,
    "nothing": nothing_saveable,
    "everything": everything_saveable,
    "dots": dots_saveable,
}


def _policy(policy) -> Callable[[Node], bool]:
    if callable(policy):
        return policy
    if isinstance(policy, (list, tuple)) and all(isinstance(p, str) for p in policy):
        return save_only_these_names(*policy)
    try:
        return _POLICIES[policy]
    except (KeyError, TypeError):
        raise ValueError(
            f"checkpoint: unknown policy {policy!r}; use 'nothing', 'everything', 'dots', "
            f"a list of names, or a callable node -> bool"
        ) from None


# ---- regions ---------------------------------------------------------------------------


class Region:
    """A checkpointed region: the nodes between ``inputs`` and ``outputs``.

    Its members are the op nodes the outputs reach without passing through an input;
    values outside it (inputs, parameters it closes over) are its residuals, kept.
    """

    def __init__(self, inputs, outputs, policy, name: str = ""):
        self.inputs = tuple(inputs)
        self.outputs = tuple(outputs)
        self.policy = policy
        self.name = name or f"checkpoint{next(_COUNTER)}"
        stop = {id(n) for n in self.inputs}
        members, stack = {}, [n for n in self.outputs if id(n) not in stop]
        while stack:
            node = stack.pop()
            if id(node) in members or node.kind != "op":
                continue
            members[id(node)] = node
            stack.extend(i for i in node.inputs if id(i) not in stop and id(i) not in members)
        self.members = members

    def __repr__(self) -> str:
        return f"Region({self.name}, {len(self.members)} nodes)"

    def saves(self, node: Node) -> bool:
        return bool(self.policy(node))


class Recompute:
    """The recomputed copy of a region's values, built lazily in the backward pass.

    ``value(node)`` is the node a VJP rule of a member should read in place of
    ``node``: a member the policy does not save is rebuilt from recomputed inputs; any
    other value (an input, a saved value, a parameter) enters through
    ``recompute_after(value, dep)``, so that the copy is a graph of its own that runs
    after the cotangent ``dep``.
    """

    def __init__(self, region: Region, parent: "Recompute | None", dep: Node):
        self.region, self.parent, self.dep = region, parent, dep
        self.memo: dict[int, Node] = {}
        self.everything = region.policy is everything_saveable

    def outer(self, node: Node) -> Node:
        return node if self.parent is None else self.parent.value(node)

    def value(self, node: Node) -> Node:
        if self.everything:
            return self.outer(node)
        done = self.memo.get(id(node))
        if done is not None:
            return done
        stack = [node]
        while stack:  # iteratively: regions may be long chains
            n = stack[-1]
            if id(n) in self.memo:
                stack.pop()
                continue
            rebuild = id(n) in self.region.members and not self.region.saves(n)
            if not rebuild:
                self.memo[id(n)] = (
                    n if n.kind == "const" else recompute_after(self.outer(n), self.dep)
                )
                stack.pop()
                continue
            missing = [i for i in n.inputs if id(i) not in self.memo]
            if missing:
                stack.extend(missing)
                continue
            stack.pop()
            self.memo[id(n)] = apply(n.op, *[self.memo[id(i)] for i in n.inputs], **n.attrs)
        return self.memo[id(node)]


class Remat:
    """What reverse mode needs to know about the regions of a graph (``order``)."""

    def __init__(self, order: list[Node]):
        regions: dict[int, Region] = {}
        markers: dict[int, list[Node]] = {}
        for node in order:
            if node.op is CHECKPOINT_OUT and node.attrs.get("region") is not None:
                region = node.attrs["region"]
                regions[id(region)] = region
                markers.setdefault(id(region), []).append(node)
        self.innermost: dict[int, Region] = {}
        for region in sorted(regions.values(), key=lambda r: -len(r.members)):
            for key in region.members:
                self.innermost[key] = region
        self.parent = {id(r): self.innermost.get(id(markers[id(r)][0])) for r in regions.values()}
        self.active: dict[int, Recompute] = {}

    def __bool__(self) -> bool:
        return bool(self.innermost)

    def _recompute(self, region: Region, dep: Node) -> Recompute:
        rc = self.active.get(id(region))
        if rc is None:
            parent = self.parent[id(region)]
            outer = None if parent is None else self._recompute(parent, dep)
            rc = self.active[id(region)] = Recompute(region, outer, dep)
        return rc

    def values(self, node: Node, ct: Node) -> tuple[Node, tuple]:
        """``node`` and its inputs as the VJP rule of ``node`` should read them."""
        region = self.innermost.get(id(node))
        if region is None:
            return node, node.inputs
        rc = self._recompute(region, ct)
        return rc.value(node), tuple(rc.value(i) for i in node.inputs)


# ---- the user's doors ------------------------------------------------------------------


def _flatten(tree, leaves: list):
    if isinstance(tree, (tuple, list)):
        return type(tree), [_flatten(t, leaves) for t in tree]
    if isinstance(tree, dict):
        return dict, [(k, _flatten(tree[k], leaves)) for k in sorted(tree)]
    leaves.append(tree)
    return None


def _unflatten(structure, leaves: list):
    if structure is None:
        return leaves.pop(0)
    kind, subs = structure
    if kind is dict:
        return {k: _unflatten(s, leaves) for k, s in subs}
    return kind(_unflatten(s, leaves) for s in subs)


def checkpoint(f: Callable, policy: Any = None, *, name: str = "") -> Callable:
    """``f``, whose reverse-mode derivative recomputes its intermediates instead of
    keeping them (``jax.checkpoint``).

    Args:
        f: a function of nodes (or of pytrees of nodes) returning nodes; call the result
            inside a traced function (``dk.grad``) or on graph fragments.
        policy: what to keep: ``"nothing"`` (the default: the inputs only),
            ``"everything"``, ``"dots"`` (matrix products and convolutions), a list of
            names given with :func:`checkpoint_name`, or a callable ``node -> bool``.
        name: a label for the region (shown by :func:`saved_residuals`).

    Returns:
        A function with ``f``'s signature and values; on arguments that are not nodes it
        simply calls ``f``.

    >>> import diffkit as dk
    >>> x = dk.variable("x", (3,))
    >>> y = checkpoint(lambda h: dk.sin(dk.sin(h)))(x)
    >>> g = dk.grad_graph(dk.sum(y), "x")
    >>> dk.evaluate(g, at={"x": np.zeros(3)}).tolist()
    [1.0, 1.0, 1.0]
    """
    if not callable(f):
        raise TypeError(f"checkpoint: f must be callable, got {type(f).__name__}")
    rule = _policy(policy)

    def wrapped(*args, **kwargs):
        leaves: list = []
        structure = _flatten(args, leaves)
        if not any(isinstance(leaf, Node) for leaf in leaves):
            return f(*args, **kwargs)
        nodes = [as_node(leaf) if isinstance(leaf, Node) else leaf for leaf in leaves]
        out = f(*_unflatten(structure, list(nodes)), **kwargs)
        outs: list = []
        out_structure = _flatten(out, outs)
        outs = [as_node(o) for o in outs]
        inputs = [n for n in nodes if isinstance(n, Node)]
        region = Region(inputs, outs, rule, name)
        marked = [
            o
            if o.kind != "op" or id(o) not in region.members
            else apply(CHECKPOINT_OUT, o, region=region)
            for o in outs
        ]
        return _unflatten(out_structure, marked)

    wrapped.__name__ = getattr(f, "__name__", "checkpointed")
    wrapped.__doc__ = getattr(f, "__doc__", None)
    return wrapped


#: JAX's other name for :func:`checkpoint`
remat = checkpoint


class Residual(NamedTuple):
    """A value the backward pass keeps: its description, shape and bytes (float64)."""

    what: str
    shape: tuple
    nbytes: int


def saved_residuals(f: Callable, *args) -> list[Residual]:
    """The values the backward pass of ``f`` keeps from its forward pass
    (``jax.ad_checkpoint.print_saved_residuals``), for arguments like ``args``.

    A residual is a value of the forward pass that the gradient graph reads: an argument
    (``"argument arg0"``) or an intermediate (``"tanh of shape (3,)"``, with the region
    it belongs to). ``str`` of each gives one line.

    Args:
        f: a Python function of arrays.
        *args: arrays like its arguments.

    Returns:
        list of Residual: each value kept, with its shape and where it comes from.

    >>> import numpy as np
    >>> def f(x):
    ...     return np.sum(np.sin(np.sin(x)))
    >>> [r.what for r in saved_residuals(f, np.ones(3))]
    ['argument arg0', 'sin']
    >>> [r.what for r in saved_residuals(checkpoint(f), np.ones(3))]
    ['argument arg0']
    """
    from ..ir.node import variable
    from ..ir.node import const
    from .reverse import vjp_graph

    leaves: list = []
    structure = _flatten(args, leaves)
    names = [f"arg{i}" for i in range(len(leaves))]
    arrays = [np.asarray(leaf) for leaf in leaves]
    nodes = [variable(n, a.shape) for n, a in zip(names, arrays)]
    out = as_node(f(*_unflatten(structure, list(nodes))))
    if out.shape != ():
        out = out.sum() if hasattr(out, "sum") else out
    forward = topological_order([out])
    forward_ids = {id(n) for n in forward}
    grads = vjp_graph([out], [const(1.0)], nodes)
    kept, seen = [], set()
    for node in topological_order(grads):
        for inp in node.inputs if id(node) not in forward_ids else ():
            if id(inp) in forward_ids and id(inp) not in seen and inp.kind != "const":
                seen.add(id(inp))
                kept.append(inp)
    order = {id(n): i for i, n in enumerate(forward)}
    kept.sort(key=lambda n: order[id(n)])
    itemsize = max([a.dtype.itemsize for a in arrays if a.dtype.kind == "f"] or [8])
    result = []
    for n in kept:
        what = f"argument {n.name}" if n.kind == "var" else n.op.name
        if n.op is CHECKPOINT_OUT:
            what = f"output of {n.attrs['region'].name}"
        result.append(Residual(what, n.shape, int(np.prod(n.shape, dtype=np.int64)) * itemsize))
    return result


# ---- chains: segments and binomial (revolve) schedules ---------------------------------


def binomial_steps(snapshots: int, sweeps: int) -> int:
    """beta(s, t) = C(s + t, s): the longest chain that ``s`` snapshots reverse with each
    step evaluated at most ``t`` times besides its first (Griewank and Walther)."""
    return math.comb(snapshots + sweeps, snapshots)


@functools.lru_cache(maxsize=4096)
def revolve_recomputations(n: int, snapshots: int) -> int:
    """The fewest forward steps recomputed to reverse a chain of ``n`` steps with
    ``snapshots`` snapshots: t n - beta(s + 1, t - 1) for beta(s, t - 1) < n <= beta(s, t).

    Args:
        n: the number of steps of the chain.
        snapshots: the number of snapshots held at once.

    Returns:
        int: the number of forward steps recomputed.

    >>> revolve_recomputations(1024, 10), revolve_recomputations(5, 1)
    (3755, 10)
    """
    if n < 1 or snapshots < 0:
        raise ValueError(f"revolve: need n >= 1 and snapshots >= 0, got {n} and {snapshots}")
    if n == 1:
        return 0
    if snapshots == 0:
        raise ValueError(f"revolve: a chain of {n} steps needs at least one snapshot")
    t = 1
    while binomial_steps(snapshots, t) < n:
        t += 1
    return t * n - binomial_steps(snapshots + 1, t - 1)


def package_revolve_recomputations(n: int, snapshots: int) -> int | None:
    """The forward steps recomputed by the ``checkpoint_schedules`` package's ``Revolve``
    schedule for ``n`` steps and ``snapshots`` snapshots (counted from its actions), to set
    beside :func:`revolve_recomputations`; None where the package is not installed (the
    ``compare`` extra installs it)."""
    try:
        import checkpoint_schedules as package
    except ImportError:
        return None
    steps = 0
    for action in package.Revolve(n, snapshots):
        if isinstance(action, package.Forward):
            steps += action.n1 - action.n0
        if isinstance(action, package.EndReverse):
            break
    return steps - n


@functools.lru_cache(maxsize=4096)
def _split(n: int, snapshots: int) -> int:
    """A first checkpoint position m attaining revolve's optimum for (n, snapshots)."""
    best = revolve_recomputations(n, snapshots)
    for m in range(1, n):
        tail = revolve_recomputations(n - m, snapshots - 1) if snapshots > 1 or n - m == 1 else None
        if tail is not None and m + tail + revolve_recomputations(m, snapshots) == best:
            return m
    raise AssertionError(f"no optimal split for ({n}, {snapshots})")  # pragma: no cover


def segment_bounds(n: int, segments: int) -> list[int]:
    """Where ``segments`` runs of nearly equal length cut ``n`` steps: ``segments + 1``
    indices from 0 to ``n``."""
    return [round(i * n / segments) for i in range(segments + 1)]


def run_segments(functions, segments: int, x, policy: Any = None, label: str = "layers"):
    """``functions`` applied to ``x`` in order, cut into ``segments`` runs of nearly equal
    length: every run but the last is a checkpointed region, and the last runs plainly,
    as in ``torch.utils.checkpoint.checkpoint_sequential`` (the backward pass needs its
    values first, so recomputing them would save nothing). The backward pass keeps the
    runs' inputs and the last run's values, and recomputes one run at a time.

    Args:
        functions: callables of one node, applied in order.
        segments: the number of runs, 1 (nothing checkpointed) to ``len(functions)``.
        x: the input node.
        policy: what each checkpointed run keeps besides its input (see ``checkpoint``).
        label: the regions are named ``"<label> a-b"`` (:func:`saved_residuals`).
    """
    functions = list(functions)
    bounds = segment_bounds(len(functions), segments)

    def run(h, part):
        for f in part:
            h = f(h)
        return h

    for a, b in zip(bounds[:-2], bounds[1:-1]):
        part = functions[a:b]
        x = checkpoint(lambda h, part=part: run(h, part), policy, name=f"{label} {a}-{b}")(x)
    return run(x, functions[bounds[-2] :])


def checkpoint_chain(step: Callable, x, n: int, schedule: Any = "sqrt", snapshots: int = 0):
    """``step`` applied ``n`` times to ``x``, with checkpoints placed by ``schedule``.

    Args:
        step: a function of one node returning a node of the same shape.
        x: the initial node.
        n: the number of steps.
        schedule: ``"none"``; ``"sqrt"`` (round(sqrt n) segments); an integer k (k
            segments, as ``run_segments``: all but the last are checkpointed
            regions, so n - n/k steps are recomputed); or ``"revolve"`` (the binomial
            schedule with ``snapshots`` snapshots, nested regions: the backward pass
            recomputes exactly :func:`revolve_recomputations` steps).
        snapshots: for ``"revolve"``.

    >>> import diffkit as dk
    >>> x = dk.variable("x", (2,))
    >>> y = checkpoint_chain(dk.tanh, x, 8, "revolve", snapshots=2)
    >>> ops = dk.compile(list(dk.grad_graph(dk.sum(y), ["x"]).values())).order
    >>> sum(n.op is not None and n.op.name == "tanh" for n in ops) - 8  # recomputed
    14
    >>> revolve_recomputations(8, 2)
    14
    """
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"checkpoint_chain: n must be a positive integer, got {n!r}")

    def plain(h, count):
        for _ in range(count):
            h = step(h)
        return h

    if schedule in ("none", None):
        return plain(x, n)
    if schedule == "sqrt":
        schedule = max(1, round(math.sqrt(n)))
    if isinstance(schedule, int) and not isinstance(schedule, bool):
        if not 1 <= schedule <= n:
            raise ValueError(f"checkpoint_chain: {schedule} segments for {n} steps")
        return run_segments([step] * n, schedule, x, label="steps")
    if schedule == "revolve":
        revolve_recomputations(n, snapshots)  # checks the arguments

        def rev(h, count, s):
            if count == 1:
                return step(h)
            m = _split(count, s)
            h = checkpoint(lambda g: rev(g, m, s))(h)
            return rev(h, count - m, s - 1)

        return rev(x, n, snapshots)
    raise ValueError(
        f"checkpoint_chain: unknown schedule {schedule!r}; use 'none', 'sqrt', a number of "
        f"segments, or 'revolve'"
    )
