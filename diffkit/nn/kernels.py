"""Fixed kernels from the course: the 3×3 Gaussian blur and the Sobel operators.

Each is a 3×3 array; ``as_weight`` shapes one as a conv2d weight (1, 1, 3, 3).

>>> from diffkit.nn import kernels
>>> float(kernels.GAUSSIAN_BLUR.sum())
1.0
>>> bool((kernels.SOBEL_Y == kernels.SOBEL_X.T).all())
True
"""

from __future__ import annotations

import numpy as np

__all__ = ["GAUSSIAN_BLUR", "SOBEL_X", "SOBEL_Y", "as_weight"]

#: G = 1/16 [[1, 2, 1], [2, 4, 2], [1, 2, 1]]
GAUSSIAN_BLUR = np.array([[1, 2, 1], [2, 4, 2], [1, 2, 1]], dtype=float) / 16.0
#: S_x = [[1, 0, -1], [2, 0, -2], [1, 0, -1]] (horizontal derivative)
SOBEL_X = np.array([[1, 0, -1], [2, 0, -2], [1, 0, -1]], dtype=float)
#: S_y = S_xᵀ (vertical derivative)
SOBEL_Y = SOBEL_X.T.copy()

for _k in (GAUSSIAN_BLUR, SOBEL_X, SOBEL_Y):
    _k.setflags(write=False)


def as_weight(*kernels_: np.ndarray) -> np.ndarray:
    """Stack 3×3 kernels into a conv2d weight of shape (len(kernels), 1, 3, 3)."""
    return np.stack([np.asarray(k, dtype=float) for k in kernels_])[:, None]
