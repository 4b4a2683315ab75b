/* The kernels of _native.c, written once for the element type T: _native.c includes
   this file once per type, with T and NAME(f) (the function name f with the type's suffix)
   defined. */

/* Every kernel works on the samples n0 <= ni < n1 of the batch only, writing their part of
   the outputs and nothing else, so that threads can share a batch between them. */

/* x (N, C, H, W) with element strides xs -> out (C*KH*KW, N*OH*OW), row-major. */
EXPORT void NAME(im2col)(const T *x, const idx *shape, const idx *xs, const idx *geo, T *out,
                         idx n0, idx n1) {
    idx n = shape[0], c = shape[1], h = shape[2], w = shape[3];
    idx kh = geo[0], kw = geo[1], sy = geo[2], sx = geo[3], py = geo[4], px = geo[5];
    idx oh = geo[6], ow = geo[7];
    for (idx ci = 0; ci < c; ci++)
        for (idx p = 0; p < kh; p++)
            for (idx q = 0; q < kw; q++) {
                T *row = out + ((ci * kh + p) * kw + q) * n * oh * ow;
                idx lo, hi;
                column_range(q, sx, px, w, ow, &lo, &hi);
                for (idx ni = n0; ni < n1; ni++)
                    for (idx i = 0; i < oh; i++) {
                        T *dst = row + (ni * oh + i) * ow;
                        idx y = i * sy + p - py;
                        if (y < 0 || y >= h || lo >= hi) {
                            memset(dst, 0, (size_t)ow * sizeof(T));
                            continue;
                        }
                        const T *src = x + ni * xs[0] + ci * xs[1] + y * xs[2];
                        for (idx j = 0; j < lo; j++) dst[j] = 0;
                        if (sx == 1 && xs[3] == 1) {
                            memcpy(dst + lo, src + (lo + q - px), (size_t)(hi - lo) * sizeof(T));
                        } else {
                            for (idx j = lo; j < hi; j++) dst[j] = src[(j * sx + q - px) * xs[3]];
                        }
                        for (idx j = hi; j < ow; j++) dst[j] = 0;
                    }
            }
}

/* The adjoint: cols (C*KH*KW, N*OH*OW, row-major) scatter-added into out (N, C, H, W),
   contiguous, which this overwrites. */
EXPORT void NAME(col2im)(const T *cols, const idx *shape, const idx *geo, T *out, idx n0,
                         idx n1) {
    idx n = shape[0], c = shape[1], h = shape[2], w = shape[3];
    idx kh = geo[0], kw = geo[1], sy = geo[2], sx = geo[3], py = geo[4], px = geo[5];
    idx oh = geo[6], ow = geo[7];
    for (idx ni = n0; ni < n1; ni++)
        for (idx ci = 0; ci < c; ci++) {
            T *plane = out + (ni * c + ci) * h * w;
            memset(plane, 0, (size_t)(h * w) * sizeof(T));
            for (idx p = 0; p < kh; p++)
                for (idx q = 0; q < kw; q++) {
                    const T *row = cols + (((ci * kh + p) * kw + q) * n + ni) * oh * ow;
                    idx lo, hi;
                    column_range(q, sx, px, w, ow, &lo, &hi);
                    for (idx i = 0; i < oh; i++) {
                        idx y = i * sy + p - py;
                        if (y < 0 || y >= h) continue;
                        T *dst = plane + y * w + q - px;
                        const T *src = row + i * ow;
                        if (sx == 1) {
                            for (idx j = lo; j < hi; j++) dst[j] += src[j];
                        } else {
                            for (idx j = lo; j < hi; j++) dst[j * sx] += src[j];
                        }
                    }
                }
        }
}

/* max_pool for 2x2 windows at stride 2 without padding (2*OH <= H, 2*OW <= W): out (N, C,
   OH, OW; element strides os) is the maximum of each window of x (element strides xs),
   NaN where the window holds NaN, as numpy's maximum; branch-free. */
EXPORT void NAME(max_pool_2x2)(const T *x, const idx *shape, const idx *xs, const idx *geo,
                               T *out, const idx *os, idx n0, idx n1) {
    idx c = shape[1], oh = geo[6], ow = geo[7];
    idx x2s = xs[2], x3s = xs[3], o2s = os[2], o3s = os[3]; /* in locals: see below */
    for (idx ni = n0; ni < n1; ni++)
        for (idx ci = 0; ci < c; ci++) {
            const T *plane = x + ni * xs[0] + ci * xs[1];
            T *o = out + ni * os[0] + ci * os[1];
            for (idx i = 0; i < oh; i++) {
                const T *r0 = plane + 2 * i * x2s, *r1 = r0 + x2s;
                if (x3s == 1 && o3s == 1) { /* unit strides: a loop the compiler vectorizes */
                    T *orow = o + i * o2s;
                    for (idx j = 0; j < ow; j++) {
                        T a = r0[2 * j], b = r0[2 * j + 1], e = r1[2 * j], f = r1[2 * j + 1];
                        T m0 = a > b ? a : b, m1 = e > f ? e : f, m = m0 > m1 ? m0 : m1;
                        int nan = (a != a) | (b != b) | (e != e) | (f != f);
                        orow[j] = nan ? a + b + e + f : m;
                    }
                    continue;
                }
                for (idx j = 0; j < ow; j++) {
                    T a = r0[2 * j * x3s], b = r0[(2 * j + 1) * x3s];
                    T e = r1[2 * j * x3s], f = r1[(2 * j + 1) * x3s];
                    T m0 = a > b ? a : b, m1 = e > f ? e : f, m = m0 > m1 ? m0 : m1;
                    int nan = (a != a) | (b != b) | (e != e) | (f != f);
                    o[i * o2s + j * o3s] = nan ? a + b + e + f : m; /* NaN if any is */
                }
            }
        }
}

/* max_pool_backward for the common 2x2 windows at stride 2 without padding, rows of x and
   grad contiguous: each window's four entries are written once (the cotangent at the
   first maximum, 0 elsewhere), so grad needs no clearing first except for a last row or
   column no window covers; branch-free. */
static void NAME(max_pool_backward_2x2)(const T *ct, const T *x, const T *y, const idx *shape,
                                      const idx *st, const idx *geo, T *grad, idx n0, idx n1) {
    idx c = shape[1], h = shape[2], w = shape[3], oh = geo[6], ow = geo[7];
    idx x2s = st[2], g2s = st[6], y2s = st[10], y3s = st[11], c2s = st[14], c3s = st[15];
    for (idx ni = n0; ni < n1; ni++)
        for (idx ci = 0; ci < c; ci++) {
            const T *plane = x + ni * st[0] + ci * st[1];
            const T *yp = y + ni * st[8] + ci * st[9], *cp = ct + ni * st[12] + ci * st[13];
            T *g = grad + ni * st[4] + ci * st[5];
            for (idx i = 0; i < oh; i++) {
                const T *r0 = plane + 2 * i * x2s, *r1 = r0 + x2s;
                T *g0 = g + 2 * i * g2s, *g1 = g0 + g2s;
                for (idx j = 0; j < ow; j++) {
                    T m = yp[i * y2s + j * y3s], d = cp[i * c2s + j * c3s];
                    T a = r0[2 * j], b = r0[2 * j + 1], e = r1[2 * j], f = r1[2 * j + 1];
                    int ha = a == m, hb = !ha & (b == m);
                    int he = !(ha | hb) & (e == m), hf = !(ha | hb | he) & (f == m);
                    g0[2 * j] = ha ? d : (T)0;
                    g0[2 * j + 1] = hb ? d : (T)0;
                    g1[2 * j] = he ? d : (T)0;
                    g1[2 * j + 1] = hf ? d : (T)0;
                }
                for (idx col = 2 * ow; col < w; col++) g0[col] = g1[col] = 0;
            }
            for (idx r = 2 * oh; r < h; r++) memset(g + r * g2s, 0, (size_t)w * sizeof(T));
        }
}

/* The gradient of max_pool: each window's cotangent ct goes to the window's first element,
   in row-major order over the window, equal to its maximum y; grad is overwritten. x, grad,
   y and ct are (N, C, H, W), (N, C, H, W), (N, C, OH, OW) and (N, C, OH, OW) with element
   strides st[0..3], st[4..7], st[8..11] and st[12..15]. The search is branch-free: where
   the maximum lies depends on the data, so a branch would be mispredicted often. */
EXPORT void NAME(max_pool_backward)(const T *ct, const T *x, const T *y, const idx *shape,
                                  const idx *st, const idx *geo, T *grad, idx n0, idx n1) {
    idx c = shape[1], h = shape[2], w = shape[3];
    idx kh = geo[0], kw = geo[1], sy = geo[2], sx = geo[3], py = geo[4], px = geo[5];
    idx oh = geo[6], ow = geo[7];
    /* the strides in locals, which the stores into grad cannot change */
    idx x2s = st[2], x3s = st[3], g2s = st[6], g3s = st[7];
    idx y2s = st[10], y3s = st[11], c2s = st[14], c3s = st[15];
    if (kh == 2 && kw == 2 && sy == 2 && sx == 2 && py == 0 && px == 0 && 2 * oh <= h &&
        2 * ow <= w && x3s == 1 && g3s == 1) {
        NAME(max_pool_backward_2x2)(ct, x, y, shape, st, geo, grad, n0, n1);
        return;
    }
    for (idx ni = n0; ni < n1; ni++)
        for (idx ci = 0; ci < c; ci++) {
            const T *plane = x + ni * st[0] + ci * st[1];
            const T *yp = y + ni * st[8] + ci * st[9], *cp = ct + ni * st[12] + ci * st[13];
            T *g = grad + ni * st[4] + ci * st[5];
            for (idx r = 0; r < h; r++) {
                if (g3s == 1) {
                    memset(g + r * g2s, 0, (size_t)w * sizeof(T));
                } else {
                    for (idx col = 0; col < w; col++) g[r * g2s + col * g3s] = 0;
                }
            }
            for (idx i = 0; i < oh; i++) {
                idx y0 = i * sy - py, y1 = y0 + kh;
                if (y0 < 0) y0 = 0;
                if (y1 > h) y1 = h;
                for (idx j = 0; j < ow; j++) {
                    idx x0 = j * sx - px, x1 = x0 + kw;
                    if (x0 < 0) x0 = 0;
                    if (x1 > w) x1 = w;
                    T m = yp[i * y2s + j * y3s];
                    idx at = -1;
                    for (idx r = y1 - 1; r >= y0; r--) /* backwards: the first match wins */
                        for (idx col = x1 - 1; col >= x0; col--)
                            at = plane[r * x2s + col * x3s] == m ? r * g2s + col * g3s : at;
                    if (at >= 0) g[at] += cp[i * c2s + j * c3s];
                }
            }
        }
}
