/* Compiled loops for the image ops: im2col, col2im and the gradient of max-pooling.

   Each is the same computation as the numpy implementation in diffkit/ops/conv.py,
   which stays the reference and the fallback; the tests run both and compare them. The
   functions take raw pointers, sizes and element strides and are called through ctypes,
   so the module needs no numpy headers. The Python module itself is empty.

   Geometry (NCHW, as PyTorch): an output pixel (i, j) of a window op reads the input rows
   y = i*sy + p - py and columns x = j*sx + q - px for kernel offsets (p, q); positions
   outside the input are padding (0 for im2col, skipped for max-pooling). */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#if defined(_WIN32)
#define EXPORT __declspec(dllexport)
#else
#define EXPORT __attribute__((visibility("default")))
#endif

typedef int64_t idx;

/* The output columns j whose input column j*sx + q - px lies in [0, w): [*lo, *hi). */
static void column_range(idx q, idx sx, idx px, idx w, idx ow, idx *lo, idx *hi) {
    idx first = px - q; /* j*sx >= px - q */
    idx l = first <= 0 ? 0 : (first + sx - 1) / sx;
    idx last = w - 1 + px - q; /* j*sx <= w - 1 + px - q */
    idx h = last < 0 ? 0 : last / sx + 1;
    if (h > ow) h = ow;
    if (l > h) l = h;
    *lo = l;
    *hi = h;
}

#define NAME(f) f##_f32
#define T float
#include "_native_kernels.h"
#undef T
#undef NAME

#define NAME(f) f##_f64
#define T double
#include "_native_kernels.h"
#undef T
#undef NAME

static struct PyModuleDef native_module = {
    PyModuleDef_HEAD_INIT, "_native",
    "Compiled loops for diffkit's image ops, called through ctypes (see diffkit/ops/native.py).",
    -1, NULL,
};

PyMODINIT_FUNC PyInit__native(void) { return PyModule_Create(&native_module); }
