/* Greedy graph colouring kernels of diffkit's sparse derivatives (diffkit/differentiators/
   coloring.py holds the numpy versions that give the same colours where this module is not
   built). Every array is a contiguous int64 buffer: a graph is given by its CSR arrays
   (indptr, indices), symmetric and without diagonal; an order lists the vertices in the
   order they are coloured.

   - greedy_columns: the columns of a pattern (given by its CSC and CSR arrays), each the
     least colour of no column sharing a row with it (partial distance-2 colouring; on a
     graph and the identity, the least colour none of a vertex's neighbours has);
   - star: the least colour that keeps neighbours apart and leaves no path on four vertices
     in two colours;
   - acyclic: the least colour that keeps neighbours apart and closes no cycle in two colours
     (a union-find per pair of colours, over (vertex, other colour) keys);
   - smallest_last, incidence_degree: the vertex orders, ties to the smaller index. */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    Py_buffer view;
    int64_t *data;
    Py_ssize_t n;
} Arr;

static int get_arr(PyObject *obj, Arr *a, int writable, const char *what) {
    int flags = PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | (writable ? PyBUF_WRITABLE : 0);
    if (PyObject_GetBuffer(obj, &a->view, flags) < 0) return -1;
    if (a->view.itemsize != 8 || (a->view.format && strcmp(a->view.format, "q") != 0 &&
                                  strcmp(a->view.format, "l") != 0)) {
        PyBuffer_Release(&a->view);
        PyErr_Format(PyExc_TypeError, "%s must be a contiguous int64 array", what);
        return -1;
    }
    a->data = (int64_t *)a->view.buf;
    a->n = a->view.len / 8;
    return 0;
}

static void release(Arr *arrs, int k) {
    for (int i = 0; i < k; i++) PyBuffer_Release(&arrs[i].view);
}

/* Parse k buffers (the last `writable` of them writable); checks the CSR bounds. */
static int parse(PyObject *args, Arr *a, int k, int writable) {
    if (PyTuple_GET_SIZE(args) != k) {
        PyErr_Format(PyExc_TypeError, "expected %d arrays", k);
        return -1;
    }
    for (int i = 0; i < k; i++) {
        if (get_arr(PyTuple_GET_ITEM(args, i), &a[i], i >= k - writable, "argument") < 0) {
            release(a, i);
            return -1;
        }
    }
    return 0;
}

static int check_graph(Arr *ptr, Arr *idx, Py_ssize_t n) {
    if (ptr->n != n + 1 || ptr->data[0] != 0 || ptr->data[n] != idx->n) goto bad;
    for (Py_ssize_t v = 0; v < n; v++)
        if (ptr->data[v + 1] < ptr->data[v]) goto bad;
    return 0;
bad:
    PyErr_SetString(PyExc_ValueError, "malformed CSR arrays");
    return -1;
}

static int check_order(Arr *order, Py_ssize_t n, Py_ssize_t m, Arr *idx) {
    for (Py_ssize_t k = 0; order && k < order->n; k++)
        if (order->data[k] < 0 || order->data[k] >= n) goto bad;
    for (Py_ssize_t k = 0; k < idx->n; k++)
        if (idx->data[k] < 0 || idx->data[k] >= m) goto bad;
    return 0;
bad:
    PyErr_SetString(PyExc_ValueError, "vertex number out of range");
    return -1;
}

static int64_t least_free(const int64_t *forbidden, int64_t stamp) {
    int64_t c = 0;
    while (forbidden[c] == stamp) c++;
    return c;
}

/* greedy_columns(col_ptr, col_rows, row_ptr, row_cols, order, colors) -> number of colours:
   column v takes the least colour of no column w sharing a row with it. With a graph's
   arrays as the columns and the identity as the rows, a distance-1 colouring. */
static PyObject *greedy_columns(PyObject *Py_UNUSED(self), PyObject *args) {
    Arr a[6];
    if (parse(args, a, 6, 1) < 0) return NULL;
    Py_ssize_t n = a[5].n, m = a[2].n - 1;
    int64_t *cptr = a[0].data, *crow = a[1].data, *rptr = a[2].data, *rcol = a[3].data;
    int64_t *order = a[4].data, *col = a[5].data;
    int64_t count = 0;
    int64_t *forbidden = NULL;
    if (m < 0 || check_graph(&a[0], &a[1], n) < 0 || check_graph(&a[2], &a[3], m) < 0 ||
        check_order(&a[4], n, m, &a[1]) < 0 || check_order(&a[4], n, n, &a[3]) < 0)
        goto done;
    forbidden = malloc((size_t)(n + 2) * sizeof(int64_t));
    if (!forbidden) { PyErr_NoMemory(); goto done; }
    for (Py_ssize_t i = 0; i < n + 2; i++) forbidden[i] = -1;
    for (Py_ssize_t i = 0; i < n; i++) col[i] = -1;
    for (Py_ssize_t k = 0; k < a[4].n; k++) {
        int64_t v = order[k];
        for (int64_t e = cptr[v]; e < cptr[v + 1]; e++) {
            int64_t r = crow[e];
            for (int64_t f = rptr[r]; f < rptr[r + 1]; f++) {
                int64_t c = col[rcol[f]];
                if (c >= 0) forbidden[c] = v;
            }
        }
        col[v] = least_free(forbidden, v);
        if (col[v] + 1 > count) count = col[v] + 1;
    }
done:
    free(forbidden);
    release(a, 6);
    return PyErr_Occurred() ? NULL : PyLong_FromLongLong(count);
}

/* star(indptr, indices, order, colors) -> number of colours. counts[x * cap + c] holds the
   neighbours of x coloured c. */
static PyObject *star(PyObject *Py_UNUSED(self), PyObject *args) {
    Arr a[4];
    if (parse(args, a, 4, 1) < 0) return NULL;
    Py_ssize_t n = a[3].n;
    int64_t *ptr = a[0].data, *idx = a[1].data, *order = a[2].data, *col = a[3].data;
    int64_t count = 0, cap = 8;
    int64_t *forbidden = NULL, *tally = NULL, *first = NULL;
    int32_t *counts = NULL;
    if (check_graph(&a[0], &a[1], n) < 0 || check_order(&a[2], n, n, &a[1]) < 0) goto done;
    forbidden = malloc((size_t)(n + 2) * sizeof(int64_t));
    tally = calloc((size_t)(n + 2), sizeof(int64_t));
    first = malloc((size_t)(n + 2) * sizeof(int64_t));
    counts = calloc((size_t)(n > 0 ? n : 1) * cap, sizeof(int32_t));
    if (!forbidden || !tally || !first || !counts) { PyErr_NoMemory(); goto done; }
    for (Py_ssize_t i = 0; i < n + 2; i++) forbidden[i] = first[i] = -1;
    for (Py_ssize_t i = 0; i < n; i++) col[i] = -1;
    for (Py_ssize_t k = 0; k < a[2].n; k++) {
        int64_t v = order[k];
        int repeated = 0;
        for (int64_t e = ptr[v]; e < ptr[v + 1]; e++) {
            int64_t w = idx[e], cw = col[w];
            if (cw < 0) continue;
            forbidden[cw] = v;
            if (first[cw] != v) { first[cw] = v; tally[cw] = 0; }
            if (++tally[cw] >= 2) repeated = 1;
            /* paths v - w - x - y with c(x) = c(v), c(y) = c(w) */
            for (int64_t f = ptr[w]; f < ptr[w + 1]; f++) {
                int64_t x = idx[f], cx = col[x];
                if (x == v || cx < 0) continue;
                if (counts[x * cap + cw] >= 2) forbidden[cx] = v;
            }
        }
        if (repeated) { /* paths w - v - x - y with c(w) = c(x), c(y) = c(v) */
            for (int64_t e = ptr[v]; e < ptr[v + 1]; e++) {
                int64_t w = idx[e], cw = col[w];
                if (cw < 0 || tally[cw] < 2) continue;
                for (int64_t f = ptr[w]; f < ptr[w + 1]; f++) {
                    int64_t y = idx[f];
                    if (y != v && col[y] >= 0) forbidden[col[y]] = v;
                }
            }
        }
        int64_t c = least_free(forbidden, v);
        col[v] = c;
        if (c + 1 > count) count = c + 1;
        if (c >= cap) {
            int64_t bigger = cap;
            while (bigger <= c) bigger *= 2;
            int32_t *grown = calloc((size_t)(n > 0 ? n : 1) * bigger, sizeof(int32_t));
            if (!grown) { PyErr_NoMemory(); goto done; }
            for (Py_ssize_t x = 0; x < n; x++)
                memcpy(grown + x * bigger, counts + x * cap, (size_t)cap * sizeof(int32_t));
            free(counts);
            counts = grown;
            cap = bigger;
        }
        for (int64_t e = ptr[v]; e < ptr[v + 1]; e++) counts[idx[e] * cap + c]++;
    }
done:
    free(forbidden);
    free(tally);
    free(first);
    free(counts);
    release(a, 4);
    return PyErr_Occurred() ? NULL : PyLong_FromLongLong(count);
}

/* ---- acyclic colouring: union-find over keys (vertex, other colour) ------------------------ */

typedef struct {
    int64_t *keys; /* vertex * stride + colour, or -1 */
    int64_t *node; /* union-find node of the key */
    int64_t size;  /* a power of two */
    int64_t used;
    int64_t *parent;
    int64_t nodes, node_cap;
} Forests;

static int64_t hash_slot(Forests *F, int64_t key) {
    uint64_t h = (uint64_t)key * 0x9E3779B97F4A7C15ULL;
    int64_t s = (int64_t)(h >> 17) & (F->size - 1);
    while (F->keys[s] != -1 && F->keys[s] != key) s = (s + 1) & (F->size - 1);
    return s;
}

static int grow_table(Forests *F) {
    int64_t old = F->size, *okeys = F->keys, *onode = F->node;
    F->size = old * 2;
    F->keys = malloc((size_t)F->size * sizeof(int64_t));
    F->node = malloc((size_t)F->size * sizeof(int64_t));
    if (!F->keys || !F->node) return -1;
    for (int64_t s = 0; s < F->size; s++) F->keys[s] = -1;
    for (int64_t s = 0; s < old; s++) {
        if (okeys[s] == -1) continue;
        int64_t t = hash_slot(F, okeys[s]);
        F->keys[t] = okeys[s];
        F->node[t] = onode[s];
    }
    free(okeys);
    free(onode);
    return 0;
}

/* The union-find node of key, created (a root) if new; -1 if out of memory. */
static int64_t key_node(Forests *F, int64_t key, int create) {
    int64_t s = hash_slot(F, key);
    if (F->keys[s] == key) return F->node[s];
    if (!create) return -2;
    if (2 * (F->used + 1) > F->size) {
        if (grow_table(F) < 0) return -1;
        s = hash_slot(F, key);
    }
    if (F->nodes == F->node_cap) {
        F->node_cap *= 2;
        int64_t *p = realloc(F->parent, (size_t)F->node_cap * sizeof(int64_t));
        if (!p) return -1;
        F->parent = p;
    }
    F->parent[F->nodes] = F->nodes;
    F->keys[s] = key;
    F->node[s] = F->nodes;
    F->used++;
    return F->nodes++;
}

static int64_t find(Forests *F, int64_t x) {
    while (F->parent[x] != x) {
        F->parent[x] = F->parent[F->parent[x]];
        x = F->parent[x];
    }
    return x;
}

/* acyclic(indptr, indices, order, colors) -> number of colours. The keys (x, b) of a vertex
   x coloured a name its place in the forest of colours {a, b}; colouring v with c joins
   (v, c(w)) and (w, c) for each coloured neighbour w, and closes a two-coloured cycle iff two
   neighbours w1, w2 of one colour already share a tree of {c, c(w)}. */
static PyObject *acyclic(PyObject *Py_UNUSED(self), PyObject *args) {
    Arr a[4];
    if (parse(args, a, 4, 1) < 0) return NULL;
    Py_ssize_t n = a[3].n;
    int64_t *ptr = a[0].data, *idx = a[1].data, *order = a[2].data, *col = a[3].data;
    int64_t count = 0, stride = (int64_t)n + 1;
    int64_t *forbidden = NULL, *seen = NULL, *seen_root = NULL;
    Forests F = {0};
    if (check_graph(&a[0], &a[1], n) < 0 || check_order(&a[2], n, n, &a[1]) < 0) goto done;
    forbidden = malloc((size_t)(n + 2) * sizeof(int64_t));
    F.size = 1024;
    F.keys = malloc((size_t)F.size * sizeof(int64_t));
    F.node = malloc((size_t)F.size * sizeof(int64_t));
    F.node_cap = 1024;
    F.parent = malloc((size_t)F.node_cap * sizeof(int64_t));
    if (!forbidden || !F.keys || !F.node || !F.parent) { PyErr_NoMemory(); goto done; }
    for (int64_t s = 0; s < F.size; s++) F.keys[s] = -1;
    for (Py_ssize_t i = 0; i < n + 2; i++) forbidden[i] = -1;
    for (Py_ssize_t i = 0; i < n; i++) col[i] = -1;
    int64_t deg_max = 0;
    for (Py_ssize_t v = 0; v < n; v++)
        if (ptr[v + 1] - ptr[v] > deg_max) deg_max = ptr[v + 1] - ptr[v];
    seen = malloc((size_t)(deg_max + 1) * sizeof(int64_t));
    seen_root = malloc((size_t)(deg_max + 1) * sizeof(int64_t));
    if (!seen || !seen_root) { PyErr_NoMemory(); goto done; }
    for (Py_ssize_t k = 0; k < a[2].n; k++) {
        int64_t v = order[k];
        for (int64_t e = ptr[v]; e < ptr[v + 1]; e++)
            if (col[idx[e]] >= 0) forbidden[col[idx[e]]] = v;
        int64_t c = -1;
        for (int64_t cand = 0;; cand++) {
            if (forbidden[cand] == v) continue;
            /* a cycle iff two coloured neighbours of one colour b share a root of {cand, b} */
            int ok = 1;
            int64_t s = 0;
            for (int64_t e = ptr[v]; e < ptr[v + 1] && ok; e++) {
                int64_t w = idx[e], b = col[w];
                if (b < 0) continue;
                int64_t node = key_node(&F, w * stride + cand, 0);
                int64_t root = node >= 0 ? find(&F, node) : -(w + 3); /* alone: its own tree */
                for (int64_t t = 0; t < s; t++)
                    if (seen[t] == b && seen_root[t] == root) { ok = 0; break; }
                seen[s] = b;
                seen_root[s] = root;
                s++;
            }
            if (ok) { c = cand; break; }
        }
        col[v] = c;
        if (c + 1 > count) count = c + 1;
        for (int64_t e = ptr[v]; e < ptr[v + 1]; e++) {
            int64_t w = idx[e], b = col[w];
            if (b < 0 || w == v) continue;
            int64_t p = key_node(&F, v * stride + b, 1);
            int64_t q = key_node(&F, w * stride + c, 1);
            if (p < 0 || q < 0) { PyErr_NoMemory(); goto done; }
            p = find(&F, p);
            q = find(&F, q);
            if (p != q) F.parent[p] = q;
        }
    }
done:
    free(forbidden);
    free(seen);
    free(seen_root);
    free(F.keys);
    free(F.node);
    free(F.parent);
    release(a, 4);
    return PyErr_Occurred() ? NULL : PyLong_FromLongLong(count);
}

/* ---- vertex orders: a binary heap of (key1, key2, vertex), least first, stale entries
   skipped ---------------------------------------------------------------------------------- */

typedef struct {
    int64_t (*e)[3];
    int64_t len, cap;
} Heap;

static int less3(const int64_t *x, const int64_t *y) {
    if (x[0] != y[0]) return x[0] < y[0];
    if (x[1] != y[1]) return x[1] < y[1];
    return x[2] < y[2];
}

static int push(Heap *h, int64_t k1, int64_t k2, int64_t v) {
    if (h->len == h->cap) {
        h->cap = h->cap ? 2 * h->cap : 64;
        void *p = realloc(h->e, (size_t)h->cap * sizeof(*h->e));
        if (!p) return -1;
        h->e = p;
    }
    int64_t i = h->len++;
    h->e[i][0] = k1; h->e[i][1] = k2; h->e[i][2] = v;
    while (i > 0) {
        int64_t p = (i - 1) / 2;
        if (!less3(h->e[i], h->e[p])) break;
        int64_t t[3];
        memcpy(t, h->e[i], sizeof t); memcpy(h->e[i], h->e[p], sizeof t); memcpy(h->e[p], t, sizeof t);
        i = p;
    }
    return 0;
}

static void pop(Heap *h, int64_t *out) {
    memcpy(out, h->e[0], 3 * sizeof(int64_t));
    h->len--;
    memcpy(h->e[0], h->e[h->len], 3 * sizeof(int64_t));
    int64_t i = 0;
    for (;;) {
        int64_t l = 2 * i + 1, r = l + 1, s = i;
        if (l < h->len && less3(h->e[l], h->e[s])) s = l;
        if (r < h->len && less3(h->e[r], h->e[s])) s = r;
        if (s == i) break;
        int64_t t[3];
        memcpy(t, h->e[i], sizeof t); memcpy(h->e[i], h->e[s], sizeof t); memcpy(h->e[s], t, sizeof t);
        i = s;
    }
}

/* smallest_last(indptr, indices, out): out[n-1-k] is the k-th vertex taken out, each of
   least degree in what is left (ties: the least index); colouring runs through out. */
static PyObject *smallest_last(PyObject *Py_UNUSED(self), PyObject *args) {
    Arr a[3];
    if (parse(args, a, 3, 1) < 0) return NULL;
    Py_ssize_t n = a[2].n;
    int64_t *ptr = a[0].data, *idx = a[1].data, *out = a[2].data;
    int64_t *deg = NULL;
    Heap h = {0};
    if (check_graph(&a[0], &a[1], n) < 0 || check_order(NULL, n, n, &a[1]) < 0) goto done;
    deg = malloc((size_t)(n + 1) * sizeof(int64_t));
    if (!deg) { PyErr_NoMemory(); goto done; }
    for (Py_ssize_t v = 0; v < n; v++) {
        deg[v] = ptr[v + 1] - ptr[v];
        if (push(&h, deg[v], v, v) < 0) { PyErr_NoMemory(); goto done; }
    }
    for (Py_ssize_t k = 0; k < n; k++) {
        int64_t top[3];
        do pop(&h, top); while (deg[top[2]] != top[0]);
        int64_t v = top[2];
        out[n - 1 - k] = v;
        deg[v] = -1;
        for (int64_t e = ptr[v]; e < ptr[v + 1]; e++) {
            int64_t w = idx[e];
            if (deg[w] < 0) continue;
            deg[w]--;
            if (push(&h, deg[w], w, w) < 0) { PyErr_NoMemory(); goto done; }
        }
    }
done:
    free(deg);
    free(h.e);
    release(a, 3);
    if (PyErr_Occurred()) return NULL;
    Py_RETURN_NONE;
}

/* incidence_degree(indptr, indices, out): next the vertex with most neighbours already
   taken, ties to the larger degree, then the least index. */
static PyObject *incidence_degree(PyObject *Py_UNUSED(self), PyObject *args) {
    Arr a[3];
    if (parse(args, a, 3, 1) < 0) return NULL;
    Py_ssize_t n = a[2].n;
    int64_t *ptr = a[0].data, *idx = a[1].data, *out = a[2].data;
    int64_t *score = NULL;
    Heap h = {0};
    if (check_graph(&a[0], &a[1], n) < 0 || check_order(NULL, n, n, &a[1]) < 0) goto done;
    score = calloc((size_t)(n + 1), sizeof(int64_t));
    if (!score) { PyErr_NoMemory(); goto done; }
    for (Py_ssize_t v = 0; v < n; v++)
        if (push(&h, 0, -(ptr[v + 1] - ptr[v]), v) < 0) { PyErr_NoMemory(); goto done; }
    for (Py_ssize_t k = 0; k < n; k++) {
        int64_t top[3];
        do pop(&h, top); while (score[top[2]] != -top[0]);
        int64_t v = top[2];
        out[k] = v;
        score[v] = -1;
        for (int64_t e = ptr[v]; e < ptr[v + 1]; e++) {
            int64_t w = idx[e];
            if (score[w] < 0) continue;
            score[w]++;
            if (push(&h, -score[w], -(ptr[w + 1] - ptr[w]), w) < 0) { PyErr_NoMemory(); goto done; }
        }
    }
done:
    free(score);
    free(h.e);
    release(a, 3);
    if (PyErr_Occurred()) return NULL;
    Py_RETURN_NONE;
}

/* ---- tabu search (Hertz and de Werra's Tabucol): one colour fewer ------------------------ */

static uint64_t lcg(uint64_t *state) {
    *state = *state * 6364136223846793005ULL + 1442695040888963407ULL;
    return *state >> 33;
}

/* tabu(indptr, indices, colors, k, iterations, seed) -> 1 if colors now holds a colouring
   with colours 0..k-1 (the vertices of colours >= k first moved to their least conflicting
   colour), 0 if none was found within the iterations (colors then unchanged). Each step
   moves a vertex in conflict to the colour that removes most conflicts, a move back being
   forbidden for a few steps unless it gives the fewest conflicts seen. */
static PyObject *tabu(PyObject *Py_UNUSED(self), PyObject *args) {
    PyObject *o[3];
    long long k, iterations, seed;
    if (!PyArg_ParseTuple(args, "OOOLLL", &o[0], &o[1], &o[2], &k, &iterations, &seed))
        return NULL;
    Arr a[3];
    for (int i = 0; i < 3; i++)
        if (get_arr(o[i], &a[i], i == 2, "argument") < 0) { release(a, i); return NULL; }
    Py_ssize_t n = a[2].n;
    int64_t *ptr = a[0].data, *idx = a[1].data, *col = a[2].data;
    int found = 0;
    int64_t *c = NULL, *gamma = NULL, *until = NULL, *conf = NULL, *where = NULL;
    if (k < 1 || check_graph(&a[0], &a[1], n) < 0 || check_order(NULL, n, n, &a[1]) < 0) goto done;
    c = malloc((size_t)(n + 1) * sizeof(int64_t));
    gamma = calloc((size_t)(n + 1) * (size_t)k, sizeof(int64_t));
    until = calloc((size_t)(n + 1) * (size_t)k, sizeof(int64_t));
    conf = malloc((size_t)(n + 1) * sizeof(int64_t));
    where = malloc((size_t)(n + 1) * sizeof(int64_t));
    if (!c || !gamma || !until || !conf || !where) { PyErr_NoMemory(); goto done; }
    /* start: colours below k kept, the others moved to their least conflicting colour */
    for (Py_ssize_t v = 0; v < n; v++) c[v] = col[v] < k && col[v] >= 0 ? col[v] : -1;
    for (Py_ssize_t v = 0; v < n; v++)
        for (int64_t e = ptr[v]; e < ptr[v + 1]; e++)
            if (c[idx[e]] >= 0) gamma[v * k + c[idx[e]]]++;
    for (Py_ssize_t v = 0; v < n; v++) {
        if (c[v] >= 0) continue;
        int64_t best = 0;
        for (int64_t b = 1; b < k; b++)
            if (gamma[v * k + b] < gamma[v * k + best]) best = b;
        c[v] = best;
        for (int64_t e = ptr[v]; e < ptr[v + 1]; e++) gamma[idx[e] * k + best]++;
    }
    int64_t nconf = 0, conflicts = 0;
    for (Py_ssize_t v = 0; v < n; v++) {
        where[v] = -1;
        if (gamma[v * k + c[v]] > 0) { where[v] = nconf; conf[nconf++] = v; }
        conflicts += gamma[v * k + c[v]];
    }
    conflicts /= 2;
    int64_t best_seen = conflicts;
    uint64_t state = (uint64_t)seed * 2654435761ULL + 1;
    for (long long it = 0; it < iterations && conflicts > 0; it++) {
        int64_t mv = -1, mc = -1, md = 0, ties = 0;
        for (int64_t i = 0; i < nconf; i++) {
            int64_t v = conf[i], now = gamma[v * k + c[v]];
            for (int64_t b = 0; b < k; b++) {
                if (b == c[v]) continue;
                int64_t d = gamma[v * k + b] - now;
                int allowed = until[v * k + b] <= it || conflicts + d < best_seen;
                if (!allowed) continue;
                if (mv < 0 || d < md) { mv = v; mc = b; md = d; ties = 1; }
                else if (d == md && lcg(&state) % (uint64_t)(++ties) == 0) { mv = v; mc = b; }
            }
        }
        if (mv < 0) continue; /* every move tabu: wait for one to be freed */
        int64_t old = c[mv];
        until[mv * k + old] = it + 1 + (int64_t)(lcg(&state) % 10) + (6 * nconf) / 10;
        c[mv] = mc;
        conflicts += md;
        if (conflicts < best_seen) best_seen = conflicts;
        for (int64_t e = ptr[mv]; e < ptr[mv + 1]; e++) {
            int64_t w = idx[e];
            gamma[w * k + old]--;
            gamma[w * k + mc]++;
        }
        /* conflict membership of mv and its neighbours */
        for (int64_t e = ptr[mv] - 1; e < ptr[mv + 1]; e++) {
            int64_t w = e < ptr[mv] ? mv : idx[e];
            int in = gamma[w * k + c[w]] > 0;
            if (in && where[w] < 0) { where[w] = nconf; conf[nconf++] = w; }
            else if (!in && where[w] >= 0) {
                int64_t last = conf[--nconf];
                conf[where[w]] = last;
                where[last] = where[w];
                where[w] = -1;
            }
        }
    }
    if (conflicts == 0) {
        found = 1;
        for (Py_ssize_t v = 0; v < n; v++) col[v] = c[v];
    }
done:
    free(c);
    free(gamma);
    free(until);
    free(conf);
    free(where);
    release(a, 3);
    return PyErr_Occurred() ? NULL : PyLong_FromLong(found);
}

static PyMethodDef graph_methods[] = {
    {"greedy_columns", greedy_columns, METH_VARARGS, "Greedy partial distance-2 colouring."},
    {"star", star, METH_VARARGS, "Greedy star colouring."},
    {"acyclic", acyclic, METH_VARARGS, "Greedy acyclic colouring."},
    {"tabu", tabu, METH_VARARGS, "Tabu search for a colouring with one colour fewer."},
    {"smallest_last", smallest_last, METH_VARARGS, "The smallest-last vertex order."},
    {"incidence_degree", incidence_degree, METH_VARARGS, "The incidence-degree vertex order."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef graph_module = {
    PyModuleDef_HEAD_INIT, "_native_graph",
    "Greedy colouring kernels and vertex orders of diffkit's sparse derivatives "
    "(diffkit/differentiators/coloring.py).",
    -1, graph_methods,
};

PyMODINIT_FUNC PyInit__native_graph(void) { return PyModule_Create(&graph_module); }
