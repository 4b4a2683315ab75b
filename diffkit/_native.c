/* Compiled loops for the image ops: im2col, col2im, the gradient of max-pooling, and
   direct convolution with stride 1 (forward, weight gradient, input gradient).

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

/* Direct convolution, stride 1, float32, with AVX2 and FMA where the CPU has them (checked
   at run time): the forward product, its weight gradient and its input gradient, none of
   which builds the window matrix.

   Each sample is copied into a zero-padded buffer of C planes of HP x WP (padding
   included), flattened. With stride 1, output pixel (i, j) at the flattened position
   m = i*WP + j reads window entry k = (c, p, q) at buffer position off[k] + m, where
   off[k] = c*HP*WP + p*WP + q: every window entry is the same buffer shifted. So the
   products run over m in vectors of eight, reading the buffer in place; positions with
   j >= OW (the row's last KW - 1 columns) are computed and dropped, or carry a zero
   cotangent. The buffer, the weights and one sample's outputs stay in cache. */

#define DIRECT_MAX_K 1024 /* window entries C*KH*KW */
#define MR 4              /* output channels per register block */
#define NV 3              /* vectors of eight positions per register block */
#define MT (8 * NV)       /* positions per tile */

typedef struct {
    idx n, c, h, w, kh, kw, py, px, hp, wp, oh, ow, k, m, mt, len;
} conv_geo;

static idx round_up(idx a, idx b) { return (a + b - 1) / b * b; }

static conv_geo conv_geometry(const idx *shape, const idx *geo) {
    conv_geo g;
    g.n = shape[0], g.c = shape[1], g.h = shape[2], g.w = shape[3];
    g.kh = geo[0], g.kw = geo[1], g.py = geo[4], g.px = geo[5], g.oh = geo[6], g.ow = geo[7];
    g.hp = g.h + 2 * g.py, g.wp = g.w + 2 * g.px;
    g.k = g.c * g.kh * g.kw;
    g.m = g.oh * g.wp;           /* flattened positions of one output plane */
    g.mt = round_up(g.m, MT);    /* in whole tiles */
    /* the last read: off[K-1] + mt - 1 < c*hp*wp + kw + MT (as oh + kh - 1 = hp) */
    g.len = round_up(g.c * g.hp * g.wp + g.kw + MT, 8);
    return g;
}

/* Floats of scratch one call for samples [n0, n1) needs, given O output channels: the
   sample buffer, one sample's outputs or cotangents (O rounded up to MR rows of mt), and
   the weight gradient's eight-wide partial sums. */
EXPORT idx conv_direct_scratch(const idx *shape, const idx *geo, idx o) {
    conv_geo g = conv_geometry(shape, geo);
    idx opad = round_up(o, MR);
    return g.len + opad * g.mt + opad * round_up(g.k, NV) * 8;
}

static void window_offsets(const conv_geo *g, idx *off, idx kpad) {
    for (idx k = 0; k < kpad; k++) {
        idx c = k / (g->kh * g->kw), p = k / g->kw % g->kh, q = k % g->kw;
        off[k] = k < g->k ? c * g->hp * g->wp + p * g->wp + q : 0;
    }
}

/* Sample ni of x (element strides xs) into buf, zero padded. */
static void load_sample(const float *x, const idx *xs, const conv_geo *g, idx ni, float *buf) {
    memset(buf, 0, (size_t)g->len * sizeof(float));
    for (idx ci = 0; ci < g->c; ci++)
        for (idx y = 0; y < g->h; y++) {
            float *dst = buf + (ci * g->hp + y + g->py) * g->wp + g->px;
            const float *src = x + ni * xs[0] + ci * xs[1] + y * xs[2];
            if (xs[3] == 1) {
                memcpy(dst, src, (size_t)g->w * sizeof(float));
            } else {
                for (idx j = 0; j < g->w; j++) dst[j] = src[j * xs[3]];
            }
        }
}

/* Sample ni's rows of d (O, N, OH, OW, contiguous) into rows (rows x mt) at the flattened
   positions, zero elsewhere (the dropped columns, the tail, the rows from O on). */
static void load_cotangent(const float *d, const conv_geo *g, idx o, idx rows, idx ni,
                           float *dst) {
    memset(dst, 0, (size_t)(rows * g->mt) * sizeof(float));
    for (idx oi = 0; oi < o; oi++)
        for (idx i = 0; i < g->oh; i++)
            memcpy(dst + oi * g->mt + i * g->wp, d + ((oi * g->n + ni) * g->oh + i) * g->ow,
                   (size_t)g->ow * sizeof(float));
}

#if defined(__GNUC__) && defined(__x86_64__)
#include <immintrin.h>

EXPORT int conv_direct_supported(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}

/* out (O, N, OH, OW), contiguous: the weights wp (opad, K; O rows, then zero rows up to a
   multiple of MR) applied to the windows of x (N, C, H, W; element strides xs). */
__attribute__((target("avx2,fma")))
EXPORT void conv_direct_f32(const float *x, const idx *shape, const idx *xs, const idx *geo,
                            const float *wp, idx o, float *out, float *scratch, idx n0,
                            idx n1) {
    conv_geo g = conv_geometry(shape, geo);
    idx K = g.k, opad = round_up(o, MR);
    idx off[DIRECT_MAX_K];
    float *buf = scratch, *full = scratch + g.len;
    window_offsets(&g, off, K);
    for (idx ni = n0; ni < n1; ni++) {
        load_sample(x, xs, &g, ni, buf);
        for (idx m0 = 0; m0 < g.mt; m0 += MT)
            for (idx ob = 0; ob < opad; ob += MR) {
                __m256 acc[MR][NV];
                for (int r = 0; r < MR; r++)
                    for (int v = 0; v < NV; v++) acc[r][v] = _mm256_setzero_ps();
                const float *wr = wp + ob * K;
                for (idx k = 0; k < K; k++) {
                    const float *b = buf + off[k] + m0;
                    __m256 b0 = _mm256_loadu_ps(b), b1 = _mm256_loadu_ps(b + 8);
                    __m256 b2 = _mm256_loadu_ps(b + 16);
                    for (int r = 0; r < MR; r++) {
                        __m256 wv = _mm256_broadcast_ss(wr + r * K + k);
                        acc[r][0] = _mm256_fmadd_ps(wv, b0, acc[r][0]);
                        acc[r][1] = _mm256_fmadd_ps(wv, b1, acc[r][1]);
                        acc[r][2] = _mm256_fmadd_ps(wv, b2, acc[r][2]);
                    }
                }
                for (int r = 0; r < MR; r++)
                    for (int v = 0; v < NV; v++)
                        _mm256_storeu_ps(full + (ob + r) * g.mt + m0 + 8 * v, acc[r][v]);
            }
        for (idx oi = 0; oi < o; oi++) /* the kept columns of each row */
            for (idx i = 0; i < g.oh; i++)
                memcpy(out + ((oi * g.n + ni) * g.oh + i) * g.ow, full + oi * g.mt + i * g.wp,
                       (size_t)g.ow * sizeof(float));
    }
}

/* The weight gradient: dw (O, K) = the sum over samples n0..n1-1 and output pixels of
   d (O, N, OH, OW, contiguous) times the windows of x. The sums stay eight wide in the
   scratch until the end. */
__attribute__((target("avx2,fma")))
EXPORT void conv_direct_wgrad_f32(const float *x, const idx *shape, const idx *xs,
                                  const idx *geo, const float *d, idx o, float *dw,
                                  float *scratch, idx n0, idx n1) {
    conv_geo g = conv_geometry(shape, geo);
    idx K = g.k, opad = round_up(o, MR), kpad = round_up(K, NV);
    idx off[DIRECT_MAX_K + NV];
    float *buf = scratch, *drows = scratch + g.len, *part = drows + opad * g.mt;
    window_offsets(&g, off, kpad);
    memset(part, 0, (size_t)(opad * kpad * 8) * sizeof(float));
    for (idx ni = n0; ni < n1; ni++) {
        load_sample(x, xs, &g, ni, buf);
        load_cotangent(d, &g, o, opad, ni, drows);
        for (idx ob = 0; ob < opad; ob += MR)
            for (idx kb = 0; kb < kpad; kb += NV) {
                __m256 acc[MR][NV];
                float *pp = part + (ob * kpad + kb) * 8;
                for (int r = 0; r < MR; r++)
                    for (int u = 0; u < NV; u++) acc[r][u] = _mm256_loadu_ps(pp + (r * kpad + u) * 8);
                const float *b0 = buf + off[kb], *b1 = buf + off[kb + 1], *b2 = buf + off[kb + 2];
                const float *dr = drows + ob * g.mt;
                for (idx m = 0; m < g.mt; m += 8) {
                    __m256 x0 = _mm256_loadu_ps(b0 + m), x1 = _mm256_loadu_ps(b1 + m);
                    __m256 x2 = _mm256_loadu_ps(b2 + m);
                    for (int r = 0; r < MR; r++) {
                        __m256 dv = _mm256_loadu_ps(dr + r * g.mt + m);
                        acc[r][0] = _mm256_fmadd_ps(dv, x0, acc[r][0]);
                        acc[r][1] = _mm256_fmadd_ps(dv, x1, acc[r][1]);
                        acc[r][2] = _mm256_fmadd_ps(dv, x2, acc[r][2]);
                    }
                }
                for (int r = 0; r < MR; r++)
                    for (int u = 0; u < NV; u++) _mm256_storeu_ps(pp + (r * kpad + u) * 8, acc[r][u]);
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

/* The input gradient: dx (N, C, H, W), contiguous, of samples n0..n1-1 is the adjoint of
   the forward product, wk (O, kpad; K columns, then zero columns up to a multiple of 4)
   transposed times d (O, N, OH, OW, contiguous), scattered back along the windows: each
   tile's sums for four window entries are added into the padded buffer at their offsets.
   The four are a quarter of the window apart, so that one addition does not read what the
   previous one is still writing (neighbouring entries' offsets differ by one float). */
__attribute__((target("avx2,fma")))
EXPORT void conv_direct_igrad_f32(const float *d, const idx *shape, const idx *geo,
                                  const float *wk, idx o, float *dx, float *scratch, idx n0,
                                  idx n1) {
    conv_geo g = conv_geometry(shape, geo);
    idx kpad = round_up(g.k, 4), quarter = kpad / 4;
    idx off[DIRECT_MAX_K + 4];
    float *buf = scratch, *drows = scratch + g.len;
    window_offsets(&g, off, kpad);
    for (idx ni = n0; ni < n1; ni++) {
        load_cotangent(d, &g, o, o, ni, drows);
        memset(buf, 0, (size_t)g.len * sizeof(float));
        for (idx m0 = 0; m0 < g.mt; m0 += MT)
            for (idx kb = 0; kb < quarter; kb++) { /* window entries kb + u*quarter */
                __m256 acc[4][NV];
                for (int u = 0; u < 4; u++)
                    for (int v = 0; v < NV; v++) acc[u][v] = _mm256_setzero_ps();
                for (idx oi = 0; oi < o; oi++) {
                    const float *dr = drows + oi * g.mt + m0;
                    __m256 d0 = _mm256_loadu_ps(dr), d1 = _mm256_loadu_ps(dr + 8);
                    __m256 d2 = _mm256_loadu_ps(dr + 16);
                    const float *wr = wk + oi * kpad + kb;
                    for (int u = 0; u < 4; u++) {
                        __m256 wv = _mm256_broadcast_ss(wr + u * quarter);
                        acc[u][0] = _mm256_fmadd_ps(wv, d0, acc[u][0]);
                        acc[u][1] = _mm256_fmadd_ps(wv, d1, acc[u][1]);
                        acc[u][2] = _mm256_fmadd_ps(wv, d2, acc[u][2]);
                    }
                }
                for (int u = 0; u < 4; u++) {
                    float *t = buf + off[kb + u * quarter] + m0;
                    for (int v = 0; v < NV; v++)
                        _mm256_storeu_ps(t + 8 * v, _mm256_add_ps(_mm256_loadu_ps(t + 8 * v),
                                                                  acc[u][v]));
                }
            }
        for (idx ci = 0; ci < g.c; ci++) /* the buffer's inside, without the padding */
            for (idx y = 0; y < g.h; y++)
                memcpy(dx + ((ni * g.c + ci) * g.h + y) * g.w,
                       buf + (ci * g.hp + y + g.py) * g.wp + g.px, (size_t)g.w * sizeof(float));
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
