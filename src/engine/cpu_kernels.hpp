// The CPU engine's building blocks: matrix products through OpenBLAS sgemm (or, for a
// sparse sample, as sums of rows), the elementwise work as fused single passes (bias,
// sigmoid and Bernoulli sampling together) so a step touches each activation once, and
// the loop threads (cpu_threads.hpp) split a step's products and passes by columns.
//
// The elementwise loops are written for the compiler's vectoriser and built for
// AVX-512, AVX2 and baseline x86-64 with a run-time choice; every build gives the same
// bits (no FMA contraction, fixed summation order), so results do not depend on which
// one runs. The Philox draws are exactly those of random/streams.hpp (Stream::block),
// which the CUDA kernels make too; an element's draw depends only on its index, never
// on how the work is split.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <type_traits>
#include <utility>
#include <vector>

#include "engine/cpu_threads.hpp"
#include "random/streams.hpp"

namespace rbm::cpu {

// ---------------------------------------------------------------- products

// Row-major C[m, n] = alpha op(A) op(B) + beta C through cblas_sgemm, contiguous operands.
void gemm(bool trans_a, bool trans_b, std::size_t m, std::size_t n, std::size_t k, const float* a,
          const float* b, float* c, float alpha = 1.0f, float beta = 0.0f);
// The same with leading dimensions (row strides) given: for blocks of columns.
void gemm(bool trans_a, bool trans_b, std::size_t m, std::size_t n, std::size_t k, const float* a,
          std::size_t lda, const float* b, std::size_t ldb, float* c, std::size_t ldc, float alpha = 1.0f,
          float beta = 0.0f);

// Row-major A[m, n] += alpha x y' (cblas_sger).
void rank1_update(std::size_t m, std::size_t n, float alpha, const float* x, const float* y, float* a);
// y = alpha op(A) x + beta y for row-major A[m, n] (cblas_sgemv); op(A) is A' with trans.
void gemv(bool trans, std::size_t m, std::size_t n, float alpha, const float* a, const float* x, float beta,
          float* y);

// Columns [c0, c1) of row-major C[m, ldc] = A op(B), A [m, k] (lda), B [k, ldb] or,
// with trans_b, B [n, ldb] whose rows are C's columns: computed as blocks of columns
// (as wide as gemm_block_cols says), and after(x, y) called on the columns [x, y) done
// since its last call, every 128 columns or more, while they are in cache (the fused
// activation).
template <typename After>
void gemm_cols(bool trans_b, std::size_t m, std::size_t k, const float* a, std::size_t lda, const float* b,
               std::size_t ldb, float* c, std::size_t ldc, std::size_t c0, std::size_t c1, After&& after);

// Rows [r0, r1) of row-major C[., ldc] = A' B, A [k, lda] (its columns r0..r1 are C's
// rows), B [k, n] (ldb): in blocks of rows, as gemm_cols blocks columns.
void gemm_at_rows(std::size_t n, std::size_t k, const float* a, std::size_t lda, const float* b, std::size_t ldb,
                  float* c, std::size_t ldc, std::size_t r0, std::size_t r1);

// How wide gemm_cols' blocks are for an [m, k] x [k, n] product. Where OpenBLAS has its
// small-matrix kernels (SkylakeX, Cooperlake, SapphireRapids cores: they read A and B in
// place instead of copying W into packed panels on every call, about a third of a call's
// time at m = 20), blocks just narrow enough for them (m n k <= 10^6, and m n <= 1200
// with trans_b: OpenBLAS's permit rules); elsewhere, or when such blocks would be
// narrower than 16 columns, n (one call). The choice depends only on the shapes and the
// CPU, so a run stays deterministic.
std::size_t gemm_block_cols(bool trans_b, std::size_t m, std::size_t k, std::size_t n);
// Blocks on (the default where OpenBLAS has small kernels) or off; returns the previous
// setting. For the benchmark and tests.
bool use_gemm_blocks(bool on);

// One product as computed: tools/bench replays a step's products to time them alone.
struct GemmShape {
    bool trans_a = false, trans_b = false;
    std::size_t m = 0, n = 0, k = 0, lda = 0, ldb = 0, ldc = 0;
    const float* a = nullptr;  // the operands it was called with: a replay reads the same memory
    const float* b = nullptr;
    float* c = nullptr;
    int thread = 0;  // the loop thread that computed it
    double flops() const { return 2.0 * double(m) * double(n) * double(k); }
};
// While `log` is set, gemm() appends every product it computes (for the benchmark;
// nullptr stops). Safe from the loop threads; set it outside parallel().
void record_gemms(std::vector<GemmShape>* log);

// ---------------------------------------------------------------- random numbers

// Raw Philox words of elements [first, first + count) of draw `draw` at counter `step`:
// out[i] = stream.block(step, draw, (first + i) / 4).v[(first + i) % 4], bit for bit,
// computed 16 blocks at a time.
void philox_words(const Stream& stream, uint64_t step, uint32_t draw, uint64_t first,
                  std::size_t count, uint32_t* out);
// AVX2 Philox where the CPU has it (the default), or the portable loop; returns the
// previous setting. For tests: both give the same bits.
bool use_simd_philox(bool on);

// ---------------------------------------------------------------- elementwise passes
//
// The `_cols` forms work on columns [c0, c1) of every row of row-major [rows, ld]
// matrices (bias indexed by column); element (r, c) is element r * ld + c for the draws.

// prob[r, c] = sigmoid(pre[r, c] + bias[c])  (pre may alias prob); the whole-matrix form,
// for tests (the engine uses the _cols form on its column blocks)
void add_bias_sigmoid(const float* pre, const float* bias, float* prob, std::size_t rows,
                      std::size_t cols);
void add_bias_sigmoid_cols(const float* pre, const float* bias, float* prob, std::size_t rows,
                           std::size_t ld, std::size_t c0, std::size_t c1);

// sample[e] = uniform(e) < prob[e] for the elements of a [rows, cols] matrix,
// element index e = r * cols + c of draw `draw` at counter `step`.
void sample_bernoulli(const float* prob, float* sample, std::size_t count, const Stream& stream,
                      uint64_t step, uint32_t draw);
void sample_bernoulli_cols(const float* prob, float* sample, std::size_t rows, std::size_t ld,
                           std::size_t c0, std::size_t c1, const Stream& stream, uint64_t step,
                           uint32_t draw);

// Both in one pass: prob = sigmoid(pre + bias); sample ~ Bernoulli(prob) with the draws
// of sample_bernoulli. `prob` may be null (only the sample is kept); pre may alias prob.
void activate_and_sample(const float* pre, const float* bias, float* prob, float* sample,
                         std::size_t rows, std::size_t cols, const Stream& stream, uint64_t step,
                         uint32_t draw);
void activate_and_sample_cols(const float* pre, const float* bias, float* prob, float* sample,
                              std::size_t rows, std::size_t ld, std::size_t c0, std::size_t c1,
                              const Stream& stream, uint64_t step, uint32_t draw);

// The same split in two: the draws of columns [c0, c1) of every row into `words`, laid
// out like the matrix (words[r * ld + c]: a whole-row range is one contiguous run, so no
// Philox block is wasted), then, block by block, prob and sample from them.
void philox_words_cols(const Stream& stream, uint64_t step, uint32_t draw, std::size_t rows, std::size_t ld,
                       std::size_t c0, std::size_t c1, uint32_t* words);
void activate_and_sample_words(const float* pre, const float* bias, float* prob, float* sample,
                               const uint32_t* words, std::size_t rows, std::size_t ld, std::size_t c0,
                               std::size_t c1);

// Sum over rows of sum_c softplus(pre[r, c] + bias[c]).
double sum_softplus(const float* pre, const float* bias, std::size_t rows, std::size_t cols);

// sum_j softplus(pre[j] + bias[j] + sign * shift[j]) - softplus(pre[j] + bias[j]):
// the hidden part of the free-energy change when one visible bit flips (shift = W[i, :]).
double softplus_shift_delta(const float* pre, const float* bias, const float* shift, float sign,
                            std::size_t n);

// sum_e softplus(pre[e] + bias[e]) - v[e] (pre[e] + bias[e]): the cross-entropy of
// Bernoulli(sigmoid(pre + bias)) at targets v in [0, 1].
double bernoulli_xent(const float* pre, const float* bias, const float* v, std::size_t n);

// out[r * ldo + j] = sum over k < counts[r] of w[k] m[rows[k] * ld + j] for every result
// row r < n_out and j < n, where row r's list is rows + r * list_ld and its weights
// w = weights + r * list_ld (weights null: every w is 1, exact for a binary operand):
// x W for rows of x listed by their nonzeros, O(nonzeros x n) instead of a product.
// Each element is summed in list order, acc = acc + w row (no FMA), whatever n, the
// column offset or the number of result rows, so results do not depend on how the
// columns or rows are split among threads. Columns go 64 at a time in registers, for
// every result row in turn, so W's block is read from cache after the first row.
void sum_listed_rows(const float* m, std::size_t ld, const uint32_t* rows, const float* weights,
                     std::size_t list_ld, const std::size_t* counts, std::size_t n_out, float* out,
                     std::size_t ldo, std::size_t n);
// acc[0, n) = the sum of m's rows listed in `rows`: sum_listed_rows for one result row.
void sum_rows(const float* m, std::size_t ld, const uint32_t* rows, std::size_t n_rows, float* acc,
              std::size_t n);

// ---------------------------------------------------------------- sparse samples
// Once a model has trained, a Gibbs chain's binary samples are mostly zeros (the
// tutorial's MNIST model after its first epochs: ~13% of visible, ~8% of hidden units
// on), and x W for a binary x is the sum of W's rows at x's ones (sum_rows): a third to
// a fifth of the product's time at 784 x 500. Samples denser than sparse_enough() says
// take the product.

// The indices of x[0, n)'s nonzeros, in order, into idx (and, given values, the
// nonzeros themselves into values); returns how many.
std::size_t list_nonzeros(const float* x, std::size_t n, uint32_t* idx, float* values = nullptr);
// list_nonzeros by AVX-512 compress (the default where the CPU has it) or by 64-bit masks;
// returns the previous setting. For tests: both give the same lists.
bool use_avx512_list(bool on);
// The nonzeros of `rows` rows of x (row stride ld, `cols` entries each), row r's into
// idx + r * cols (given values, the nonzeros into values + r * cols) and their count
// into counts[r]; true when, all together, they are sparse_enough.
bool list_sparse_rows(const float* x, std::size_t rows, std::size_t ld, std::size_t cols, uint32_t* idx,
                      std::size_t* counts, float* values = nullptr);
// Whether `ones` of `total` is sparse enough for sum_rows to beat sgemm (measured
// crossover about 45% at 784 x 500 on one core; the threshold is 30%).
bool sparse_enough(std::size_t ones, std::size_t total);
// Products of sparse samples as row sums (the default) or always sgemm; returns the
// previous setting. For the benchmark and tests.
bool use_sparse_samples(bool on);
// B [n, ldb] = A' for row-major A [m, n] (lda), through OpenBLAS's cblas_somatcopy.
void transpose(std::size_t m, std::size_t n, const float* a, std::size_t lda, float* b, std::size_t ldb);

// The update rule's numbers: learning rate, momentum, the gradient's scale (1 / ranks)
// and weight decay.
struct UpdateCoefficients {
    float lr = 0, momentum = 0, scale = 1, decay = 0;
};

// The update rule over elements [begin, end) of parameter-shaped buffers; weight decay
// applies to elements below n_weights only:
//   v = momentum v + lr (scale g - decay p);  p += v
// (with momentum 0 the old v is not read: v = lr (scale g - decay p)).
void momentum_update(float* p, float* v, const float* g, std::size_t begin, std::size_t end,
                     std::size_t n_weights, const UpdateCoefficients& u);
// The same rule on weight rows r < n_out (p and v rows at r * ldp, columns [0, n)) whose
// gradient rows are the listed sums sum_listed_rows would store (same arguments): the
// gradient is summed in registers and applied, never stored; the same values as
// sum_listed_rows then momentum_update (plain SGD skips rows with nothing listed: see
// UpdateWithSums).
void update_with_listed_rows(const float* m, std::size_t ld, const uint32_t* rows, const float* weights,
                             std::size_t list_ld, const std::size_t* counts, std::size_t n_out, float* p,
                             float* v, std::size_t ldp, std::size_t n, const UpdateCoefficients& u);
// ---------------------------------------------------------------- scalar forms

// The vector loops' exp, sigmoid and softplus, one value at a time (same bits). Within
// 4e-7 relative of the exact values; exp is 0 below about -87.34 and +inf above 88.
float fast_expf(float x);
float fast_sigmoidf(float x);
float fast_softplusf(float x);

// References in the obvious form (std::exp / std::log1p), for tests.
float sigmoidf(float x);
float softplusf(float x);

// Which instruction set the vector loops were dispatched to on this CPU, for logs.
const char* kernel_isa();

// ---------------------------------------------------------------- inline definitions

template <typename After>
void gemm_cols(bool trans_b, std::size_t m, std::size_t k, const float* a, std::size_t lda, const float* b,
               std::size_t ldb, float* c, std::size_t ldc, std::size_t c0, std::size_t c1, After&& after) {
    if (c1 <= c0) return;
    const std::size_t width = gemm_block_cols(trans_b, m, k, c1 - c0);
    std::size_t done = c0;  // after() runs on at least 128 columns at a time: fewer short loops
    for (std::size_t x = c0; x < c1; x += width) {
        const std::size_t y = std::min(c1, x + width);
        gemm(false, trans_b, m, y - x, k, a, lda, trans_b ? b + x * ldb : b + x, ldb, c + x, ldc);
        if (y - done >= 128 || y == c1) {
            after(done, y);
            done = y;
        }
    }
}

}  // namespace rbm::cpu
