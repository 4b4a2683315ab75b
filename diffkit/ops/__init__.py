"""The op library: importing this package fills the IR's op registry.

Families: ``arithmetic`` (add ... mod), ``transcendental`` (exp, log, trigonometric,
hyperbolic, erf ...), ``comparison`` (comparisons, selection, kinks, rounding),
``reduce`` (sum, prod, max, cumsum, mean, var, std, the softmax family),
``normalization`` (the moments and standardization of the norm layers), ``shape``
(reshape, transpose, broadcasting, matmul), ``special`` (sigmoid, softplus, fmax,
nan_to_num, sinc, erfinv, i0e ...), ``special_functions`` (scipy.special's gamma family,
logit, xlogy, entr, the normal distribution ...), ``complex`` (real, imag, conj, angle),
``indexing`` (numpy's indexing), ``joining`` (concatenate, stack, pad ...), ``updates``
(``x.at[i].set``), ``contract`` (einsum, tensordot, trace, diag ...), ``linalg``
(numpy's ``np.linalg``), ``stats`` (sort, cumprod, running extrema, median, percentile),
``shape_helpers`` (squeeze, roll, diff, gradient ...) and the image ops ``windows``,
``convolution`` and ``pooling``. Each op is one record (:class:`diffkit.ir.op.Op`);
compositions are :class:`~diffkit.ir.op.Function` records.
"""

from .arithmetic import *  # noqa: F401,F403
from .transcendental import *  # noqa: F401,F403
from .comparison import *  # noqa: F401,F403
from .reduce import *  # noqa: F401,F403
from .shape import *  # noqa: F401,F403
from .special import *  # noqa: F401,F403
from .special_functions import *  # noqa: F401,F403
from .normalization import *  # noqa: F401,F403
from .windows import *  # noqa: F401,F403
from .convolution import *  # noqa: F401,F403
from .pooling import *  # noqa: F401,F403
from .adaptive_pooling import *  # noqa: F401,F403
from .indexing import *  # noqa: F401,F403
from .joining import *  # noqa: F401,F403
from .updates import *  # noqa: F401,F403
from ._batch import NotBatchable  # noqa: F401

from . import arithmetic, comparison, convolution, pooling, reduce, shape, special  # noqa: E402
from . import normalization, special_functions  # noqa: E402
from . import adaptive_pooling  # noqa: E402
from . import indexing, joining, transcendental, updates, windows  # noqa: E402

#: every builder of the op library, re-exported by ``diffkit``
__all__ = [
    name
    for module in (
        arithmetic,
        transcendental,
        comparison,
        reduce,
        shape,
        special,
        special_functions,
        normalization,
        windows,
        convolution,
        pooling,
        adaptive_pooling,
        indexing,
        joining,
        updates,
    )
    for name in module.__all__
]

#: common aliases (SymPy's and C's spellings) of numpy's names
asin, acos, atan, atan2 = arcsin, arccos, arctan, arctan2  # noqa: F405
asinh, acosh, atanh, pow = arcsinh, arccosh, arctanh, power  # noqa: F405
__all__ += ["asin", "acos", "atan", "atan2", "asinh", "acosh", "atanh", "pow"]

# the numpy vocabulary of users' own code, one module per family
from . import complex, linalg, contract, stats, shape_helpers  # noqa: E402,F401
from .complex import *  # noqa: F401,F403,E402
from .linalg import *  # noqa: F401,F403,E402
from .contract import *  # noqa: F401,F403,E402
from .stats import *  # noqa: F401,F403,E402
from .shape_helpers import *  # noqa: F401,F403,E402

for _family in (complex, linalg, contract, stats, shape_helpers):
    __all__ += _family.__all__
