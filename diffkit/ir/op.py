"""The op record and its registry.

An op is defined once, by one :class:`Op` record holding everything any part of
diffkit needs to know about it: its shape rule, its numpy implementation, its
mpmath and SymPy translations, its JVP and VJP rules (written in IR ops, so that
derivatives are graphs), and sample inputs from which the tests check it.

The interpreters and differentiators read these records; they never contain
op-specific code. ``diffkit.ops`` fills the registry; this module imports
nothing from it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

__all__ = [
    "Op",
    "Sample",
    "Unsupported",
    "STRUCTURAL",
    "ELEMENTWISE",
    "LINEAR",
    "register",
    "get_op",
    "registry",
]


@dataclass(frozen=True)
class Unsupported:
    """An explicit opt-out of one field of an op record, with the reason why."""

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
    """

    shapes: tuple
    attrs: dict = field(default_factory=dict)
    low: float = -2.0
    high: float = 2.0
    const: tuple = ()
    second_order: bool = True
    make: Callable | None = None
    zero_derivative: bool = False


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
            meanwhile (:mod:`diffkit.parallel`).
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

    def __repr__(self) -> str:
        return f"Op({self.name})"

    @property
    def differentiable(self) -> bool:
        return not isinstance(self.vjp, Unsupported)


_REGISTRY: dict[str, Op] = {}
_REQUIRED = ("shape", "impl", "vjp", "jvp", "mpmath", "sympy")


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
    if op.name in _REGISTRY:
        raise ValueError(f"op {op.name!r} is already registered")
    _REGISTRY[op.name] = op
    return op


def get_op(name: str) -> Op:
    """The registered op called ``name``."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown op {name!r}; known ops: {', '.join(sorted(_REGISTRY))}") from None


def registry() -> dict[str, Op]:
    """A copy of the registry: op name -> record."""
    return dict(_REGISTRY)
