"""Complex numbers: ``real``, ``imag``, ``conj`` and ``angle``, differentiated as JAX
differentiates functions that are not holomorphic.

The convention (JAX's): a cotangent ``c`` pairs with a tangent ``t`` as ``Re(c t)``. So
the rules of holomorphic ops are the real ones (the input's cotangent is ``ct f'(z)``),
and the gradient of a real-valued ``f`` of a complex ``z = x + iy`` is
``df/dx - i df/dy``: for ``|z|**2`` at ``3 + 4i`` it is ``6 - 8i``, the conjugate of the
direction of steepest ascent (PyTorch returns that direction itself, ``6 + 8i``). On
real values these ops are numpy's: ``real(x) = x``, ``imag(x) = 0``, ``conj(x) = x``.

>>> import diffkit as dk, numpy as np
>>> z = dk.variable("z")
>>> dk.gradient(dk.real(z) ** 2 + dk.imag(z) ** 2, at={"z": 3 + 4j})["z"]
(6-8j)
"""

from __future__ import annotations

import mpmath
import numpy as np
import sympy

from ..ir.node import apply
from ..ir.op import LINEAR, Op, Sample, function, register
from ..ir.shapes import elementwise_shape
from ._batch import _elementwise
from . import _taylor
from ._common import S1
from ._sparsity import elementwise_rule

__all__ = ["real", "imag", "conj", "conjugate", "angle"]


def _itself_on_tangents(name: str):
    """The JVP of an op that is real-linear in its input: the op applied to the tangent."""

    def jvp(tangents, out, x):
        (t,) = tangents
        return None if t is None else apply(name, t)

    return jvp


def _imag_transpose_impl(ct, x):
    if np.iscomplexobj(x):
        return -1j * ct
    return np.zeros(np.broadcast_shapes(np.shape(ct), np.shape(x)), np.result_type(ct))


#: the transpose of imag's tangent map t -> Im t under the pairing Re(c t): c -> -i c for a
#: complex input, nothing for a real one
IMAG_TRANSPOSE = register(
    Op(
        name="imag_transpose",
        shape=elementwise_shape("imag_transpose"),
        impl=_imag_transpose_impl,
        # the map c -> -i c is its own transpose under Re(c t)
        vjp=lambda ct, out, c, x: (apply("imag_transpose", ct, x), None),
        jvp=LINEAR,
        mpmath=lambda c, x: mpmath.mpf(0) if mpmath.im(x) == 0 else -1j * c,
        sympy=lambda c, x: sympy.S.Zero if x.is_real else -sympy.I * c,
        samples=(Sample(((3, 4), (3, 4)), const=(1,), zero_derivative=True),),
        analytic=False,
        nondiff_inputs=(1,),
        doc="-i c where x is complex, 0 where it is real (the transpose of imag)",
        rules={"taylor": _taylor.JVP_EACH, "batch": _elementwise, "sparsity": elementwise_rule},
    )
)


REAL = register(
    Op(
        name="real",
        shape=elementwise_shape("real"),
        impl=np.real,
        # Re(c Re t) = Re(Re(c) t): the transpose of t -> Re t is c -> Re c
        vjp=lambda ct, out, x: (apply("real", ct),),
        jvp=_itself_on_tangents("real"),
        mpmath=mpmath.re,
        sympy=sympy.re,
        samples=S1,
        analytic=False,
        doc="the real part (x itself for real x)",
        kind="elementwise",
        numpy=(np.real,),
        sympy_from=(sympy.re,),
        rules={"taylor": _taylor.JVP_EACH},
    )
)


IMAG = register(
    Op(
        name="imag",
        shape=elementwise_shape("imag"),
        impl=np.imag,
        # Re(c Im t) = Re(-i Re(c) t): the transpose of t -> Im t is c -> -i Re c
        vjp=lambda ct, out, x: (apply("imag_transpose", apply("real", ct), x),),
        jvp=_itself_on_tangents("imag"),
        mpmath=mpmath.im,
        sympy=sympy.im,
        samples=S1,
        analytic=False,
        doc="the imaginary part (0 for real x)",
        kind="elementwise",
        numpy=(np.imag,),
        sympy_from=(sympy.im,),
        rules={"taylor": _taylor.JVP_EACH},
    )
)


CONJ = register(
    Op(
        name="conj",
        shape=elementwise_shape("conj"),
        impl=np.conj,
        # d conj z = conj dz; its transpose under Re(c t) is c -> conj c
        vjp=lambda ct, out, x: (apply("conj", ct),),
        jvp=_itself_on_tangents("conj"),
        mpmath=mpmath.conj,
        sympy=sympy.conjugate,
        samples=S1,
        analytic=False,
        doc="the complex conjugate (x itself for real x)",
        kind="elementwise",
        names=("conjugate",),
        numpy=(np.conj,),
        sympy_from=(sympy.conjugate,),
        rules={"taylor": _taylor.JVP_EACH},
    )
)


def real(x):
    """The real part of ``x`` (numpy's ``real``); ``x`` itself for real values.

    Args:
        x: a node, or a number or array (taken as a constant), real or complex.

    Returns:
        Node: the real parts (real), of ``x``'s shape.

    >>> import diffkit as dk
    >>> z = dk.variable("z")
    >>> dk.evaluate(dk.real(z), at={"z": 3 + 4j})
    3.0
    """
    return apply(REAL, x)


def imag(x):
    """The imaginary part of ``x`` (numpy's ``imag``); 0 for real values.

    Args:
        x: a node, or a number or array (taken as a constant), real or complex.

    Returns:
        Node: the imaginary parts (real), of ``x``'s shape.

    >>> import diffkit as dk
    >>> z = dk.variable("z")
    >>> dk.evaluate(dk.imag(z), at={"z": 3 + 4j})
    4.0
    """
    return apply(IMAG, x)


def conj(x):
    """The complex conjugate of ``x`` (numpy's ``conj``); ``x`` itself for real values.

    Args:
        x: a node, or a number or array (taken as a constant), real or complex.

    Returns:
        Node: the conjugates, of ``x``'s shape.

    >>> import diffkit as dk
    >>> z = dk.variable("z")
    >>> dk.evaluate(dk.conj(z), at={"z": 3 + 4j})
    (3-4j)
    """
    return apply(CONJ, x)


conjugate = conj


@function(numpy=(np.angle,), samples=(Sample(((3, 4),), low=0.5, high=2.0),))
def angle(z, deg: bool = False):
    """The argument of ``z`` in (-pi, pi] (numpy's ``angle``): ``arctan2(imag z, real z)``;
    0 or pi for real values, whose derivative is 0.

    Args:
        z: a node, or a number or array (taken as a constant), real or complex.
        deg: the angle in degrees instead of radians.

    Returns:
        Node: the angles (real), of ``z``'s shape.

    >>> import diffkit as dk
    >>> z = dk.variable("z")
    >>> dk.evaluate(dk.angle(z), at={"z": -1.0})  # pi
    3.141592653589793
    >>> dk.evaluate(dk.angle(z, deg=True), at={"z": -2.0})
    180.0
    """
    out = apply("arctan2", imag(z), real(z))
    return real(out * (180 / np.pi)) if deg else out  # real: the program may be complex
