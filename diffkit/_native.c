/* Compiled loops for the image ops: im2col, col2im, max-pooling over 2x2 windows and the
   gradient of max-pooling, and direct convolution with stride 1 (forward with its bias,
   weight gradient, input gradient); the worker threads they share a batch with; and the
   caching allocator compiled programs run with.

   Each loop is the same computation as the numpy implementation in diffkit/ops
   (windows.py, convolution.py, pooling.py), which stays the reference and the fallback;
   the tests run both and compare them. The loops take raw pointers, sizes and element
   strides. Python calls them through the module's run_kernel (diffkit/ops/native.py,
   which finds their addresses with ctypes), so the module needs no numpy headers. The
   module's other functions install and inspect the allocator (diffkit/memory.py).

   Geometry (NCHW, as PyTorch): an output pixel (i, j) of a window op reads the input rows
   y = i*sy + p - py and columns x = j*sx + q - px for kernel offsets (p, q); positions
   outside the input are padding (0 for im2col, skipped for max-pooling). */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
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

/* Direct convolution, any stride, float32 and float64 (_native_direct.h, included once
   for each), with AVX2 and FMA where the CPU has them (checked at run time): the forward
   product, its weight gradient and its input gradient, none of which builds the window
   matrix.

   Each sample is copied into a zero-padded buffer of C planes of HP x WP (padding
   included), flattened. With stride 1, output pixel (i, j) at the flattened position
   m = i*WP + j reads window entry k = (c, p, q) at buffer position off[k] + m, where
   off[k] = c*HP*WP + p*DH*WP + q*DW (DH, DW the dilation): every window entry is the
   same buffer shifted. So the products run over m a vector at a time, reading the buffer
   in place; positions with j >= OW (the row's last columns) are computed and dropped, or
   carry a zero cotangent. With strides SY, SX each padded plane is stored as SY*SX phase
   planes (the rows y' = a + SY*r and columns x' = b + SX*t of phase (a, b), with HP and
   WP the padded size over the stride, rounded up): output pixel (i, j) reads padded pixel
   (i*SY + p*DH, j*SX + q*DW), which is row i + p*DH/SY, column j + q*DW/SX of phase
   (p*DH % SY, q*DW % SX), so again every window entry is one shifted plane and
   off[k] = c*CS + phase*HP*WP + (p*DH/SY)*WP + q*DW/SX (CS = SY*SX*HP*WP, one channel's
   phases). The buffer, the weights and one sample's outputs stay in cache. With G
   groups, group g's outputs read the C/G channels from g*(C/G)*CS on: the same offsets
   from a later start. */

#define DIRECT_MAX_K 1024 /* window entries (C/G)*KH*KW */
#define MR 4              /* output channels per register block */
#define NV 3              /* vectors of positions per register block */

typedef struct {
    idx n, c, h, w, kh, kw, sy, sx, py, px, dh, dw, groups, cg, hp, wp, cs, oh, ow, k, m, mt, len;
} conv_geo;

static idx round_up(idx a, idx b) { return (a + b - 1) / b * b; }

/* The scratch of the direct-convolution kernels: a buffer of at least `bytes` that
   belongs to the calling thread and is kept for its next call, so that a worker finds its
   scratch in its own core's cache (a block another thread used last would come over from
   that core's; on a 2-CPU virtual machine that made the batch-64 LeNet-5 step slower
   by up to 0.9 ms). When it cannot be allocated it returns NULL, the kernel returns
   without computing, and run_kernel raises MemoryError. */
static int scratch_failed;

#if defined(__GNUC__) && defined(__x86_64__)
#include <immintrin.h>

static void *thread_scratch(size_t bytes) {
    static __thread void *buf;
    static __thread size_t size;
    if (bytes > size) {
        free(buf);
        size = 0;
        buf = aligned_alloc(64, (bytes + 63) / 64 * 64);
        if (buf == NULL) {
            __atomic_store_n(&scratch_failed, 1, __ATOMIC_RELEASE);
            return NULL;
        }
        size = bytes;
    }
    return buf;
}


EXPORT int conv_direct_supported(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}


#define TARGET __attribute__((target("avx2,fma")))
#define NAME(f) f##_f32
#define T float
#define L 8
#define VEC __m256
#define VLOADU _mm256_loadu_ps
#define VSTOREU _mm256_storeu_ps
#define VZERO _mm256_setzero_ps
#define VSET1 _mm256_broadcast_ss
#define VFMA _mm256_fmadd_ps
#define VADD _mm256_add_ps
#include "_native_direct.h"

#define NAME(f) f##_f64
#define T double
#define L 4
#define VEC __m256d
#define VLOADU _mm256_loadu_pd
#define VSTOREU _mm256_storeu_pd
#define VZERO _mm256_setzero_pd
#define VSET1 _mm256_broadcast_sd
#define VFMA _mm256_fmadd_pd
#define VADD _mm256_add_pd
#include "_native_direct.h"
#undef TARGET
#else
EXPORT int conv_direct_supported(void) { return 0; }
#endif

/* The kernels' threads. run_ranges(fn, k, words, bounds, nr, nt) calls the kernel fn on the
   batch ranges [bounds[r], bounds[r+1]) for r < nr, each with its own k arguments
   words[r*k .. r*k+k-1] followed by the range's two ends, on the calling thread and at
   most nt - 1 worker threads meanwhile. Every kernel's parameters are pointers or int64,
   so each is passed as one 64-bit word (the integer class of every 64-bit C calling
   convention). The threads claim the ranges one at a time, first come first served,
   through one counter that also holds the job's number and its count of ranges (a
   compare-and-swap takes the next range of the job the counter is at, so a worker that
   wakes late finds nothing to take): on a loaded machine, where the system may not run a
   worker for milliseconds, the calling thread runs the ranges nobody has taken and waits
   only for those under way, yielding its core meanwhile. Between jobs the workers spin
   for a while (yielding the core to any other thread that wants it) before they sleep:
   a training step calls a kernel every few hundred microseconds, and waking a sleeping
   thread costs about as long as a small kernel. A job wakes only the workers it needs.
   One job runs at a time; a child process after fork starts its own workers. */

#define MAX_ARGS 10
typedef uint64_t u64;

static void call_kernel(void *fn, idx k, const u64 *a, idx n0, idx n1) {
    switch (k) {
#define ARGS1 a[0]
#define ARGS2 ARGS1, a[1]
#define ARGS3 ARGS2, a[2]
#define ARGS4 ARGS3, a[3]
#define ARGS5 ARGS4, a[4]
#define ARGS6 ARGS5, a[5]
#define ARGS7 ARGS6, a[6]
#define ARGS8 ARGS7, a[7]
#define ARGS9 ARGS8, a[8]
#define ARGS10 ARGS9, a[9]
#define W1 u64
#define W2 W1, u64
#define W3 W2, u64
#define W4 W3, u64
#define W5 W4, u64
#define W6 W5, u64
#define W7 W6, u64
#define W8 W7, u64
#define W9 W8, u64
#define W10 W9, u64
#define CASE(n) \
    case n: ((void (*)(W##n, idx, idx))fn)(ARGS##n, n0, n1); break;
        CASE(1) CASE(2) CASE(3) CASE(4) CASE(5) CASE(6) CASE(7) CASE(8) CASE(9) CASE(10)
#undef CASE
        default: break;
    }
}

#if defined(__GNUC__) && (defined(__unix__) || defined(__APPLE__))
#include <pthread.h>
#include <sched.h>
#include <time.h>

#define MAX_WORKERS 63
#define SPIN_SECONDS 1e-3 /* how long a worker waits for the next job before it sleeps */

static struct {
    void *fn;
    idx k;
    const u64 *words;
    const idx *bounds;
} job;
/* the job's number (bits 32-63), its count of ranges (16-31) and its next range (0-15) */
static u64 claim;
static idx finished; /* ranges of the current job that have run */
static unsigned job_number;
/* Worker r (1, 2, ...) looks for ranges when its ticket[r] goes up; only the workers a
   job needs are woken, each on its own condition variable. */
static pthread_t workers[MAX_WORKERS + 1];
static unsigned long ticket[MAX_WORKERS + 1];
static unsigned long born[MAX_WORKERS + 1]; /* each worker's ticket when it was started */
static pthread_cond_t wake_cv[MAX_WORKERS + 1];
static int nworkers;
static pthread_mutex_t wake_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t job_mu = PTHREAD_MUTEX_INITIALIZER;

static inline void relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* Claim and run ranges of the current job until none is left. A range claimed is one
   that has not run, so its job (fn, words, bounds) lasts until it has. */
static void take_ranges(void) {
    u64 c = __atomic_load_n(&claim, __ATOMIC_ACQUIRE);
    for (;;) {
        idx r = (idx)(c & 0xffff), nr = (idx)(c >> 16 & 0xffff);
        if (r >= nr) return;
        if (!__atomic_compare_exchange_n(&claim, &c, c + 1, 0, __ATOMIC_ACQ_REL,
                                         __ATOMIC_ACQUIRE))
            continue; /* c now holds the counter's value: try again with it */
        call_kernel(job.fn, job.k, job.words + r * job.k, job.bounds[r], job.bounds[r + 1]);
        __atomic_add_fetch(&finished, 1, __ATOMIC_ACQ_REL);
        c = __atomic_load_n(&claim, __ATOMIC_ACQUIRE);
    }
}

static void *worker_main(void *arg) {
    idx r = (idx)(intptr_t)arg;
    unsigned long seen = born[r]; /* not ticket[r]: the first job may have raised it */
    for (;;) {
        double since = now();
        unsigned spins = 0;
        while (__atomic_load_n(&ticket[r], __ATOMIC_ACQUIRE) == seen) {
            relax();
            if (++spins % 256) continue;
            if (now() - since < SPIN_SECONDS) {
                sched_yield(); /* to a thread that has work, if there is one */
                continue;
            }
            pthread_mutex_lock(&wake_mu);
            while (__atomic_load_n(&ticket[r], __ATOMIC_ACQUIRE) == seen)
                pthread_cond_wait(&wake_cv[r], &wake_mu);
            pthread_mutex_unlock(&wake_mu);
        }
        seen = __atomic_load_n(&ticket[r], __ATOMIC_ACQUIRE);
        take_ranges();
    }
    return NULL;
}

static void forget_workers(void) { /* in a child after fork: the threads did not come along */
    nworkers = 0;
    pthread_mutex_init(&job_mu, NULL);
    pthread_mutex_init(&wake_mu, NULL);
}

EXPORT void run_ranges(void *fn, idx k, const u64 *words, const idx *bounds, idx nr, idx nt) {
    static int registered;
    if (nt > nr) nt = nr;
    if (nt <= 1 || k > MAX_ARGS || nr > 0xffff) {
        for (idx r = 0; r < nr; r++) call_kernel(fn, k, words + r * k, bounds[r], bounds[r + 1]);
        return;
    }
    pthread_mutex_lock(&job_mu);
    if (!registered) registered = pthread_atfork(NULL, NULL, forget_workers) == 0;
    while (nworkers < nt - 1 && nworkers < MAX_WORKERS) {
        idx r = nworkers + 1;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        pthread_cond_init(&wake_cv[r], NULL);
        born[r] = __atomic_load_n(&ticket[r], __ATOMIC_ACQUIRE);
        int failed = pthread_create(&workers[r], &attr, worker_main, (void *)(intptr_t)r);
        pthread_attr_destroy(&attr);
        if (failed) break;
        nworkers++;
    }
    idx helpers = nt - 1 < nworkers ? nt - 1 : nworkers;
    job.fn = fn, job.k = k, job.words = words, job.bounds = bounds;
    __atomic_store_n(&finished, 0, __ATOMIC_RELAXED);
    job_number++;
    __atomic_store_n(&claim, (u64)job_number << 32 | (u64)nr << 16, __ATOMIC_RELEASE);
    for (idx r = 1; r <= helpers; r++) __atomic_add_fetch(&ticket[r], 1, __ATOMIC_ACQ_REL);
    pthread_mutex_lock(&wake_mu);
    for (idx r = 1; r <= helpers; r++) pthread_cond_signal(&wake_cv[r]);
    pthread_mutex_unlock(&wake_mu);
    take_ranges();
    for (unsigned spins = 1; __atomic_load_n(&finished, __ATOMIC_ACQUIRE) < nr; spins++) {
        relax();
        if (spins % 64 == 0) sched_yield(); /* a worker under way may need this core */
    }
    pthread_mutex_unlock(&job_mu);
}
#else
EXPORT void run_ranges(void *fn, idx k, const u64 *words, const idx *bounds, idx nr, idx nt) {
    (void)nt;
    for (idx r = 0; r < nr; r++) call_kernel(fn, k, words + r * k, bounds[r], bounds[r + 1]);
}
#endif

/* run_kernel(fn, bounds, argsets, threads=nr) from Python: run_ranges for the kernel at
   address fn over the ranges [bounds[r], bounds[r+1]) on at most `threads` threads, range
   r with the arguments argsets[r] (a tuple of ints and of objects with the buffer
   protocol, such as numpy arrays, each passed as the address of its first element). The interpreter lock is released while
   the kernel runs. Reading the arguments here costs well under a microsecond each,
   against a microsecond or more through ctypes, which counts at small batches. */
#define MAX_RANGES 64

static PyObject *run_kernel(PyObject *self, PyObject *args) {
    (void)self;
    unsigned long long fn;
    PyObject *bounds, *argsets;
    Py_ssize_t nt = -1;
    if (!PyArg_ParseTuple(args, "KO!O!|n", &fn, &PyList_Type, &bounds, &PyTuple_Type, &argsets,
                          &nt))
        return NULL;
    Py_ssize_t nr = PyTuple_GET_SIZE(argsets);
    if (nt < 1) nt = nr;
    if (nr < 1 || nr > MAX_RANGES || PyList_GET_SIZE(bounds) != nr + 1) {
        PyErr_SetString(PyExc_ValueError, "run_kernel: 1 to 64 ranges, with nr + 1 bounds");
        return NULL;
    }
    idx b[MAX_RANGES + 1];
    for (Py_ssize_t r = 0; r <= nr; r++) {
        b[r] = PyLong_AsLongLong(PyList_GET_ITEM(bounds, r));
        if (b[r] == -1 && PyErr_Occurred()) return NULL;
    }
    PyObject *first = PyTuple_GET_ITEM(argsets, 0);
    Py_ssize_t k = PyTuple_Check(first) ? PyTuple_GET_SIZE(first) : -1;
    if (k < 1 || k > MAX_ARGS) {
        PyErr_SetString(PyExc_ValueError, "run_kernel: each range takes 1 to 10 arguments");
        return NULL;
    }
    u64 words[MAX_RANGES * MAX_ARGS];
    Py_buffer *views = PyMem_Calloc((size_t)(nr * k), sizeof(Py_buffer));
    if (views == NULL) return PyErr_NoMemory();
    PyObject *result = NULL;
    Py_ssize_t held = 0; /* views[0 .. held-1] may hold buffers */
    for (Py_ssize_t r = 0; r < nr; r++) {
        PyObject *set = PyTuple_GET_ITEM(argsets, r);
        if (!PyTuple_Check(set) || PyTuple_GET_SIZE(set) != k) {
            PyErr_SetString(PyExc_ValueError, "run_kernel: every range takes the same arguments");
            goto done;
        }
        for (Py_ssize_t i = 0; i < k; i++) {
            PyObject *a = PyTuple_GET_ITEM(set, i);
            Py_buffer *v = &views[r * k + i];
            held = r * k + i + 1;
            if (PyLong_Check(a)) {
                long long value = PyLong_AsLongLong(a);
                if (value == -1 && PyErr_Occurred()) goto done;
                words[r * k + i] = (u64)value;
            } else {
                if (PyObject_GetBuffer(a, v, PyBUF_RECORDS_RO) < 0) goto done;
                words[r * k + i] = (u64)(uintptr_t)v->buf;
            }
        }
    }
    Py_BEGIN_ALLOW_THREADS
    __atomic_store_n(&scratch_failed, 0, __ATOMIC_RELEASE);
    run_ranges((void *)(uintptr_t)fn, k, words, b, nr, nt);
    Py_END_ALLOW_THREADS
    if (__atomic_load_n(&scratch_failed, __ATOMIC_ACQUIRE)) {
        PyErr_SetString(PyExc_MemoryError, "a compiled loop could not allocate its scratch");
        goto done;
    }
    result = Py_None;
    Py_INCREF(result);
done:
    for (Py_ssize_t i = 0; i < held; i++)
        if (views[i].obj != NULL) PyBuffer_Release(&views[i]);
    PyMem_Free(views);
    return result;
}

/* A caching allocator for numpy's array data (NEP 49), which a compiled program installs
   for the time it runs: blocks of at least CACHE_MIN bytes that are freed stay here, on
   one list per exact size, and the next request of that size takes one back. A training
   step allocates the same sizes on every batch, so after its first run it takes no memory
   from the system and pays for no page faults; without it, glibc hands large blocks back
   to the system when they are freed and maps fresh zeroed pages for the next step. At
   most cache_limit bytes are kept (the blocks beyond are freed). The handler is installed
   through numpy's context variable for the current context only; arrays remember their
   handler, so whatever is allocated here comes back here when freed, wherever that is.
   numpy's C API is reached through its _ARRAY_API capsule, so the module needs no numpy
   headers; the two structs below are NEP 49's version 1 layout. */

typedef struct {
    void *ctx;
    void *(*malloc)(void *ctx, size_t size);
    void *(*calloc)(void *ctx, size_t nelem, size_t elsize);
    void *(*realloc)(void *ctx, void *ptr, size_t new_size);
    void (*free)(void *ctx, void *ptr, size_t size);
} mem_allocator;

typedef struct {
    char name[127];
    uint8_t version;
    mem_allocator allocator;
} mem_handler;

#define CACHE_MIN (64 * 1024)
#define CACHE_BINS 256 /* distinct sizes; a size beyond them is not cached */

typedef struct {
    size_t size;
    void *head; /* freed raw blocks of this size, linked through their first word */
    size_t count;
} cache_bin;

static cache_bin bins[CACHE_BINS];
static size_t cache_bytes, cache_limit = (size_t)1 << 30;
static size_t cache_hits, cache_misses; /* requests of at least CACHE_MIN bytes */
static volatile int cache_lock;

static void lock(void) {
    while (__atomic_test_and_set(&cache_lock, __ATOMIC_ACQUIRE)) {
    }
}
static void unlock(void) { __atomic_clear(&cache_lock, __ATOMIC_RELEASE); }

/* The bin of `size`, or NULL; with `add`, a free bin is taken for a new size. */
static cache_bin *find_bin(size_t size, int add) {
    size_t h = (size >> 6) * 2654435761u % CACHE_BINS;
    for (size_t i = 0; i < CACHE_BINS; i++) {
        cache_bin *b = &bins[(h + i) % CACHE_BINS];
        if (b->size == size) return b;
        if (b->size == 0) {
            if (!add) return NULL;
            b->size = size;
            return b;
        }
    }
    return NULL;
}

static void *cache_take(size_t size) {
    void *p = NULL;
    lock();
    cache_bin *b = find_bin(size, 0);
    if (b != NULL && b->head != NULL) {
        p = b->head; /* a raw block, header included */
        b->head = *(void **)p;
        b->count--;
        cache_bytes -= size;
        cache_hits++;
    } else {
        cache_misses++;
    }
    unlock();
    return p;
}

/* Every block carries its size in a header of HEADER bytes (which keeps malloc's
   alignment), so that it goes back to the list of the size it was made with. */
#define HEADER 16

static void *with_header(char *raw, size_t size) {
    if (raw == NULL) return NULL;
    *(size_t *)raw = size;
    return raw + HEADER;
}

static void *cache_malloc(void *ctx, size_t size) {
    (void)ctx;
    if (size > SIZE_MAX - HEADER) return NULL;
    void *p = size >= CACHE_MIN ? cache_take(size) : NULL;
    return with_header(p != NULL ? p : malloc(size + HEADER), size);
}

static void *cache_calloc(void *ctx, size_t nelem, size_t elsize) {
    size_t size = nelem * elsize;
    if (elsize != 0 && size / elsize != nelem) return NULL;
    char *p = cache_malloc(ctx, size);
    if (p != NULL) memset(p, 0, size);
    return p;
}

static void *cache_realloc(void *ctx, void *ptr, size_t new_size) {
    if (ptr == NULL) return cache_malloc(ctx, new_size);
    if (new_size > SIZE_MAX - HEADER) return NULL;
    return with_header(realloc((char *)ptr - HEADER, new_size + HEADER), new_size);
}

static void cache_free(void *ctx, void *ptr, size_t size_given) {
    (void)ctx, (void)size_given;
    if (ptr == NULL) return;
    char *raw = (char *)ptr - HEADER;
    size_t size = *(size_t *)raw;
    if (size >= CACHE_MIN) {
        lock();
        cache_bin *b = cache_bytes + size <= cache_limit ? find_bin(size, 1) : NULL;
        if (b != NULL) {
            *(void **)raw = b->head;
            b->head = raw;
            b->count++;
            cache_bytes += size;
            raw = NULL;
        }
        unlock();
    }
    free(raw);
}

static mem_handler cache_handler = {
    "diffkit_cache", 1, {NULL, cache_malloc, cache_calloc, cache_realloc, cache_free}};

static PyObject *handler_capsule; /* the capsule numpy's context variable holds */
static PyObject *(*set_handler)(PyObject *);

/* numpy's PyDataMem_SetHandler: entry 304 of its C API (numpy >= 1.22). */
static int find_set_handler(void) {
    if (set_handler != NULL) return 0;
    const char *modules[] = {"numpy._core._multiarray_umath", "numpy.core._multiarray_umath"};
    for (int i = 0; i < 2 && set_handler == NULL; i++) {
        PyObject *mod = PyImport_ImportModule(modules[i]);
        if (mod == NULL) {
            PyErr_Clear();
            continue;
        }
        PyObject *api = PyObject_GetAttrString(mod, "_ARRAY_API");
        Py_DECREF(mod);
        if (api == NULL) {
            PyErr_Clear();
            continue;
        }
        void **table = PyCapsule_IsValid(api, NULL) ? PyCapsule_GetPointer(api, NULL) : NULL;
        Py_DECREF(api);
        if (table != NULL) set_handler = (PyObject * (*)(PyObject *)) table[304];
    }
    if (set_handler == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "numpy's allocation handlers are not available");
        return -1;
    }
    return 0;
}

/* swap_handler(None) installs the cache and returns the handler it replaces;
   swap_handler(previous) puts that one back. */
static PyObject *swap_handler(PyObject *self, PyObject *arg) {
    (void)self;
    if (find_set_handler() < 0) return NULL;
    if (arg == Py_None) {
        if (handler_capsule == NULL) {
            handler_capsule = PyCapsule_New(&cache_handler, "mem_handler", NULL);
            if (handler_capsule == NULL) return NULL;
        }
        arg = handler_capsule;
    }
    return set_handler(arg);
}

/* cache_info() -> (bytes held, hits, misses, limit) */
static PyObject *cache_info(PyObject *self, PyObject *args) {
    (void)self, (void)args;
    lock();
    size_t held = cache_bytes, hits = cache_hits, misses = cache_misses, limit = cache_limit;
    unlock();
    return Py_BuildValue("(nnnn)", (Py_ssize_t)held, (Py_ssize_t)hits, (Py_ssize_t)misses,
                         (Py_ssize_t)limit);
}

/* cache_release(limit) frees every block held and sets the limit (bytes; -1 keeps it). */
static PyObject *cache_release(PyObject *self, PyObject *arg) {
    (void)self;
    Py_ssize_t limit = PyLong_AsSsize_t(arg);
    if (limit == -1 && PyErr_Occurred()) return NULL;
    lock();
    for (int i = 0; i < CACHE_BINS; i++) {
        while (bins[i].head != NULL) {
            void *p = bins[i].head;
            bins[i].head = *(void **)p;
            free(p);
        }
        bins[i].count = 0;
        bins[i].size = 0;
    }
    cache_bytes = 0;
    if (limit >= 0) cache_limit = (size_t)limit;
    unlock();
    Py_RETURN_NONE;
}

static PyMethodDef native_methods[] = {
    {"run_kernel", run_kernel, METH_VARARGS, "Run a kernel over batch ranges on the kernels' threads."},
    {"swap_handler", swap_handler, METH_O, "Install the caching allocator (None) or restore a handler."},
    {"cache_info", cache_info, METH_NOARGS, "(bytes held, hits, misses, limit) of the cache."},
    {"cache_release", cache_release, METH_O, "Free the cached blocks; set the limit unless -1."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef native_module = {
    PyModuleDef_HEAD_INIT, "_native",
    "Compiled loops for diffkit's image ops, called through ctypes (see diffkit/ops/native.py), "
    "and the caching allocator of compiled programs (diffkit/memory.py).",
    -1, native_methods,
};

#if defined(__unix__) || defined(__APPLE__)
#include <pthread.h>

/* In a child after fork, the thread that held the cache's lock did not come along. */
static void release_cache_lock(void) { __atomic_clear(&cache_lock, __ATOMIC_RELEASE); }
#endif

PyMODINIT_FUNC PyInit__native(void) {
#if defined(__unix__) || defined(__APPLE__)
    pthread_atfork(NULL, NULL, release_cache_lock);
#endif
    return PyModule_Create(&native_module);
}
