/* Compiled loops for the image ops: im2col, col2im, the gradient of max-pooling, and
   direct convolution for small windows.

   Each is the same computation as the numpy implementation in diffkit/ops (windows.py,
   convolution.py, pooling.py), which stays the reference and the fallback; the tests run
   both and compare them. The
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

/* Direct convolution for small windows (C*KH*KW <= DIRECT_MAX_K, KW <= 16, stride 1
   along the rows), float32, with AVX2 and FMA where the CPU has them (checked at run
   time). For each output row the input rows it reads are copied into a buffer that stays
   in L1, and the products accumulate in registers: a first layer on images of one or
   three channels then needs no window matrix in memory (for LeNet-5's first layer at
   batch 256, 20 MB written once and read twice per training step). */

#define DIRECT_MAX_K 64
#define TILE 32            /* output columns per tile: four vectors of eight floats */
#define ROW (TILE + 16)    /* a tile's input columns: TILE + KW - 1 <= TILE + 15 */

#if defined(__GNUC__) && defined(__x86_64__)
#include <immintrin.h>

/* With stride 1 along the row, window entries (c, p, q) for q = 0..KW-1 are one input row
   shifted by q: rows[(c, p)][t] holds input row y = i*sy + p - py of channel c at column
   j0 + t - px (0 outside the input), so entry (c, p, q) of output column j0 + t is
   rows[(c, p)][t + q]. Only t < TILE + KW - 1 is written (and read). */
static void gather_rows(const float *x, const idx *shape, const idx *xs, const idx *geo,
                        idx ni, idx i, idx j0, float *rows) {
    idx c = shape[1], h = shape[2], w = shape[3];
    idx kh = geo[0], kw = geo[1], sy = geo[2], py = geo[4], px = geo[5];
    idx span = TILE + kw - 1;
    for (idx ci = 0; ci < c; ci++)
        for (idx p = 0; p < kh; p++) {
            float *r = rows + (ci * kh + p) * ROW;
            idx y = i * sy + p - py;
            idx lo = px - j0 > 0 ? px - j0 : 0; /* the span's part inside the row: [lo, hi) */
            idx hi = w + px - j0 < span ? w + px - j0 : span;
            if (y < 0 || y >= h || hi <= lo) {
                memset(r, 0, (size_t)span * sizeof(float));
                continue;
            }
            const float *src = x + ni * xs[0] + ci * xs[1] + y * xs[2] + (j0 - px) * xs[3];
            for (idx t = 0; t < lo; t++) r[t] = 0.0f;
            if (xs[3] == 1) {
                memcpy(r + lo, src + lo, (size_t)(hi - lo) * sizeof(float));
            } else {
                for (idx t = lo; t < hi; t++) r[t] = src[t * xs[3]];
            }
            for (idx t = hi; t < span; t++) r[t] = 0.0f;
        }
}

/* Where window entry k starts in rows (see gather_rows); entries K..kpad-1 read zero. */
static void window_entries(const float **entry, const float *rows, const float *zero, idx K,
                           idx kpad, idx kw) {
    for (idx k = 0; k < kpad; k++) entry[k] = k < K ? rows + (k / kw) * ROW + k % kw : zero;
}


EXPORT int conv_direct_supported(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}

/* out (O, N, OH, OW), contiguous: the weights wp (opad, K), O rows padded with zero rows to
   a multiple of 3, applied to the windows of x (N, C, H, W; element strides xs). */
__attribute__((target("avx2,fma")))
EXPORT void conv_direct_f32(const float *x, const idx *shape, const idx *xs, const idx *geo,
                            const float *wp, idx o, idx opad, float *out, idx n0, idx n1) {
    idx n = shape[0], c = shape[1], kh = geo[0], kw = geo[1], oh = geo[6], ow = geo[7];
    idx K = c * kh * kw;
    float rows[DIRECT_MAX_K * ROW] __attribute__((aligned(32)));
    float tmp[TILE] __attribute__((aligned(32)));
    const float *entry[DIRECT_MAX_K];
    window_entries(entry, rows, NULL, K, K, kw);
    for (idx ni = n0; ni < n1; ni++)
        for (idx i = 0; i < oh; i++)
            for (idx j0 = 0; j0 < ow; j0 += TILE) {
                gather_rows(x, shape, xs, geo, ni, i, j0, rows);
                idx len = ow - j0 < TILE ? ow - j0 : TILE;
                for (idx ob = 0; ob < opad; ob += 3) {
                    __m256 acc[3][4];
                    for (int r = 0; r < 3; r++)
                        for (int v = 0; v < 4; v++) acc[r][v] = _mm256_setzero_ps();
                    for (idx k = 0; k < K; k++) {
                        const float *b = entry[k];
                        __m256 b0 = _mm256_loadu_ps(b), b1 = _mm256_loadu_ps(b + 8);
                        __m256 b2 = _mm256_loadu_ps(b + 16), b3 = _mm256_loadu_ps(b + 24);
                        for (int r = 0; r < 3; r++) {
                            __m256 wv = _mm256_broadcast_ss(wp + (ob + r) * K + k);
                            acc[r][0] = _mm256_fmadd_ps(wv, b0, acc[r][0]);
                            acc[r][1] = _mm256_fmadd_ps(wv, b1, acc[r][1]);
                            acc[r][2] = _mm256_fmadd_ps(wv, b2, acc[r][2]);
                            acc[r][3] = _mm256_fmadd_ps(wv, b3, acc[r][3]);
                        }
                    }
                    for (int r = 0; r < 3 && ob + r < o; r++) {
                        float *dst = out + (((ob + r) * n + ni) * oh + i) * ow + j0;
                        if (len == TILE) {
                            for (int v = 0; v < 4; v++) _mm256_storeu_ps(dst + 8 * v, acc[r][v]);
                        } else {
                            for (int v = 0; v < 4; v++) _mm256_store_ps(tmp + 8 * v, acc[r][v]);
                            memcpy(dst, tmp, (size_t)len * sizeof(float));
                        }
                    }
                }
            }
}

/* The weight gradient: dw (O, K) = the sum over the output pixels of samples n0..n1-1 of
   d (O, N, OH, OW, contiguous) times the windows of x. part: opad * kpad * 8 floats of
   scratch, where the sums stay eight wide until the end. */
__attribute__((target("avx2,fma")))
EXPORT void conv_direct_wgrad_f32(const float *x, const idx *shape, const idx *xs,
                                  const idx *geo, const float *d, idx o, idx opad,
                                  float *part, float *dw, idx n0, idx n1) {
    idx n = shape[0], c = shape[1], kh = geo[0], kw = geo[1], oh = geo[6], ow = geo[7];
    idx K = c * kh * kw, kpad = (K + 3) / 4 * 4;
    float rows[DIRECT_MAX_K * ROW] __attribute__((aligned(32)));
    float zero[TILE] __attribute__((aligned(32))) = {0};
    float drows[3 * TILE] __attribute__((aligned(32)));
    const float *entry[DIRECT_MAX_K];
    window_entries(entry, rows, zero, K, kpad, kw);
    memset(part, 0, (size_t)(opad * kpad * 8) * sizeof(float));
    for (idx ni = n0; ni < n1; ni++)
        for (idx i = 0; i < oh; i++)
            for (idx j0 = 0; j0 < ow; j0 += TILE) {
                gather_rows(x, shape, xs, geo, ni, i, j0, rows);
                idx len = ow - j0 < TILE ? ow - j0 : TILE;
                for (idx ob = 0; ob < opad; ob += 3) {
                    for (int r = 0; r < 3; r++) { /* zero beyond the row's end */
                        float *dr = drows + r * TILE;
                        if (ob + r < o) {
                            memcpy(dr, d + (((ob + r) * n + ni) * oh + i) * ow + j0,
                                   (size_t)len * sizeof(float));
                            for (idx t = len; t < TILE; t++) dr[t] = 0.0f;
                        } else {
                            memset(dr, 0, TILE * sizeof(float));
                        }
                    }
                    for (idx kb = 0; kb < kpad; kb += 4) {
                        __m256 acc[3][4];
                        for (int r = 0; r < 3; r++)
                            for (int u = 0; u < 4; u++)
                                acc[r][u] = _mm256_loadu_ps(part + ((ob + r) * kpad + kb + u) * 8);
                        for (int v = 0; v < 4; v++) {
                            __m256 d0 = _mm256_load_ps(drows + 8 * v);
                            __m256 d1 = _mm256_load_ps(drows + TILE + 8 * v);
                            __m256 d2 = _mm256_load_ps(drows + 2 * TILE + 8 * v);
                            for (int u = 0; u < 4; u++) {
                                __m256 b = _mm256_loadu_ps(entry[kb + u] + 8 * v);
                                acc[0][u] = _mm256_fmadd_ps(d0, b, acc[0][u]);
                                acc[1][u] = _mm256_fmadd_ps(d1, b, acc[1][u]);
                                acc[2][u] = _mm256_fmadd_ps(d2, b, acc[2][u]);
                            }
                        }
                        for (int r = 0; r < 3; r++)
                            for (int u = 0; u < 4; u++)
                                _mm256_storeu_ps(part + ((ob + r) * kpad + kb + u) * 8, acc[r][u]);
                    }
                }
            }
    for (idx oi = 0; oi < o; oi++)
        for (idx k = 0; k < K; k++) {
            const float *pp = part + (oi * kpad + k) * 8;
            float s = 0.0f;
            for (int v = 0; v < 8; v++) s += pp[v];
            dw[oi * K + k] = s;
        }
}
#else
EXPORT int conv_direct_supported(void) { return 0; }
#endif

static struct PyModuleDef native_module = {
    PyModuleDef_HEAD_INIT, "_native",
    "Compiled loops for diffkit's image ops, called through ctypes (see diffkit/ops/native.py).",
    -1, NULL,
};

PyMODINIT_FUNC PyInit__native(void) { return PyModule_Create(&native_module); }
