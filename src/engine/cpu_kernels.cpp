// The CPU engine's products and fused elementwise loops (see cpu_kernels.hpp).
//
// No FMA contraction in this file: the AVX-512, AVX2 and baseline builds of each loop
// (target_clones) must round identically, so results do not depend on the CPU. And no
// trapping-math, so that the clamps and selects of exp are if-converted and vectorised
// (the values computed are the same; only FP exception flags could differ).
#pragma GCC optimize("fp-contract=off", "no-trapping-math")

#include "engine/cpu_kernels.hpp"

#include <cblas.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <cctype>
#include <mutex>
#include <string>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#endif

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(RBM_NO_CLONES)
#define RBM_VECTOR_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define RBM_VECTOR_CLONES
#endif
#define RBM_INLINE inline __attribute__((always_inline))

namespace rbm::cpu {

// ---------------------------------------------------------------- products

namespace {
std::vector<GemmShape>* g_gemm_log = nullptr;
std::mutex g_gemm_log_mutex;
}  // namespace

void record_gemms(std::vector<GemmShape>* log) { g_gemm_log = log; }

void gemm(bool trans_a, bool trans_b, std::size_t m, std::size_t n, std::size_t k, const float* a,
          std::size_t lda, const float* b, std::size_t ldb, float* c, std::size_t ldc, float alpha, float beta) {
    if (g_gemm_log) {
        std::lock_guard<std::mutex> lock(g_gemm_log_mutex);
        g_gemm_log->push_back({trans_a, trans_b, m, n, k, lda, ldb, ldc, a, b, c, thread_index()});
    }
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans,
                int(m), int(n), int(k), alpha, a, int(lda), b, int(ldb), beta, c, int(ldc));
}

void gemm(bool trans_a, bool trans_b, std::size_t m, std::size_t n, std::size_t k, const float* a,
          const float* b, float* c, float alpha, float beta) {
    gemm(trans_a, trans_b, m, n, k, a, trans_a ? m : k, b, trans_b ? k : n, c, n, alpha, beta);
}

void rank1_update(std::size_t m, std::size_t n, float alpha, const float* x, const float* y, float* a) {
    cblas_sger(CblasRowMajor, int(m), int(n), alpha, x, 1, y, 1, a, int(n));
}

void gemv(bool trans, std::size_t m, std::size_t n, float alpha, const float* a, const float* x, float beta,
          float* y) {
    cblas_sgemv(CblasRowMajor, trans ? CblasTrans : CblasNoTrans, int(m), int(n), alpha, a, int(n), x, 1, beta, y, 1);
}

namespace {

bool openblas_has_small_kernels() {
    const char* core = openblas_get_corename();
    if (!core) return false;
    std::string name(core);
    std::transform(name.begin(), name.end(), name.begin(), [](unsigned char ch) { return char(std::tolower(ch)); });
    return name == "skylakex" || name == "cooperlake" || name == "sapphirerapids";
}

bool g_gemm_blocks = openblas_has_small_kernels();

}  // namespace

bool use_gemm_blocks(bool on) {
    const bool was = g_gemm_blocks;
    g_gemm_blocks = on && openblas_has_small_kernels();
    return was;
}

std::size_t gemm_block_cols(bool trans_b, std::size_t m, std::size_t k, std::size_t n) {
    if (!g_gemm_blocks || m == 0 || k == 0 || n == 0) return std::max<std::size_t>(n, 1);
    // Row-major C = A B is OpenBLAS's column-major "NN" with its M = our n; C = A B' is
    // its "TN", which also wants M N <= 1200 and K >= 32.
    std::size_t widest = 1000000 / (m * k);
    if (trans_b) widest = k < 32 ? 0 : std::min(widest, 1200 / m);
    if (widest < 16) return n;
    // Equal blocks, in multiples of 16 columns (whole AVX-512 registers) where possible.
    const std::size_t blocks = (n + widest - 1) / widest;
    const std::size_t width = ((n + blocks - 1) / blocks + 15) / 16 * 16;
    return width <= widest ? width : widest / 16 * 16;
}

void gemm_at_rows(std::size_t n, std::size_t k, const float* a, std::size_t lda, const float* b, std::size_t ldb,
                  float* c, std::size_t ldc, std::size_t r0, std::size_t r1) {
    if (r1 <= r0) return;
    // OpenBLAS's "NT" with M = n, N = rows of the block: the m n k rule only.
    const std::size_t width = gemm_block_cols(false, n, k, r1 - r0);
    for (std::size_t x = r0; x < r1; x += width) {
        const std::size_t y = std::min(r1, x + width);
        gemm(true, false, y - x, n, k, a + x, lda, b, ldb, c + x * ldc, ldc);
    }
}

// ---------------------------------------------------------------- Philox4x32-10

namespace {

// Random123's Philox4x32 constants (multipliers, Weyl key increments).
constexpr uint32_t kPhiloxM0 = 0xD2511F53u, kPhiloxM1 = 0xCD9E8D57u;
constexpr uint32_t kPhiloxW0 = 0x9E3779B9u, kPhiloxW1 = 0xBB67AE85u;
constexpr int kLanes = 16;  // blocks per call

// Blocks first_block .. first_block + 15 (mod 2^32) of one (draw, step), one at a time
// through Random123 (the portable path). out: 64 words in block order.
inline void philox_16_blocks(uint32_t key0, uint32_t key1, uint32_t first_block, uint32_t draw,
                             uint32_t step_lo, uint32_t step_hi, uint32_t* out) {
    const Stream s{key0, key1};
    const uint64_t step = uint64_t(step_lo) | uint64_t(step_hi) << 32;
    for (int l = 0; l < kLanes; ++l) {
        const auto words = s.block(step, draw, first_block + uint32_t(l));
        for (int w = 0; w < 4; ++w) out[4 * l + w] = words.v[w];
    }
}

#if defined(__x86_64__) && defined(__GNUC__) && !defined(RBM_NO_CLONES)
#define RBM_HAVE_AVX2_PHILOX 1

// 32x32 -> 64 products of the 8 lanes of c by m: low and high halves, lane by lane.
__attribute__((target("avx2"))) inline void mulhilo8(__m256i c, __m256i m, __m256i& lo, __m256i& hi) {
    const __m256i even = _mm256_mul_epu32(c, m);                         // lanes 0, 2, 4, 6
    const __m256i odd = _mm256_mul_epu32(_mm256_srli_epi64(c, 32), m);   // lanes 1, 3, 5, 7
    lo = _mm256_blend_epi32(even, _mm256_slli_epi64(odd, 32), 0xAA);
    hi = _mm256_blend_epi32(_mm256_srli_epi64(even, 32), odd, 0xAA);
}

// philox_16_blocks with AVX2, 16 blocks as two groups of 8 lanes (structure of arrays):
// Random123's ten rounds (the first with the key, the key bumped before each later one),
// then a 4 x 8 transpose per group into block order. Integer arithmetic only, so
// bit-identical to the portable path.
__attribute__((target("avx2"))) void philox_16_blocks_avx2(uint32_t key0, uint32_t key1, uint32_t first_block,
                                                           uint32_t draw, uint32_t step_lo, uint32_t step_hi,
                                                           uint32_t* out) {
    const __m256i m0 = _mm256_set1_epi32(int(kPhiloxM0)), m1 = _mm256_set1_epi32(int(kPhiloxM1));
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    __m256i a0 = _mm256_add_epi32(_mm256_set1_epi32(int(first_block)), lane);
    __m256i b0 = _mm256_add_epi32(a0, _mm256_set1_epi32(8));
    __m256i a1 = _mm256_set1_epi32(int(draw)), b1 = a1;
    __m256i a2 = _mm256_set1_epi32(int(step_lo)), b2 = a2;
    __m256i a3 = _mm256_set1_epi32(int(step_hi)), b3 = a3;
    uint32_t k0 = key0, k1 = key1;
    for (int round = 0; round < 10; ++round) {
        const __m256i vk0 = _mm256_set1_epi32(int(k0)), vk1 = _mm256_set1_epi32(int(k1));
        __m256i alo0, ahi0, alo1, ahi1, blo0, bhi0, blo1, bhi1;
        mulhilo8(a0, m0, alo0, ahi0);
        mulhilo8(a2, m1, alo1, ahi1);
        mulhilo8(b0, m0, blo0, bhi0);
        mulhilo8(b2, m1, blo1, bhi1);
        a0 = _mm256_xor_si256(_mm256_xor_si256(ahi1, a1), vk0);
        a2 = _mm256_xor_si256(_mm256_xor_si256(ahi0, a3), vk1);
        a1 = alo1;
        a3 = alo0;
        b0 = _mm256_xor_si256(_mm256_xor_si256(bhi1, b1), vk0);
        b2 = _mm256_xor_si256(_mm256_xor_si256(bhi0, b3), vk1);
        b1 = blo1;
        b3 = blo0;
        k0 += kPhiloxW0;
        k1 += kPhiloxW1;
    }
    auto store = [](__m256i c0, __m256i c1, __m256i c2, __m256i c3, uint32_t* dst) {
        const __m256i t0 = _mm256_unpacklo_epi32(c0, c1), t1 = _mm256_unpackhi_epi32(c0, c1);
        const __m256i t2 = _mm256_unpacklo_epi32(c2, c3), t3 = _mm256_unpackhi_epi32(c2, c3);
        const __m256i u0 = _mm256_unpacklo_epi64(t0, t2);  // blocks 0 | 4
        const __m256i u1 = _mm256_unpackhi_epi64(t0, t2);  // blocks 1 | 5
        const __m256i u2 = _mm256_unpacklo_epi64(t1, t3);  // blocks 2 | 6
        const __m256i u3 = _mm256_unpackhi_epi64(t1, t3);  // blocks 3 | 7
        auto* d = reinterpret_cast<__m256i*>(dst);
        _mm256_storeu_si256(d + 0, _mm256_permute2x128_si256(u0, u1, 0x20));
        _mm256_storeu_si256(d + 1, _mm256_permute2x128_si256(u2, u3, 0x20));
        _mm256_storeu_si256(d + 2, _mm256_permute2x128_si256(u0, u1, 0x31));
        _mm256_storeu_si256(d + 3, _mm256_permute2x128_si256(u2, u3, 0x31));
    };
    store(a0, a1, a2, a3, out);
    store(b0, b1, b2, b3, out + 32);
}

bool detect_avx2() {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2");
}
bool g_simd_philox = detect_avx2();
#else
bool g_simd_philox = false;
#endif

inline void philox_16(uint32_t key0, uint32_t key1, uint32_t first_block, uint32_t draw, uint32_t step_lo,
                      uint32_t step_hi, uint32_t* out) {
#ifdef RBM_HAVE_AVX2_PHILOX
    if (g_simd_philox) return philox_16_blocks_avx2(key0, key1, first_block, draw, step_lo, step_hi, out);
#endif
    philox_16_blocks(key0, key1, first_block, draw, step_lo, step_hi, out);
}

RBM_INLINE void philox_words_impl(const Stream& s, uint64_t step, uint32_t draw, uint64_t first,
                                  std::size_t count, uint32_t* out) {
    const uint32_t lo = uint32_t(step), hi = uint32_t(step >> 32);
    uint64_t e = first;
    std::size_t done = 0;
    uint32_t buf[4 * kLanes];
    while (done < count) {
        const uint32_t block = uint32_t(e >> 2);
        const std::size_t skip = std::size_t(e & 3u);
        const std::size_t take = std::min<std::size_t>(4 * kLanes - skip, count - done);
        if (skip == 0 && take == 4 * kLanes) {
            philox_16(s.key0, s.key1, block, draw, lo, hi, out + done);
        } else {
            philox_16(s.key0, s.key1, block, draw, lo, hi, buf);
            std::memcpy(out + done, buf + skip, take * sizeof(uint32_t));
        }
        done += take;
        e += take;
    }
}

}  // namespace

bool use_simd_philox(bool on) {
#ifdef RBM_HAVE_AVX2_PHILOX
    const bool was = g_simd_philox;
    g_simd_philox = on && detect_avx2();
    return was;
#else
    (void)on;
    return false;
#endif
}

void philox_words(const Stream& stream, uint64_t step, uint32_t draw, uint64_t first, std::size_t count,
                  uint32_t* out) {
    philox_words_impl(stream, step, draw, first, count, out);
}

// ---------------------------------------------------------------- exp, sigmoid, softplus

namespace {

// Cephes' expf: x = n ln2 + r, |r| <= ln2 / 2, exp(r) by a degree-7 polynomial, 2^n
// put in the exponent. Branch-free (selects), so loops of it vectorise.
RBM_INLINE float exp_kernel(float x) {
    constexpr float kHi = 88.0f, kLo = -87.3365447505531f;  // 2^n stays a normal float
    const float xc = std::min(std::max(x, kLo), kHi);
    // Round to nearest by the 1.5 * 2^23 trick (exact for |x log2 e| < 2^22).
    const float t = xc * 1.44269504088896341f + 12582912.0f;
    const float n = t - 12582912.0f;
    float r = xc - n * 0.693359375f;
    r = r - n * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    const float y = (p * (r * r) + r) + 1.0f;
    const float scale = std::bit_cast<float>(uint32_t(int32_t(n) + 127) << 23);
    float result = y * scale;
    result = x < kLo ? 0.0f : result;
    result = x > kHi ? INFINITY : result;
    return result;
}

RBM_INLINE float sigmoid_kernel(float x) { return 1.0f / (1.0f + exp_kernel(-x)); }

// log(1 + t) for t in [0, 1]: halve 1 + t above sqrt 2 (adding ln 2), then
// log1p(f) = 2 atanh(f / (2 + f)) by its series, |s| <= 0.172: accurate for tiny t too.
RBM_INLINE float log1p_unit(float t) {
    const bool big = t > 0.41421356f;
    const float f = big ? (t - 1.0f) * 0.5f : t;
    const float s = f / (2.0f + f);
    const float z = s * s;
    float q = 1.0f / 9.0f;
    q = q * z + 1.0f / 7.0f;
    q = q * z + 1.0f / 5.0f;
    q = q * z + 1.0f / 3.0f;
    const float two_s = s + s;
    const float l = two_s + two_s * (z * q);
    return big ? l + 0.693147180559945309f : l;
}

// softplus(x) = log(1 + e^x) = max(x, 0) + log1p(e^-|x|).
RBM_INLINE float softplus_kernel(float x) {
    return std::max(x, 0.0f) + log1p_unit(exp_kernel(-std::fabs(x)));
}

RBM_INLINE float word_uniform(uint32_t w) { return float(int32_t(w >> 8)) * (1.0f / 16777216.0f); }

// Fixed-order double accumulation of float terms: 8 lanes, summed pairwise at the end,
// so every build of a loop adds in the same order.
struct LaneSum {
    double lane[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    RBM_INLINE void add(const float* terms, std::size_t n) {
        std::size_t j = 0;
        for (; j + 8 <= n; j += 8)
            for (int l = 0; l < 8; ++l) lane[l] += double(terms[j + std::size_t(l)]);
        for (int l = 0; j < n; ++j, ++l) lane[l] += double(terms[j]);
    }
    RBM_INLINE double total() const {
        return ((lane[0] + lane[1]) + (lane[2] + lane[3])) + ((lane[4] + lane[5]) + (lane[6] + lane[7]));
    }
};

constexpr std::size_t kChunk = 256;  // elements per inner pass: the scratch stays in L1

}  // namespace

float fast_expf(float x) { return exp_kernel(x); }
float fast_sigmoidf(float x) { return sigmoid_kernel(x); }
float fast_softplusf(float x) { return softplus_kernel(x); }

float sigmoidf(float x) { return 1.0f / (1.0f + std::exp(-x)); }
float softplusf(float x) { return x > 0.0f ? x + std::log1p(std::exp(-x)) : std::log1p(std::exp(x)); }

const char* kernel_isa() {
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(RBM_NO_CLONES)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) return "avx512f";
    if (__builtin_cpu_supports("avx2")) return "avx2";
    return "x86-64";
#else
    return "generic";
#endif
}

// ---------------------------------------------------------------- elementwise passes

RBM_VECTOR_CLONES
void add_bias_sigmoid_cols(const float* pre, const float* bias, float* prob, std::size_t rows, std::size_t ld,
                           std::size_t c0, std::size_t c1) {
    for (std::size_t r = 0; r < rows; ++r) {
        const float* in = pre + r * ld;
        float* out = prob + r * ld;
        for (std::size_t c = c0; c < c1; ++c) out[c] = sigmoid_kernel(in[c] + bias[c]);
    }
}

void add_bias_sigmoid(const float* pre, const float* bias, float* prob, std::size_t rows, std::size_t cols) {
    add_bias_sigmoid_cols(pre, bias, prob, rows, cols, 0, cols);
}

RBM_VECTOR_CLONES
void sample_bernoulli(const float* prob, float* sample, std::size_t count, const Stream& stream,
                      uint64_t step, uint32_t draw) {
    uint32_t words[kChunk];
    for (std::size_t e0 = 0; e0 < count; e0 += kChunk) {
        const std::size_t len = std::min(kChunk, count - e0);
        philox_words_impl(stream, step, draw, e0, len, words);
        const float* p = prob + e0;
        float* out = sample + e0;
        for (std::size_t e = 0; e < len; ++e) out[e] = word_uniform(words[e]) < p[e] ? 1.0f : 0.0f;
    }
}

RBM_VECTOR_CLONES
void sample_bernoulli_cols(const float* prob, float* sample, std::size_t rows, std::size_t ld, std::size_t c0,
                           std::size_t c1, const Stream& stream, uint64_t step, uint32_t draw) {
    uint32_t words[kChunk];
    for (std::size_t r = 0; r < rows; ++r) {
        for (std::size_t c = c0; c < c1; c += kChunk) {
            const std::size_t len = std::min(kChunk, c1 - c), at = r * ld + c;
            philox_words_impl(stream, step, draw, at, len, words);
            const float* p = prob + at;
            float* out = sample + at;
            for (std::size_t e = 0; e < len; ++e) out[e] = word_uniform(words[e]) < p[e] ? 1.0f : 0.0f;
        }
    }
}

// Per chunk of a row: the chunk's draws, then sigmoid and comparison, all in L1.
RBM_VECTOR_CLONES
void activate_and_sample_cols(const float* pre, const float* bias, float* prob, float* sample, std::size_t rows,
                              std::size_t ld, std::size_t c0, std::size_t c1, const Stream& stream, uint64_t step,
                              uint32_t draw) {
    uint32_t words[kChunk];
    float p[kChunk];
    for (std::size_t r = 0; r < rows; ++r) {
        for (std::size_t c = c0; c < c1; c += kChunk) {
            const std::size_t len = std::min(kChunk, c1 - c), at = r * ld + c;
            philox_words_impl(stream, step, draw, at, len, words);
            const float* in = pre + at;
            const float* b = bias + c;
            for (std::size_t j = 0; j < len; ++j) p[j] = sigmoid_kernel(in[j] + b[j]);
            float* out = sample + at;
            for (std::size_t j = 0; j < len; ++j) out[j] = word_uniform(words[j]) < p[j] ? 1.0f : 0.0f;
            if (prob) std::memcpy(prob + at, p, len * sizeof(float));
        }
    }
}

void activate_and_sample(const float* pre, const float* bias, float* prob, float* sample, std::size_t rows,
                         std::size_t cols, const Stream& stream, uint64_t step, uint32_t draw) {
    activate_and_sample_cols(pre, bias, prob, sample, rows, cols, 0, cols, stream, step, draw);
}

void philox_words_cols(const Stream& stream, uint64_t step, uint32_t draw, std::size_t rows, std::size_t ld,
                       std::size_t c0, std::size_t c1, uint32_t* words) {
    if (c0 == 0 && c1 == ld) return philox_words_impl(stream, step, draw, 0, rows * ld, words);
    for (std::size_t r = 0; r < rows; ++r)
        philox_words_impl(stream, step, draw, r * ld + c0, c1 - c0, words + r * ld + c0);
}

RBM_VECTOR_CLONES
void activate_and_sample_words(const float* pre, const float* bias, float* prob, float* sample,
                               const uint32_t* words, std::size_t rows, std::size_t ld, std::size_t c0,
                               std::size_t c1) {
    float p[kChunk];
    for (std::size_t r = 0; r < rows; ++r) {
        for (std::size_t c = c0; c < c1; c += kChunk) {
            const std::size_t len = std::min(kChunk, c1 - c), at = r * ld + c;
            const float* in = pre + at;
            const float* b = bias + c;
            const uint32_t* w = words + at;
            for (std::size_t j = 0; j < len; ++j) p[j] = sigmoid_kernel(in[j] + b[j]);
            float* out = sample + at;
            for (std::size_t j = 0; j < len; ++j) out[j] = word_uniform(w[j]) < p[j] ? 1.0f : 0.0f;
            if (prob) std::memcpy(prob + at, p, len * sizeof(float));
        }
    }
}

RBM_VECTOR_CLONES
double sum_softplus(const float* pre, const float* bias, std::size_t rows, std::size_t cols) {
    float terms[kChunk];
    LaneSum sum;
    for (std::size_t r = 0; r < rows; ++r) {
        for (std::size_t c0 = 0; c0 < cols; c0 += kChunk) {
            const std::size_t len = std::min(kChunk, cols - c0);
            const float* in = pre + r * cols + c0;
            const float* b = bias + c0;
            for (std::size_t c = 0; c < len; ++c) terms[c] = softplus_kernel(in[c] + b[c]);
            sum.add(terms, len);
        }
    }
    return sum.total();
}

RBM_VECTOR_CLONES
double softplus_shift_delta(const float* pre, const float* bias, const float* shift, float sign,
                            std::size_t n) {
    float terms[kChunk];
    LaneSum sum;
    for (std::size_t j0 = 0; j0 < n; j0 += kChunk) {
        const std::size_t len = std::min(kChunk, n - j0);
        const float* in = pre + j0;
        const float* b = bias + j0;
        const float* w = shift + j0;
        for (std::size_t j = 0; j < len; ++j) {
            const float a = in[j] + b[j];
            terms[j] = softplus_kernel(a + sign * w[j]) - softplus_kernel(a);
        }
        sum.add(terms, len);
    }
    return sum.total();
}

RBM_VECTOR_CLONES
double bernoulli_xent(const float* pre, const float* bias, const float* v, std::size_t n) {
    float terms[kChunk];
    LaneSum sum;
    for (std::size_t e0 = 0; e0 < n; e0 += kChunk) {
        const std::size_t len = std::min(kChunk, n - e0);
        const float* in = pre + e0;
        const float* b = bias + e0;
        const float* x = v + e0;
        for (std::size_t e = 0; e < len; ++e) {
            const float a = in[e] + b[e];
            terms[e] = softplus_kernel(a) - x[e] * a;
        }
        sum.add(terms, len);
    }
    return sum.total();
}

namespace {
// 16 floats, loaded from any float's address: GCC's vector extension, so each
// target_clones build uses its own registers (one zmm, two ymm or four xmm).
using Lanes = float __attribute__((vector_size(64), aligned(4), may_alias));
constexpr std::size_t kRowLanes = 16;

// The listed rows of an operand: row r of the result sums counts[r] rows of m.
struct ListedRows {
    const float* m;
    std::size_t ld;
    const uint32_t* rows;
    const float* weights;  // null: every weight 1
    std::size_t list_ld;
    const std::size_t* counts;
};

// acc[0, V) = the sums of result row r's columns [j, j + V * 16): V accumulators held in
// registers across every listed row.
template <int V>
RBM_INLINE void sum_listed_block(const ListedRows& l, std::size_t r, std::size_t j, Lanes* acc) {
    const uint32_t* rows = l.rows + r * l.list_ld;
    const std::size_t count = l.counts[r];
    for (int v = 0; v < V; ++v) acc[v] = Lanes{};
    if (l.weights) {
        const float* w = l.weights + r * l.list_ld;
        for (std::size_t k = 0; k < count; ++k) {
            const Lanes* row = reinterpret_cast<const Lanes*>(l.m + std::size_t(rows[k]) * l.ld + j);
            const float x = w[k];
            for (int v = 0; v < V; ++v) acc[v] += x * row[v];
        }
    } else {
        for (std::size_t k = 0; k < count; ++k) {
            const Lanes* row = reinterpret_cast<const Lanes*>(l.m + std::size_t(rows[k]) * l.ld + j);
            for (int v = 0; v < V; ++v) acc[v] += row[v];
        }
    }
}

// acc[0, n) for the last n < 16 columns, element by element with the lanes' arithmetic
// (same bits).
RBM_INLINE void sum_listed_tail(const ListedRows& l, std::size_t r, std::size_t j, std::size_t n, float* acc) {
    const uint32_t* rows = l.rows + r * l.list_ld;
    std::fill(acc, acc + n, 0.0f);
    for (std::size_t k = 0; k < l.counts[r]; ++k) {
        const float* row = l.m + std::size_t(rows[k]) * l.ld + j;
        if (l.weights) {
            const float x = l.weights[r * l.list_ld + k];
            for (std::size_t e = 0; e < n; ++e) acc[e] += x * row[e];
        } else {
            for (std::size_t e = 0; e < n; ++e) acc[e] += row[e];
        }
    }
}

// Columns [j, j + V * 16) of every result row in turn: the listed rows' block is fetched
// from memory by the first result row and from cache by the others.
template <int V, class Finish>
RBM_INLINE void finish_listed_columns(const ListedRows& l, std::size_t n_out, std::size_t j, const Finish& finish) {
    Lanes acc[V];
    for (std::size_t r = 0; r < n_out; ++r) {
        sum_listed_block<V>(l, r, j, acc);
        finish.template block<V>(r, j, acc);
    }
}

// The blocks left after the widest: `blocks` < V of 16 columns, one call for all of them.
template <int V, class Finish>
RBM_INLINE void finish_last_blocks(const ListedRows& l, std::size_t n_out, std::size_t j, std::size_t blocks,
                                   const Finish& finish) {
    if constexpr (V > 0) {
        if (blocks == V) finish_listed_columns<V>(l, n_out, j, finish);
        else finish_last_blocks<V - 1>(l, n_out, j, blocks, finish);
    }
}

// Four blocks of 16 columns at a time: wider (8 or 16) measured no faster at 784 x 500.
constexpr int kRowBlocks = 4;

// Hands finish every block of sums: columns 64 at a time, then 48, 32 or 16, then the
// last n % 16 one by one.
template <class Finish>
RBM_INLINE void finish_listed_sums(const ListedRows& l, std::size_t n_out, std::size_t n, const Finish& finish) {
    std::size_t j = 0;
    for (; j + kRowBlocks * kRowLanes <= n; j += kRowBlocks * kRowLanes)
        finish_listed_columns<kRowBlocks>(l, n_out, j, finish);
    const std::size_t blocks = (n - j) / kRowLanes;
    finish_last_blocks<kRowBlocks - 1>(l, n_out, j, blocks, finish);
    j += blocks * kRowLanes;
    if (j == n) return;
    float acc[kRowLanes];
    for (std::size_t r = 0; r < n_out; ++r) {
        sum_listed_tail(l, r, j, n - j, acc);
        finish.tail(r, j, n - j, acc);
    }
}

// The sums stored: out[r * ldo + j].
struct StoreSums {
    float* out;
    std::size_t ldo;
    template <int V>
    RBM_INLINE void block(std::size_t r, std::size_t j, const Lanes* acc) const {
        for (int v = 0; v < V; ++v) reinterpret_cast<Lanes*>(out + r * ldo + j)[v] = acc[v];
    }
    RBM_INLINE void tail(std::size_t r, std::size_t j, std::size_t n, const float* acc) const {
        std::copy(acc, acc + n, out + r * ldo + j);
    }
};

// The update rule on a weight p with velocity v and gradient g, for floats and Lanes
// alike (by reference: no vector crosses a call): momentum_update and the fused update
// below round identically.
template <class T>
RBM_INLINE void update_weight(T& p, T& v, const T& g, const UpdateCoefficients& u) {
    if (u.momentum == 0.0f) v = u.lr * (u.scale * g - u.decay * p);
    else v = u.momentum * v + u.lr * (u.scale * g - u.decay * p);
    p += v;
}

// The sums taken as gradient rows and applied: p[r * ldp + j] += v = the rule's velocity.
// Plain SGD (no momentum, no decay) leaves a row with nothing listed (gradient 0) as it
// is and zeroes its velocity, v = lr (0 - 0 p) = +0, without reading the row: a third
// of the update's memory traffic for such rows (MNIST's margins; a weight of -0 there
// stays -0 rather than becoming +0, and a non-finite one stays as it was).
struct UpdateWithSums {
    float* p;
    float* v;
    std::size_t ldp;
    UpdateCoefficients u;
    const std::size_t* counts;
    bool plain_sgd() const { return u.momentum == 0.0f && u.decay == 0.0f; }
    template <int V>
    RBM_INLINE void block(std::size_t r, std::size_t j, const Lanes* acc) const {
        Lanes* pr = reinterpret_cast<Lanes*>(p + r * ldp + j);
        Lanes* vr = reinterpret_cast<Lanes*>(v + r * ldp + j);
        if (counts[r] == 0 && plain_sgd())
            for (int k = 0; k < V; ++k) vr[k] = Lanes{};
        else
            for (int k = 0; k < V; ++k) update_weight(pr[k], vr[k], acc[k], u);
    }
    RBM_INLINE void tail(std::size_t r, std::size_t j, std::size_t n, const float* acc) const {
        float* pr = p + r * ldp + j;
        float* vr = v + r * ldp + j;
        if (counts[r] == 0 && plain_sgd())
            std::fill(vr, vr + n, 0.0f);
        else
            for (std::size_t e = 0; e < n; ++e) update_weight(pr[e], vr[e], acc[e], u);
    }
};
}  // namespace

RBM_VECTOR_CLONES
void sum_listed_rows(const float* m, std::size_t ld, const uint32_t* rows, const float* weights,
                     std::size_t list_ld, const std::size_t* counts, std::size_t n_out, float* out,
                     std::size_t ldo, std::size_t n) {
    finish_listed_sums(ListedRows{m, ld, rows, weights, list_ld, counts}, n_out, n, StoreSums{out, ldo});
}

RBM_VECTOR_CLONES
void update_with_listed_rows(const float* m, std::size_t ld, const uint32_t* rows, const float* weights,
                             std::size_t list_ld, const std::size_t* counts, std::size_t n_out, float* p,
                             float* v, std::size_t ldp, std::size_t n, const UpdateCoefficients& u) {
    finish_listed_sums(ListedRows{m, ld, rows, weights, list_ld, counts}, n_out, n, UpdateWithSums{p, v, ldp, u, counts});
}

void sum_rows(const float* m, std::size_t ld, const uint32_t* rows, std::size_t n_rows, float* acc,
              std::size_t n) {
    sum_listed_rows(m, ld, rows, nullptr, 0, &n_rows, 1, acc, 0, n);
}

namespace {
// A mask of 64 comparisons (vectorised), then its set bits: 3x the plain loop with AVX-512.
RBM_VECTOR_CLONES
std::size_t list_nonzeros_masks(const float* x, std::size_t n, uint32_t* idx, float* values) {
    std::size_t count = 0;
    for (std::size_t e0 = 0; e0 < n; e0 += 64) {
        const std::size_t len = std::min<std::size_t>(64, n - e0);
        uint64_t mask = 0;
        for (std::size_t k = 0; k < len; ++k) mask |= uint64_t(x[e0 + k] != 0.0f) << k;
        for (; mask; mask &= mask - 1) idx[count++] = uint32_t(e0 + std::size_t(std::countr_zero(mask)));
    }
    if (values)
        for (std::size_t k = 0; k < count; ++k) values[k] = x[idx[k]];
    return count;
}

#if defined(__x86_64__) && defined(__GNUC__) && !defined(RBM_NO_CLONES)
#define RBM_HAVE_AVX512_LIST 1
// 16 comparisons at a time, the nonzeros' indices (and values) packed by vpcompress in
// registers and stored with a mask of their count (no write past the list's end).
__attribute__((target("avx512f"))) std::size_t list_nonzeros_avx512(const float* x, std::size_t n, uint32_t* idx,
                                                                    float* values) {
    std::size_t count = 0, e = 0;
    __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    for (; e + 16 <= n; e += 16) {
        const __m512 v = _mm512_loadu_ps(x + e);
        const __mmask16 nonzero = _mm512_cmp_ps_mask(v, _mm512_setzero_ps(), _CMP_NEQ_UQ);
        const int found = std::popcount(unsigned(nonzero));
        const __mmask16 first = __mmask16((1u << found) - 1u);
        _mm512_mask_storeu_epi32(idx + count, first, _mm512_maskz_compress_epi32(nonzero, lane));
        if (values) _mm512_mask_storeu_ps(values + count, first, _mm512_maskz_compress_ps(nonzero, v));
        count += std::size_t(found);
        lane = _mm512_add_epi32(lane, _mm512_set1_epi32(16));
    }
    for (; e < n; ++e)
        if (x[e] != 0.0f) {
            if (values) values[count] = x[e];
            idx[count++] = uint32_t(e);
        }
    return count;
}

bool detect_avx512() {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f");
}
bool g_avx512_list = detect_avx512();
#endif
}  // namespace

std::size_t list_nonzeros(const float* x, std::size_t n, uint32_t* idx, float* values) {
#ifdef RBM_HAVE_AVX512_LIST
    if (g_avx512_list) return list_nonzeros_avx512(x, n, idx, values);
#endif
    return list_nonzeros_masks(x, n, idx, values);
}

bool use_avx512_list(bool on) {
#ifdef RBM_HAVE_AVX512_LIST
    return std::exchange(g_avx512_list, on && detect_avx512());
#else
    (void)on;
    return false;
#endif
}

namespace {
bool g_sparse_samples = true;
}  // namespace

bool sparse_enough(std::size_t ones, std::size_t total) { return g_sparse_samples && 10 * ones <= 3 * total; }

bool use_sparse_samples(bool on) { return std::exchange(g_sparse_samples, on); }

bool list_sparse_rows(const float* x, std::size_t rows, std::size_t ld, std::size_t cols, uint32_t* idx,
                      std::size_t* counts, float* values) {
    std::size_t total = 0;
    for (std::size_t r = 0; r < rows; ++r)
        total += counts[r] = list_nonzeros(x + r * ld, cols, idx + r * cols, values ? values + r * cols : nullptr);
    return sparse_enough(total, rows * cols);
}

void transpose(std::size_t m, std::size_t n, const float* a, std::size_t lda, float* b, std::size_t ldb) {
    if (m == 0 || n == 0) return;
    cblas_somatcopy(CblasRowMajor, CblasTrans, blasint(m), blasint(n), 1.0f, a, blasint(lda), b, blasint(ldb));
}

RBM_VECTOR_CLONES
void momentum_update(float* __restrict p, float* __restrict v, const float* __restrict g, std::size_t begin,
                     std::size_t end, std::size_t n_weights, const UpdateCoefficients& u) {
    const std::size_t split = std::clamp(n_weights, begin, end);
    for (std::size_t e = begin; e < split; ++e) update_weight(p[e], v[e], g[e], u);
    if (u.momentum == 0.0f) {  // the tutorial's rule: the old velocity is not read at all
        for (std::size_t e = split; e < end; ++e) {
            v[e] = u.lr * (u.scale * g[e]);
            p[e] += v[e];
        }
        return;
    }
    for (std::size_t e = split; e < end; ++e) {
        v[e] = u.momentum * v[e] + u.lr * (u.scale * g[e]);
        p[e] += v[e];
    }
}

}  // namespace rbm::cpu
