"""Nodes of the IR: variables, constants and op applications, hash-consed.

A :class:`Node` is immutable. Building one infers its shape at once (a mismatch
raises :class:`ShapeError` naming the op and the shapes), folds trivial algebra
through the op's ``fold`` rule, folds ops whose inputs are all small constants,
and returns the existing node when an identical one is alive, so a DAG never
holds two copies of one sub-expression.

>>> import diffkit as dk
>>> x, y = dk.variables("x y")
>>> (x + y) is (x + y)
True
>>> (x * 1) is x
True
"""

from __future__ import annotations

import threading
import weakref
from fractions import Fraction
from typing import Any, Iterable

import numpy as np

from .op import _APPLY, Op, front_index, functions, get_op

__all__ = [
    "Node",
    "ShapeError",
    "variable",
    "variables",
    "const",
    "as_node",
    "apply",
    "is_const",
    "const_value",
    "internal_variable",
    "math_const",
    "RESERVED_PREFIX",
]


class ShapeError(ValueError):
    """Raised when an op is built on inputs whose shapes it cannot take.

    >>> import diffkit as dk
    >>> dk.variable("a", (2,)) + dk.variable("b", (3,))
    Traceback (most recent call last):
    ...
    diffkit.ir.node.ShapeError: add: cannot broadcast shapes (2,) and (3,)
    """


_TABLE: "weakref.WeakValueDictionary[tuple, Node]" = weakref.WeakValueDictionary()
_TABLE_LOCK = threading.Lock()
#: numpy ufunc -> builder, and numpy function -> builder, for numpy's own functions on
#: nodes; filled by ``diffkit.ops.numpy_api``
#: display hooks (Jupyter's rich display), filled by the layers that can render a node:
#: "latex" -> function returning LaTeX through SymPy
DISPLAY: dict = {}
_FOLD_LIMIT = 4096  # constants up to this many elements are folded at build time
_EXACT_BITS = 4096  # exact rational constants up to this many bits; larger ones are rounded
#: the most entries ``np.asarray(node)`` turns into an object array of one node each
MAX_OBJECT_ENTRIES = 10_000
#: names of diffkit's own variables (tangent and cotangent seeds) begin with this;
#: ``variable`` refuses it, so a user's name can never collide with them
RESERVED_PREFIX = "%"


class Node:
    """One node of the expression DAG.

    Attributes:
        op: the :class:`~diffkit.ir.op.Op` record, or ``None`` for leaves.
        kind: ``"var"``, ``"const"`` or ``"op"``.
        inputs: input nodes.
        attrs: static attributes, a dict.
        shape: the output shape, a tuple.
        name: the variable name (``var`` only).
        value: the constant's float64 (or complex128) array (``const`` only).

    Args:
        kind, op, inputs, attrs, shape, name, value, exact: the attributes above (nodes
            are built by :func:`variable`, :func:`const` and :func:`apply`, not directly).

    >>> import diffkit as dk
    >>> x = dk.variable("x", (2, 3))
    >>> y = x + 1
    >>> y.kind, y.op.name, y.shape, y.inputs[0] is x
    ('op', 'add', (2, 3), True)
    """

    __slots__ = ("op", "kind", "inputs", "attrs", "shape", "name", "value", "exact", "__weakref__")
    __array_priority__ = 1000  # make ``ndarray * node`` defer to Node.__rmul__

    # -- construction -------------------------------------------------------------
    def __init__(self, kind, op, inputs, attrs, shape, name=None, value=None, exact=None):
        self.kind = kind
        self.op = op
        self.inputs = inputs
        self.attrs = attrs
        self.shape = shape
        self.name = name
        self.value = value
        self.exact = exact

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    def __repr__(self) -> str:
        """The expression in infix notation, as Python would write it (shapes of tensors
        shown): ``x*sin(x) + 1/3``, ``sum(W @ v, axis=(0,)) : ()``."""
        text = _infix(self)
        return text if self.shape == () else f"{text} : {self.shape}"

    def __str__(self) -> str:
        return _infix(self)

    def _repr_latex_(self):
        """LaTeX of the expression through SymPy, for Jupyter (None where SymPy has no form,
        which makes Jupyter fall back to the text)."""
        render = DISPLAY.get("latex")
        return None if render is None else render(self)

    def __copy__(self):
        return self  # nodes are immutable and hash-consed: a copy is the node itself

    def __deepcopy__(self, memo):
        return self

    def __bool__(self):
        raise TypeError("an IR node has no truth value; use dk.where(...) to select")

    def _no_number(self, kind: str):
        raise TypeError(
            f"{kind}() of an IR node: it holds no number while diffkit traces; keep it a node "
            f"(dk.exp, np.exp... work on nodes), or evaluate it with dk.evaluate"
        )

    def __float__(self):
        self._no_number("float")

    def __int__(self):
        self._no_number("int")

    def __complex__(self):
        self._no_number("complex")

    # -- numpy's functions on nodes ---------------------------------------------------
    def __array__(self, dtype=None, copy=None):
        """numpy's conversion (``np.asarray``, ``np.array``): a traced node holds no numbers,
        so it converts only to an object array of its entries (each a node), as a list of
        nodes does; a numeric dtype, or more than :data:`MAX_OBJECT_ENTRIES` entries (one
        node each), is a one-line TypeError."""
        if dtype is not None and np.dtype(dtype) != np.dtype(object):
            raise TypeError(
                f"a traced IR node of shape {self.shape} cannot become a {np.dtype(dtype).name} "
                f"array (np.asarray(..., dtype=...), or writing it into a numpy array): it "
                f"holds no numbers while diffkit traces; use the node as the array, and build "
                f"results from nodes (np.stack, x.at[i].set(v))"
            )
        if copy is False:
            raise ValueError("an IR node converts to a numpy array only by copying")
        size = int(np.prod(self.shape, dtype=np.int64))
        if size > MAX_OBJECT_ENTRIES:
            raise TypeError(
                f"np.asarray of a traced IR node of shape {self.shape} would make one node per "
                f"entry ({size:,} > {MAX_OBJECT_ENTRIES:,}); use the node as the array "
                f"(drop the conversion)"
            )
        out = np.empty(self.shape, dtype=object)
        if not self.shape:
            out[()] = self
            return out
        flat = out.reshape(-1)
        for i, index in enumerate(np.ndindex(self.shape)):
            flat[i] = self[index]
        return out

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        key = ufunc if method == "__call__" else (ufunc, method)
        record = front_index()["numpy"].get(key)
        if method != "__call__" and record is not None:
            return record.build(*inputs, **kwargs)
        if record is None or kwargs:
            what = ufunc.__name__ if method == "__call__" else f"{ufunc.__name__}.{method}"
            extra = f" with {', '.join(kwargs)}=" if kwargs and record is not None else ""
            raise TypeError(f"diffkit does not support numpy's {what}{extra} on IR nodes")
        return record.build(*inputs)

    def __getitem__(self, index):
        return get_op("getitem").build(self, index)

    def __setitem__(self, index, value):
        raise TypeError(
            "IR nodes are immutable; write x = x.at[index].set(value) (or .add, .multiply...) "
            "as in JAX"
        )

    def __iter__(self):  # without this, Python would iterate by __getitem__ forever
        if not self.shape:
            raise TypeError("iteration over a 0-d IR node")
        return (self[i] for i in range(self.shape[0]))

    def __len__(self):
        if not self.shape:
            raise TypeError("len() of a 0-d IR node")
        return self.shape[0]

    def __array_function__(self, func, types, args, kwargs):
        query = _QUERIES.get(func)
        if query is not None:  # np.shape, np.ndim, np.size: static facts of the node
            return query(*args, **kwargs)
        record = front_index()["numpy"].get(func)
        if record is None:
            raise TypeError(f"diffkit does not support numpy's {func.__name__} on IR nodes")
        return record.build(*args, **kwargs)

    # -- operators ------------------------------------------------------------------
    def __add__(self, other):
        return apply("add", self, other)

    def __radd__(self, other):
        return apply("add", other, self)

    def __sub__(self, other):
        return apply("sub", self, other)

    def __rsub__(self, other):
        return apply("sub", other, self)

    def __mul__(self, other):
        return apply("mul", self, other)

    def __rmul__(self, other):
        return apply("mul", other, self)

    def __truediv__(self, other):
        return apply("div", self, other)

    def __rtruediv__(self, other):
        return apply("div", other, self)

    def __pow__(self, other):
        return apply("pow", self, other)

    def __rpow__(self, other):
        return apply("pow", other, self)

    def __neg__(self):
        return apply("neg", self)

    def __abs__(self):
        return apply("abs", self)

    def __mod__(self, other):
        return apply("mod", self, other)

    def __rmod__(self, other):
        return apply("mod", other, self)

    def __eq__(self, other):  # a comparison node, as for JAX arrays; never a Python bool
        return apply("equal", self, other)

    def __ne__(self, other):
        return apply("not_equal", self, other)

    def __pos__(self):
        return self

    def __matmul__(self, other):
        return get_op("matmul").build(self, other)

    def __rmatmul__(self, other):
        return get_op("matmul").build(other, self)

    def __gt__(self, other):
        return apply("greater", self, other)

    def __lt__(self, other):
        return apply("less", self, other)

    def __ge__(self, other):
        return apply("greater_equal", self, other)

    def __le__(self, other):
        return apply("less_equal", self, other)

    __hash__ = object.__hash__

    # -- numpy-like conveniences ---------------------------------------------------
    def sum(self, axis=None, keepdims=False):
        return apply("sum", self, axis=axis, keepdims=keepdims)

    def mean(self, axis=None, keepdims=False):
        return functions()["mean"].build(self, axis=axis, keepdims=keepdims)

    def max(self, axis=None, keepdims=False):
        return apply("max", self, axis=axis, keepdims=keepdims)

    def reshape(self, *shape):
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        return get_op("reshape").build(self, shape)

    def transpose(self, *axes):
        if len(axes) == 1 and isinstance(axes[0], (tuple, list)):
            axes = tuple(axes[0])
        return get_op("transpose").build(self, axes or None)

    @property
    def T(self):
        return self.transpose()

    @property
    def at(self):
        """Functional updates at an index, as in JAX (``x.at[i].set(v)``, ``x.at[i].add(v)``)."""
        return functions()["at"].build(self)

    def _numpy(self, name: str, *args, **kwargs):
        """numpy's function ``name`` on this node, through the registry."""
        fn = getattr(np, name)
        record = front_index()["numpy"].get(fn)
        if record is None:
            raise TypeError(f"diffkit does not support numpy's {name} on IR nodes")
        return record.build(self, *args, **kwargs)

    def flatten(self, order="C"):
        return self._numpy("ravel", order=order)

    def ravel(self, order="C"):
        return self._numpy("ravel", order=order)

    def squeeze(self, axis=None):
        return self._numpy("squeeze", axis=axis)

    def copy(self, order="K"):
        """The node itself, as ``ndarray.copy``: a node is never changed in place."""
        return self

    def astype(self, dtype):
        """The node itself for a float dtype: the IR computes in the dtype of its inputs."""
        if np.dtype(dtype).kind not in "fc":
            raise TypeError(
                f"astype: the IR holds real or complex values; an integer or boolean dtype "
                f"({np.dtype(dtype)}) has no derivative (use dk.floor or a comparison)"
            )
        return self

    def std(self, axis=None, ddof=0, keepdims=False):
        return self._numpy("std", axis=axis, ddof=ddof, keepdims=keepdims)

    def var(self, axis=None, ddof=0, keepdims=False):
        return self._numpy("var", axis=axis, ddof=ddof, keepdims=keepdims)

    def prod(self, axis=None, keepdims=False):
        return self._numpy("prod", axis=axis, keepdims=keepdims)

    def min(self, axis=None, keepdims=False):
        return self._numpy("min", axis=axis, keepdims=keepdims)

    def cumsum(self, axis=None):
        return self._numpy("cumsum", axis=axis)

    def cumprod(self, axis=None):
        return self._numpy("cumprod", axis=axis)

    def clip(self, min=None, max=None):  # noqa: A002 - numpy's names
        return self._numpy("clip", min, max)

    def dot(self, other):
        return self._numpy("dot", other)

    def trace(self, offset=0, axis1=0, axis2=1):
        return self._numpy("trace", offset=offset, axis1=axis1, axis2=axis2)

    def diagonal(self, offset=0, axis1=0, axis2=1):
        return self._numpy("diagonal", offset=offset, axis1=axis1, axis2=axis2)

    def swapaxes(self, axis1, axis2):
        return self._numpy("swapaxes", axis1, axis2)

    def repeat(self, repeats, axis=None):
        return self._numpy("repeat", repeats, axis=axis)

    def take(self, indices, axis=None):
        return self._numpy("take", indices, axis=axis)

    def conj(self):
        return self._numpy("conj")

    conjugate = conj

    @property
    def real(self):
        return self._numpy("real")

    @property
    def imag(self):
        return self._numpy("imag")

    def round(self, decimals=0):
        return self._numpy("round", decimals=decimals)


def _size(a, axis=None) -> int:
    return a.size if axis is None else a.shape[axis]


#: numpy's functions that ask a node for its static shape: no graph is built
_QUERIES = {np.shape: lambda a: a.shape, np.ndim: lambda a: a.ndim, np.size: _size}

_INFIX_OPS = {
    "add": (" + ", 10),
    "sub": (" - ", 10),
    "mul": ("*", 20),
    "div": ("/", 20),
    "mod": (" % ", 20),
    "matmul": (" @ ", 20),
    "pow": ("**", 40),
}
_REPR_LIMIT = 240  # characters of a printed expression before it is cut with "..."


def _const_text(node: Node) -> str:
    if isinstance(node.exact, str):
        return node.exact
    if node.shape != ():
        return f"const{node.shape}"
    if isinstance(node.exact, Fraction):
        q = node.exact
        return str(q.numerator) if q.denominator == 1 else f"{q.numerator}/{q.denominator}"
    if node.value.dtype.kind == "c":
        return repr(complex(node.value))
    return repr(float(node.value))


def _infix(root: Node) -> str:
    """Infix text of ``root``; each sub-expression is printed once and cut past a limit."""
    text: dict[int, tuple[str, int]] = {}  # id -> (text, precedence)
    for node in topological_order([root]):
        if node.kind == "var":
            text[id(node)] = (node.name, 100)
            continue
        if node.kind == "const":
            t = _const_text(node)  # a fraction binds like a division, a sign like a negation
            text[id(node)] = (t, 20 if "/" in t else 30 if t.startswith("-") else 100)
            continue
        name = node.op.name
        args = [text[id(i)] for i in node.inputs]
        if name in _INFIX_OPS and len(args) == 2 and not node.attrs:
            symbol, prec = _INFIX_OPS[name]
            (left, lp), (right, rp) = args
            if name == "pow":  # right-associative
                left = f"({left})" if lp <= prec else left
                right = f"({right})" if rp < prec else right
            else:
                left = f"({left})" if lp < prec else left
                right = f"({right})" if rp <= prec else right
            t = f"{left}{symbol}{right}"
        elif name == "neg":
            inner, p = args[0]
            t, prec = (f"-({inner})" if p <= 30 else f"-{inner}"), 30
        else:
            shown = [a for a, _ in args] + [f"{k}={v!r}" for k, v in node.attrs.items()]
            t, prec = f"{name}({', '.join(shown)})", 100
        if len(t) > _REPR_LIMIT:
            t = t[: _REPR_LIMIT - 3] + "..."
        text[id(node)] = (t, prec)
    return text[id(root)][0]


def topological_order(outputs: Iterable[Node]) -> list[Node]:
    """Every node the outputs depend on, each after all of its inputs."""
    order: list[Node] = []
    seen: set[int] = set()
    for root in outputs:
        if id(root) in seen:
            continue
        stack = [(root, False)]
        while stack:
            node, expanded = stack.pop()
            if expanded:
                order.append(node)
                continue
            if id(node) in seen:
                continue
            seen.add(id(node))
            stack.append((node, True))
            for inp in reversed(node.inputs):
                if id(inp) not in seen:
                    stack.append((inp, False))
    return order


def _intern(key: tuple, make) -> Node:
    node = _TABLE.get(key)
    if node is not None:
        return node
    with _TABLE_LOCK:  # two threads building the same node get the same one
        node = _TABLE.get(key)
        if node is None:
            node = make()
            _TABLE[key] = node
    return node


def variable(name: str, shape: Iterable[int] = ()) -> Node:
    """A named input of the graph.

    Args:
        name: the name under which its value is given to ``evaluate(at=...)``.
        shape: its shape; ``()`` for a scalar.

    >>> import diffkit as dk
    >>> dk.variable("W", shape=(3, 2)).shape
    (3, 2)
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"a variable needs a non-empty string name, got {name!r}")
    if name.startswith(RESERVED_PREFIX):
        raise ValueError(
            f"variable names beginning with {RESERVED_PREFIX!r} are reserved for diffkit's own "
            f"tangent and cotangent variables, got {name!r}"
        )
    return _variable(name, shape)


def internal_variable(name: str, shape: Iterable[int] = ()) -> Node:
    """A variable in diffkit's reserved namespace (its name gets the reserved prefix)."""
    return _variable(RESERVED_PREFIX + name, shape)


def _variable(name: str, shape) -> Node:
    if isinstance(shape, (int, np.integer)) and not isinstance(shape, (bool, np.bool_)):
        shape = (shape,)
    if isinstance(shape, (str, bytes)) or not hasattr(shape, "__iter__"):
        raise ShapeError(f"variable {name!r}: shape must be a tuple of integers, got {shape!r}")
    shape = tuple(shape)
    bad = [
        d for d in shape if isinstance(d, (bool, np.bool_)) or not isinstance(d, (int, np.integer))
    ]
    if bad:
        raise ShapeError(
            f"variable {name!r}: shape must be a tuple of non-negative integers, got {shape!r} "
            f"({bad[0]!r} is a {type(bad[0]).__name__})"
        )
    shape = tuple(int(d) for d in shape)
    if any(d < 0 for d in shape):
        raise ShapeError(f"variable {name!r}: negative dimension in shape {shape}")
    return _intern(("var", name, shape), lambda: Node("var", None, (), {}, shape, name=name))


def variables(names: str | Iterable[str]) -> tuple[Node, ...]:
    """Scalar variables, from a space- or comma-separated string or a list of names.

    Args:
        names: ``"x y z"``, ``"x, y"`` or a list of names.

    Returns:
        tuple of Node: one scalar variable per name.

    >>> import diffkit as dk
    >>> x, y, z = dk.variables("x y z")
    """
    if isinstance(names, str):
        names = names.replace(",", " ").split()
    return tuple(variable(n) for n in names)


def const(value: Any) -> Node:
    """A constant node holding ``value``.

    Integers, ``Fraction`` s and finite floats are kept exactly (as a rational, for
    the SymPy and mpmath interpreters) and rounded once to float64 for numpy, which
    evaluates constants in the data's dtype.

    Args:
        value: a number, ``Fraction``, or array.

    Returns:
        Node: the constant.

    >>> from fractions import Fraction
    >>> import diffkit as dk
    >>> dk.const(Fraction(1, 3)).exact
    Fraction(1, 3)
    """
    if isinstance(value, Node):
        return value
    exact = None
    if isinstance(value, (np.integer, np.floating, np.ndarray)) and np.ndim(value) == 0:
        if np.asarray(value).dtype.kind in "iuf":
            value = np.asarray(value).item()
    if isinstance(value, (int, Fraction)) and not isinstance(value, bool):
        exact = Fraction(value)
        if exact.numerator.bit_length() + exact.denominator.bit_length() > _EXACT_BITS:
            exact = None
        value = _round(Fraction(value))
    elif isinstance(value, float) and np.isfinite(value):
        exact = Fraction(repr(value))  # the decimal that prints as this float: 0.1 is 1/10
    try:
        arr = np.asarray(value)
    except (TypeError, ValueError) as err:
        raise TypeError(f"cannot make a constant from {type(value).__name__}: {err}") from None
    if arr.dtype.kind not in "biufc":
        raise TypeError(f"cannot make a constant from {type(value).__name__}")
    # complex constants (1j) are complex128 and make the values they meet complex
    arr = np.array(arr, dtype=np.complex128 if arr.dtype.kind == "c" else np.float64)
    arr.setflags(write=False)
    key = ("const", arr.shape, arr.tobytes(), exact)
    return _intern(key, lambda: Node("const", None, (), {}, arr.shape, value=arr, exact=exact))


#: the mathematical constants a constant node can stand for exactly
MATH_CONSTANTS = {"pi": np.pi, "e": np.e}


def math_const(name: str) -> Node:
    """The constant ``pi`` or ``e``: float64 for numpy, exact for mpmath and SymPy.

    >>> import diffkit as dk, mpmath
    >>> mpmath.nstr(dk.evaluate(dk.ir.node.math_const("pi"), precision=30), 30)
    '3.14159265358979323846264338328'
    """
    arr = np.array(MATH_CONSTANTS[name])
    arr.setflags(write=False)
    return _intern(
        ("const", (), arr.tobytes(), name),
        lambda: Node("const", None, (), {}, (), value=arr, exact=name),
    )


def _round(q: Fraction) -> float:
    """``q`` rounded to the nearest float64 (infinite beyond its range)."""
    try:
        return float(q)
    except OverflowError:
        return float("inf") if q > 0 else float("-inf")


def as_node(value: Any) -> Node:
    """``value`` itself if it is a node, else a constant."""
    return value if isinstance(value, Node) else const(value)


def is_const(node: Node, value: float | None = None) -> bool:
    """Whether ``node`` is a constant (equal to ``value`` everywhere, when given)."""
    if node.kind != "const":
        return False
    return value is None or bool(np.all(node.value == value))


def const_value(node: Node) -> np.ndarray:
    return node.value


def _freeze(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_freeze(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((k, _freeze(v)) for k, v in value.items()))
    return value


def apply(op: Op | str, *inputs: Any, **attrs: Any) -> Node:
    """Build the node ``op(*inputs, **attrs)``: check shapes, fold, hash-cons.

    Args:
        op: an :class:`Op` or the name of a registered op.
        inputs: nodes or values (values become constants).
        attrs: the op's static attributes.

    Returns:
        The node, possibly an existing one or a simpler equivalent.

    >>> import diffkit as dk
    >>> x = dk.variable("x")
    >>> dk.evaluate(dk.apply("mul", x, 2.0), at={"x": 3.0})
    6.0
    """
    if isinstance(op, str):
        op = get_op(op)
    nodes = tuple(as_node(i) for i in inputs)
    attrs = {k: (tuple(v) if isinstance(v, list) else v) for k, v in attrs.items()}
    shape = op.shape(tuple(n.shape for n in nodes), **attrs)
    if not isinstance(shape, tuple):
        raise TypeError(f"shape rule of {op.name} returned {shape!r}, not a tuple")
    if op.fold is not None:
        folded = op.fold(*nodes, **attrs)
        if folded is not None:
            return folded
    if nodes and all(n.kind == "const" for n in nodes) and _small(nodes, shape):
        exact = shape == () and all(n.exact is not None for n in nodes)
        if exact and op.exact is not None and all(isinstance(n.exact, Fraction) for n in nodes):
            value = op.exact(*(n.exact for n in nodes), **attrs)
            if value is not None:
                return const(value)
        with np.errstate(all="ignore"):
            value = np.asarray(op.impl(*(n.value for n in nodes), **attrs))
        value = value.astype(np.complex128 if value.dtype.kind == "c" else np.float64)
        # an op of exact constants whose value is not rational (log(2), sqrt(2), pi/2)
        # stays a node, so that mpmath and SymPy compute it exactly; the numpy
        # interpreter rounds it once per run. Overflowing ones fold to inf.
        if not (exact and np.all(np.isfinite(value)) and callable(op.mpmath)):
            return const(np.broadcast_to(value, shape))
    key = ("op", op.name, tuple(id(n) for n in nodes), _freeze(attrs))
    return _intern(key, lambda: Node("op", op, nodes, attrs, shape))


_APPLY.append(apply)


def _small(nodes, shape) -> bool:
    size = int(np.prod(shape, dtype=np.int64))
    return size <= _FOLD_LIMIT and all(n.size <= _FOLD_LIMIT for n in nodes)
