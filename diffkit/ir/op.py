"""The op record and its registry.

An op is defined once, by one :class:`Op` record holding everything any part of
diffkit needs to know about it: its shape rule, its numpy implementation, its
mpmath and SymPy translations, its JVP and VJP rules (written in IR ops, so that
derivatives are graphs), and sample inputs from which the tests check it.

The record also says how users reach the op — the names the expression language
accepts, the SymPy classes that convert back into it, the numpy functions it
implements — and holds the op's rules for the features that transform graphs
(batching, and any later one: a feature declares a *rule kind* with
:func:`rule_kind`, deriving the rule from the op's kind where it can, and a record
writes the rule in ``rules`` where it cannot). Compositions of ops that need no rule
of their own (``mean``, ``std``, ``var``) are :class:`Function` records, reached
the same ways.

The interpreters, differentiators and front doors read these records; they never
contain op-specific code. ``diffkit.ops`` fills the registry; this module imports
nothing from it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping
import threading

__all__ = [
    "Op",
    "Sample",
    "Unsupported",
    "STRUCTURAL",
    "ELEMENTWISE",
    "LINEAR",
    "KINDS",
    "Function",
    "register",
    "register_function",
    "unregister",
    "builds",
    "function",
    "get_op",
    "registry",
    "functions",
    "rule_kind",
    "front_index",
]

#: an op's kind, from which rules are derived: ``elementwise`` (numpy broadcasting of
#: its inputs), ``reduction`` (an ``axis`` attribute naming axes of its first input,
#: ``None`` for all), ``axis`` (an ``axis`` attribute that must name axes: cumulative
#: sums, gathers, concatenation) and ``other`` (rules written in the record or absent).
KINDS = ("elementwise", "reduction", "axis", "other")


@dataclass(frozen=True)
class Unsupported:
    """An explicit opt-out of one field of an op record, with the reason why.

    Args:
        reason: why the field is missing (shown when it is needed).

    >>> import diffkit as dk
    >>> dk.Unsupported("no closed form").reason
    'no closed form'
    """

    reason: str

    def __bool__(self) -> bool:
        return False


class _Marker:
    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


#: The numpy implementation also runs on object arrays of mpmath or SymPy numbers
#: (reshape, transpose, sum, matmul...), so it serves as the translation too.
STRUCTURAL = _Marker("STRUCTURAL")
#: JVP derived from the VJP rule: the Jacobian of an elementwise op is diagonal, so
#: J t is the VJP rule applied to the tangent.
ELEMENTWISE = _Marker("ELEMENTWISE")
#: JVP of a linear op: the op itself applied to the tangents (zero for none).
LINEAR = _Marker("LINEAR")


@dataclass(frozen=True)
class Sample:
    """Inputs on which the registry tests check an op.

    Args:
        shapes: shape of each input.
        attrs: static attributes of the op.
        low, high: the interval the random inputs are drawn from.
        const: indices of inputs that are not differentiated (conditions, masks).
        second_order: whether second derivatives are checked on this sample.
        make: optional ``rng -> list of arrays`` replacing the uniform draw.
        zero_derivative: the op's derivative is zero by definition, though its
            values change (``stop_gradient``): checked against zero, not differences.
        pack: the inputs go to a ``Function``'s builder as one list (``np.stack``'s
            ``arrays``).

    >>> import diffkit as dk
    >>> s = dk.Sample(((3,), (3,)), low=0.5, high=1.0)  # two inputs of shape (3,) in [0.5, 1]
    >>> s.shapes, s.low, s.high, s.second_order
    (((3,), (3,)), 0.5, 1.0, True)
    """

    shapes: tuple
    attrs: dict = field(default_factory=dict)
    low: float = -2.0
    high: float = 2.0
    const: tuple = ()
    second_order: bool = True
    make: Callable | None = None
    zero_derivative: bool = False
    pack: bool = False


@dataclass(frozen=True, eq=False)
class Op:
    """One primitive of the IR.

    Args:
        name: lowercase numpy-like name (``mul``, ``conv2d``).
        shape: ``(input_shapes, **attrs) -> output shape``; raises ``ShapeError``.
        impl: numpy implementation ``(*arrays, **attrs) -> array``; must accept
            complex arrays where ``analytic`` is true.
        vjp: ``(cotangent, out, *inputs, **attrs) -> tuple`` of one cotangent node
            per input (``None`` for none), in IR ops; the reverse-mode engine sums
            broadcast cotangents back to each input's shape.  ``Unsupported`` for
            ops that are not differentiable (comparisons, masks).
        jvp: ``(tangents, out, *inputs, **attrs) -> tangent node or None``, or
            ``ELEMENTWISE``/``LINEAR`` to derive it, or ``Unsupported``.
        mpmath: scalar function of mpmath numbers, ``STRUCTURAL`` or ``Unsupported``.
        sympy: scalar function of SymPy expressions, ``STRUCTURAL`` or ``Unsupported``.
        samples: inputs for the registry tests (an op with none fails them).
        analytic: whether the complex step method may run through it.
        fold: optional ``(*inputs, **attrs) -> node or None`` simplifying at build time.
            A fold must not change a value (``x * 1 -> x`` is exact for every float,
            ``0 * x -> 0`` is not: inf and NaN).
        exact: optional ``(*fractions, **attrs) -> Fraction or None``: the op on exact
            rational constants (``None`` where the result is not rational or too large),
            so that ``1/3`` stays exact until a numeric interpreter rounds it once.
        nondiff_inputs: indices of inputs that never carry a derivative.
        doc: one line describing the op.
        threaded: whether the implementation's compiled loops do the arithmetic a matrix
            product would otherwise do (direct convolution): a program with such ops runs
            every compiled loop on all cores and holds numpy's BLAS to one thread
            meanwhile (``diffkit.parallel``).
        kind: one of ``KINDS``; rules of any rule kind derive from it.
        names: the names the expression language accepts for it (``("arcsin", "asin")``);
            none for tensor ops.
        numpy: the numpy ufuncs and functions it implements (``np.arcsin``): on IR nodes
            they call its builder. A ufunc's method is written ``(np.maximum,
            "accumulate")``.
        sympy_from: SymPy classes that convert back into the op: a tuple of classes (the
            builder is called on the converted arguments, folded left when SymPy gives
            more of them, as for ``Add``) or a dict class -> ``(expr, arg) -> node`` where
            ``arg`` converts a sub-expression.
        builder: the public function that builds the op (``dk.sum``); by default
            ``apply(op, *inputs, **attrs)``. Set with ``builds`` where the builder is
            written after the record.
        arity: ``(fewest, most)`` arguments of the builder in the expression language
            (``None``: any number); by default the inputs of the first sample.
        discontinuous: the op jumps somewhere (floor, comparisons): finite differences
            across a jump do not converge.
        holomorphic: whether derivatives at complex points may pass through it (by
            default ``analytic``); ``stop_gradient`` is holomorphic without being
            analytic (its derivative, zero by definition, is no complex-step derivative).
        rules: rule kind -> rule, for the rules that cannot be derived from ``kind``
            (``{"batch": ...}``).

    >>> import diffkit as dk, numpy as np
    >>> sin = dk.registry()["sin"]
    >>> sin.name, sin.kind, float(sin.impl(np.array(0.0)))
    ('sin', 'elementwise', 0.0)
    """

    name: str
    shape: Callable[..., tuple]
    impl: Callable[..., Any]
    vjp: Any
    jvp: Any
    mpmath: Any
    sympy: Any
    samples: tuple
    analytic: bool
    fold: Callable | None = None
    exact: Callable | None = None
    nondiff_inputs: tuple = ()
    doc: str = ""
    threaded: bool = False
    kind: str = "other"
    names: tuple = ()
    numpy: tuple = ()
    sympy_from: Any = ()
    builder: Callable | None = None
    arity: tuple | None = None
    discontinuous: bool = False
    holomorphic: bool | None = None
    rules: Mapping[str, Any] = field(default_factory=dict)

    def __repr__(self) -> str:
        return f"Op({self.name})"

    @property
    def differentiable(self) -> bool:
        return not isinstance(self.vjp, Unsupported)

    @property
    def is_holomorphic(self) -> bool:
        return self.analytic if self.holomorphic is None else self.holomorphic

    def build(self, *inputs, **attrs):
        """The op's builder called on ``inputs``: what ``dk.<name>`` does."""
        if self.builder is not None:
            return self.builder(*inputs, **attrs)
        return _APPLY[0](self, *inputs, **attrs)

    def rule(self, kind: str):
        """The op's rule of ``kind``: written in the record, else derived from the op's
        kind by the deriver that the feature declared, else ``None``."""
        explicit = self.rules.get(kind)
        if explicit is not None:
            return explicit
        derive = _RULE_KINDS.get(kind, {}).get(self.kind)
        return None if derive is None else derive(self)

    @property
    def parse_arity(self) -> tuple:
        if self.arity is not None:
            return self.arity
        n = len(self.samples[0].shapes) if self.samples else 1
        return (n, n)


@dataclass(frozen=True, eq=False)
class Function:
    """A composition of ops that needs no rule of its own (``mean``, ``std``), reached
    from the front doors like an op.

    Args:
        name: its name (``dk.<name>``).
        builder: the function; it builds IR from ops.
        names: names in the expression language (scalar functions only).
        numpy: numpy ufuncs and functions it implements on IR nodes.
        sympy_from: SymPy classes that convert into it (as :class:`Op`'s).
        arity: ``(fewest, most)`` arguments in the expression language (most ``None``:
            any number).
        samples: inputs on which the registry tests check it (values against its first
            numpy function, derivatives against finite differences); ``attrs`` are
            keyword arguments.
        doc: one line describing it.
    """

    name: str
    builder: Callable
    names: tuple = ()
    numpy: tuple = ()
    sympy_from: Any = ()
    arity: tuple = (1, 1)
    samples: tuple = ()
    doc: str = ""

    def __repr__(self) -> str:
        return f"Function({self.name})"

    def build(self, *inputs, **attrs):
        return self.builder(*inputs, **attrs)

    @property
    def parse_arity(self) -> tuple:
        return self.arity


_REGISTRY: dict[str, Op] = {}
#: how an op without a builder of its own is built: :func:`diffkit.ir.node.apply`, handed
#: over by that module when it is imported (it imports this one, never the reverse)
_APPLY: list[Callable] = []
_FUNCTIONS: dict[str, Function] = {}
_REQUIRED = ("shape", "impl", "vjp", "jvp", "mpmath", "sympy")
_LOCK = threading.RLock()
_INDEX: dict = {}  # the front doors' lookup tables, rebuilt after a registration
#: rule kind -> {op kind -> deriver(op) -> rule}
_RULE_KINDS: dict[str, dict[str, Callable]] = {}


def _check_front(record) -> None:
    if not isinstance(record.names, tuple) or not all(isinstance(n, str) for n in record.names):
        raise ValueError(f"{record!r}: names must be a tuple of strings")
    if not isinstance(record.numpy, tuple):
        raise ValueError(f"{record!r}: numpy must be a tuple of numpy functions")
    if not isinstance(record.sympy_from, (tuple, dict)):
        raise ValueError(f"{record!r}: sympy_from must be a tuple of classes or a dict")
    index = front_index()
    for name in record.names:
        if name in index["names"]:
            raise ValueError(
                f"{record!r}: the name {name!r} is already taken by {index['names'][name]!r}"
            )
    for fn in record.numpy:
        if fn in index["numpy"]:
            raise ValueError(
                f"{record!r}: numpy's {getattr(fn, '__name__', fn)} is already implemented "
                f"by {index['numpy'][fn]!r}"
            )


def register(op: Op) -> Op:
    """Add ``op`` to the registry, refusing a half-defined record."""
    for name in _REQUIRED:
        if getattr(op, name) is None:
            raise ValueError(
                f"op {op.name!r}: field {name!r} is missing; give it, or opt out "
                f"explicitly with Unsupported('reason')"
            )
    if not callable(op.shape) or not callable(op.impl):
        raise ValueError(f"op {op.name!r}: shape and impl must be callables")
    if op.kind not in KINDS:
        raise ValueError(f"op {op.name!r}: kind must be one of {KINDS}, got {op.kind!r}")
    with _LOCK:
        if op.name in _REGISTRY:
            raise ValueError(f"op {op.name!r} is already registered")
        _check_front(op)
        _REGISTRY[op.name] = op
        _INDEX.clear()
    return op


def register_function(fn: Function) -> Function:
    """Add a composite :class:`Function` to the registry."""
    if not callable(fn.builder):
        raise ValueError(f"function {fn.name!r}: builder must be callable")
    with _LOCK:
        if fn.name in _FUNCTIONS:
            raise ValueError(f"function {fn.name!r} is already registered")
        _check_front(fn)
        _FUNCTIONS[fn.name] = fn
        _INDEX.clear()
    return fn


def unregister(name: str) -> None:
    """Remove the op or function called ``name`` (for plug-ins and tests)."""
    with _LOCK:
        if _REGISTRY.pop(name, None) is None and _FUNCTIONS.pop(name, None) is None:
            raise KeyError(f"nothing called {name!r} is registered")
        _INDEX.clear()


def builds(op: Op, *, names: tuple = (), numpy: tuple = (), arity: tuple | None = None):
    """Decorator: the function below is ``op``'s public builder; with it, the names and
    numpy functions that reach the op (when the builder is written after the record).

    The record is completed in place, before anything reads it (at import of its module).
    """

    def attach(builder: Callable) -> Callable:
        with _LOCK:
            if op.builder is not None:
                raise ValueError(f"op {op.name!r} already has a builder")
            updated = dict(builder=builder, names=op.names + tuple(names))
            updated["numpy"] = op.numpy + tuple(numpy)
            if arity is not None:
                updated["arity"] = arity
            probe = Function(op.name, builder, names=tuple(names), numpy=tuple(numpy))
            _check_front(probe)
            for key, value in updated.items():
                object.__setattr__(op, key, value)
            _INDEX.clear()
        return builder

    return attach


def function(
    name: str | None = None,
    *,
    names: tuple = (),
    numpy: tuple = (),
    sympy_from: Any = (),
    arity: tuple = (1, 1),
    samples: tuple = (),
    doc: str = "",
):
    """Decorator registering the function below as a composite :class:`Function`."""

    def register_it(builder: Callable) -> Callable:
        register_function(
            Function(
                name or builder.__name__,
                builder,
                names=tuple(names),
                numpy=tuple(numpy),
                sympy_from=sympy_from,
                arity=arity,
                samples=tuple(samples),
                doc=doc or (builder.__doc__ or "").strip().split("\n")[0],
            )
        )
        return builder

    return register_it


def get_op(name: str) -> Op:
    """The registered op called ``name``."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown op {name!r}; known ops: {', '.join(sorted(_REGISTRY))}") from None


def registry() -> dict[str, Op]:
    """A copy of the registry: op name -> record.

    Returns:
        dict: op name -> :class:`Op`; changing it leaves the registry unchanged.

    >>> import diffkit as dk
    >>> ops = dk.registry()
    >>> "mul" in ops, ops["mul"].name
    (True, 'mul')
    """
    return dict(_REGISTRY)


def functions() -> dict[str, Function]:
    """A copy of the registry of composite functions: name -> record."""
    return dict(_FUNCTIONS)


def rule_kind(kind: str, **derive: Callable) -> None:
    """Declare a rule kind (``"batch"``, ``"sparsity"``...): ``derive`` maps op kinds
    (:data:`KINDS`) to ``deriver(op) -> rule`` for ops whose record writes no rule of this
    kind. A feature calls it once, at import; declaring again replaces the derivers."""
    unknown = set(derive) - set(KINDS)
    if unknown:
        raise ValueError(f"rule_kind {kind!r}: unknown op kinds {sorted(unknown)}")
    _RULE_KINDS[kind] = dict(derive)


def front_index() -> dict:
    """The front doors' tables, built from the registry (and rebuilt after a change):

    - ``names``: expression-language name -> record (an :class:`Op` or :class:`Function`);
    - ``numpy``: numpy ufunc or function -> record;
    - ``sympy``: SymPy class -> ``(record, converter or None)``;
    - ``ops_by_sympy``: SymPy class -> op record, for the op whose ``sympy_from`` has it.
    """
    index = _INDEX
    if index:
        return index
    with _LOCK:
        if _INDEX:
            return _INDEX
        names, numpy, sympy = {}, {}, {}
        for record in list(_REGISTRY.values()) + list(_FUNCTIONS.values()):
            spelled = record.names
            if isinstance(record, Op) and record.kind == "elementwise":
                spelled = (record.name,) + tuple(n for n in spelled if n != record.name)
            for name in spelled:
                names[name] = record
            for fn in record.numpy:
                numpy[fn] = record
            entries = record.sympy_from
            if isinstance(entries, dict):
                sympy.update({cls: (record, conv) for cls, conv in entries.items()})
            else:
                sympy.update({cls: (record, None) for cls in entries})
        built = {"names": names, "numpy": numpy, "sympy": sympy}
        _INDEX.update(built)
        return _INDEX
