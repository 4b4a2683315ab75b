/* The direct convolution of _native.c (see its description there), written once for the
   element type T with AVX2 vectors VEC of L lanes: _native.c includes this file once per
   type, with NAME(f) (f with the type's suffix), TARGET and the vector operations VLOADU,
   VSTOREU, VZERO, VSET1 (a broadcast from memory), VFMA and VADD defined; it undefines
   them at its end, except TARGET. */

#define MT (L * NV) /* positions per tile */

static conv_geo NAME(conv_geometry)(const idx *shape, const idx *geo) {
    conv_geo g;
    g.n = shape[0], g.c = shape[1], g.h = shape[2], g.w = shape[3];
    g.kh = geo[0], g.kw = geo[1], g.sy = geo[2], g.sx = geo[3], g.py = geo[4], g.px = geo[5];
    g.oh = geo[6], g.ow = geo[7], g.dh = geo[8], g.dw = geo[9], g.groups = geo[10];
    g.cg = g.c / g.groups;
    /* each channel's padded plane as sy*sx phase planes of hp x wp (see _native.c) */
    g.hp = (g.h + 2 * g.py + g.sy - 1) / g.sy, g.wp = (g.w + 2 * g.px + g.sx - 1) / g.sx;
    g.cs = g.sy * g.sx * g.hp * g.wp; /* one channel's phase planes */
    g.k = g.cg * g.kh * g.kw; /* one group's window */
    g.m = g.oh * g.wp;           /* flattened positions of one output plane */
    g.mt = round_up(g.m, MT);    /* in whole tiles */
    /* the last read: off[k] + mt - 1 < c*cs + wp + MT (a window entry's row in its phase
       plane is at most hp - oh, its column at most wp - 1) */
    g.len = round_up(g.c * g.cs + g.wp + MT, 8);
    return g;
}

/* Elements of scratch a kernel call needs (thread_scratch), given O output channels: the
   sample buffer, one sample's outputs or cotangents (each group's O/G rows rounded up to
   MR rows of mt), and the weight gradient's partial sums, one vector wide. */
static idx NAME(conv_direct_scratch)(const idx *shape, const idx *geo, idx o) {
    conv_geo g = NAME(conv_geometry)(shape, geo);
    idx opad = g.groups * round_up(o / g.groups, MR);
    return g.len + opad * g.mt + opad * round_up(g.k, NV) * L;
}

static void NAME(window_offsets)(const conv_geo *g, idx *off, idx kpad) {
    for (idx k = 0; k < kpad; k++) {
        idx c = k / (g->kh * g->kw), ry = k / g->kw % g->kh * g->dh, rx = k % g->kw * g->dw;
        idx phase = ry % g->sy * g->sx + rx % g->sx;
        off[k] = k < g->k ? c * g->cs + (phase * g->hp + ry / g->sy) * g->wp + rx / g->sx : 0;
    }
}

/* Whether some window entry reads phase a of an axis of kernel size k, dilation d and
   stride s (a row or column phase; all do at stride 1). */
static int NAME(phase_read)(idx a, idx k, idx d, idx s) {
    for (idx p = 0; p < k; p++)
        if (p * d % s == a) return 1;
    return 0;
}

/* Sample ni of x (element strides xs) into buf, zero padded (to_buf; the phases no window
   entry reads are left zero), or buf's inside back into x: padded pixel (y', x') of
   channel c lies in phase plane (y' % sy, x' % sx) at row y' / sy and column x' / sx. */
static void NAME(move_sample)(T *x, const idx *xs, const conv_geo *g, idx ni, T *buf,
                              int to_buf) {
    if (to_buf) memset(buf, 0, (size_t)g->len * sizeof(T));
    int rows_read[8], cols_read[8]; /* by phase; DIRECT_MAX_STRIDE <= 8 */
    for (idx a = 0; a < g->sy && a < 8; a++)
        rows_read[a] = !to_buf || NAME(phase_read)(a, g->kh, g->dh, g->sy);
    for (idx b = 0; b < g->sx && b < 8; b++)
        cols_read[b] = !to_buf || NAME(phase_read)(b, g->kw, g->dw, g->sx);
    for (idx ci = 0; ci < g->c; ci++)
        for (idx y = 0; y < g->h; y++) {
            idx yy = y + g->py;
            if (!rows_read[yy % g->sy]) continue;
            T *row = buf + ci * g->cs + (yy % g->sy * g->sx * g->hp + yy / g->sy) * g->wp;
            T *src = x + ni * xs[0] + ci * xs[1] + y * xs[2];
            if (g->sx == 1 && xs[3] == 1) {
                if (to_buf)
                    memcpy(row + g->px, src, (size_t)g->w * sizeof(T));
                else
                    memcpy(src, row + g->px, (size_t)g->w * sizeof(T));
                continue;
            }
            for (idx b = 0; b < g->sx; b++) { /* the columns of phase b */
                if (!cols_read[b]) continue;
                idx x0 = ((b - g->px) % g->sx + g->sx) % g->sx, cnt = (g->w - x0 + g->sx - 1) / g->sx;
                T *dst = row + b * g->hp * g->wp + (x0 + g->px) / g->sx;
                T *from = src + x0 * xs[3];
                if (to_buf && g->sx == 2 && xs[3] == 1) { /* a loop the compiler vectorizes */
                    for (idx t = 0; t < cnt; t++) dst[t] = from[2 * t];
                } else if (to_buf) {
                    for (idx t = 0; t < cnt; t++) dst[t] = from[t * g->sx * xs[3]];
                } else {
                    for (idx t = 0; t < cnt; t++) from[t * g->sx * xs[3]] = dst[t];
                }
            }
        }
}

static void NAME(load_sample)(const T *x, const idx *xs, const conv_geo *g, idx ni, T *buf) {
    NAME(move_sample)((T *)x, xs, g, ni, buf, 1);
}

/* Padded rows r0..r1-1 of sample ni of d (O, N, OH, OW, contiguous) into dst (r1 - r0
   rows of mt) at the flattened positions, zero elsewhere (the dropped columns, the tail,
   the padding rows). Each group's og = O/G rows are padded to opg, a multiple of MR: row
   r is channel (r / opg)*og + r % opg, or padding when r % opg >= og. */
static void NAME(load_cotangent)(const T *d, const conv_geo *g, idx o, idx r0, idx r1, idx ni,
                           T *dst) {
    idx og = o / g->groups, opg = round_up(og, MR);
    memset(dst, 0, (size_t)((r1 - r0) * g->mt) * sizeof(T));
    for (idx r = r0; r < r1; r++) {
        if (r % opg >= og) continue;
        idx oi = r / opg * og + r % opg;
        for (idx i = 0; i < g->oh; i++)
            memcpy(dst + (r - r0) * g->mt + i * g->wp,
                   d + ((oi * g->n + ni) * g->oh + i) * g->ow, (size_t)g->ow * sizeof(T));
    }
}

/* out (O, N, OH, OW), contiguous: the weights wp (G x opg rows of K; each group's O/G
   rows, then zero rows up to opg, a multiple of MR) applied to the windows of x (N, C, H,
   W; element strides xs) over the group's C/G channels, plus the bias bp (G x opg), with
   which the sums start. */
TARGET
EXPORT void NAME(conv_direct)(const T *x, const idx *shape, const idx *xs, const idx *geo,
                            const T *wp, const T *bp, idx o, T *out, idx n0, idx n1) {
    conv_geo g = NAME(conv_geometry)(shape, geo);
    idx K = g.k, og = o / g.groups, opg = round_up(og, MR);
    idx off[DIRECT_MAX_K];
    T *scratch = thread_scratch((size_t)NAME(conv_direct_scratch)(shape, geo, o) * sizeof(T));
    if (scratch == NULL) return; /* run_kernel raises MemoryError */
    T *buf = scratch, *full = scratch + g.len;
    NAME(window_offsets)(&g, off, K);
    for (idx ni = n0; ni < n1; ni++) {
        NAME(load_sample)(x, xs, &g, ni, buf);
        for (idx grp = 0; grp < g.groups; grp++) {
        const T *bg = buf + grp * g.cg * g.cs, *wg = wp + grp * opg * K;
        const T *bpg = bp + grp * opg;
        for (idx m0 = 0; m0 < g.mt; m0 += MT)
            for (idx ob = 0; ob < opg; ob += MR) {
                VEC acc[MR][NV];
                for (int r = 0; r < MR; r++)
                    for (int v = 0; v < NV; v++) acc[r][v] = VSET1(bpg + ob + r);
                const T *wr = wg + ob * K;
                for (idx k = 0; k < K; k++) {
                    const T *b = bg + off[k] + m0;
                    VEC b0 = VLOADU(b), b1 = VLOADU(b + L);
                    VEC b2 = VLOADU(b + 2 * L);
                    for (int r = 0; r < MR; r++) {
                        VEC wv = VSET1(wr + r * K + k);
                        acc[r][0] = VFMA(wv, b0, acc[r][0]);
                        acc[r][1] = VFMA(wv, b1, acc[r][1]);
                        acc[r][2] = VFMA(wv, b2, acc[r][2]);
                    }
                }
                for (int r = 0; r < MR; r++)
                    for (int v = 0; v < NV; v++)
                        VSTOREU(full + (ob + r) * g.mt + m0 + L * v, acc[r][v]);
            }
        for (idx oi = 0; oi < og; oi++) /* the kept columns of each row */
            for (idx i = 0; i < g.oh; i++)
                memcpy(out + (((grp * og + oi) * g.n + ni) * g.oh + i) * g.ow,
                       full + oi * g.mt + i * g.wp, (size_t)g.ow * sizeof(T));
        }
    }
}

/* The weight gradient of samples n0..n1-1: dw (O, K), the sum over those samples and
   their output pixels of d (O, N, OH, OW, contiguous) times the windows of x over each
   row's group of channels. The threads share the batch in fixed ranges (diffkit/ops/
   native.py sums their parts in order), so that each sum is taken in one order whatever
   their number. The sums stay one vector wide in the scratch until the end. */
TARGET
EXPORT void NAME(conv_direct_wgrad)(const T *x, const idx *shape, const idx *xs,
                                  const idx *geo, const T *d, idx o, T *dw,
                                  idx n0, idx n1) {
    conv_geo g = NAME(conv_geometry)(shape, geo);
    idx K = g.k, kpad = round_up(K, NV);
    idx og = o / g.groups, opg = round_up(og, MR), r0 = 0, r1 = g.groups * opg;
    idx off[DIRECT_MAX_K + NV];
    T *scratch = thread_scratch((size_t)NAME(conv_direct_scratch)(shape, geo, o) * sizeof(T));
    if (scratch == NULL) return; /* run_kernel raises MemoryError */
    T *buf = scratch, *drows = scratch + g.len, *part = drows + (r1 - r0) * g.mt;
    NAME(window_offsets)(&g, off, kpad);
    memset(part, 0, (size_t)((r1 - r0) * kpad * L) * sizeof(T));
    for (idx ni = n0; ni < n1; ni++) {
        NAME(load_sample)(x, xs, &g, ni, buf);
        NAME(load_cotangent)(d, &g, o, r0, r1, ni, drows);
        for (idx ob = 0; ob < r1 - r0; ob += MR) {
            const T *bg = buf + (r0 + ob) / opg * g.cg * g.cs; /* the block's group */
            for (idx kb = 0; kb < kpad; kb += NV) {
                VEC acc[MR][NV];
                T *pp = part + (ob * kpad + kb) * L;
                for (int r = 0; r < MR; r++)
                    for (int u = 0; u < NV; u++) acc[r][u] = VLOADU(pp + (r * kpad + u) * L);
                const T *v0 = bg + off[kb], *v1 = bg + off[kb + 1], *v2 = bg + off[kb + 2];
                const T *dr = drows + ob * g.mt;
                for (idx m = 0; m < g.mt; m += L) {
                    VEC x0 = VLOADU(v0 + m), x1 = VLOADU(v1 + m);
                    VEC x2 = VLOADU(v2 + m);
                    for (int r = 0; r < MR; r++) {
                        VEC dv = VLOADU(dr + r * g.mt + m);
                        acc[r][0] = VFMA(dv, x0, acc[r][0]);
                        acc[r][1] = VFMA(dv, x1, acc[r][1]);
                        acc[r][2] = VFMA(dv, x2, acc[r][2]);
                    }
                }
                for (int r = 0; r < MR; r++)
                    for (int u = 0; u < NV; u++) VSTOREU(pp + (r * kpad + u) * L, acc[r][u]);
            }
        }
    }
    for (idx r = r0; r < r1; r++) {
        if (r % opg >= og) continue; /* a padding row */
        idx oi = r / opg * og + r % opg;
        for (idx k = 0; k < K; k++) {
            const T *pp = part + ((r - r0) * kpad + k) * L;
            T sum = 0;
            for (int v = 0; v < L; v++) sum += pp[v];
            dw[oi * K + k] = sum;
        }
    }
}

/* The input gradient: dx (N, C, H, W), contiguous, of samples n0..n1-1 is the adjoint of
   the forward product, wk (O, kpad; K columns, then zero columns up to a multiple of 4)
   transposed times d (O, N, OH, OW, contiguous), group by group, scattered back along the
   windows: each tile's sums for four window entries are added into the padded buffer at
   their offsets (in the group's channels; the sums at positions beyond a group's last
   column are zero, as their cotangents are).
   The four are a quarter of the window apart, so that one addition does not read what the
   previous one is still writing (neighbouring entries' offsets differ by one T). */
TARGET
EXPORT void NAME(conv_direct_igrad)(const T *d, const idx *shape, const idx *geo,
                                  const T *wk, idx o, T *dx, idx n0,
                                  idx n1) {
    conv_geo g = NAME(conv_geometry)(shape, geo);
    idx kpad = round_up(g.k, 4), quarter = kpad / 4;
    idx og = o / g.groups, opg = round_up(og, MR);
    idx off[DIRECT_MAX_K + 4];
    T *scratch = thread_scratch((size_t)NAME(conv_direct_scratch)(shape, geo, o) * sizeof(T));
    if (scratch == NULL) return; /* run_kernel raises MemoryError */
    T *buf = scratch, *drows = scratch + g.len;
    idx dxs[4] = {g.c * g.h * g.w, g.h * g.w, g.w, 1};
    NAME(window_offsets)(&g, off, kpad);
    for (idx ni = n0; ni < n1; ni++) {
        NAME(load_cotangent)(d, &g, o, 0, g.groups * opg, ni, drows);
        memset(buf, 0, (size_t)g.len * sizeof(T));
        for (idx grp = 0; grp < g.groups; grp++) {
        T *bg = buf + grp * g.cg * g.cs;
        for (idx m0 = 0; m0 < g.mt; m0 += MT)
            for (idx kb = 0; kb < quarter; kb++) { /* window entries kb + u*quarter */
                VEC acc[4][NV];
                for (int u = 0; u < 4; u++)
                    for (int v = 0; v < NV; v++) acc[u][v] = VZERO();
                for (idx oi = 0; oi < og; oi++) {
                    const T *dr = drows + (grp * opg + oi) * g.mt + m0;
                    VEC d0 = VLOADU(dr), d1 = VLOADU(dr + L);
                    VEC d2 = VLOADU(dr + 2 * L);
                    const T *wr = wk + (grp * og + oi) * kpad + kb;
                    for (int u = 0; u < 4; u++) {
                        VEC wv = VSET1(wr + u * quarter);
                        acc[u][0] = VFMA(wv, d0, acc[u][0]);
                        acc[u][1] = VFMA(wv, d1, acc[u][1]);
                        acc[u][2] = VFMA(wv, d2, acc[u][2]);
                    }
                }
                for (int u = 0; u < 4; u++) {
                    T *t = bg + off[kb + u * quarter] + m0;
                    for (int v = 0; v < NV; v++)
                        VSTOREU(t + L * v, VADD(VLOADU(t + L * v),
                                                                  acc[u][v]));
                }
            }
        }
        NAME(move_sample)(dx, dxs, &g, ni, buf, 0); /* the inside, without the padding */
    }
}

#undef MT
/* the parameters, so that the file can be included again for another type */
#undef NAME
#undef T
#undef L
#undef VEC
#undef VLOADU
#undef VSTOREU
#undef VZERO
#undef VSET1
#undef VFMA
#undef VADD
