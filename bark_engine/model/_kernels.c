/*
 * Batch-invariant CPU kernels for Bark's GPTs: the matrix products of every
 * linear layer and the attention over the KV cache.
 *
 * Why our own: torch's float32/bf16 matmuls round a row differently depending
 * on how many rows share the call and on the thread count, so a take's tokens
 * would depend on its neighbours in a batch. Here each output value is ONE
 * fixed chain of IEEE operations, whatever the batch, the thread count or the
 * instruction set:
 *
 *   linear     y[m, j] = fma(x[m,K-1], w[j,K-1], ... fma(x[m,0], w[j,0], +0)) (+ bias[j])
 *              k ascending; vector lanes hold different outputs j, threads
 *              split the output columns (panels), never the input dimension.
 *   attention  per (query row, head):  s[t] = (fold_i fma(q[i], k_t[i], +0)) * scale
 *              p[t] = exp_bark(s[t] - max s);  sum: 8 lanes (t mod 8), ascending
 *              t, then a fixed tree;  y[i] = (fold_t fma(p[t], v_t[i], +0)) / sum.
 *
 * The generic C path computes exactly the same operations (fmaf is correctly
 * rounded, like the FMA instruction), so the AVX2 path and the generic path
 * give bit-identical results; tests check it. Narrow rows (int8 or bf16, for
 * prefills and fine passes) and, on AMX tiles, their attention have orders of
 * their own, described where they are (still one fixed computation per value).
 *
 * Weights are stored in column panels: (n_out / 16, K, 16), so a panel is one
 * contiguous stream of K cache lines. Weight kinds: 0 float32, 1 bfloat16,
 * 2 float16, 3 int8 (converted exactly to float32 as they are read). int8
 * weights come with one float32 scale per output, applied to the finished
 * chain: y[m, j] = (acc * scale[j]) + bias[j], two roundings, on every path.
 * The KV cache is
 * in panels too, so attention is two passes of the same panel products:
 * scores = Q·Kᵀ over key panels (max_len/16, hd, 16), and out = P·V over value
 * panels (hd/16, max_len, 16), with the softmax of each row in between; a
 * block of queries of one row shares every key and value it reads.
 *
 * The module takes raw addresses from the Python side (bark_engine.model.
 * kernels checks shapes, dtypes and contiguity), releases the GIL while it
 * computes, and uses OpenMP where it was built with it (torch's own libgomp
 * when torch is loaded first, so one thread pool serves both).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif
#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#define BARK_X86 1
/* AVX-512 (with VNNI and BF16) needs a compiler that knows those targets; an
   older one builds the AVX2 and generic paths only. */
#if !defined(BARK_NO_AVX512) && ((defined(__clang__) && __clang_major__ >= 9) || \
    (defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 10))
#define BARK_AVX512 1
#endif
#endif
/* AMX tiles (int8 and bf16 products of many rows) need Linux's permission for
   the tile state, asked for once at import, and a compiler that knows them. */
#if defined(BARK_AVX512) && defined(__linux__) && \
    ((defined(__clang__) && __clang_major__ >= 12) || \
     (defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 11))
#define BARK_AMX 1
#include <cpuid.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

#define PW 16            /* panel width: outputs per panel */
#define WIDE_GROUP 4     /* panels of narrow weights widened at once for many rows */
#define AMX_PANELS 8     /* panels a thread re-lays at once for AMX tiles (below) */
#define AMX_ROWS 32      /* rows per AMX block: two tiles of 16 */
#define MAX_GROUP (AMX_PANELS > WIDE_GROUP ? AMX_PANELS : WIDE_GROUP)
#define LANES 8          /* lanes of the attention sum */
#define MAX_KEYS 4096    /* attention scratch per task (the context is 1024) */

enum { W_F32 = 0, W_BF16 = 1, W_F16 = 2, W_I8 = 3 };

static inline size_t w_size(int kind) { return kind == W_F32 ? 4 : kind == W_I8 ? 1 : 2; }

/* ------------------------------------------------------------------------ */
/* exact conversions and the canonical exp                                   */

static inline float bf16_to_f32(uint16_t h) {
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

static inline float f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f, man = h & 0x3ff, bits;
    if (exp == 0) {
        if (man == 0) {
            bits = sign;
        } else { /* subnormal: normalise */
            int e = -1;
            do { man <<= 1; e++; } while (!(man & 0x400));
            bits = sign | ((uint32_t)(127 - 15 - e) << 23) | ((man & 0x3ff) << 13);
        }
    } else if (exp == 31) {
        bits = sign | 0x7f800000u | (man << 13);
    } else {
        bits = sign | ((exp + 112) << 23) | (man << 13);
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

/* float32 → bfloat16, rounded to nearest even (as torch's .to(torch.bfloat16)). */
static inline uint16_t f32_to_bf16(float f) {
    uint32_t bits;
    memcpy(&bits, &f, 4);
    if ((bits & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((bits >> 16) | 0x40);  /* NaN */
    return (uint16_t)((bits + 0x7fffu + ((bits >> 16) & 1u)) >> 16);
}

static inline float load_w(const void* P, int kind, size_t i) {
    if (kind == W_F32) return ((const float*)P)[i];
    if (kind == W_BF16) return bf16_to_f32(((const uint16_t*)P)[i]);
    if (kind == W_I8) return (float)((const int8_t*)P)[i];
    return f16_to_f32(((const uint16_t*)P)[i]);
}

#define EXP_MIN (-87.33654f)      /* below: exp is taken as 0 (it is < FLT_MIN) */
#define LOG2E 1.44269504088896341f
#define LN2_HI 0.693359375f
#define LN2_LO (-2.12194440e-4f)
#define EC0 1.9875691500e-4f
#define EC1 1.3981999507e-3f
#define EC2 8.3334519073e-3f
#define EC3 4.1665795894e-2f
#define EC4 1.6666665459e-1f
#define EC5 5.0000001201e-1f

/* exp(x) for x <= 0 as a fixed sequence of IEEE operations (Cephes' expf). */
static inline float exp_bark(float x) {
    if (!(x >= EXP_MIN)) return 0.0f;
    float n = rintf(x * LOG2E);
    float r = fmaf(n, -LN2_HI, x);
    r = fmaf(n, -LN2_LO, r);
    float p = fmaf(EC0, r, EC1);
    p = fmaf(p, r, EC2);
    p = fmaf(p, r, EC3);
    p = fmaf(p, r, EC4);
    p = fmaf(p, r, EC5);
    float y = fmaf(p, r * r, r) + 1.0f;
    int32_t bits = ((int32_t)n + 127) << 23;
    float scale;
    memcpy(&scale, &bits, 4);
    return y * scale;
}

/* The attention sum's fixed tree over its 8 lanes. */
static inline float tree8(const float* a) {
    float b0 = a[0] + a[4], b1 = a[1] + a[5], b2 = a[2] + a[6], b3 = a[3] + a[7];
    float c0 = b0 + b2, c1 = b1 + b3;
    return c0 + c1;
}

/* ------------------------------------------------------------------------ */
/* generic C: the reference order, any CPU                                   */

static void panel_generic(const float* x, ptrdiff_t xs, int M, int K, const void* P, int kind,
                          float* y, ptrdiff_t ys, const float* scale, const float* bias,
                          int ncols, const float* init) {
    for (int m = 0; m < M; m++) {
        float acc[PW] = {0};
        for (int j = 0; init && j < ncols; j++) acc[j] = init[m * ys + j];
        const float* xr = x + m * xs;
        for (int k = 0; k < K; k++) {
            float xv = xr[k];
            for (int j = 0; j < PW; j++) acc[j] = fmaf(xv, load_w(P, kind, (size_t)k * PW + j), acc[j]);
        }
        for (int j = 0; j < ncols; j++) {
            float a = scale ? acc[j] * scale[j] : acc[j];
            y[m * ys + j] = bias ? a + bias[j] : a;
        }
    }
}

/* Scale the row's raw scores s[0..L), exponentiate them against their max and
   zero s[L..Lpad); returns the sum of the exponentials (8 lanes, fixed tree). */
static float softmax_generic(float* s, int L, int Lpad, float scale) {
    float m = -INFINITY;
    for (int t = 0; t < L; t++) {
        s[t] = s[t] * scale;
        if (s[t] > m) m = s[t];
    }
    float lanes[LANES] = {0};
    for (int t = 0; t < L; t++) {
        s[t] = exp_bark(s[t] - m);
        lanes[t % LANES] += s[t];
    }
    for (int t = L; t < Lpad; t++) s[t] = 0.0f;
    return tree8(lanes);
}

/* ------------------------------------------------------------------------ */
/* AVX2 + FMA (+ F16C for float16 weights)                                   */

#ifdef BARK_X86
#define AVX2 __attribute__((target("avx2,fma,f16c")))
#define AVX2_INLINE AVX2 static inline __attribute__((always_inline))

AVX2_INLINE void store16(float* y, __m256 a0, __m256 a1, const float* scale, const float* bias,
                         int ncols) {
    if (scale) {
        a0 = _mm256_mul_ps(a0, _mm256_loadu_ps(scale));
        a1 = _mm256_mul_ps(a1, _mm256_loadu_ps(scale + 8));
    }
    if (bias) {
        a0 = _mm256_add_ps(a0, _mm256_loadu_ps(bias));
        a1 = _mm256_add_ps(a1, _mm256_loadu_ps(bias + 8));
    }
    if (ncols == PW) {
        _mm256_storeu_ps(y, a0);
        _mm256_storeu_ps(y + 8, a1);
    } else {
        float t[PW];
        _mm256_storeu_ps(t, a0);
        _mm256_storeu_ps(t + 8, a1);
        for (int j = 0; j < ncols; j++) y[j] = t[j];
    }
}

/* What two accumulators of 16 outputs start from: init's values at `at` (a
   fold that goes on), or zero (init NULL). */
AVX2_INLINE void start16(const float* init, ptrdiff_t at, int ncols, __m256* a0, __m256* a1) {
    if (init == NULL) {
        *a0 = *a1 = _mm256_setzero_ps();
    } else if (ncols == PW) {
        *a0 = _mm256_loadu_ps(init + at);
        *a1 = _mm256_loadu_ps(init + at + 8);
    } else {
        float t[PW] = {0};
        for (int j = 0; j < ncols; j++) t[j] = init[at + j];
        *a0 = _mm256_loadu_ps(t);
        *a1 = _mm256_loadu_ps(t + 8);
    }
}

/* Sixteen weights of panel P at input k, as two float32 vectors. */
#define LOADW_F32(P, k, w0, w1) do { \
        const float* p_ = (const float*)(P) + (size_t)(k) * PW; \
        w0 = _mm256_loadu_ps(p_); w1 = _mm256_loadu_ps(p_ + 8); } while (0)
/* (each half loaded straight into its widening instruction: one shuffle per 8 weights) */
#define LOADW_BF16(P, k, w0, w1) do { \
        const __m128i* p_ = (const __m128i*)((const uint16_t*)(P) + (size_t)(k) * PW); \
        w0 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128(p_)), 16)); \
        w1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128(p_ + 1)), 16)); \
    } while (0)
#define LOADW_F16(P, k, w0, w1) do { \
        __m256i r_ = _mm256_loadu_si256((const __m256i*)((const uint16_t*)(P) + (size_t)(k) * PW)); \
        w0 = _mm256_cvtph_ps(_mm256_castsi256_si128(r_)); \
        w1 = _mm256_cvtph_ps(_mm256_extracti128_si256(r_, 1)); } while (0)
#define LOADW_I8(P, k, w0, w1) do { \
        const int8_t* p_ = (const int8_t*)(P) + (size_t)(k) * PW; \
        w0 = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i*)p_))); \
        w1 = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i*)(p_ + 8)))); \
    } while (0)

#define FMA_ROW(r, XR, A0, A1) do { if (R > (r)) { __m256 b_ = _mm256_broadcast_ss((XR) + k); \
        A0 = _mm256_fmadd_ps(b_, w0, A0); A1 = _mm256_fmadd_ps(b_, w1, A1); } } while (0)

/* R rows (R <= 6) times one panel: 2R accumulators. */
#define ROWS_KERNEL(NAME, LOADW) \
AVX2_INLINE void NAME(int R, const float* x, ptrdiff_t xs, int K, const void* P, float* y, \
                      ptrdiff_t ys, const float* scale, const float* bias, int ncols, \
                      const float* init) { \
    __m256 a00, a01, a10, a11, a20, a21, a30, a31, a40, a41, a50, a51; \
    a10 = a11 = a20 = a21 = a30 = a31 = a40 = a41 = a50 = a51 = _mm256_setzero_ps(); \
    start16(init, 0, ncols, &a00, &a01); \
    if (R > 1) start16(init, ys, ncols, &a10, &a11); \
    if (R > 2) start16(init, 2 * ys, ncols, &a20, &a21); \
    if (R > 3) start16(init, 3 * ys, ncols, &a30, &a31); \
    if (R > 4) start16(init, 4 * ys, ncols, &a40, &a41); \
    if (R > 5) start16(init, 5 * ys, ncols, &a50, &a51); \
    const float *x0 = x, *x1 = x + xs, *x2 = x + 2 * xs, *x3 = x + 3 * xs, *x4 = x + 4 * xs, \
                *x5 = x + 5 * xs; \
    for (int k = 0; k < K; k++) { \
        __m256 w0, w1; \
        LOADW(P, k, w0, w1); \
        FMA_ROW(0, x0, a00, a01); FMA_ROW(1, x1, a10, a11); FMA_ROW(2, x2, a20, a21); \
        FMA_ROW(3, x3, a30, a31); FMA_ROW(4, x4, a40, a41); FMA_ROW(5, x5, a50, a51); \
    } \
    store16(y, a00, a01, scale, bias, ncols); \
    if (R > 1) store16(y + ys, a10, a11, scale, bias, ncols); \
    if (R > 2) store16(y + 2 * ys, a20, a21, scale, bias, ncols); \
    if (R > 3) store16(y + 3 * ys, a30, a31, scale, bias, ncols); \
    if (R > 4) store16(y + 4 * ys, a40, a41, scale, bias, ncols); \
    if (R > 5) store16(y + 5 * ys, a50, a51, scale, bias, ncols); \
}

#define FMA_ROW2(r, XR, A0, A1, A2, A3) do { if (R > (r)) { __m256 b_ = _mm256_broadcast_ss((XR) + k); \
        A0 = _mm256_fmadd_ps(b_, w0, A0); A1 = _mm256_fmadd_ps(b_, w1, A1); \
        A2 = _mm256_fmadd_ps(b_, w2, A2); A3 = _mm256_fmadd_ps(b_, w3, A3); } } while (0)

/* R rows (R <= 3) times two whole panels: 4R accumulators, two weight streams
   (few rows leave the FMA units idle; a second stream keeps memory busy). */
#define PAIR_KERNEL(NAME, LOADW) \
AVX2_INLINE void NAME(int R, const float* x, ptrdiff_t xs, int K, const void* P, const void* Q, \
                      float* y, ptrdiff_t ys, const float* scale, const float* bias, \
                      const float* init) { \
    __m256 a00, a01, a02, a03, a10, a11, a12, a13, a20, a21, a22, a23; \
    a10 = a11 = a12 = a13 = a20 = a21 = a22 = a23 = _mm256_setzero_ps(); \
    start16(init, 0, PW, &a00, &a01); start16(init, PW, PW, &a02, &a03); \
    if (R > 1) { start16(init, ys, PW, &a10, &a11); \
                 start16(init, ys + PW, PW, &a12, &a13); } \
    if (R > 2) { start16(init, 2 * ys, PW, &a20, &a21); \
                 start16(init, 2 * ys + PW, PW, &a22, &a23); } \
    const float *x0 = x, *x1 = x + xs, *x2 = x + 2 * xs; \
    for (int k = 0; k < K; k++) { \
        __m256 w0, w1, w2, w3; \
        LOADW(P, k, w0, w1); \
        LOADW(Q, k, w2, w3); \
        FMA_ROW2(0, x0, a00, a01, a02, a03); FMA_ROW2(1, x1, a10, a11, a12, a13); \
        FMA_ROW2(2, x2, a20, a21, a22, a23); \
    } \
    const float *bq = bias ? bias + PW : NULL, *sq = scale ? scale + PW : NULL; \
    store16(y, a00, a01, scale, bias, PW); store16(y + PW, a02, a03, sq, bq, PW); \
    if (R > 1) { store16(y + ys, a10, a11, scale, bias, PW); \
                 store16(y + ys + PW, a12, a13, sq, bq, PW); } \
    if (R > 2) { store16(y + 2 * ys, a20, a21, scale, bias, PW); \
                 store16(y + 2 * ys + PW, a22, a23, sq, bq, PW); } \
}

/* One row times four whole panels: 8 accumulators, so the FMA units are not
   left waiting on one chain's latency (a single decode row, K long). */
#define QUAD_KERNEL(NAME, LOADW) \
AVX2_INLINE void NAME(const float* x, int K, const void* P0, const void* P1, const void* P2, \
                      const void* P3, float* y, const float* scale, const float* bias, \
                      const float* init) { \
    __m256 a0, a1, a2, a3, a4, a5, a6, a7; \
    start16(init, 0, PW, &a0, &a1); start16(init, PW, PW, &a2, &a3); \
    start16(init, 2 * PW, PW, &a4, &a5); \
    start16(init, 3 * PW, PW, &a6, &a7); \
    for (int k = 0; k < K; k++) { \
        __m256 b_ = _mm256_broadcast_ss(x + k), w0, w1; \
        LOADW(P0, k, w0, w1); a0 = _mm256_fmadd_ps(b_, w0, a0); a1 = _mm256_fmadd_ps(b_, w1, a1); \
        LOADW(P1, k, w0, w1); a2 = _mm256_fmadd_ps(b_, w0, a2); a3 = _mm256_fmadd_ps(b_, w1, a3); \
        LOADW(P2, k, w0, w1); a4 = _mm256_fmadd_ps(b_, w0, a4); a5 = _mm256_fmadd_ps(b_, w1, a5); \
        LOADW(P3, k, w0, w1); a6 = _mm256_fmadd_ps(b_, w0, a6); a7 = _mm256_fmadd_ps(b_, w1, a7); \
    } \
    for (int q = 0; q < 4; q++) { \
        __m256 lo = q == 0 ? a0 : q == 1 ? a2 : q == 2 ? a4 : a6; \
        __m256 hi = q == 0 ? a1 : q == 1 ? a3 : q == 2 ? a5 : a7; \
        store16(y + q * PW, lo, hi, scale ? scale + q * PW : NULL, bias ? bias + q * PW : NULL, \
                PW); \
    } \
}

ROWS_KERNEL(rows_f32, LOADW_F32)
ROWS_KERNEL(rows_bf16, LOADW_BF16)
ROWS_KERNEL(rows_f16, LOADW_F16)
PAIR_KERNEL(pair_f32, LOADW_F32)
PAIR_KERNEL(pair_bf16, LOADW_BF16)
PAIR_KERNEL(pair_f16, LOADW_F16)
ROWS_KERNEL(rows_i8, LOADW_I8)
PAIR_KERNEL(pair_i8, LOADW_I8)
QUAD_KERNEL(quad_f32, LOADW_F32)
QUAD_KERNEL(quad_bf16, LOADW_BF16)
QUAD_KERNEL(quad_f16, LOADW_F16)
QUAD_KERNEL(quad_i8, LOADW_I8)

AVX2 static void panel_quad_avx2(const float* x, int K, const char* W, size_t pbytes, int kind,
                                 float* y, const float* scale, const float* bias,
                                 const float* init) {
    const void *P0 = W, *P1 = W + pbytes, *P2 = W + 2 * pbytes, *P3 = W + 3 * pbytes;
    if (kind == W_F32) quad_f32(x, K, P0, P1, P2, P3, y, scale, bias, init);
    else if (kind == W_BF16) quad_bf16(x, K, P0, P1, P2, P3, y, scale, bias, init);
    else if (kind == W_I8) quad_i8(x, K, P0, P1, P2, P3, y, scale, bias, init);
    else quad_f16(x, K, P0, P1, P2, P3, y, scale, bias, init);
}

/* The R argument is a constant at every call below, so each call is its own
   specialised, fully unrolled kernel. */
#define DISPATCH_ROWS(FN, R, ...) switch (R) { \
    case 1: FN(1, __VA_ARGS__); break; case 2: FN(2, __VA_ARGS__); break; \
    case 3: FN(3, __VA_ARGS__); break; case 4: FN(4, __VA_ARGS__); break; \
    case 5: FN(5, __VA_ARGS__); break; default: FN(6, __VA_ARGS__); break; }
#define DISPATCH_PAIR(FN, R, ...) switch (R) { \
    case 1: FN(1, __VA_ARGS__); break; case 2: FN(2, __VA_ARGS__); break; \
    default: FN(3, __VA_ARGS__); break; }

AVX2 static void panel_rows_avx2(const float* x, ptrdiff_t xs, int M, int K, const void* P, int kind,
                                 float* y, ptrdiff_t ys, const float* scale, const float* bias,
                                 int ncols, const float* init) {
    for (int m = 0; m < M; m += 6) {
        int R = M - m < 6 ? M - m : 6;
        const float* xm = x + m * xs;
        float* ym = y + m * ys;
        const float* im = init ? init + m * ys : NULL;
        if (kind == W_F32) { DISPATCH_ROWS(rows_f32, R, xm, xs, K, P, ym, ys, scale, bias, ncols, im) }
        else if (kind == W_BF16) { DISPATCH_ROWS(rows_bf16, R, xm, xs, K, P, ym, ys, scale, bias, ncols, im) }
        else if (kind == W_I8) { DISPATCH_ROWS(rows_i8, R, xm, xs, K, P, ym, ys, scale, bias, ncols, im) }
        else { DISPATCH_ROWS(rows_f16, R, xm, xs, K, P, ym, ys, scale, bias, ncols, im) }
    }
}

AVX2 static void panel_pair_avx2(const float* x, ptrdiff_t xs, int M, int K, const void* P,
                                 const void* Q, int kind, float* y, ptrdiff_t ys,
                                 const float* scale, const float* bias, const float* init) {
    for (int m = 0; m < M; m += 3) {
        int R = M - m < 3 ? M - m : 3;
        const float* xm = x + m * xs;
        float* ym = y + m * ys;
        const float* im = init ? init + m * ys : NULL;
        if (kind == W_F32) { DISPATCH_PAIR(pair_f32, R, xm, xs, K, P, Q, ym, ys, scale, bias, im) }
        else if (kind == W_BF16) { DISPATCH_PAIR(pair_bf16, R, xm, xs, K, P, Q, ym, ys, scale, bias, im) }
        else if (kind == W_I8) { DISPATCH_PAIR(pair_i8, R, xm, xs, K, P, Q, ym, ys, scale, bias, im) }
        else { DISPATCH_PAIR(pair_f16, R, xm, xs, K, P, Q, ym, ys, scale, bias, im) }
    }
}

/* exp_bark on 8 lanes: the same operations as the scalar one. */
AVX2_INLINE __m256 exp8_avx2(__m256 x) {
    __m256 keep = _mm256_cmp_ps(x, _mm256_set1_ps(EXP_MIN), _CMP_GE_OQ);
    x = _mm256_max_ps(x, _mm256_set1_ps(EXP_MIN));
    __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(LOG2E)),
                               _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fmadd_ps(n, _mm256_set1_ps(-LN2_HI), x);
    r = _mm256_fmadd_ps(n, _mm256_set1_ps(-LN2_LO), r);
    __m256 p = _mm256_fmadd_ps(_mm256_set1_ps(EC0), r, _mm256_set1_ps(EC1));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(EC2));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(EC3));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(EC4));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(EC5));
    __m256 y = _mm256_add_ps(_mm256_fmadd_ps(p, _mm256_mul_ps(r, r), r), _mm256_set1_ps(1.0f));
    __m256i bits = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_and_ps(_mm256_mul_ps(y, _mm256_castsi256_ps(bits)), keep);
}

/* softmax_generic on 8 lanes at a time (s has room for whole chunks of 8). */
AVX2 static float softmax_avx2(float* s, int L, int Lpad, float scale) {
    int chunks = (L + 7) / 8;
    __m256 vscale = _mm256_set1_ps(scale);
    __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    float m = -INFINITY;
    for (int c = 0; c < chunks; c++)
        _mm256_storeu_ps(s + 8 * c, _mm256_mul_ps(_mm256_loadu_ps(s + 8 * c), vscale));
    for (int t = 0; t < L; t++) m = s[t] > m ? s[t] : m;
    __m256 vm = _mm256_set1_ps(m), lanes = _mm256_setzero_ps();
    for (int c = 0; c < chunks; c++) {
        __m256 p = exp8_avx2(_mm256_sub_ps(_mm256_loadu_ps(s + 8 * c), vm));
        int valid = L - 8 * c;
        if (valid < 8) { /* keys past L add +0 to their lanes: as if absent */
            __m256 live = _mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_set1_epi32(valid), idx));
            p = _mm256_and_ps(p, live);
        }
        _mm256_storeu_ps(s + 8 * c, p);
        lanes = _mm256_add_ps(lanes, p);
    }
    for (int t = 8 * chunks; t < Lpad; t++) s[t] = 0.0f;
    float l8[8];
    _mm256_storeu_ps(l8, lanes);
    return tree8(l8);
}

#ifdef BARK_AVX512
/* ------------------------------------------------------------------------ */
/* AVX-512: a panel's 16 outputs are one 512-bit register; the lanes are still
   independent outputs and each is the same chain of FMAs, so this path gives
   the bits of the AVX2 and generic paths.                                   */

#define AVX512 __attribute__((target("avx512f,fma,f16c")))
#define AVX512_INLINE AVX512 static inline __attribute__((always_inline))

#define LOADZ_F32(P, k) _mm512_loadu_ps((const float*)(P) + (size_t)(k) * PW)
#define LOADZ_BF16(P, k) _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32( \
        _mm256_loadu_si256((const __m256i*)((const uint16_t*)(P) + (size_t)(k) * PW))), 16))
#define LOADZ_F16(P, k) _mm512_cvtph_ps( \
        _mm256_loadu_si256((const __m256i*)((const uint16_t*)(P) + (size_t)(k) * PW)))
#define LOADZ_I8(P, k) _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32( \
        _mm_loadu_si128((const __m128i*)((const int8_t*)(P) + (size_t)(k) * PW))))

/* What an accumulator of 16 outputs starts from when a fold goes on: init's values. */
/* f32_to_bf16 on 16 values: the same rounding to nearest even and quiet NaNs. */
AVX512_INLINE __m256i bf16z(__m512 x) {
    __m512i b = _mm512_castps_si512(x), hi = _mm512_srli_epi32(b, 16);
    __m512i r = _mm512_add_epi32(b, _mm512_add_epi32(_mm512_set1_epi32(0x7fff),
                                                     _mm512_and_si512(hi, _mm512_set1_epi32(1))));
    __mmask16 nan = _mm512_cmpgt_epu32_mask(_mm512_and_si512(b, _mm512_set1_epi32(0x7fffffff)),
                                            _mm512_set1_epi32(0x7f800000));
    r = _mm512_mask_mov_epi32(_mm512_srli_epi32(r, 16), nan,
                              _mm512_or_si512(hi, _mm512_set1_epi32(0x40)));
    return _mm512_cvtepi32_epi16(r);
}

/* n floats → bf16, as f32_to_bf16 does each. */
AVX512 static void bf16_row_avx512(const float* x, int n, uint16_t* out) {
    int k = 0;
    for (; k + 16 <= n; k += 16)
        _mm256_storeu_si256((__m256i*)(out + k), bf16z(_mm512_loadu_ps(x + k)));
    for (; k < n; k++) out[k] = f32_to_bf16(x[k]);
}

AVX512_INLINE __m512 startz(const float* init, int ncols) {
    if (ncols >= PW) return _mm512_loadu_ps(init);
    return _mm512_maskz_loadu_ps((__mmask16)((1u << ncols) - 1u), init);
}

AVX512_INLINE void storez(float* y, __m512 a, const float* scale, const float* bias, int ncols) {
    if (scale) a = _mm512_mul_ps(a, _mm512_loadu_ps(scale));
    if (bias) a = _mm512_add_ps(a, _mm512_loadu_ps(bias));
    if (ncols >= PW) _mm512_storeu_ps(y, a);
    else _mm512_mask_storeu_ps(y, (__mmask16)((1u << ncols) - 1u), a);
}

/* R rows (<= 6) times NP whole panels (<= 4, or 8 for one row): R * NP chains. */
#define BLOCKZ_KERNEL(NAME, LOADZ) \
AVX512_INLINE void NAME(int R, int NP, const float* x, ptrdiff_t xs, int K, const char* W, \
                        size_t pbytes, float* y, ptrdiff_t ys, const float* scale, \
                        const float* bias, int ncols, const float* init) { \
    __m512 acc[6][8]; \
    for (int r = 0; r < R; r++) \
        for (int q = 0; q < NP; q++) \
            acc[r][q] = init ? startz(init + r * ys + q * PW, ncols - q * PW) \
                             : _mm512_setzero_ps(); \
    for (int k = 0; k < K; k++) { \
        __m512 w[8]; \
        for (int q = 0; q < NP; q++) w[q] = LOADZ(W + q * pbytes, k); \
        for (int r = 0; r < R; r++) { \
            __m512 b = _mm512_set1_ps(x[r * xs + k]); \
            for (int q = 0; q < NP; q++) acc[r][q] = _mm512_fmadd_ps(b, w[q], acc[r][q]); \
        } \
    } \
    for (int r = 0; r < R; r++) \
        for (int q = 0; q < NP; q++) \
            storez(y + r * ys + q * PW, acc[r][q], scale ? scale + q * PW : NULL, \
                   bias ? bias + q * PW : NULL, ncols - q * PW); \
}

BLOCKZ_KERNEL(blockz_f32, LOADZ_F32)
BLOCKZ_KERNEL(blockz_bf16, LOADZ_BF16)
BLOCKZ_KERNEL(blockz_f16, LOADZ_F16)
BLOCKZ_KERNEL(blockz_i8, LOADZ_I8)

/* Each (R, NP) below is a constant at its call: its own unrolled kernel. */
#define BLOCKZ_CASES(FN, R, NP, ...) switch (R * 16 + NP) { \
    case 1 * 16 + 8: FN(1, 8, __VA_ARGS__); break; \
    case 1 * 16 + 4: FN(1, 4, __VA_ARGS__); break; case 2 * 16 + 4: FN(2, 4, __VA_ARGS__); break; \
    case 3 * 16 + 4: FN(3, 4, __VA_ARGS__); break; case 4 * 16 + 4: FN(4, 4, __VA_ARGS__); break; \
    case 5 * 16 + 4: FN(5, 4, __VA_ARGS__); break; case 6 * 16 + 4: FN(6, 4, __VA_ARGS__); break; \
    case 1 * 16 + 1: FN(1, 1, __VA_ARGS__); break; case 2 * 16 + 1: FN(2, 1, __VA_ARGS__); break; \
    case 3 * 16 + 1: FN(3, 1, __VA_ARGS__); break; case 4 * 16 + 1: FN(4, 1, __VA_ARGS__); break; \
    case 5 * 16 + 1: FN(5, 1, __VA_ARGS__); break; default: FN(6, 1, __VA_ARGS__); break; }

AVX512 static void blockz(int kind, int R, int NP, const float* x, ptrdiff_t xs, int K,
                          const char* W, size_t pbytes, float* y, ptrdiff_t ys,
                          const float* scale, const float* bias, int ncols, const float* init) {
    if (kind == W_F32) { BLOCKZ_CASES(blockz_f32, R, NP, x, xs, K, W, pbytes, y, ys, scale, bias, ncols, init) }
    else if (kind == W_BF16) { BLOCKZ_CASES(blockz_bf16, R, NP, x, xs, K, W, pbytes, y, ys, scale, bias, ncols, init) }
    else if (kind == W_I8) { BLOCKZ_CASES(blockz_i8, R, NP, x, xs, K, W, pbytes, y, ys, scale, bias, ncols, init) }
    else { BLOCKZ_CASES(blockz_f16, R, NP, x, xs, K, W, pbytes, y, ys, scale, bias, ncols, init) }
}

/* gemm_serial's AVX-512 body: groups of panels outside (they stay in cache),
   blocks of 6 rows inside. */
AVX512 static void gemm_avx512(const float* x, ptrdiff_t xs, int M, int K, const char* W,
                               int kind, int npan, size_t pbytes, float* y, ptrdiff_t ys,
                               const float* scale, const float* bias, int ncols,
                               const float* init) {
    int big = M == 1 && kind != W_F32 ? 8 : 4;
    for (int p = 0; p < npan;) {
        /* the widest block of whole panels that fits (four where eight do not: one
           panel alone is one chain of FMAs, bound by their latency) */
        int NP = 1;
        for (int w = big; w >= 4 && NP == 1; w /= 2)
            if (p + w <= npan && (p + w) * PW <= ncols) NP = w;
        for (int m = 0; m < M; m += 6) {
            int R = M - m < 6 ? M - m : 6;
            blockz(kind, R, NP, x + m * xs, xs, K, W + p * pbytes, pbytes, y + m * ys + p * PW,
                   ys, scale ? scale + p * PW : NULL, bias ? bias + p * PW : NULL, ncols - p * PW,
                   init ? init + m * ys + p * PW : NULL);
        }
        p += NP;
    }
}

/* exp8_avx2 on 16 lanes: the same operations, so the same bits. */
AVX512_INLINE __m512 exp16_avx512(__m512 x) {
    __mmask16 keep = _mm512_cmp_ps_mask(x, _mm512_set1_ps(EXP_MIN), _CMP_GE_OQ);
    x = _mm512_max_ps(x, _mm512_set1_ps(EXP_MIN));
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(LOG2E)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fmadd_ps(n, _mm512_set1_ps(-LN2_HI), x);
    r = _mm512_fmadd_ps(n, _mm512_set1_ps(-LN2_LO), r);
    __m512 p = _mm512_fmadd_ps(_mm512_set1_ps(EC0), r, _mm512_set1_ps(EC1));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(EC2));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(EC3));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(EC4));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(EC5));
    __m512 y = _mm512_add_ps(_mm512_fmadd_ps(p, _mm512_mul_ps(r, r), r), _mm512_set1_ps(1.0f));
    __m512i bits = _mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(n),
                                                      _mm512_set1_epi32(127)), 23);
    return _mm512_maskz_mov_ps(keep, _mm512_mul_ps(y, _mm512_castsi512_ps(bits)));
}

/* softmax_avx2 16 keys at a time: the same scaled scores, maximum (exact in any
   order) and exponentials; each block of 16 adds its two halves of 8 to the 8
   lanes in key order, as the AVX2 path adds its chunks, so the same sum. The
   scalar maximum and the 8-wide exponentials were a sixth of a fine pass. */
AVX512 static float softmax_avx512(float* s, int L, int Lpad, float scale) {
    int blocks = (L + 15) / 16;  /* s has room for whole blocks (rows are whole panels) */
    __m512 vscale = _mm512_set1_ps(scale), vm = _mm512_set1_ps(-INFINITY);
    for (int c = 0; c < blocks; c++) {
        __mmask16 live = L - 16 * c >= 16 ? (__mmask16)0xffff
                                           : (__mmask16)((1u << (L - 16 * c)) - 1u);
        __m512 v = _mm512_mul_ps(_mm512_loadu_ps(s + 16 * c), vscale);
        _mm512_storeu_ps(s + 16 * c, v);
        vm = _mm512_mask_max_ps(vm, live, v, vm);  /* a NaN score is passed over, as in C */
    }
    float m = _mm512_reduce_max_ps(vm);
    __m512 vmax = _mm512_set1_ps(m);
    __m256 lanes = _mm256_setzero_ps();
    for (int c = 0; c < blocks; c++) {
        __mmask16 live = L - 16 * c >= 16 ? (__mmask16)0xffff
                                           : (__mmask16)((1u << (L - 16 * c)) - 1u);
        __m512 p = _mm512_maskz_mov_ps(live, exp16_avx512(_mm512_sub_ps(_mm512_loadu_ps(s + 16 * c),
                                                                        vmax)));
        _mm512_storeu_ps(s + 16 * c, p);
        lanes = _mm256_add_ps(lanes, _mm512_castps512_ps256(p));
        if (L - 16 * c > 8)  /* a half wholly past L would only add +0 */
            lanes = _mm256_add_ps(lanes, _mm256_castpd_ps(_mm512_extractf64x4_pd(
                _mm512_castps_pd(p), 1)));
    }
    for (int t = 16 * blocks; t < Lpad; t++) s[t] = 0.0f;
    float l8[8];
    _mm256_storeu_ps(l8, lanes);
    return tree8(l8);
}
#endif /* BARK_AVX512 */
#endif /* BARK_X86 */

/* ------------------------------------------------------------------------ */
/* dispatch                                                                 */

enum { ISA_GENERIC = 0, ISA_AVX2 = 1, ISA_AVX512 = 2 };
static int g_isa = -1;     /* chosen at import */
static int g_vnni = 0;     /* AVX512-VNNI here (set at import) */
static int g_bf16dp = 0;   /* AVX512-BF16 here (set at import) */
static int g_bf16_generic = 0;  /* tests: bf16 rows on the reference path instead */
static int g_amx_here = 0;  /* AMX-INT8 and AMX-BF16 usable here (set at import) */
static int g_amx = 0;       /* in use (tests turn it off to compare) */
static int g_best = ISA_GENERIC;

static int detect_isa(void) {
#ifdef BARK_X86
    __builtin_cpu_init();
    if (!(__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
          __builtin_cpu_supports("f16c")))
        return ISA_GENERIC;
#ifdef BARK_AVX512
    if (__builtin_cpu_supports("avx512f")) return ISA_AVX512;
#endif
    return ISA_AVX2;
#endif
    return ISA_GENERIC;
}

static const char* isa_name(int isa) {
    return isa == ISA_AVX512 ? "avx512" : isa == ISA_AVX2 ? "avx2" : "generic";
}

/* Below this many multiply-adds a call runs on the calling thread: waking a
   sleeping OpenMP team costs more than such a product (the tiny test models). */
#define PARALLEL_MIN_WORK (1 << 18)

static inline int round_up(int n, int to) { return (n + to - 1) / to * to; }

static int n_threads(int asked, double work) {
#ifdef _OPENMP
    return asked > 1 && work >= PARALLEL_MIN_WORK ? asked : 1;
#else
    (void)asked; (void)work;
    return 1;
#endif
}

/* n narrow weights → float32, exactly; one loop per kind so each vectorises. */
static void widen(const void* src, int kind, float* dst, size_t n) {
    if (kind == W_BF16) {
        const uint16_t* s = (const uint16_t*)src;
        uint32_t* d = (uint32_t*)dst;
        for (size_t i = 0; i < n; i++) d[i] = (uint32_t)s[i] << 16;
    } else if (kind == W_I8) {
        const int8_t* s = (const int8_t*)src;
        for (size_t i = 0; i < n; i++) dst[i] = (float)s[i];
    } else {
        for (size_t i = 0; i < n; i++) dst[i] = load_w(src, kind, i);
    }
}

/* The first cache-line boundary in a block allocated 64 bytes larger than needed. */
static inline char* align64(char* raw) { return raw + (64 - (uintptr_t)raw % 64) % 64; }

/* The calling thread's working buffers, kept for the thread's life (a fresh
   one per call would be mapped and faulted in again each time), aligned to a
   cache line as torch's tensors are (a 64-byte load across two lines is split
   in two): BUF_WIDE for widened panels (at most WIDE_GROUP panels of the widest
   input, ~0.8 MB at Bark's dims), BUF_SCORES and BUF_OUT for attention's scores
   and sums of values (~0.2 MB at 1024 keys). NULL if out of memory. */
enum { BUF_WIDE = 0, BUF_SCORES = 1, BUF_OUT = 2, BUF_AMX = 3, N_BUFS = 4 };
static float* thread_floats(int which, size_t floats) {
    static __thread char* raw[N_BUFS] = {NULL};
    static __thread size_t cap[N_BUFS] = {0};
    if (floats > cap[which]) {  /* nothing to keep: a fresh block, not realloc's copy */
        free(raw[which]);
        raw[which] = (char*)malloc(sizeof(float) * floats + 64);
        cap[which] = raw[which] == NULL ? 0 : floats;
        if (raw[which] == NULL) return NULL;
    }
    return (float*)align64(raw[which]);
}

/* y (M, ncols) = x (M, K) @ W.T (* scale) (+ bias) on the calling thread: W in
   `npan` panels of K x 16 weights, `pstride` elements apart (K * 16 when packed).
   `init` (NULL: zeros) is what each output's fold of FMAs starts from, laid out
   as y (it may be y): a fold over k < K1 stored, then continued over the next
   inputs from there, gives the bits of one fold over both (float32 is stored
   and loaded exactly). A caller that continues a fold passes no scale or bias. */
static void gemm_serial(const float* x, ptrdiff_t xs, int M, int K, const void* W, int kind,
                        int npan, size_t pstride, float* y, ptrdiff_t ys, const float* scale,
                        const float* bias, int ncols, const float* init) {
    size_t pbytes = pstride * w_size(kind);
    const char* Wb = (const char*)W;
    int p = 0;
    if (kind != W_F32 && M > 8) {
        /* Many rows of narrow weights (a prefill, a fine pass): widen a group of
           panels once into float32 (exactly) and multiply that, instead of widening
           it again for every block of rows; the same values, so the same bits. The
           group is as many panels as the float32 path multiplies at once (WIDE_GROUP):
           one panel at a time left its row blocks bound by loads, at half the speed. */
        size_t panel = (size_t)K * PW;
        float* wide = thread_floats(BUF_WIDE, panel * WIDE_GROUP);
        if (wide != NULL) {
            while (p < npan) {
                int g = npan - p < WIDE_GROUP ? npan - p : WIDE_GROUP;
                for (int q = 0; q < g; q++)  /* a panel's first K rows (the stride may be more) */
                    widen(Wb + (p + q) * pbytes, kind, wide + q * panel, panel);
                int nc = ncols - p * PW < g * PW ? ncols - p * PW : g * PW;
                gemm_serial(x, xs, M, K, wide, W_F32, g, panel, y + p * PW, ys,
                            scale ? scale + p * PW : NULL, bias ? bias + p * PW : NULL, nc,
                            init ? init + p * PW : NULL);
                p += g;
            }
            return;
        }
    }
#ifdef BARK_X86
#ifdef BARK_AVX512
    if (g_isa == ISA_AVX512) {
        gemm_avx512(x, xs, M, K, Wb, kind, npan, pbytes, y, ys, scale, bias, ncols, init);
        return;
    }
#endif
    if (g_isa == ISA_AVX2) {
        /* one row: four whole panels at a time (eight independent chains) */
        if (M == 1)
            for (; p + 3 < npan && (p + 4) * PW <= ncols; p += 4)
                panel_quad_avx2(x, K, Wb + p * pbytes, pbytes, kind, y + p * PW,
                                scale ? scale + p * PW : NULL, bias ? bias + p * PW : NULL,
                                init ? init + p * PW : NULL);
        /* few rows: pairs of whole panels (two weight streams keep memory busy) */
        if (M <= 8)
            for (; p + 1 < npan && (p + 2) * PW <= ncols; p += 2)
                panel_pair_avx2(x, xs, M, K, Wb + p * pbytes, Wb + (p + 1) * pbytes, kind,
                                y + p * PW, ys, scale ? scale + p * PW : NULL,
                                bias ? bias + p * PW : NULL, init ? init + p * PW : NULL);
        for (; p < npan; p++) {
            int nc = ncols - p * PW < PW ? ncols - p * PW : PW;
            panel_rows_avx2(x, xs, M, K, Wb + p * pbytes, kind, y + p * PW, ys,
                            scale ? scale + p * PW : NULL, bias ? bias + p * PW : NULL, nc,
                            init ? init + p * PW : NULL);
        }
        return;
    }
#endif
    for (; p < npan; p++) {
        int nc = ncols - p * PW < PW ? ncols - p * PW : PW;
        panel_generic(x, xs, M, K, Wb + p * pbytes, kind, y + p * PW, ys,
                      scale ? scale + p * PW : NULL, bias ? bias + p * PW : NULL, nc,
                      init ? init + p * PW : NULL);
    }
}

/* y (M, ncols) = x (M, K) @ W.T (* scale) (+ bias), W packed (npan, K, 16);
   threads take groups of panels (output columns), never the input dimension:
   four for a single row (the quad kernel), else two. */
static void linear_impl(const float* x, ptrdiff_t xs, int M, int K, const void* W, int kind,
                        int npan, float* y, ptrdiff_t ys, const float* scale, const float* bias,
                        int ncols, int threads) {
    size_t pstride = (size_t)K * PW;
    int G = (M == 1 ? 4 : 2) * (g_isa == ISA_AVX512 ? 2 : 1);  /* panels per unit of work */
    size_t ubytes = G * pstride * w_size(kind);
    int units = (npan + G - 1) / G;
    int nt = n_threads(threads, (double)M * npan * PW * K);
    #pragma omp parallel for schedule(static) num_threads(nt)
    for (int u = 0; u < units; u++) {
        int np = npan - G * u < G ? npan - G * u : G;
        int nc = ncols - G * u * PW < np * PW ? ncols - G * u * PW : np * PW;
        gemm_serial(x, xs, M, K, (const char*)W + u * ubytes, kind, np, pstride,
                    y + G * u * PW, ys, scale ? scale + G * u * PW : NULL,
                    bias ? bias + G * u * PW : NULL, nc, NULL);
    }
}

#define QBLOCK 48  /* queries of one row and head per attention task (a multiple of 6) */

#ifdef BARK_AMX
/* AMX tiles, for narrow rows and their attention (their section is below). */
#define AMX __attribute__((target("avx512f,avx512bw,amx-tile,amx-int8,amx-bf16")))
#define AMX_HD 64  /* the head width the tile attention takes (Bark's) */
AMX static void amx_begin(void);
AMX static void amx_end(void);
static size_t amx_attend_scratch(int max_len);
AMX static void amx_scores(const float* q0, ptrdiff_t qs, int G, int Lmax, int P,
                           const uint16_t* Kp, const uint16_t* K0, int max_len, float* S,
                           uint16_t* buf);
AMX static void amx_values(const float* S, int G, int Lmax, int P, const uint16_t* Vp,
                           const uint16_t* V0, int max_len, float* O, uint16_t* buf);
#endif

typedef struct {
    int first;  /* index into qrows */
    int count;  /* consecutive query rows of one slot */
} QueryRun;

/* Attention of NQ query rows over their slots' keys; first writes every row's
   key and value (N rows) into the cache at (slot, pos). Cache per (slot, head):
   keys (max_len/16, hd, 16), values (hd/16, max_len, 16), in float32 or (kv_kind
   W_BF16) bfloat16: a key or value is rounded once as it is written, and widened
   exactly as it is read, so the products are the same chains as with float32.
   A slot s may read its first shared[s] keys and values (a multiple of 16) from
   slot src[s] (both NULL: every slot reads its own): rows whose prompts were
   the same share one copy of it, so a decode step reads those bytes once. The
   scores split at that key (each is its own fold), and each output's fold over
   the values is stored there and continued (gemm_serial's init): the bits of
   reading a copy of its own. A narrow call over a bf16 cache (prefills and fine
   passes of narrow weights) takes AMX tiles where they run (amx_scores). Returns
   -1 when memory ran out (the outputs are then undefined). */
static int attend_impl(const float* qkv, ptrdiff_t qs, int N, int C, int H, void* kT, void* v,
                       ptrdiff_t kslot, ptrdiff_t vslot, int max_len, const int64_t* slots,
                       const int64_t* pos, const int64_t* lens, const int64_t* qrows, int NQ,
                       float* y, ptrdiff_t ys, int threads, int kv_kind, const int64_t* src,
                       const int64_t* shared, int narrow) {
    int hd = C / H;
#ifdef BARK_AMX
    int tiles = g_amx && narrow && kv_kind == W_BF16 && hd == AMX_HD;
#else
    (void)narrow;
#endif
    size_t es = w_size(kv_kind);
    char *kb = (char*)kT, *vb = (char*)v;
    size_t khead = (size_t)max_len * hd;  /* elements per (slot, head), keys and values alike */
    float scale = 1.0f / sqrtf((float)hd);
    /* Runs of consecutive query rows of one slot, cut in blocks of QBLOCK. */
    QueryRun* runs = (QueryRun*)malloc(sizeof(QueryRun) * (NQ > 0 ? NQ : 1));
    if (runs == NULL) return -1;
    int nruns = 0, failed = 0;
    double work = 0;
    for (int q = 0; q < NQ; q++) {
        QueryRun* last = nruns ? &runs[nruns - 1] : NULL;
        int n = (int)qrows[q];
        if (last && last->count < QBLOCK && (int)qrows[last->first + last->count - 1] == n - 1
            && slots[qrows[last->first]] == slots[n]) {
            last->count++;
        } else {
            runs[nruns].first = q;
            runs[nruns].count = 1;
            nruns++;
        }
        work += (double)lens[n];
    }
    int nt = n_threads(threads, work * C * 2);
    #pragma omp parallel num_threads(nt)
    {
        #pragma omp for schedule(static)
        for (int h = 0; h < H; h++) {
            for (int n = 0; n < N; n++) {
                const float* kn = qkv + n * qs + C + h * hd;
                const float* vn = qkv + n * qs + 2 * C + h * hd;
                int t = (int)pos[n];
                size_t kofs = slots[n] * kslot + h * khead + ((size_t)(t / PW) * hd) * PW + t % PW;
                size_t vofs = slots[n] * vslot + h * khead + (size_t)t * PW;
                if (kv_kind == W_BF16) {
                    uint16_t *kp = (uint16_t*)kb + kofs, *vp = (uint16_t*)vb + vofs;
#ifdef BARK_AVX512
                    if (g_isa == ISA_AVX512) {  /* the same roundings, 16 at a time */
                        uint16_t kbits[PW];
                        for (int i = 0; i < hd; i += PW) {
                            bf16_row_avx512(kn + i, PW, kbits);
                            for (int j = 0; j < PW; j++) kp[(size_t)(i + j) * PW] = kbits[j];
                            bf16_row_avx512(vn + i, PW, vp + (size_t)(i / PW) * max_len * PW);
                        }
                        continue;
                    }
#endif
                    for (int i = 0; i < hd; i++) kp[(size_t)i * PW] = f32_to_bf16(kn[i]);
                    for (int i = 0; i < hd; i++)
                        vp[(size_t)(i / PW) * max_len * PW + i % PW] = f32_to_bf16(vn[i]);
                } else {
                    float *kp = (float*)kb + kofs, *vp = (float*)vb + vofs;
                    for (int i = 0; i < hd; i++) kp[(size_t)i * PW] = kn[i];
                    for (int i = 0; i < hd; i += PW)
                        memcpy(vp + (size_t)(i / PW) * max_len * PW, vn + i, PW * sizeof(float));
                }
            }
        }
        /* implicit barrier: every key is written before any query reads */
        float* S = thread_floats(BUF_SCORES, QBLOCK * (size_t)max_len);
        float* O = thread_floats(BUF_OUT, QBLOCK * (size_t)hd);
        float sums[QBLOCK];
#ifdef BARK_AMX
        uint16_t* T = NULL;
        if (tiles) {
            T = (uint16_t*)thread_floats(BUF_AMX, (amx_attend_scratch(max_len) + 1) / 2);
            if (T == NULL) S = NULL;
            amx_begin();
        }
#endif
        if (S == NULL || O == NULL) {
            #pragma omp atomic write
            failed = 1;
        }
        #pragma omp for schedule(static, 1)
        for (int task = 0; task < nruns * H; task++) {
            if (S == NULL || O == NULL) continue;
            int h = task / nruns;
            const QueryRun* run = &runs[task % nruns];
            int n0 = (int)qrows[run->first], G = run->count;
            int64_t slot = slots[n0];
            int Lmax = 0;
            for (int r = 0; r < G; r++) Lmax = lens[n0 + r] > Lmax ? (int)lens[n0 + r] : Lmax;
            int npk = (Lmax + PW - 1) / PW;
            int64_t from = shared ? src[slot] : slot;  /* where keys 0..P-1 are */
            int P = shared ? (int)shared[slot] : 0;
            P = P < Lmax ? P : Lmax / PW * PW;
            int pk = P / PW;
            const char* K0 = kb + (slot * kslot + h * khead) * es;
            const char* V0 = vb + (slot * vslot + h * khead) * es;
            const char* Kp = kb + (from * kslot + h * khead) * es;
            const char* Vp = vb + (from * vslot + h * khead) * es;
            const float* q0 = qkv + n0 * qs + h * hd;
#ifdef BARK_AMX
            if (tiles)
                amx_scores(q0, qs, G, Lmax, P, (const uint16_t*)Kp, (const uint16_t*)K0, max_len,
                           S, T);
            if (!tiles) {
#endif
            /* scores: s[r][t] = fold_i fma(q_r[i], k_t[i]) */
            if (pk)
                gemm_serial(q0, qs, G, hd, Kp, kv_kind, pk, (size_t)hd * PW, S, max_len, NULL,
                            NULL, pk * PW, NULL);
            if (npk > pk)
                gemm_serial(q0, qs, G, hd, K0 + (size_t)pk * hd * PW * es, kv_kind, npk - pk,
                            (size_t)hd * PW, S + pk * PW, max_len, NULL, NULL, (npk - pk) * PW,
                            NULL);
#ifdef BARK_AMX
            }
#endif
            for (int r = 0; r < G; r++) {
                float* s = S + (size_t)r * max_len;
                int L = (int)lens[n0 + r];
#ifdef BARK_X86
#ifdef BARK_AVX512
                if (g_isa == ISA_AVX512) { sums[r] = softmax_avx512(s, L, Lmax, scale); continue; }
#endif
                if (g_isa >= ISA_AVX2) { sums[r] = softmax_avx2(s, L, Lmax, scale); continue; }
#endif
                sums[r] = softmax_generic(s, L, Lmax, scale);
            }
#ifdef BARK_AMX
            if (tiles)
                amx_values(S, G, Lmax, P, (const uint16_t*)Vp, (const uint16_t*)V0, max_len, O, T);
            if (!tiles) {
#endif
            /* out[r][i] = fold_t fma(p_r[t], v_t[i]) over t < Lmax (p is 0 past a row's L) */
            if (P)
                gemm_serial(S, max_len, G, P, Vp, kv_kind, hd / PW, (size_t)max_len * PW, O, hd,
                            NULL, NULL, hd, NULL);
            gemm_serial(S + P, max_len, G, Lmax - P, V0 + (size_t)P * PW * es, kv_kind, hd / PW,
                        (size_t)max_len * PW, O, hd, NULL, NULL, hd, P ? O : NULL);
#ifdef BARK_AMX
            }
#endif
            for (int r = 0; r < G; r++) {
                float* out = y + (run->first + r) * ys + h * hd;
                for (int i = 0; i < hd; i++) out[i] = O[(size_t)r * hd + i] / sums[r];
            }
        }
#ifdef BARK_AMX
        if (tiles) amx_end();
#endif
    }
    free(runs);
    return failed ? -1 : 0;
}

/* ------------------------------------------------------------------------ */
/* int8 x int8: many rows of a prefill or a fine pass with int8 weights        */
/*
 * Each row m is quantised on its own: sx[m] = max|x[m]| / 127 (1 for a row of
 * zeros), xq = rint(x / sx) in [-127, 127], stored offset by 128 as unsigned
 * bytes (AVX512-VNNI multiplies unsigned by signed bytes). The integer sum
 * sum_k xq[m,k] * q[j,k] is exact in any order (|sum| < 2^31 for K < 2^17), so
 * it is the same on every path and for every split of the rows; then
 *   y[m, j] = (((float)(sum_k (xq+128) q  -  128 * sum_k q[j,k])) * sw[j]) * sx[m] (+ b[j])
 * as separate IEEE operations, in that order. A row's result depends only on
 * that row. Weights are re-laid per panel as (K/4, 16, 4): four consecutive k
 * of one output in one 32-bit lane, the operand layout of vpdpbusd.
 */
#define Q8_MAX 127

/* One value as an offset byte of a row of scale s (a NaN counts as 0). */
static inline uint8_t q8_byte(float x, float s) {
    float v = rintf(x / s);
    v = v > Q8_MAX ? Q8_MAX : v < -Q8_MAX ? -Q8_MAX : v == v ? v : 0.0f;
    return (uint8_t)((int)v + 128);
}

/* One row: its scale, and its values as offset bytes (the scalar reference). */
static float quantize_row(const float* xr, int K, uint8_t* out) {
    float amax = 0.0f;
    for (int k = 0; k < K; k++) { float a = fabsf(xr[k]); amax = a > amax ? a : amax; }
    float s = amax > 0.0f ? amax / (float)Q8_MAX : 1.0f;
    for (int k = 0; k < K; k++) out[k] = q8_byte(xr[k], s);
    return s;
}

#ifdef BARK_AVX512
/* quantize_row 16 values at a time: the same maximum, the same correctly rounded
   division and round-to-nearest-even, so the same bytes (rintf is a library call
   on the baseline x86-64 target, and it was a third of a prefill's int8 product). */
AVX512 static float quantize_row_avx512(const float* xr, int K, uint8_t* out) {
    __m512 vmax = _mm512_setzero_ps();
    int k = 0;
    for (; k + 16 <= K; k += 16) vmax = _mm512_max_ps(_mm512_abs_ps(_mm512_loadu_ps(xr + k)), vmax);
    float amax = _mm512_reduce_max_ps(vmax);
    for (; k < K; k++) { float a = fabsf(xr[k]); amax = a > amax ? a : amax; }
    float s = amax > 0.0f ? amax / (float)Q8_MAX : 1.0f;
    __m512 vs = _mm512_set1_ps(s), hi = _mm512_set1_ps(Q8_MAX), lo = _mm512_set1_ps(-Q8_MAX);
    for (k = 0; k + 16 <= K; k += 16) {
        __m512 v = _mm512_roundscale_ps(_mm512_div_ps(_mm512_loadu_ps(xr + k), vs),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        v = _mm512_max_ps(lo, _mm512_min_ps(hi, v));  /* NaN passes, as in C: byte 128 */
        __m512i q = _mm512_add_epi32(_mm512_cvtps_epi32(v), _mm512_set1_epi32(128));
        _mm_storeu_si128((__m128i*)(out + k), _mm512_cvtepi32_epi8(q));
    }
    for (; k < K; k++) out[k] = q8_byte(xr[k], s);
    return s;
}
#endif

static void quantize_rows(const float* x, ptrdiff_t xs, int M, int K, uint8_t* xu, size_t ld,
                          float* sx, int threads) {
    int nt = n_threads(threads, (double)M * K * 64);
    #pragma omp parallel for schedule(static) num_threads(nt)
    for (int m = 0; m < M; m++) {
#ifdef BARK_AVX512
        if (g_isa == ISA_AVX512) {
            sx[m] = quantize_row_avx512(x + m * xs, K, xu + (size_t)m * ld);
            continue;
        }
#endif
        sx[m] = quantize_row(x + m * xs, K, xu + (size_t)m * ld);
    }
}

/* One panel (K, 16) → (K/4, 16, 4), zero-padded to Kp inputs, and the sum of each
   output's weights. */
static void relayout_panel(const int8_t* P, int K, int Kp, int8_t* out, int32_t* colsum) {
    memset(out + (size_t)K * PW, 0, (size_t)(Kp - K) * PW);
    for (int j = 0; j < PW; j++) colsum[j] = 0;
    for (int k4 = 0; k4 < K / 4; k4++)
        for (int j = 0; j < PW; j++)
            for (int i = 0; i < 4; i++) {
                int8_t w = P[(size_t)(4 * k4 + i) * PW + j];
                out[((size_t)k4 * PW + j) * 4 + i] = w;
                colsum[j] += w;
            }
}

static inline void q8_store(float* y, const int32_t* acc, const int32_t* colsum, const float* sw,
                            float sxm, const float* bias, int ncols) {
    for (int j = 0; j < ncols; j++) {
        float v = (float)(acc[j] - 128 * colsum[j]);
        v = v * sw[j];
        v = v * sxm;
        y[j] = bias ? v + bias[j] : v;
    }
}

static void q8_panel_generic(const uint8_t* xu, int M, int K, const int8_t* L, const int32_t* colsum,
                             const float* sx, float* y, ptrdiff_t ys, const float* sw,
                             const float* bias, int ncols) {
    for (int m = 0; m < M; m++) {
        int32_t acc[PW] = {0};
        const uint8_t* xr = xu + (size_t)m * K;
        for (int k4 = 0; k4 < K / 4; k4++)
            for (int j = 0; j < PW; j++)
                for (int i = 0; i < 4; i++)
                    acc[j] += (int32_t)xr[4 * k4 + i] * (int32_t)L[((size_t)k4 * PW + j) * 4 + i];
        q8_store(y + m * ys, acc, colsum, sw, sx[m], bias, ncols);
    }
}

#ifdef BARK_AVX512
#define VNNI __attribute__((target("avx512f,avx512vnni")))
#define VNNI_INLINE VNNI static inline __attribute__((always_inline))
/* acc += x (unsigned bytes) . w (signed bytes), four per lane. GCC 12 keeps an
   accumulator of the intrinsic in memory, storing it at every step of the
   block below (half the speed), so GCC gets the instruction as inline asm on a
   local; clang allocates the intrinsic's registers well. */
#if defined(__GNUC__) && !defined(__clang__)
#define DPBUSD(acc, x, w) do { __m512i a_ = (acc); \
    __asm__("vpdpbusd {%2, %1, %0|%0, %1, %2}" : "+v"(a_) : "v"(x), "v"(w)); (acc) = a_; } while (0)
#else
#define DPBUSD(acc, x, w) ((acc) = _mm512_dpbusd_epi32((acc), (x), (w)))
#endif
/* R rows (<= 6) times NP re-laid panels (<= 4, `lstride` bytes apart): R * NP int32
   accumulators of 16 outputs, so each weight load serves R rows and each row's
   broadcast NP panels (one panel at a time was bound by loads). */
VNNI_INLINE void q8_block_vnni(int R, int NP, const uint8_t* x0, int K, const int8_t* L,
                               size_t lstride, const int32_t* colsum, const float* sx, float* y,
                               ptrdiff_t ys, const float* sw, const float* bias, int ncols) {
    __m512i acc[6][4];
    for (int r = 0; r < R; r++)
        for (int q = 0; q < NP; q++) acc[r][q] = _mm512_setzero_si512();
    for (int k4 = 0; k4 < K / 4; k4++) {
        __m512i w[4];
        for (int q = 0; q < NP; q++)
            w[q] = _mm512_loadu_si512((const void*)(L + q * lstride + (size_t)k4 * PW * 4));
        for (int r = 0; r < R; r++) {
            int32_t b;
            memcpy(&b, x0 + (size_t)r * K + 4 * k4, 4);
            __m512i xb = _mm512_set1_epi32(b);
            for (int q = 0; q < NP; q++) DPBUSD(acc[r][q], xb, w[q]);
        }
    }
    for (int r = 0; r < R; r++)
        for (int q = 0; q < NP && q * PW < ncols; q++) {
            int32_t a[PW];
            _mm512_storeu_si512((void*)a, acc[r][q]);
            int nc = ncols - q * PW < PW ? ncols - q * PW : PW;
            q8_store(y + r * ys + q * PW, a, colsum + q * PW, sw + q * PW, sx[r],
                     bias ? bias + q * PW : NULL, nc);
        }
}

#define Q8_CASE(R, NP, ...) case R * 16 + NP: q8_block_vnni(R, NP, __VA_ARGS__); break;
#define Q8_CASES_R(R, ...) Q8_CASE(R, 1, __VA_ARGS__) Q8_CASE(R, 2, __VA_ARGS__) \
    Q8_CASE(R, 3, __VA_ARGS__) Q8_CASE(R, 4, __VA_ARGS__)

/* Every row times NP consecutive re-laid panels (a thread's group). */
VNNI static void q8_group_vnni(const uint8_t* xu, int M, int K, int NP, const int8_t* L,
                               const int32_t* colsum, const float* sx, float* y, ptrdiff_t ys,
                               const float* sw, const float* bias, int ncols) {
    size_t lstride = (size_t)K * PW;
    for (int m = 0; m < M; m += 6) {
        int R = M - m < 6 ? M - m : 6;
        const uint8_t* x0 = xu + (size_t)m * K;
        float* ym = y + m * ys;
        switch (R * 16 + NP) {
            Q8_CASES_R(1, x0, K, L, lstride, colsum, sx + m, ym, ys, sw, bias, ncols)
            Q8_CASES_R(2, x0, K, L, lstride, colsum, sx + m, ym, ys, sw, bias, ncols)
            Q8_CASES_R(3, x0, K, L, lstride, colsum, sx + m, ym, ys, sw, bias, ncols)
            Q8_CASES_R(4, x0, K, L, lstride, colsum, sx + m, ym, ys, sw, bias, ncols)
            Q8_CASES_R(5, x0, K, L, lstride, colsum, sx + m, ym, ys, sw, bias, ncols)
            Q8_CASES_R(6, x0, K, L, lstride, colsum, sx + m, ym, ys, sw, bias, ncols)
            default: break;
        }
    }
}
#endif

/* ------------------------------------------------------------------------ */
/* bf16 x bf16: many rows of a prefill or a fine pass with bf16 weights        */
/*
 * Each row is rounded to bf16 (nearest even) on its own; pairs of inputs k =
 * 2i, 2i+1 are then multiplied and summed the way AVX512-BF16's vdpbf16ps
 * does: acc += x[2i+1] w[2i+1], rounded, then acc += x[2i] w[2i], rounded
 * (products of bf16 are exact in float32), with denormals taken and given as
 * zero; i ascending; then + bias. Checked against the instruction on the
 * machine that has it (tests). Used only where the CPU has the instruction:
 * elsewhere bf16 weights multiply float rows (`linear`), and the model id
 * says which ran.
 */
static inline float daz(float x) { return fabsf(x) < 1.17549435e-38f ? 0.0f * x : x; }

static void bf16_rows(const float* x, ptrdiff_t xs, int M, int K, uint16_t* xb, size_t ld,
                      int threads) {
    int nt = n_threads(threads, (double)M * K * 16);
    #pragma omp parallel for schedule(static) num_threads(nt)
    for (int m = 0; m < M; m++) {
#ifdef BARK_AVX512
        if (g_isa == ISA_AVX512) {
            bf16_row_avx512(x + m * xs, K, xb + (size_t)m * ld);
            continue;
        }
#endif
        for (int k = 0; k < K; k++) xb[(size_t)m * ld + k] = f32_to_bf16(x[m * xs + k]);
    }
}

/* One bf16 panel (K, 16) → (K/2, 16, 2), the two inputs of a pair side by side,
   zero-padded to Kp inputs. */
static void relayout_pairs(const uint16_t* P, int K, int Kp, uint16_t* out) {
    memset(out + (size_t)K * PW, 0, sizeof(uint16_t) * (size_t)(Kp - K) * PW);
    for (int k2 = 0; k2 < K / 2; k2++)
        for (int j = 0; j < PW; j++)
            for (int i = 0; i < 2; i++)
                out[((size_t)k2 * PW + j) * 2 + i] = P[(size_t)(2 * k2 + i) * PW + j];
}

static void bf16r_panel_generic(const uint16_t* xb, int M, int K, const uint16_t* L, float* y,
                                ptrdiff_t ys, const float* bias, int ncols) {
    for (int m = 0; m < M; m++) {
        const uint16_t* xr = xb + (size_t)m * K;
        for (int j = 0; j < ncols; j++) {
            float acc = 0.0f;
            for (int k2 = 0; k2 < K / 2; k2++) {
                const uint16_t* w = L + ((size_t)k2 * PW + j) * 2;
                float p1 = daz(bf16_to_f32(xr[2 * k2 + 1])) * daz(bf16_to_f32(w[1]));
                float p0 = daz(bf16_to_f32(xr[2 * k2])) * daz(bf16_to_f32(w[0]));
                acc = daz(daz(acc) + daz(p1));
                acc = daz(acc + daz(p0));
            }
            y[m * ys + j] = bias ? acc + bias[j] : acc;
        }
    }
}

#ifdef BARK_AVX512
#define BF16DP __attribute__((target("avx512f,avx512bf16")))
BF16DP static void bf16r_panel_native(const uint16_t* xb, int M, int K, const uint16_t* L,
                                      float* y, ptrdiff_t ys, const float* bias, int ncols) {
    for (int m = 0; m < M; m += 8) {
        int R = M - m < 8 ? M - m : 8;
        __m512 acc[8];
        for (int r = 0; r < 8; r++) acc[r] = _mm512_setzero_ps();
        const uint16_t* x0 = xb + (size_t)m * K;
        for (int k2 = 0; k2 < K / 2; k2++) {
            __m512bh w = (__m512bh)_mm512_loadu_si512((const void*)(L + (size_t)k2 * PW * 2));
            for (int r = 0; r < R; r++) {
                int32_t pair;
                memcpy(&pair, x0 + (size_t)r * K + 2 * k2, 4);
                acc[r] = _mm512_dpbf16_ps(acc[r], (__m512bh)_mm512_set1_epi32(pair), w);
            }
        }
        for (int r = 0; r < R; r++) {
            __m512 a = acc[r];
            if (bias) a = _mm512_add_ps(a, _mm512_loadu_ps(bias));
            if (ncols >= PW) _mm512_storeu_ps(y + (m + r) * ys, a);
            else _mm512_mask_storeu_ps(y + (m + r) * ys, (__mmask16)((1u << ncols) - 1u), a);
        }
    }
}
#endif

#ifdef BARK_AMX
/* ------------------------------------------------------------------------ */
/* AMX tiles: the same narrow products, 16 x 16 outputs per instruction       */
/*
 * int8: tdpbusd sums the same offset bytes times the same re-laid weights in
 * exact int32 arithmetic, so each output is the VNNI path's integer and
 * q8_store finishes both alike: the same bits. bf16: tdpbf16ps multiplies the
 * same bf16 rows and pairs, but the order and rounding of its sums are the
 * hardware's own (no sequence of float32 operations tried here reproduced
 * them), so bf16 rows on AMX are another result than vdpbf16ps's. It is still
 * one fixed computation per output, whatever rows share the call and however
 * many threads run (tests), and the model id says which ran. Inputs are
 * zero-padded to whole tiles (64 bytes), rows to whole blocks of 32.
 */
/* GCC 12's tile loads are asm without a memory operand: a compiler barrier
   keeps the stores that fill their buffers before them. */
#define AMX_STORES_DONE() __asm__ volatile("" : : : "memory")

typedef struct {
    uint8_t palette, start_row, reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} TileConfig;

/* Eight tiles of 16 rows x 64 bytes: C in 0-3, rows in 4-5, panels in 6-7. */
AMX static void amx_begin(void) {
    TileConfig c;
    memset(&c, 0, sizeof c);
    c.palette = 1;
    for (int t = 0; t < 8; t++) { c.rows[t] = 16; c.colsb[t] = 64; }
    /* GCC 12's _tile_loadconfig tells the compiler it reads 8 bytes, which lets
       it drop the stores above: the instruction with the whole block as input. */
    __asm__ volatile("ldtilecfg %0" : : "m"(c));
}

AMX static void amx_end(void) { _tile_release(); }

/* c (32, 32) int32 or float32 = 32 narrowed rows (x0, ld bytes apart) times one
   or two re-laid panels (L0; L1, or NULL for one) over Kb bytes of each row. An
   input byte offset kb of a row meets panel bytes kb * 16 on (int8: K/4 rows of
   four; bf16: K/2 rows of pairs, 64 bytes each). */
#define AMX_PAIR(DP, x0, ld, L0, L1, Kb, c) do { \
    _tile_zero(0); _tile_zero(1); _tile_zero(2); _tile_zero(3); \
    for (int kb_ = 0; kb_ < (Kb); kb_ += 64) { \
        _tile_loadd(4, (x0) + kb_, (ld)); \
        _tile_loadd(5, (x0) + 16 * (size_t)(ld) + kb_, (ld)); \
        _tile_loadd(6, (L0) + (size_t)kb_ * PW, 64); \
        DP(0, 4, 6); \
        DP(2, 5, 6); \
        if ((L1) != NULL) { \
            _tile_loadd(7, (L1) + (size_t)kb_ * PW, 64); \
            DP(1, 4, 7); \
            DP(3, 5, 7); \
        } \
    } \
    _tile_stored(0, (c), 128); \
    _tile_stored(1, (c) + 64, 128); \
    _tile_stored(2, (c) + 2048, 128); \
    _tile_stored(3, (c) + 2048 + 64, 128); \
} while (0)

/* Every row (xa: Mp = M rounded up to 32 rows, ld bytes apart) times np re-laid
   panels (lstride bytes apart): y (M, ncols), finished as on the other paths. */
AMX static void amx_group(int kind, const char* xa, size_t ld, int M, int Kb, int np,
                          const char* L, size_t lstride, const int32_t* colsum, const float* sx,
                          float* y, ptrdiff_t ys, const float* sw, const float* bias, int ncols) {
    union { int32_t i[AMX_ROWS * 2 * PW]; float f[AMX_ROWS * 2 * PW]; } c;
    char* cb = (char*)&c;
    AMX_STORES_DONE();
    for (int m = 0; m < M; m += AMX_ROWS) {
        const char* x0 = xa + (size_t)m * ld;
        int R = M - m < AMX_ROWS ? M - m : AMX_ROWS;
        for (int q = 0; q < np && q * PW < ncols; q += 2) {
            const char* L0 = L + q * lstride;
            const char* L1 = q + 1 < np && (q + 1) * PW < ncols ? L0 + lstride : NULL;
            if (kind == W_I8) AMX_PAIR(_tile_dpbusd, x0, ld, L0, L1, Kb, cb);
            else AMX_PAIR(_tile_dpbf16ps, x0, ld, L0, L1, Kb, cb);
            for (int h = 0; h < (L1 ? 2 : 1); h++) {
                int j0 = (q + h) * PW, nc = ncols - j0 < PW ? ncols - j0 : PW;
                for (int r = 0; r < R; r++) {
                    float* yr = y + (m + r) * ys + j0;
                    const int32_t* ci = c.i + r * 2 * PW + h * PW;
                    const float* cf = c.f + r * 2 * PW + h * PW;
                    if (kind == W_I8)
                        q8_store(yr, ci, colsum + j0, sw + j0, sx[m + r], bias ? bias + j0 : NULL,
                                 nc);
                    else
                        for (int j = 0; j < nc; j++) yr[j] = bias ? cf[j] + bias[j0 + j] : cf[j];
                }
            }
        }
    }
}

/*
 * Attention of a prefill or a fine pass over a bf16 cache, on tiles (head
 * width 64): the queries are rounded to bf16, the scores are the tiles' sums
 * of query x key pairs, the softmax is the float one of every path, and its
 * probabilities are rounded to bf16 for the tiles' sums over the values. One
 * (query, head) is still one fixed computation, whatever its neighbours.
 * Keys and values are re-laid per task into pairs (two dimensions of a key,
 * or two keys of a dimension, side by side), copied from the shared prompt's
 * slot below P and from the row's own above, so sharing gives the same bits.
 */

/* Output element 2j+e is input element 16e+j: two rows of 16 bf16 interleaved. */
static const int16_t PAIR_IDX[32] = {0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23,
                                     8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31};

AMX static inline void pair_rows(const uint16_t* src, uint16_t* dst, __m512i idx) {
    _mm512_storeu_si512((void*)dst, _mm512_permutexvar_epi16(idx, _mm512_loadu_si512(src)));
}

/* The scratch of one task, in uint16: queries (QBLOCK, 64), keys re-laid
   (max_len/16 panels of (32, 16, 2)), then with Lx = max_len rounded up to 32
   keys (whole tiles of keys): values re-laid (4 panels of (Lx/2, 16, 2)) and
   probabilities (QBLOCK, Lx). */
static size_t amx_attend_scratch(int max_len) {
    size_t Lx = (size_t)round_up(max_len, 32);
    return (size_t)QBLOCK * AMX_HD + (size_t)max_len * AMX_HD + Lx * AMX_HD + QBLOCK * Lx;
}

/* Scores S (G rows, max_len apart) of G <= QBLOCK queries (q0, qs apart) over
   keys 0..Lmax-1: panels below P from Kp, the rest from K0 (bf16 key panels). */
AMX static void amx_scores(const float* q0, ptrdiff_t qs, int G, int Lmax, int P,
                           const uint16_t* Kp, const uint16_t* K0, int max_len, float* S,
                           uint16_t* buf) {
    int npk = (Lmax + PW - 1) / PW, nqt = (G + 15) / 16;
    uint16_t* Qb = buf;
    uint16_t* Kr = Qb + QBLOCK * AMX_HD;
    __m512i idx = _mm512_loadu_si512((const void*)PAIR_IDX);
    for (int r = 0; r < nqt * 16; r++) {
        if (r < G) bf16_row_avx512(q0 + r * qs, AMX_HD, Qb + r * AMX_HD);
        else memset(Qb + r * AMX_HD, 0, sizeof(uint16_t) * AMX_HD);
    }
    for (int jp = 0; jp < npk; jp++) {
        const uint16_t* K = (jp * PW < P ? Kp : K0) + (size_t)jp * AMX_HD * PW;
        uint16_t* out = Kr + (size_t)jp * AMX_HD * PW;
        for (int d2 = 0; d2 < AMX_HD / 2; d2++) pair_rows(K + d2 * 2 * PW, out + d2 * 2 * PW, idx);
    }
    AMX_STORES_DONE();
    for (int qt = 0; qt < nqt; qt++) {
        _tile_loadd(4, Qb + qt * 16 * AMX_HD, AMX_HD * 2);       /* dimensions 0-31 */
        _tile_loadd(5, Qb + qt * 16 * AMX_HD + 32, AMX_HD * 2);  /* 32-63 */
        float* Sq = S + (size_t)qt * 16 * max_len;
        int jp = 0;
        for (; jp + 2 <= npk; jp += 2) {
            const uint16_t* B = Kr + (size_t)jp * AMX_HD * PW;
            _tile_zero(0);
            _tile_zero(1);
            _tile_loadd(6, B, 64);
            _tile_loadd(7, B + 16 * 2 * PW, 64);
            _tile_dpbf16ps(0, 4, 6);
            _tile_dpbf16ps(0, 5, 7);
            _tile_loadd(2, B + AMX_HD * PW, 64);
            _tile_loadd(3, B + AMX_HD * PW + 16 * 2 * PW, 64);
            _tile_dpbf16ps(1, 4, 2);
            _tile_dpbf16ps(1, 5, 3);
            _tile_stored(0, Sq + jp * PW, max_len * 4);
            _tile_stored(1, Sq + (jp + 1) * PW, max_len * 4);
        }
        if (jp < npk) {
            const uint16_t* B = Kr + (size_t)jp * AMX_HD * PW;
            _tile_zero(0);
            _tile_loadd(6, B, 64);
            _tile_loadd(7, B + 16 * 2 * PW, 64);
            _tile_dpbf16ps(0, 4, 6);
            _tile_dpbf16ps(0, 5, 7);
            _tile_stored(0, Sq + jp * PW, max_len * 4);
        }
    }
}

/* O (G, 64) = P (the softmax's rows in S, zero past each row's keys) times the
   values of keys 0..Lmax-1: below P from Vp, the rest from V0 (bf16 value
   panels of (max_len, 16)). */
AMX static void amx_values(const float* S, int G, int Lmax, int P, const uint16_t* Vp,
                           const uint16_t* V0, int max_len, float* O, uint16_t* buf) {
    int Lp = round_up(Lmax, 32), nqt = (G + 15) / 16;
    uint16_t* Vr = buf + QBLOCK * AMX_HD + (size_t)max_len * AMX_HD;
    uint16_t* Pb = Vr + (size_t)round_up(max_len, 32) * AMX_HD;  /* past Lp/2 x 64 pairs */
    __m512i idx = _mm512_loadu_si512((const void*)PAIR_IDX);
    for (int r = 0; r < nqt * 16; r++) {
        uint16_t* pr = Pb + (size_t)r * Lp;
        int t = r < G ? Lmax : 0;
        if (r < G) bf16_row_avx512(S + (size_t)r * max_len, Lmax, pr);
        for (; t < Lp; t++) pr[t] = 0;
    }
    for (int dp = 0; dp < AMX_HD / PW; dp++) {
        uint16_t* out = Vr + (size_t)dp * Lp * PW;
        int t = 0;
        for (; t + 2 <= Lmax; t += 2) {  /* P is a multiple of 16: a pair is on one side */
            const uint16_t* V = (t < P ? Vp : V0) + ((size_t)dp * max_len + t) * PW;
            pair_rows(V, out + (size_t)t * PW, idx);
        }
        if (t < Lmax) {  /* an odd last key: paired with zeros (the next may be unwritten) */
            const uint16_t* V = (t < P ? Vp : V0) + ((size_t)dp * max_len + t) * PW;
            for (int i = 0; i < PW; i++) {
                out[(size_t)t * PW + 2 * i] = V[i];
                out[(size_t)t * PW + 2 * i + 1] = 0;
            }
            t += 2;
        }
        memset(out + (size_t)t * PW, 0, sizeof(uint16_t) * (size_t)(Lp - t) * PW);
    }
    AMX_STORES_DONE();
    size_t vp = (size_t)Lp * PW;  /* elements per re-laid value panel */
    for (int qt = 0; qt < nqt; qt++) {
        _tile_zero(0);
        _tile_zero(1);
        _tile_zero(2);
        _tile_zero(3);
        for (int t = 0; t < Lp; t += 32) {
            const uint16_t* B = Vr + (size_t)(t / 2) * 2 * PW;
            _tile_loadd(4, Pb + (size_t)qt * 16 * Lp + t, Lp * 2);
            _tile_loadd(5, B, 64);
            _tile_dpbf16ps(0, 4, 5);
            _tile_loadd(6, B + vp, 64);
            _tile_dpbf16ps(1, 4, 6);
            _tile_loadd(7, B + 2 * vp, 64);
            _tile_dpbf16ps(2, 4, 7);
            _tile_loadd(5, B + 3 * vp, 64);
            _tile_dpbf16ps(3, 4, 5);
        }
        float* Oq = O + (size_t)qt * 16 * AMX_HD;
        _tile_stored(0, Oq, AMX_HD * 4);
        _tile_stored(1, Oq + PW, AMX_HD * 4);
        _tile_stored(2, Oq + 2 * PW, AMX_HD * 4);
        _tile_stored(3, Oq + 3 * PW, AMX_HD * 4);
    }
}
#endif

/* Whether the CPU has AMX tiles for int8 and bf16 and Linux lets this process
   use them (it asks once: the tiles' state is larger than a signal frame's). */
static int detect_amx(void) {
#ifdef BARK_AMX
    unsigned a, b, c, d;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return 0;
    if (!((d >> 22) & 1) || !((d >> 24) & 1) || !((d >> 25) & 1)) return 0;  /* BF16, TILE, INT8 */
    if (!__builtin_cpu_supports("avx512bw")) return 0;
    return syscall(SYS_arch_prctl, 0x1023 /* ARCH_REQ_XCOMP_PERM */, 18 /* XTILEDATA */) == 0;
#else
    return 0;
#endif
}

/* y (M, ncols) for narrow panels W (npan, K, 16) times narrow rows: int8 rows
   (kind W_I8, scales sw) or bf16 rows (kind W_BF16), as described above.
   Threads take groups of panels (AMX_PANELS on AMX, else WIDE_GROUP for int8 and
   one for bf16); each re-lays its group once, into a cache-line-aligned
   buffer, for all the rows. */
static int linear_rows_impl(int kind, const float* x, ptrdiff_t xs, int M, int K, const void* W,
                            int npan, float* y, ptrdiff_t ys, const float* sw, const float* bias,
                            int ncols, int threads) {
    size_t es = w_size(kind);
    int amx = g_amx;
    int Kp = amx ? round_up(K, kind == W_I8 ? 64 : 32) : K;  /* inputs per narrowed row */
    int Mp = amx ? round_up(M, AMX_ROWS) : M;
    size_t ld = es * (size_t)Kp;  /* bytes per narrowed row */
    char* rows = (char*)malloc(ld * (size_t)Mp + 1);
    float* sx = (float*)malloc(sizeof(float) * (M > 0 ? M : 1));
    if (rows == NULL || sx == NULL) { free(rows); free(sx); return -1; }
    if (kind == W_I8) quantize_rows(x, xs, M, K, (uint8_t*)rows, ld, sx, threads);
    else bf16_rows(x, xs, M, K, (uint16_t*)rows, Kp, threads);
    /* Padded inputs must add exact zeros (a bf16 NaN times 0 would not); the rows
       past M only land in outputs never stored, zeroed so that nothing reads
       uninitialised memory. */
    if (Kp > K)
        for (int m = 0; m < M; m++) memset(rows + (size_t)m * ld + es * K, 0, es * (Kp - K));
    memset(rows + (size_t)M * ld, 0, ld * (size_t)(Mp - M));
    int group = amx ? AMX_PANELS : kind == W_I8 ? WIDE_GROUP : 1;
    int units = (npan + group - 1) / group;
    size_t pin = es * (size_t)K * PW;    /* one panel as packed */
    size_t pout = es * (size_t)Kp * PW;  /* one panel re-laid */
    int nt = n_threads(threads, (double)M * npan * PW * K / 4);
    int failed = 0;
    #pragma omp parallel num_threads(nt)
    {
        char* raw = (char*)malloc(pout * group + 64);
        char* L = raw == NULL ? NULL : align64(raw);
        int32_t colsum[MAX_GROUP * PW];
        if (L == NULL) {
            #pragma omp atomic write
            failed = 1;
        }
#ifdef BARK_AMX
        if (amx) amx_begin();
#endif
        #pragma omp for schedule(static)
        for (int u = 0; u < units; u++) {
            if (L == NULL) continue;
            int p = u * group, np = npan - p < group ? npan - p : group;
            const char* P = (const char*)W + (size_t)p * pin;
            int nc = ncols - p * PW < np * PW ? ncols - p * PW : np * PW;
            const float* b = bias ? bias + p * PW : NULL;
            float* yp = y + p * PW;
            for (int q = 0; q < np; q++) {
                if (kind == W_I8)
                    relayout_panel((const int8_t*)(P + q * pin), K, Kp, (int8_t*)(L + q * pout),
                                   colsum + q * PW);
                else
                    relayout_pairs((const uint16_t*)(P + q * pin), K, Kp,
                                   (uint16_t*)(L + q * pout));
            }
#ifdef BARK_AMX
            if (amx) {
                amx_group(kind, rows, ld, M, (int)ld, np, L, pout, colsum, sx, yp, ys,
                          sw ? sw + p * PW : NULL, b, nc);
                continue;
            }
#endif
            if (kind == W_I8) {
#ifdef BARK_AVX512
                if (g_vnni && g_isa == ISA_AVX512) {
                    q8_group_vnni((const uint8_t*)rows, M, K, np, (const int8_t*)L, colsum, sx, yp,
                                  ys, sw + p * PW, b, nc);
                    continue;
                }
#endif
                for (int q = 0; q < np && q * PW < nc; q++)
                    q8_panel_generic((const uint8_t*)rows, M, K, (const int8_t*)(L + q * pout),
                                     colsum + q * PW, sx, yp + q * PW, ys, sw + (p + q) * PW,
                                     b ? b + q * PW : NULL, nc - q * PW < PW ? nc - q * PW : PW);
            } else {
#ifdef BARK_AVX512
                if (g_bf16dp && !g_bf16_generic) {
                    bf16r_panel_native((const uint16_t*)rows, M, K, (const uint16_t*)L, yp, ys, b,
                                       nc);
                    continue;
                }
#endif
                bf16r_panel_generic((const uint16_t*)rows, M, K, (const uint16_t*)L, yp, ys, b, nc);
            }
        }
#ifdef BARK_AMX
        if (amx) amx_end();
#endif
        free(raw);
    }
    free(rows);
    free(sx);
    return failed ? -1 : 0;
}

/* ------------------------------------------------------------------------ */
/* whole blocks: layer norms, GELU and residuals between the products        */
/*
 * A decode step was ~50 products with torch's layer norms, GELU and adds in
 * between; each of those was a Python call and a dispatch into torch after a
 * product had flushed its caches, a large part of a step (docs/PERFORMANCE.md).
 * `blocks_impl` runs every block of a call in C.
 *
 * The row-wise ops have one fixed order each, the same on every instruction
 * set, so a row's values depend on that row alone:
 *  - layer norm: a row's sum in 8 lanes (lane j adds elements j, j+8, ... in
 *    order), the lanes in the attention's tree; mean = sum / C; the variance the
 *    same way over (x - mean)·(x - mean), as separate multiply and add; then
 *    ((x - mean) · rstd) · w + b, rstd = 1 / sqrt(var + eps);
 *  - GELU: (x · 0.5) · (1 + erf(x / √2)), erf by Abramowitz and Stegun's 7.1.26
 *    over the canonical exp (the formula torch's vectorised GELU uses; its
 *    absolute error is at most 1.5e-7);
 *  - a residual is one float add per element.
 */
#define SQRT1_2 0.70710678118654752f
#define ERF_P 0.3275911f
#define ERF_A1 0.254829592f
#define ERF_A2 (-0.284496736f)
#define ERF_A3 1.421413741f
#define ERF_A4 (-1.453152027f)
#define ERF_A5 1.061405429f

static inline float gelu_one(float x) {
    float u = x * SQRT1_2, a = fabsf(u);
    float t = 1.0f / fmaf(ERF_P, a, 1.0f);
    float r = fmaf(fmaf(fmaf(fmaf(ERF_A5, t, ERF_A4), t, ERF_A3), t, ERF_A2), t, ERF_A1);
    float e = exp_bark(-(a * a));
    float erf_a = fmaf(-(e * t), r, 1.0f);
    uint32_t eb, ub;  /* erf = erf_a with u's sign bit set in (as the vector paths do) */
    memcpy(&eb, &erf_a, 4);
    memcpy(&ub, &u, 4);
    eb |= ub & 0x80000000u;
    float erf;
    memcpy(&erf, &eb, 4);
    return (x * 0.5f) * (1.0f + erf);
}

static void gelu_generic(float* h, size_t n) {
    for (size_t i = 0; i < n; i++) h[i] = gelu_one(h[i]);
}

/* A layer norm's squares of elements from..C-1, added to their lanes in order. */
static inline void norm_squares(const float* x, int from, int C, float mean, float* l8) {
    for (int k = from; k < C; k++) {
        float d = x[k] - mean;
        l8[k % LANES] += d * d;
    }
}

/* A layer norm's outputs from..C-1: ((x - mean) * rstd) * w + b. */
static inline void norm_apply(const float* x, int from, int C, float mean, float rstd,
                              const float* w, const float* b, float* y) {
    for (int k = from; k < C; k++) {
        float v = (x[k] - mean) * rstd;
        if (w) v = v * w[k];
        if (b) v = v + b[k];
        y[k] = v;
    }
}

/* One row's layer norm (see above); w and b may be NULL. */
static void layer_norm_generic(const float* x, int C, const float* w, const float* b, float eps,
                               float* y) {
    float l8[LANES] = {0};
    for (int k = 0; k < C; k++) l8[k % LANES] += x[k];
    float mean = tree8(l8) / (float)C;
    memset(l8, 0, sizeof l8);
    norm_squares(x, 0, C, mean, l8);
    float rstd = 1.0f / sqrtf(tree8(l8) / (float)C + eps);
    norm_apply(x, 0, C, mean, rstd, w, b, y);
}

#ifdef BARK_X86
/* gelu_one on 8 lanes: the same operations. */
AVX2 static void gelu_avx2(float* h, size_t n) {
    const __m256 sign = _mm256_set1_ps(-0.0f), one = _mm256_set1_ps(1.0f);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 x = _mm256_loadu_ps(h + i);
        __m256 u = _mm256_mul_ps(x, _mm256_set1_ps(SQRT1_2));
        __m256 a = _mm256_andnot_ps(sign, u);
        __m256 t = _mm256_div_ps(one, _mm256_fmadd_ps(_mm256_set1_ps(ERF_P), a, one));
        __m256 r = _mm256_fmadd_ps(_mm256_set1_ps(ERF_A5), t, _mm256_set1_ps(ERF_A4));
        r = _mm256_fmadd_ps(r, t, _mm256_set1_ps(ERF_A3));
        r = _mm256_fmadd_ps(r, t, _mm256_set1_ps(ERF_A2));
        r = _mm256_fmadd_ps(r, t, _mm256_set1_ps(ERF_A1));
        __m256 e = exp8_avx2(_mm256_xor_ps(sign, _mm256_mul_ps(a, a)));
        __m256 erf_a = _mm256_fmadd_ps(_mm256_xor_ps(sign, _mm256_mul_ps(e, t)), r, one);
        __m256 erf = _mm256_or_ps(erf_a, _mm256_and_ps(sign, u));
        _mm256_storeu_ps(h + i, _mm256_mul_ps(_mm256_mul_ps(x, _mm256_set1_ps(0.5f)),
                                              _mm256_add_ps(one, erf)));
    }
    for (; i < n; i++) h[i] = gelu_one(h[i]);
}

/* layer_norm_generic with the lanes in one register (the AVX-512 path uses it too:
   a row norm is a small part of a step either way). */
AVX2 static void layer_norm_avx2(const float* x, int C, const float* w, const float* b,
                                 float eps, float* y) {
    int full = C / LANES * LANES;
    __m256 acc = _mm256_setzero_ps();
    float l8[LANES];
    for (int k = 0; k < full; k += LANES) acc = _mm256_add_ps(acc, _mm256_loadu_ps(x + k));
    _mm256_storeu_ps(l8, acc);
    for (int k = full; k < C; k++) l8[k % LANES] += x[k];
    float mean = tree8(l8) / (float)C;
    __m256 vm = _mm256_set1_ps(mean);
    acc = _mm256_setzero_ps();
    for (int k = 0; k < full; k += LANES) {
        __m256 d = _mm256_sub_ps(_mm256_loadu_ps(x + k), vm);
        acc = _mm256_add_ps(acc, _mm256_mul_ps(d, d));
    }
    _mm256_storeu_ps(l8, acc);
    norm_squares(x, full, C, mean, l8);
    float rstd = 1.0f / sqrtf(tree8(l8) / (float)C + eps);
    __m256 vr = _mm256_set1_ps(rstd);
    int k = 0;
    for (; k < full; k += LANES) {
        __m256 v = _mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(x + k), vm), vr);
        if (w) v = _mm256_mul_ps(v, _mm256_loadu_ps(w + k));
        if (b) v = _mm256_add_ps(v, _mm256_loadu_ps(b + k));
        _mm256_storeu_ps(y + k, v);
    }
    norm_apply(x, k, C, mean, rstd, w, b, y);
}

#ifdef BARK_AVX512
/* gelu_avx2 on 16 lanes: the same operations. */
AVX512 static void gelu_avx512(float* h, size_t n) {
    const __m512 one = _mm512_set1_ps(1.0f);
    const __m512i sign = _mm512_set1_epi32((int)0x80000000u);
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512 x = _mm512_loadu_ps(h + i);
        __m512 u = _mm512_mul_ps(x, _mm512_set1_ps(SQRT1_2));
        __m512i ui = _mm512_castps_si512(u);
        __m512 a = _mm512_castsi512_ps(_mm512_andnot_si512(sign, ui));
        __m512 t = _mm512_div_ps(one, _mm512_fmadd_ps(_mm512_set1_ps(ERF_P), a, one));
        __m512 r = _mm512_fmadd_ps(_mm512_set1_ps(ERF_A5), t, _mm512_set1_ps(ERF_A4));
        r = _mm512_fmadd_ps(r, t, _mm512_set1_ps(ERF_A3));
        r = _mm512_fmadd_ps(r, t, _mm512_set1_ps(ERF_A2));
        r = _mm512_fmadd_ps(r, t, _mm512_set1_ps(ERF_A1));
        __m512 e = exp16_avx512(_mm512_castsi512_ps(_mm512_xor_si512(
            sign, _mm512_castps_si512(_mm512_mul_ps(a, a)))));
        __m512 et = _mm512_castsi512_ps(_mm512_xor_si512(
            sign, _mm512_castps_si512(_mm512_mul_ps(e, t))));
        __m512 erf_a = _mm512_fmadd_ps(et, r, one);
        __m512 erf = _mm512_castsi512_ps(_mm512_or_si512(
            _mm512_castps_si512(erf_a), _mm512_and_si512(sign, ui)));
        _mm512_storeu_ps(h + i, _mm512_mul_ps(_mm512_mul_ps(x, _mm512_set1_ps(0.5f)),
                                              _mm512_add_ps(one, erf)));
    }
    for (; i < n; i++) h[i] = gelu_one(h[i]);
}
#endif
#endif

static void layer_norm_rows(const float* x, int M, int C, const float* w, const float* b,
                            float eps, float* y, int threads) {
    int nt = n_threads(threads, (double)M * C * 4);
    #pragma omp parallel for schedule(static) num_threads(nt)
    for (int m = 0; m < M; m++) {
#ifdef BARK_X86
        if (g_isa >= ISA_AVX2) {
            layer_norm_avx2(x + (size_t)m * C, C, w, b, eps, y + (size_t)m * C);
            continue;
        }
#endif
        layer_norm_generic(x + (size_t)m * C, C, w, b, eps, y + (size_t)m * C);
    }
}

static void gelu_rows(float* h, int M, int F, int threads) {
    int nt = n_threads(threads, (double)M * F * 16);
    #pragma omp parallel for schedule(static) num_threads(nt)
    for (int m = 0; m < M; m++) {
        float* r = h + (size_t)m * F;
#ifdef BARK_X86
#ifdef BARK_AVX512
        if (g_isa == ISA_AVX512) { gelu_avx512(r, F); continue; }
#endif
        if (g_isa >= ISA_AVX2) { gelu_avx2(r, F); continue; }
#endif
        gelu_generic(r, F);
    }
}

/* y[m] = x[rows ? rows[m] : m] + d[m]: the residual (y may be x when rows is NULL). */
static void residual_rows(const float* x, const int64_t* rows, const float* d, int M, int C,
                          float* y) {
    for (int m = 0; m < M; m++) {
        const float* xr = x + (size_t)(rows ? rows[m] : m) * C;
        const float* dr = d + (size_t)m * C;
        float* yr = y + (size_t)m * C;
        for (int k = 0; k < C; k++) yr[k] = xr[k] + dr[k];
    }
}

/* One packed linear layer as the Python side describes it (all int64, no padding). */
typedef struct {
    int64_t ptr, kind, npan, n_out, n_in, scale, bias, narrow_ok;
} LinearDesc;

/* One block: its norms' weights (0 where absent) and its four products. */
typedef struct {
    int64_t ln1_w, ln1_b;
    LinearDesc qkv, proj;
    int64_t ln2_w, ln2_b;
    LinearDesc fc, out;
} BlockDesc;

static int desc_linear(const LinearDesc* d, const float* x, int M, float* y, int threads,
                       int narrow) {
    if (narrow && d->narrow_ok)
        return linear_rows_impl((int)d->kind, x, d->n_in, M, (int)d->n_in,
                                (const void*)(intptr_t)d->ptr, (int)d->npan, y, d->n_out,
                                (const float*)(intptr_t)d->scale, (const float*)(intptr_t)d->bias,
                                (int)d->n_out, threads);
    linear_impl(x, d->n_in, M, (int)d->n_in, (const void*)(intptr_t)d->ptr, (int)d->kind,
                (int)d->npan, y, d->n_out, (const float*)(intptr_t)d->scale,
                (const float*)(intptr_t)d->bias, (int)d->n_out, threads);
    return 0;
}

#define F_PTR(v) ((const float*)(intptr_t)(v))

/* Every block for the N rows x (N, C), updated in place; the last block keeps
   only the rows `wanted` (NW of them; NULL: all), written to out (NW, C).
   scratch holds 8·N·C floats; src and shared as for attend_impl. Returns -1
   when memory ran out. */
static int blocks_impl(const BlockDesc* blocks, int n_layer, float* x, int N, int C, int H,
                       float eps, char* kT, char* v, ptrdiff_t klayer, ptrdiff_t vlayer,
                       ptrdiff_t kslot, ptrdiff_t vslot, int max_len, const int64_t* slots,
                       const int64_t* pos, const int64_t* lens, const int64_t* every,
                       const int64_t* wanted, int NW, float* out, float* scratch, int threads,
                       int kv_kind, int narrow, const int64_t* src, const int64_t* shared) {
    float* A = scratch;                   /* (N, C): a norm's output, then attention's */
    float* Q = A + (size_t)N * C;         /* (N, 3C): queries, keys, values; then a product */
    float* Hb = Q + (size_t)N * 3 * C;    /* (N, 4C): the MLP's hidden rows; also a product */
    for (int i = 0; i < n_layer; i++) {
        const BlockDesc* d = &blocks[i];
        int last = i == n_layer - 1 && wanted != NULL;
        const int64_t* qrows = last ? wanted : every;
        int NQ = last ? NW : N;
        float* xo = last ? out : x;       /* this block's output rows (NQ, C) */
        layer_norm_rows(x, N, C, F_PTR(d->ln1_w), F_PTR(d->ln1_b), eps, A, threads);
        if (desc_linear(&d->qkv, A, N, Q, threads, narrow) < 0) return -1;
        if (attend_impl(Q, 3 * C, N, C, H, kT + i * klayer, v + i * vlayer, kslot, vslot,
                        max_len, slots, pos, lens, qrows, NQ, A, C, threads, kv_kind, src,
                        shared, narrow) < 0)
            return -1;
        if (desc_linear(&d->proj, A, NQ, Hb, threads, narrow) < 0) return -1;
        residual_rows(x, last ? wanted : NULL, Hb, NQ, C, xo);
        layer_norm_rows(xo, NQ, C, F_PTR(d->ln2_w), F_PTR(d->ln2_b), eps, A, threads);
        if (desc_linear(&d->fc, A, NQ, Hb, threads, narrow) < 0) return -1;
        gelu_rows(Hb, NQ, (int)d->fc.n_out, threads);
        if (desc_linear(&d->out, Hb, NQ, Q, threads, narrow) < 0) return -1;
        residual_rows(xo, NULL, Q, NQ, C, xo);
    }
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Python bindings: addresses and sizes in, nothing out                     */

static int parse_args(PyObject* const* args, Py_ssize_t nargs, Py_ssize_t want, long long* out) {
    if (nargs != want) {
        PyErr_Format(PyExc_TypeError, "expected %zd arguments, got %zd", want, nargs);
        return -1;
    }
    for (Py_ssize_t i = 0; i < want; i++) {
        out[i] = PyLong_AsLongLong(args[i]);
        if (out[i] == -1 && PyErr_Occurred()) return -1;
    }
    return 0;
}

static PyObject* py_linear(PyObject* self, PyObject* const* args, Py_ssize_t nargs) {
    (void)self;
    long long a[13];
    if (parse_args(args, nargs, 13, a) < 0) return NULL;
    if (a[5] < W_F32 || a[5] > W_I8) {
        PyErr_Format(PyExc_ValueError, "unknown weight kind %lld", a[5]);
        return NULL;
    }
    /* x, xs, M, K, W, kind, npan, y, ys, scale, bias, ncols, threads */
    Py_BEGIN_ALLOW_THREADS
    linear_impl((const float*)(intptr_t)a[0], (ptrdiff_t)a[1], (int)a[2], (int)a[3],
                (const void*)(intptr_t)a[4], (int)a[5], (int)a[6], (float*)(intptr_t)a[7],
                (ptrdiff_t)a[8], (const float*)(intptr_t)a[9], (const float*)(intptr_t)a[10],
                (int)a[11], (int)a[12]);
    Py_END_ALLOW_THREADS
    Py_RETURN_NONE;
}

static PyObject* py_linear_rows(PyObject* self, PyObject* const* args, Py_ssize_t nargs) {
    (void)self;
    long long a[13];
    if (parse_args(args, nargs, 13, a) < 0) return NULL;
    /* kind, x, xs, M, K, W, npan, y, ys, scale, bias, ncols, threads */
    int kind = (int)a[0];
    if (kind != W_I8 && kind != W_BF16) {
        PyErr_Format(PyExc_ValueError, "narrow rows are int8 or bf16, not kind %d", kind);
        return NULL;
    }
    if (a[4] % (kind == W_I8 ? 4 : 2)) {
        PyErr_Format(PyExc_ValueError, "narrow rows of kind %d need K divisible by %d, got %lld",
                     kind, kind == W_I8 ? 4 : 2, a[4]);
        return NULL;
    }
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = linear_rows_impl(kind, (const float*)(intptr_t)a[1], (ptrdiff_t)a[2], (int)a[3],
                          (int)a[4], (const void*)(intptr_t)a[5], (int)a[6],
                          (float*)(intptr_t)a[7], (ptrdiff_t)a[8], (const float*)(intptr_t)a[9],
                          (const float*)(intptr_t)a[10], (int)a[11], (int)a[12]);
    Py_END_ALLOW_THREADS
    if (rc < 0) return PyErr_NoMemory();
    Py_RETURN_NONE;
}

static PyObject* py_bf16_dot(PyObject* self, PyObject* noargs) {
    (void)self; (void)noargs;
    return PyBool_FromLong(g_bf16dp);
}

static PyObject* py_bf16_reference(PyObject* self, PyObject* arg) {
    (void)self;
    g_bf16_generic = PyObject_IsTrue(arg);
    Py_RETURN_NONE;
}

static PyObject* py_vnni(PyObject* self, PyObject* noargs) {
    (void)self; (void)noargs;
    return PyBool_FromLong(g_vnni && g_isa == ISA_AVX512);
}

static PyObject* py_amx(PyObject* self, PyObject* noargs) {
    (void)self; (void)noargs;
    return PyBool_FromLong(g_amx);
}

static PyObject* py_amx_here(PyObject* self, PyObject* noargs) {
    (void)self; (void)noargs;
    return PyBool_FromLong(g_amx_here);
}

static PyObject* py_set_amx(PyObject* self, PyObject* arg) {
    (void)self;
    int on = PyObject_IsTrue(arg);
    if (on < 0) return NULL;
    if (on && !g_amx_here) {
        PyErr_SetString(PyExc_ValueError, "AMX tiles are not available here");
        return NULL;
    }
    g_amx = on;
    Py_RETURN_NONE;
}

static PyObject* py_attend(PyObject* self, PyObject* const* args, Py_ssize_t nargs) {
    (void)self;
    long long a[21];
    if (parse_args(args, nargs, 21, a) < 0) return NULL;
    if (a[10] > MAX_KEYS) {
        PyErr_Format(PyExc_ValueError, "attention over %lld keys: at most %d", a[10], MAX_KEYS);
        return NULL;
    }
    if (a[19] != W_F32 && a[19] != W_BF16) {
        PyErr_Format(PyExc_ValueError, "the KV cache is float32 or bfloat16, not kind %lld", a[19]);
        return NULL;
    }
    /* qkv, qs, N, C, H, kT, v, kslot, vslot, max_len, keys_bound, slots, pos, lens, qrows, NQ,
       y, ys, threads, kv_kind, narrow */
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = attend_impl((const float*)(intptr_t)a[0], (ptrdiff_t)a[1], (int)a[2], (int)a[3],
                     (int)a[4], (void*)(intptr_t)a[5], (void*)(intptr_t)a[6], (ptrdiff_t)a[7],
                     (ptrdiff_t)a[8], (int)a[9], (const int64_t*)(intptr_t)a[11],
                     (const int64_t*)(intptr_t)a[12], (const int64_t*)(intptr_t)a[13],
                     (const int64_t*)(intptr_t)a[14], (int)a[15], (float*)(intptr_t)a[16],
                     (ptrdiff_t)a[17], (int)a[18], (int)a[19], NULL, NULL, (int)a[20]);
    Py_END_ALLOW_THREADS
    if (rc < 0) return PyErr_NoMemory();
    Py_RETURN_NONE;
}

static PyObject* py_blocks(PyObject* self, PyObject* const* args, Py_ssize_t nargs) {
    (void)self;
    /* desc, n_layer, x, N, C, H, eps, kT, v, klayer, vlayer, kslot, vslot, max_len, slots,
       pos, lens, every, wanted, NW, out, scratch, threads, kv_kind, narrow, src, shared
       (eps a float; src and shared 0 where every slot reads its own keys) */
    enum { NARGS = 27, EPS = 6 };
    long long a[NARGS];
    double eps = 0;
    if (nargs != NARGS) {
        PyErr_Format(PyExc_TypeError, "expected %d arguments, got %zd", NARGS, nargs);
        return NULL;
    }
    for (int i = 0; i < NARGS; i++) {
        if (i == EPS) {
            eps = PyFloat_AsDouble(args[i]);
            if (eps == -1.0 && PyErr_Occurred()) return NULL;
            continue;
        }
        a[i] = PyLong_AsLongLong(args[i]);
        if (a[i] == -1 && PyErr_Occurred()) return NULL;
    }
    if (a[23] != W_F32 && a[23] != W_BF16) {
        PyErr_Format(PyExc_ValueError, "the KV cache is float32 or bfloat16, not kind %lld", a[23]);
        return NULL;
    }
    if (a[13] > MAX_KEYS) {
        PyErr_Format(PyExc_ValueError, "attention over %lld keys: at most %d", a[13], MAX_KEYS);
        return NULL;
    }
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = blocks_impl((const BlockDesc*)(intptr_t)a[0], (int)a[1], (float*)(intptr_t)a[2],
                     (int)a[3], (int)a[4], (int)a[5], (float)eps, (char*)(intptr_t)a[7],
                     (char*)(intptr_t)a[8], (ptrdiff_t)a[9], (ptrdiff_t)a[10], (ptrdiff_t)a[11],
                     (ptrdiff_t)a[12], (int)a[13], (const int64_t*)(intptr_t)a[14],
                     (const int64_t*)(intptr_t)a[15], (const int64_t*)(intptr_t)a[16],
                     (const int64_t*)(intptr_t)a[17], (const int64_t*)(intptr_t)a[18],
                     (int)a[19], (float*)(intptr_t)a[20], (float*)(intptr_t)a[21], (int)a[22],
                     (int)a[23], (int)a[24], (const int64_t*)(intptr_t)a[25],
                     (const int64_t*)(intptr_t)a[26]);
    Py_END_ALLOW_THREADS
    if (rc < 0) return PyErr_NoMemory();
    Py_RETURN_NONE;
}

static PyObject* py_isa(PyObject* self, PyObject* noargs) {
    (void)self; (void)noargs;
    return PyUnicode_FromString(isa_name(g_isa));
}

static PyObject* py_best_isa(PyObject* self, PyObject* noargs) {
    (void)self; (void)noargs;
    return PyUnicode_FromString(isa_name(g_best));
}

static PyObject* py_set_isa(PyObject* self, PyObject* arg) {
    (void)self;
    const char* name = PyUnicode_AsUTF8(arg);
    if (name == NULL) return NULL;
    if (strcmp(name, "generic") == 0) g_isa = ISA_GENERIC;
    else if (strcmp(name, "avx2") == 0 && g_best >= ISA_AVX2) g_isa = ISA_AVX2;
    else if (strcmp(name, "avx512") == 0 && g_best == ISA_AVX512) g_isa = ISA_AVX512;
    else {
        PyErr_Format(PyExc_ValueError, "instruction set '%s' is not available here", name);
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject* py_openmp(PyObject* self, PyObject* noargs) {
    (void)self; (void)noargs;
#ifdef _OPENMP
    Py_RETURN_TRUE;
#else
    Py_RETURN_FALSE;
#endif
}

static PyMethodDef methods[] = {
    {"linear", (PyCFunction)(void (*)(void))py_linear, METH_FASTCALL,
     "linear(x, xs, M, K, W, kind, npan, y, ys, scale, bias, ncols, threads): "
     "y = x @ W.T (* scale) (+ bias)"},
    {"attend", (PyCFunction)(void (*)(void))py_attend, METH_FASTCALL,
     "attend(qkv, qs, N, C, H, kT, v, kslot, vslot, max_len, keys_bound, slots, pos, lens, "
     "qrows, NQ, y, ys, threads, kv_kind, narrow)"},
    {"blocks", (PyCFunction)(void (*)(void))py_blocks, METH_FASTCALL,
     "blocks(desc, n_layer, x, N, C, H, eps, kT, v, klayer, vlayer, kslot, vslot, max_len, "
     "slots, pos, lens, every, wanted, NW, out, scratch, threads, kv_kind, narrow): every "
     "GPT block of a call"},
    {"linear_rows", (PyCFunction)(void (*)(void))py_linear_rows, METH_FASTCALL,
     "linear_rows(kind, x, xs, M, K, W, npan, y, ys, scale, bias, ncols, threads): narrow "
     "panels times rows narrowed each on its own (int8: integer sums; bf16: vdpbf16ps pairs)"},
    {"vnni", py_vnni, METH_NOARGS, "whether int8 x int8 products run on AVX512-VNNI"},
    {"amx", py_amx, METH_NOARGS, "whether narrow rows run on AMX tiles"},
    {"amx_here", py_amx_here, METH_NOARGS, "whether this CPU and Linux allow AMX tiles"},
    {"set_amx", py_set_amx, METH_O, "use AMX tiles for narrow rows or not (tests compare)"},
    {"bf16_dot", py_bf16_dot, METH_NOARGS, "whether this CPU has AVX512-BF16 dot products"},
    {"bf16_reference", py_bf16_reference, METH_O,
     "run bf16 x bf16 products on the reference C path (tests)"},
    {"isa", py_isa, METH_NOARGS, "the instruction set in use: 'avx2' or 'generic'"},
    {"best_isa", py_best_isa, METH_NOARGS, "the fastest instruction set this CPU runs"},
    {"set_isa", py_set_isa, METH_O, "use 'generic' or 'avx2' (tests compare them)"},
    {"openmp", py_openmp, METH_NOARGS, "whether the module was built with OpenMP"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_kernels",
    "Batch-invariant CPU kernels for Bark's GPTs (see bark_engine.model.kernels).", -1, methods,
};

PyMODINIT_FUNC PyInit__kernels(void) {
    g_best = detect_isa();
#ifdef BARK_AVX512
    g_vnni = g_best == ISA_AVX512 && __builtin_cpu_supports("avx512vnni");
    g_bf16dp = g_best == ISA_AVX512 && __builtin_cpu_supports("avx512bf16");
#endif
    g_isa = g_best;
    g_amx_here = g_amx = detect_amx();
    return PyModule_Create(&module);
}
